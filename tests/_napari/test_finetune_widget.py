"""The Fine-tune widget: adapt in a thread_worker with progress, loss curve, cancel and before/after (xvfb-run)."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph._napari._finetune_widget import FinetuneWidget, compare_rows
from napari_vesselgraph._napari._predict_widget import PredictWidget
from napari_vesselgraph.annotations import AnnotationStore
from napari_vesselgraph.checkpoints import load_checkpoint, read_metadata, user_dir

TIMEOUT = 240_000
TINY = {"patch_size": [32, 32], "backbone_channels": [8, 16, 32], "stride": 4, "hidden": 32, "heads": 2,
        "ffn": 64, "query_grid": [4, 4], "enc_layers": 1, "dec_layers": 2}  # fmt: skip


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny_checkpoint(home):
    """A tiny grey 2D checkpoint (random weights) in the user checkpoint folder."""
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.preprocess import input_meta

    torch.manual_seed(0)
    model = Relationformer(ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **TINY}))
    meta = {
        "name": "tiny-fluo",
        "domain": "vessel2d-fluo",
        "input": input_meta(2, 1),
        "thresholds": {"node": 0.5, "edge": 0.5},
        "training": {"config": {"domain": "vessel2d-fluo", "image_shape": [64, 64]}},
    }
    user_dir().mkdir(parents=True, exist_ok=True)
    return save_checkpoint(user_dir() / "tiny-fluo.safetensors", model, meta)


@pytest.fixture
def project(tmp_path):
    """An annotation project of four 48x48 RGB fundus-like patches with their graphs."""
    from napari_vesselgraph.synth import crop_patch, make_sample

    image, graph = make_sample("vessel2d-fundus", 5, (96, 96))
    store = AnnotationStore.create(tmp_path / "ann", ndim=2, channels=3, source_image="synthetic fundus")
    for origin in ((0, 0), (0, 48), (48, 0), (48, 48)):
        patch, local = crop_patch(image, graph, origin, (48, 48))
        store.add_patch((patch * 255).astype(np.uint8), origin, local, status="done")
    return store.folder


@pytest.fixture
def widgets(make_napari_viewer, home, tiny_checkpoint, project):
    viewer = make_napari_viewer()
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict graph")
    widget = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fine-tune")
    widget.folder_edit.setText(str(project))
    widget.describe_project()
    assert widget.select_checkpoint("tiny-fluo")
    widget.method_combo.setCurrentText("finetune")
    widget.batch_spin.setValue(2)
    widget.val_spin.setValue(0.25)
    widget.device_combo.setCurrentText("cpu")
    return viewer, predict, widget


def ticking(qtbot):
    """A QTimer firing every 50 ms: its ticks show whether the Qt event loop stays responsive."""
    from qtpy.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    return timer, ticks


def test_tiny_run_completes_and_reaches_the_predict_widget(widgets, qtbot, home):
    _viewer, predict, widget = widgets
    widget.steps_spin.setValue(4)
    widget.val_every_spin.setValue(2)
    assert "1 will be held out" in widget.project_info.text()
    timer, ticks = ticking(qtbot)
    t0 = time.perf_counter()
    assert widget.train()
    qtbot.waitUntil(lambda: not widget.is_running(), timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert widget.result["status"] == "ok", widget.result
    path = widget.result["path"]
    assert str(user_dir()) in path and not widget.result["cancelled"]
    # the Qt event loop kept running while the worker trained
    assert len(ticks) >= max(5, 0.3 * elapsed / 0.05), (len(ticks), elapsed)
    # progress, loss curve and validation
    assert [s for s, _ in widget.losses] == [1, 2, 3, 4]
    assert [v["step"] for v in widget.val_history] == [2, 4]
    assert widget.plot_draws >= 1 and widget.progress_bar.value() == 1
    # the new checkpoint is selected in the predict widget at once
    assert predict.method()["path"] == path
    # before / after side by side, as recorded in the checkpoint
    meta = read_metadata(path)
    ad = meta["adaptation"]
    assert ad["method"] == "finetune" and len(ad["heldout_ids"]) == 1
    rows = compare_rows(meta)
    assert widget.compare_table.rowCount() == len(rows) >= 3
    label, before, after, _ = rows[0]
    assert label == "node F1"
    assert widget.compare_table.item(0, 0).text() == f"{before:.3f}"
    assert widget.compare_table.item(0, 1).text() == f"{after:.3f}"
    assert ad["heldout_ids"][0] in widget.compare_note.text()
    load_checkpoint(path)
    assert not list(user_dir().glob(".*.tmp"))


def test_cancel_mid_way_stops_soon_and_keeps_a_loadable_checkpoint(widgets, qtbot, home):
    _viewer, predict, widget = widgets
    widget.steps_spin.setValue(2000)
    widget.val_every_spin.setValue(2)
    assert widget.train()
    qtbot.waitUntil(lambda: len(widget.losses) >= 3, timeout=TIMEOUT)
    t_cancel = time.perf_counter()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running(), timeout=TIMEOUT)
    stopped_after = time.perf_counter() - t_cancel
    assert stopped_after < 10.0, f"cancel took {stopped_after:.1f} s"
    assert widget.result["status"] == "ok" and widget.result["cancelled"]
    meta = read_metadata(widget.result["path"])
    assert meta["adaptation"]["steps_done"] < 2000
    ad = meta["adaptation"]
    # the best validated checkpoint: an adapted step, or the source (step 0) when none beat it
    vals = [h["score"] for h in ad["history"] if h["kind"] == "val"]
    assert vals and ad["after"]["score"] == max([ad["before"]["score"], *vals])
    assert ad["after"]["step"] >= 2 or (ad["after"]["step"] == 0 and ad["source_weights"])
    model, _ = load_checkpoint(widget.result["path"])
    assert sum(p.numel() for p in model.parameters()) > 0
    assert "Cancelled" in widget.status_label.text()
    assert predict.method()["path"] == widget.result["path"]
    assert not list(user_dir().glob(".*.tmp"))


def test_cancel_during_a_checkpoint_write_never_leaves_half_a_file(widgets, qtbot, home, monkeypatch):
    """Cancel arrives while adapt is writing a checkpoint (the write is slowed down): the write completes
    atomically, the run stops, and the file it returns loads and holds that write's metadata."""
    import napari_vesselgraph.checkpoints as ck

    _viewer, _predict, widget = widgets
    widget.steps_spin.setValue(2000)
    widget.val_every_spin.setValue(1)
    real = ck.save_checkpoint
    writes: list[int] = []

    def slow_save(path, model, meta=None):
        writes.append(meta["adaptation"]["steps_done"])
        if len(writes) == 2:
            widget._cancel.set()  # the user presses Cancel while this checkpoint is being written
            time.sleep(0.5)
        return real(path, model, meta)

    monkeypatch.setattr(ck, "save_checkpoint", slow_save)
    assert widget.train()
    qtbot.waitUntil(lambda: not widget.is_running(), timeout=TIMEOUT)
    assert len(writes) >= 2
    result = widget.result
    assert result["status"] == "ok" and result["cancelled"]
    meta = read_metadata(result["path"])
    assert meta["adaptation"]["steps_done"] == writes[-1]
    load_checkpoint(result["path"])
    assert not list(user_dir().glob(".*.tmp"))


def test_bad_settings_do_not_start(widgets, qtbot, tmp_path):
    _viewer, _predict, widget = widgets
    widget.folder_edit.setText(str(tmp_path / "nothing here"))
    assert not widget.train() and widget.worker is None
    assert "does not exist" in widget.status_label.text()
    empty = AnnotationStore.create(tmp_path / "empty", ndim=2)
    widget.folder_edit.setText(str(empty.folder))
    assert not widget.train()
    assert "no patches" in widget.status_label.text()


# ---------------------------------------------------------------- look
def test_loss_plot_uses_the_theme_and_its_axis_labels_do_not_overlap(widgets):
    from matplotlib.colors import to_rgba
    from napari.utils.theme import get_theme

    viewer, _predict, widget = widgets
    widget.losses = [(i, 2.0 / i) for i in range(1, 60)]
    widget.val_history = [{"step": 20, "node_f1": 0.2, "edge_f1": 0.1}, {"step": 40, "node_f1": 0.4, "edge_f1": 0.3}]
    widget.redraw()
    widget.canvas.draw()
    bg = to_rgba(get_theme(viewer.theme).background.as_hex())
    assert to_rgba(widget.figure.get_facecolor()) == pytest.approx(bg)
    assert to_rgba(widget.ax.get_facecolor()) == pytest.approx(bg)
    renderer = widget.figure.canvas.get_renderer()
    frame = widget.ax.get_window_extent(renderer)
    left = widget.ax.yaxis.label.get_window_extent(renderer)
    right = widget.ax2.yaxis.label.get_window_extent(renderer)
    assert left.x1 <= frame.x0 + 1 and right.x0 >= frame.x1 - 1  # loss on the left, held-out F1 on the right
    assert not left.overlaps(right)
    fig = widget.figure.bbox
    for text in (left, right, widget.ax.xaxis.label.get_window_extent(renderer)):
        assert fig.x0 - 1 <= text.x0 and text.x1 <= fig.x1 + 1 and fig.y0 - 1 <= text.y0  # nothing cut off


def test_a_worse_result_after_finetuning_is_marked_like_a_better_one(widgets):
    from napari.utils.theme import get_theme

    viewer, _predict, widget = widgets
    meta = {"adaptation": {"before": {"node_f1": 0.2, "edge_f1": 0.3, "smd": 0.10},
                           "after": {"node_f1": 0.4, "edge_f1": 0.3, "smd": 0.15, "step": 5}, "heldout_ids": ["p"]}}  # fmt: skip
    widget.show_comparison(meta)
    rows = {widget.compare_table.verticalHeaderItem(r).text(): r for r in range(widget.compare_table.rowCount())}
    better = widget.compare_table.item(rows["node F1"], 2)
    same = widget.compare_table.item(rows["edge F1"], 2)
    worse = widget.compare_table.item(rows["SMD"], 2)
    assert better.text().endswith("✓") and "✓" not in same.text() and "✗" not in same.text()
    assert worse.text() == "+0.050 ✗"  # SMD went up: worse
    warning = get_theme(viewer.theme).warning.as_hex().lower()
    assert worse.foreground().color().name().lower() == warning


def test_time_left_ignores_the_set_up_before_the_first_step(widgets):
    """20 s of set-up (reading the target, measuring the source), then 0.5 s per step: after 10 % of a
    300-step run the status shows the 135 s the remaining steps take, not the 2.5x that counting the set-up gives."""
    from napari_vesselgraph.progress import TimeLeft

    _viewer, _predict, widget = widgets
    widget._t0 = 1000.0
    widget._eta = TimeLeft(1000.0)
    assert widget._eta.estimate(1, 300, now=1020.5) == pytest.approx(20.5 * 299)  # one step: nothing better to go by
    est = widget._eta.estimate(30, 300, now=1020.5 + 29 * 0.5)
    assert est == pytest.approx(0.5 * 270)
    naive = (20.5 + 29 * 0.5) / 30 * 270
    assert naive > 2 * est  # what the old estimate said
    widget._on_progress(31, 300, {"loss": 0.5})
    assert "about" in widget.status_label.text() and "s left" in widget.status_label.text()

def test_a_segmentation_base_adapts_by_calibrate_only(widgets, qtbot, home):
    """A segmentation checkpoint as the base: calibrate is selected and the training methods are greyed out (the
    info line says why and what to use instead); the run completes and reaches the Predict widget; choosing a
    Relationformer again gives the method back."""
    from napari_vesselgraph.model.segment import SegConfig, build_unet, save_segmenter

    _viewer, predict, widget = widgets
    torch.manual_seed(0)
    cfg = SegConfig(ndim=2, patch=(32, 32), channels=(4, 8, 8), min_size=4)
    save_segmenter(user_dir() / "tiny-seg", build_unet(cfg), cfg, {"seed": 0, "domain": "vessel2d-random"})
    widget.refresh_checkpoints()
    assert widget.method_combo.currentText() == "finetune"
    assert widget.select_checkpoint("tiny-seg")
    assert widget.method_combo.currentText() == "calibrate" and "train-seg --init" in widget.checkpoint_info.text()
    model = widget.method_combo.model()
    enabled = {widget.method_combo.itemText(i): model.item(i).isEnabled() for i in range(widget.method_combo.count())}
    assert enabled["calibrate"] and not any(v for k, v in enabled.items() if k != "calibrate")
    assert widget.train()
    qtbot.waitUntil(lambda: not widget.is_running(), timeout=TIMEOUT)
    assert widget.result["status"] == "ok", widget.result
    meta = read_metadata(widget.result["path"])
    assert meta["kind"] == "segmentation" and meta["adaptation"]["method"] == "calibrate"
    assert predict.method()["path"] == widget.result["path"]
    assert widget.select_checkpoint("tiny-fluo")
    assert widget.method_combo.currentText() == "finetune" and all(
        model.item(i).isEnabled() for i in range(widget.method_combo.count()))


def test_a_warning_in_the_log_is_also_a_notification(widgets, notes):
    """A ``warning:`` line of the run (e.g. calibrate's leave-one-out check) reaches the user as a napari warning,
    not only in the folded Log section; other lines stay in the log."""
    _viewer, _predict, widget = widgets
    widget._on_log("chosen on the shots: threshold 0.5")
    line = "on 1 of 2 shot(s) (OP_1) the settings chosen on the other shots score lower"
    widget._on_log("warning: " + line)
    assert "chosen on the shots" in widget.log_view.toPlainText() and "OP_1" in widget.log_view.toPlainText()
    assert notes["warning"] == ["Fine-tune: " + line]
