"""The Predict graph widget, end to end in a napari viewer (run under xvfb-run)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from napari_vesselgraph import inference
from napari_vesselgraph._napari._predict_widget import (
    REGION_SHAPES,
    REGION_VIEW,
    SKELETON_LABEL,
    PredictWidget,
    run_prediction,
)
from napari_vesselgraph._napari._widget_utils import field_of_view_region, plan_image
from napari_vesselgraph.errors import Cancelled
from napari_vesselgraph.graph import VesselGraph

FLUO = "Vessels 2D (fluorescence, synthetic)"
VOLUME = "Vessels 3D (light-sheet, synthetic)"
TIMEOUT = 60_000


# ---------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """An empty user checkpoint folder per test (tests that need a checkpoint put one there)."""
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))


@pytest.fixture
def notes(monkeypatch):
    """Record napari notifications instead of showing them: ``notes[level] -> [message, ...]``."""
    from napari.utils import notifications

    seen: dict[str, list[str]] = {"info": [], "warning": [], "error": []}
    for level in ("info", "warning", "error"):
        monkeypatch.setattr(notifications, f"show_{level}", lambda msg, level=level: seen[level].append(str(msg)))
    return seen


@pytest.fixture
def predict_calls(monkeypatch):
    """Count calls of inference.predict (the widget looks it up at run time) and keep their arguments."""
    calls: list[dict] = []
    real = inference.predict

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "predict", spy)
    return calls


def make_widget(viewer) -> PredictWidget:
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Predict graph")
    return widget


def choose(widget: PredictWidget, label: str) -> None:
    idx = widget.method_combo.findText(label)
    if idx < 0:
        for i in range(widget.method_combo.count()):
            d = widget.method_combo.itemData(i)
            if isinstance(d, dict) and d.get("name") == label:
                idx = i
                break
    assert idx >= 0, f"{label!r} not in the method combo"
    widget.method_combo.setCurrentIndex(idx)


def run_and_wait(qtbot, widget: PredictWidget) -> None:
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


def graph_layer_names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers if "graph (" in layer.name]


def tiny_checkpoint(path, ndim: int = 2, **meta):
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.model import ModelConfig
    from napari_vesselgraph.model.network import Relationformer

    torch.manual_seed(0)
    cfg = ModelConfig(
        ndim=ndim,
        patch_size=(32,) * ndim if ndim == 2 else (16,) * 3,
        backbone_channels=(8, 16, 32),
        hidden=32,
        heads=2,
        enc_layers=1,
        dec_layers=1,
        ffn=64,
        query_grid=(4,) * ndim if ndim == 2 else (2,) * 3,
    )
    model = Relationformer(cfg).eval()
    return save_checkpoint(path, model, {"domain": "vessel2d-fluo", "adaptation": {"method": "contrastive"}, **meta})


# ---------------------------------------------------------------- skeleton, end to end
def test_skeleton_end_to_end(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    assert widget.image_combo.currentText() == FLUO
    choose(widget, SKELETON_LABEL)
    assert widget.thresholds() == (0.0, 0.0)  # the skeleton keeps all of itself by default
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    nodes = viewer.layers[f"{FLUO} graph (skeleton) nodes"]
    edges = viewer.layers[f"{FLUO} graph (skeleton) edges"]
    assert len(nodes.data) > 20 and len(edges.data) > 20
    for col in ("confidence", "degree", "radius", "node_id"):
        assert col in nodes.features.columns
    assert "confidence" in edges.features.columns
    # nodes by confidence; edges in one colour that stands out on the image (the inspector can colour them)
    assert nodes.face_color_mode == "colormap" and edges.edge_color_mode == "direct"
    assert len(np.unique(np.asarray(edges.edge_color), axis=0)) == 1
    image = viewer.layers[FLUO]
    np.testing.assert_allclose(nodes.scale, image.scale)
    np.testing.assert_allclose(nodes.translate, image.translate)
    # the graph lies on the vessels: the image is brighter under the nodes than on average
    img = np.asarray(image.data)
    yx = np.clip(np.round(nodes.data).astype(int), 0, np.array(img.shape) - 1)
    assert img[yx[:, 0], yx[:, 1]].mean() > 2 * img.mean()
    assert widget.last_result is not None and widget.progress_bar.value() == widget.progress_bar.maximum()
    assert any("nodes" in m for m in notes["info"])


def test_threshold_sliders_update_layers_without_running_again(make_napari_viewer, qtbot, predict_calls):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    assert len(predict_calls) == 1 and predict_calls[0]["keep_raw"] is True
    res = widget.last_result
    nodes, edges = res.layers["nodes"], res.layers["edges"]
    n0 = len(nodes.data)
    gid = nodes.metadata["vesselgraph"]["graph_id"]

    widget.node_slider.setValue(0.6)
    widget.edge_slider.setValue(0.6)
    expected = inference.apply_thresholds(res.raw, 0.6, 0.6)
    qtbot.waitUntil(lambda: len(nodes.data) == expected.n_nodes and len(edges.data) == expected.n_edges, timeout=5000)
    assert expected.n_nodes < n0
    assert len(predict_calls) == 1  # no second model run
    assert nodes in viewer.layers and nodes.metadata["vesselgraph"]["graph_id"] == gid  # same layers, updated
    assert len(nodes.features) == expected.n_nodes and nodes.features["confidence"].min() >= 0.6
    assert len(edges.features) == expected.n_edges and edges.features["confidence"].min() >= 0.6

    widget.node_slider.setValue(0.0)
    widget.edge_slider.setValue(0.0)
    qtbot.waitUntil(lambda: len(nodes.data) == n0, timeout=5000)
    assert len(predict_calls) == 1


def test_replace_or_add_results(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    run_and_wait(qtbot, widget)
    assert len(graph_layer_names(viewer)) == 2  # replaced
    widget.replace_check.setChecked(False)
    run_and_wait(qtbot, widget)
    assert len(graph_layer_names(viewer)) == 4  # added


def test_cancel_adds_no_layers(make_napari_viewer, qtbot, notes, monkeypatch):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    n_layers = len(viewer.layers)
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    started = threading.Event()
    real = inference.predict

    def slow(*args, cancel=None, **kwargs):
        started.set()
        t0 = time.perf_counter()
        while not cancel.is_set() and time.perf_counter() - t0 < 20:
            time.sleep(0.01)
        return real(*args, cancel=cancel, **kwargs)  # raises Cancelled at its first check

    monkeypatch.setattr(inference, "predict", slow)
    widget.run()
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert widget.cancel_button.isEnabled() and not widget.run_button.isEnabled()
    widget.cancel_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    assert len(viewer.layers) == n_layers
    assert widget.last_result is None
    assert any("cancelled" in m.lower() for m in notes["info"])
    assert not notes["error"]
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_event_loop_keeps_running_during_prediction(make_napari_viewer, qtbot, monkeypatch):
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    real = inference.predict

    def slow(*args, progress=None, **kwargs):
        for k in range(10):  # 1 s of "work" in the worker thread, reporting progress
            time.sleep(0.1)
            progress(k + 1, 10, {"stage": "predict"})
        return real(*args, progress=None, **kwargs)

    monkeypatch.setattr(inference, "predict", slow)
    ticks = {"n": 0, "while_running": 0, "progress": []}

    def tick():
        ticks["n"] += 1
        if widget.worker is not None:
            ticks["while_running"] += 1
            ticks["progress"].append(widget.progress_bar.value())

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    t0 = time.perf_counter()
    widget.run()
    assert time.perf_counter() - t0 < 0.5  # run() returns at once
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    timer.stop()
    assert ticks["while_running"] >= 10  # the GUI thread kept handling timers during the 1 s of work
    assert max(ticks["progress"]) >= 5  # and the progress bar moved
    assert widget.last_result is not None


def test_volume(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    widget = make_widget(viewer)
    widget.image_combo.set_layer(viewer.layers[VOLUME])
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    nodes = viewer.layers[f"{VOLUME} graph (skeleton) nodes"]
    assert nodes.ndim == 3 and len(nodes.data) > 10
    np.testing.assert_allclose(nodes.scale, viewer.layers[VOLUME].scale)
    image = viewer.layers[VOLUME]
    image.scale = (2.0, 0.5, 0.5)  # an anisotropic voxel, to see it carried through
    run_and_wait(qtbot, widget)  # replaces the previous result
    nodes = viewer.layers[f"{VOLUME} graph (skeleton) nodes"]
    np.testing.assert_allclose(nodes.scale, (2.0, 0.5, 0.5))
    assert str(nodes.units[0]) == "micrometer"
    assert widget.last_result.raw.metadata["unit"] == "µm"
    np.testing.assert_allclose(widget.last_result.raw.scale, (2.0, 0.5, 0.5))


def test_no_image_layer(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    widget = make_widget(viewer)
    widget.run_button.click()
    assert widget.worker is None
    assert notes["error"] and "No image layer" in notes["error"][0]
    assert len(viewer.layers) == 0


def test_dask_and_rgb_layers(make_napari_viewer, qtbot, notes, predict_calls):
    da = pytest.importorskip("dask.array")
    from napari_vesselgraph.samples import load_sample

    image, _, _ = load_sample("vessel2d-fluo")
    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(image, chunks=(64, 64)), name="lazy")
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    assert "lazy graph (skeleton) nodes" in viewer.layers
    assert type(predict_calls[-1]["image"]).__module__.startswith("dask")

    rgb, _, _ = load_sample("road-clean")
    viewer.add_image(rgb, name="roads", rgb=True)
    widget.image_combo.set_layer(viewer.layers["roads"])
    run_and_wait(qtbot, widget)
    assert predict_calls[-1]["image"].shape == rgb.shape and predict_calls[-1]["channel"] is None
    assert len(viewer.layers["roads graph (skeleton) nodes"].data) > 10


def test_time_lapse_predicts_current_time_point(make_napari_viewer, qtbot, notes, predict_calls):
    from napari_vesselgraph.samples import load_sample

    image, _, _ = load_sample("vessel2d-fluo")
    stack = np.stack([np.zeros_like(image), image, np.zeros_like(image)])  # (T, Y, X)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="movie")
    viewer.dims.set_point(0, 1)
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    widget.axes_combo.setCurrentIndex(widget.axes_combo.findData("2D"))
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    np.testing.assert_array_equal(predict_calls[-1]["image"], image)
    assert any("= 1" in m and "slider" in m for m in notes["info"])
    nodes = viewer.layers["movie graph (skeleton) nodes"]
    assert nodes.ndim == 2 and len(nodes.data) > 10

    # 4D (T, Z, Y, X): "auto" predicts the volume at the current time point
    vol = np.zeros((2, 8, 24, 24), np.float32)
    vol[1, :, 12, 2:22] = 1.0
    viewer.add_image(vol, name="4d")
    viewer.dims.set_point(0, 1)
    widget.image_combo.set_layer(viewer.layers["4d"])
    widget.axes_combo.setCurrentIndex(widget.axes_combo.findData("auto"))
    run_and_wait(qtbot, widget)
    assert predict_calls[-1]["image"].shape == (8, 24, 24)
    np.testing.assert_array_equal(predict_calls[-1]["image"], vol[1])


def test_channel_of_a_multichannel_layer(make_napari_viewer, qtbot, notes, predict_calls):
    from napari_vesselgraph.samples import load_sample

    image, _, _ = load_sample("vessel2d-fluo")
    two = np.stack([np.zeros_like(image), image], axis=-1)  # (Y, X, 2), channels last, not RGB
    viewer = make_napari_viewer()
    viewer.add_image(two, name="two channels")
    widget = make_widget(viewer)
    assert widget.channel_check.isChecked()  # guessed from the small last axis
    widget.channel_spin.setValue(1)
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    assert predict_calls[-1]["channel"] == 1
    nodes = viewer.layers["two channels graph (skeleton) nodes"]
    assert nodes.ndim == 2 and len(nodes.data) > 10


def test_regions(make_napari_viewer, qtbot, notes, predict_calls):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    image = viewer.layers[FLUO]
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    widget.replace_check.setChecked(False)

    # a rectangle in a Shapes layer
    shapes = viewer.add_shapes([np.array([[10, 20], [10, 80], [70, 80], [70, 20]])], shape_type="rectangle")
    widget.image_combo.set_layer(image)
    widget.region_combo.setCurrentText(REGION_SHAPES)
    widget.shapes_combo.set_layer(shapes)
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    assert predict_calls[-1]["region"] == (slice(10, 71), slice(20, 81))
    pts = widget.last_result.layers["nodes"].data
    assert len(pts) and pts[:, 0].min() >= 10 and pts[:, 0].max() <= 70 and pts[:, 1].max() <= 80

    # the part of the image seen on the canvas
    viewer.scene.camera.center = (0.0, 40.0, 40.0)
    viewer.scene.camera.zoom = 15.0
    widget.region_combo.setCurrentText(REGION_VIEW)
    run_and_wait(qtbot, widget)
    region = predict_calls[-1]["region"]
    assert region == field_of_view_region(viewer, image, plan_image(image, viewer))
    sizes = [s.stop - s.start for s in region]
    assert all(0 < n < 128 for n in sizes)
    pts = widget.last_result.layers["nodes"].data
    assert np.all(pts >= [s.start for s in region]) and np.all(pts <= [s.stop for s in region])

    # an empty Shapes layer: a notification, no run
    empty = viewer.add_shapes(name="empty")
    widget.image_combo.set_layer(image)
    widget.region_combo.setCurrentText(REGION_SHAPES)
    widget.shapes_combo.set_layer(empty)
    n = len(predict_calls)
    widget.run()
    assert widget.worker is None and len(predict_calls) == n
    assert "empty" in notes["error"][-1] and "rectangle" in notes["error"][-1]


# ---------------------------------------------------------------- the model path
def test_model_checkpoint_end_to_end(make_napari_viewer, qtbot, notes, predict_calls, tmp_path):
    from napari_vesselgraph.checkpoints import user_dir

    tiny_checkpoint(user_dir() / "tiny-random.safetensors")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, "tiny-random")
    info = widget.method_info.text()
    assert "vessel2d-fluo" in info and "2D" in info and "contrastive" in info
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    call = predict_calls[-1]
    assert call["method"] == "model" and call["checkpoint"].endswith("tiny-random.safetensors")
    assert call["device"] == "cpu" and call["keep_raw"] is True
    res = widget.last_result
    assert res.raw.n_nodes > 0 and res.raw.metadata["checkpoint"] == "tiny-random"
    nodes = viewer.layers[f"{FLUO} graph (tiny-random) nodes"]
    from napari_vesselgraph.inference.postprocess import finish_raw

    expected = finish_raw(res.raw, *widget.thresholds())  # thresholds + the checkpoint's clean-up
    assert len(nodes.data) == expected.n_nodes
    assert "confidence" in nodes.features.columns and "degree" in nodes.features.columns
    widget.node_slider.setValue(0.0)
    widget.edge_slider.setValue(0.0)
    low = finish_raw(res.raw, 0.0, 0.0)
    qtbot.waitUntil(lambda: len(nodes.data) == low.n_nodes, timeout=5000)
    assert len(predict_calls) == 1


def test_segmentation_checkpoint_end_to_end(make_napari_viewer, qtbot, notes, predict_calls):
    """A segmentation checkpoint (U-Net -> mask -> centre-line graph) runs from the same widget; the info line says
    what kind it is."""
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.checkpoints import user_dir
    from napari_vesselgraph.model.segment import SegConfig, build_unet, save_segmenter

    torch.manual_seed(0)
    cfg = SegConfig(ndim=2, patch=(32, 32), channels=(4, 8, 8), threshold=0.05, min_size=4)
    save_segmenter(user_dir() / "tiny-seg.safetensors", build_unet(cfg), cfg, {"domain": "vessel2d-fluo"})
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, "tiny-seg")
    assert "segmentation" in widget.method_info.text()
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    res = widget.last_result
    assert res.raw.metadata["kind"] == "segmentation" and res.raw.metadata["checkpoint"] == "tiny-seg"
    nodes = viewer.layers[f"{FLUO} graph (tiny-seg) nodes"]
    assert len(nodes.data) == res.raw.n_nodes > 0


def test_bundled_checkpoint_if_any(make_napari_viewer, qtbot, notes):
    from napari_vesselgraph.checkpoints import list_bundled

    two_d = [e for e in list_bundled() if int((e.get("meta") or {}).get("ndim", 0)) == 2 and not e.get("error")]
    if not two_d:
        pytest.skip("no bundled 2D checkpoint in this checkout")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    choose(widget, two_d[0]["name"])
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    assert not notes["error"], notes["error"]
    assert widget.last_result is not None and widget.last_result.raw.n_nodes > 0


def test_checkpoint_dimensionality_mismatch(make_napari_viewer, qtbot, notes, predict_calls):
    from napari_vesselgraph.checkpoints import user_dir

    tiny_checkpoint(user_dir() / "tiny-2d.safetensors")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    n_layers = len(viewer.layers)
    widget = make_widget(viewer)
    widget.image_combo.set_layer(viewer.layers[VOLUME])
    choose(widget, "tiny-2d")
    widget.run()
    assert widget.worker is None and not predict_calls
    assert notes["error"], "expected an error notification"
    msg = notes["error"][-1]
    assert "2D" in msg and "3D" in msg and "tiny-2d" in msg
    assert len(viewer.layers) == n_layers


def test_browse_for_a_checkpoint_file(make_napari_viewer, qtbot, notes, tmp_path, monkeypatch):
    path = tiny_checkpoint(tmp_path / "elsewhere" / "mine.safetensors")
    viewer = make_napari_viewer()
    widget = make_widget(viewer)
    from napari_vesselgraph._napari import _predict_widget

    monkeypatch.setattr(_predict_widget.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    browse = widget.method_combo.findText("Browse…")
    widget.method_combo.setCurrentIndex(browse)
    widget.method_combo.activated.emit(browse)
    data = widget.method_combo.currentData()
    assert data["kind"] == "model" and data["path"] == str(path)
    assert "contrastive" in widget.method_info.text()

    bad = tmp_path / "not-a-checkpoint.safetensors"
    bad.write_bytes(b"hello")
    assert not widget.add_checkpoint_file(bad)
    assert notes["error"] and "not-a-checkpoint" in notes["error"][-1]


# ---------------------------------------------------------------- the worker job itself
def test_out_of_memory_falls_back_to_cpu(monkeypatch):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs["device"])
        if kwargs["device"] != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return VesselGraph(np.zeros((1, 2)), np.zeros((0, 2), int))

    monkeypatch.setattr(inference, "predict", fake)
    out = run_prediction({"image": np.zeros((8, 8)), "method": "model", "device": "auto"}, threading.Event())
    assert out["status"] == "ok" and calls == ["auto", "cpu"] and "out of memory" in out["fell_back"]

    def always(**kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(inference, "predict", always)
    out = run_prediction({"image": np.zeros((8, 8)), "method": "model", "device": "cpu"}, threading.Event())
    assert out["status"] == "error" and "batch size" in out["message"] and "region" in out["message"]

    def cancelled(**kwargs):
        raise Cancelled("stop")

    monkeypatch.setattr(inference, "predict", cancelled)
    assert run_prediction({"image": None, "method": "skeleton"}, threading.Event()) == {"status": "cancelled"}


# ---------------------------------------------------------------- manifest: widgets, menus, samples
def test_widgets_open_from_the_manifest(make_napari_viewer):
    from npe2 import PluginManifest

    from napari_vesselgraph._napari._inspector_widget import InspectorWidget

    pm = PluginManifest.from_distribution("napari-vesselgraph")
    assert [w.display_name for w in pm.contributions.widgets] == [
        "Predict graph", "Graph inspector", "Annotate patches", "Fine-tune"
    ]
    menus = {k: [item.command for item in v] for k, v in pm.contributions.menus.items()}
    assert menus["napari/layers/segment"] == ["napari-vesselgraph.predict_widget"]
    assert menus["napari/layers/measure"] == ["napari-vesselgraph.inspector_widget"]
    viewer = make_napari_viewer()
    _, predict = viewer.window.add_plugin_dock_widget("napari-vesselgraph", "Predict graph")
    _, inspector = viewer.window.add_plugin_dock_widget("napari-vesselgraph", "Graph inspector")
    assert isinstance(predict, PredictWidget) and isinstance(inspector, InspectorWidget)


@pytest.mark.parametrize("key", ["vessel2d-fluo", "vessel2d-fundus", "vessel3d-lightsheet", "road-clean"])
def test_synthetic_samples_open_with_their_ground_truth(make_napari_viewer, key):
    from napari_vesselgraph.samples import load_sample

    image, scale, graph = load_sample(key)
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-vesselgraph", key)
    assert [type(lyr).__name__ for lyr in layers] == ["Image", "Vectors", "Points"]
    img, edges, nodes = layers
    np.testing.assert_array_equal(img.data, image)
    assert img.rgb == (image.ndim == 3 and len(scale) == 2)
    np.testing.assert_allclose(img.scale, scale)
    np.testing.assert_allclose(nodes.scale, scale)
    assert not nodes.visible and not edges.visible  # ground truth hidden until asked for
    assert nodes.name.endswith("ground truth nodes") and len(nodes.data) == graph.n_nodes
    assert len(edges.data) == graph.n_edges


# ---------------------------------------------------------------- which checkpoint suits the image
def _bundled_names() -> set:
    from napari_vesselgraph.checkpoints import list_bundled

    return {e["name"] for e in list_bundled() if not e.get("error")}


def test_default_checkpoint_suits_the_image(make_napari_viewer, qtbot, notes):
    from napari_vesselgraph.checkpoints.suits import pick_checkpoint

    if not {"road-clean", "vessel2d-fluo", "vessel3d-lightsheet"} <= _bundled_names():
        pytest.skip("needs the bundled checkpoints")
    viewer = make_napari_viewer()
    (fundus, *_) = viewer.open_sample("napari-vesselgraph", "vessel2d-fundus")
    widget = make_widget(viewer)
    # an RGB fundus image: a vessel model (never the first name, road-clean), the one pick_checkpoint names
    assert widget.method()["name"] == pick_checkpoint(fundus.data) != "road-clean"
    assert "For " in widget.method_info.text()
    if widget.method()["name"] == "vessel2d-fluo":  # a bright-vessel model on dark vessels: said, visibly
        assert widget.suit_label.isVisibleTo(widget) and "darker" in widget.suit_label.text()
        assert any("vessel2d-fluo" in m and "darker" in m for m in notes["warning"])
    # each new image gets its own default while the user has not chosen
    (road, *_) = viewer.open_sample("napari-vesselgraph", "road-clean")
    widget.image_combo.set_layer(road)
    assert widget.method()["name"] == "road-clean" and not widget.suit_label.isVisibleTo(widget)
    (volume, *_) = viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    widget.image_combo.set_layer(volume)
    # a 3D stack: a 3D model (the adapted two-photon one when bundled), the one pick_checkpoint names, no warning
    assert widget.method()["name"] == pick_checkpoint(volume.data) and widget.suitability_warnings == []
    assert widget.method()["name"].startswith("vessel3d-")


def test_an_explicit_choice_sticks_and_a_mismatch_warns(make_napari_viewer, qtbot, notes):
    if "vessel2d-fluo" not in _bundled_names():
        pytest.skip("needs the bundled vessel2d-fluo")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = make_widget(viewer)
    assert widget.method()["name"] == "vessel2d-fluo" and not widget.suit_label.isVisibleTo(widget)
    widget.method_combo.activated.emit(widget.method_combo.currentIndex())  # the user picks it in the combo
    (volume, *_) = viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    widget.image_combo.set_layer(volume)
    assert widget.method()["name"] == "vessel2d-fluo"
    text = widget.suit_label.text()
    assert widget.suit_label.isVisibleTo(widget) and "2D model" in text and "3D stack" in text
    assert any("2D model" in m for m in notes["warning"])
    n = len(notes["warning"])
    widget.image_combo.set_layer(viewer.layers[FLUO])
    widget.image_combo.set_layer(volume)
    assert len(notes["warning"]) == n  # the same warning is not repeated for the same image and model
    choose(widget, SKELETON_LABEL)
    assert not widget.suit_label.isVisibleTo(widget)


def test_no_fitting_checkpoint_means_the_skeleton(make_napari_viewer, qtbot, monkeypatch):
    import napari_vesselgraph.checkpoints as ckpts

    two_d = [e for e in ckpts.list_checkpoints() if int((e.get("meta") or {}).get("ndim", 0)) == 2]
    monkeypatch.setattr(ckpts, "list_checkpoints", lambda: two_d)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    widget = make_widget(viewer)
    assert widget.method()["kind"] == "skeleton"


# ---------------------------------------------------------------- look
def test_edges_get_a_colour_that_stands_out_on_the_image_and_a_legend(make_napari_viewer, qtbot, notes):
    from napari_vesselgraph._napari._widget_utils import EDGE_CANDIDATES, contrast_color, displayed_pixels

    viewer = make_napari_viewer()
    (fundus, *_) = viewer.open_sample("napari-vesselgraph", "vessel2d-fundus")
    widget = make_widget(viewer)
    choose(widget, SKELETON_LABEL)
    run_and_wait(qtbot, widget)
    edges = widget.last_result.layers["edges"]
    colors = np.unique(np.round(np.asarray(edges.edge_color), 3), axis=0)
    assert len(colors) == 1  # one plain colour, not viridis's dark blues and purples on a red photo
    best = contrast_color(displayed_pixels(fundus))
    assert best in EDGE_CANDIDATES and best not in ("magenta", "orange")  # red-ish colours vanish on red

    from matplotlib.colors import to_rgba

    np.testing.assert_allclose(colors[0], to_rgba(best), atol=2e-3)
    legend = widget.legend_label.text()
    assert "Nodes: confidence" in legend and legend.count("■") >= 3 and "Edges: " in legend
    # moving the sliders keeps the plain colour
    widget.edge_slider.setValue(0.3)
    qtbot.waitUntil(lambda: widget.last_result.edge_threshold == pytest.approx(0.3), timeout=5000)
    assert len(np.unique(np.round(np.asarray(edges.edge_color), 3), axis=0)) == 1


def test_the_retina_opens_fitted_to_the_canvas(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    make_widget(viewer)
    qtbot.wait(100)
    viewer.open_sample("napari-vesselgraph", "retina")
    qtbot.wait(100)
    cam = viewer.camera
    zoom, center = cam.zoom, tuple(cam.center)
    viewer.reset_view()  # what Home does
    assert cam.zoom == pytest.approx(zoom, rel=1e-3) and tuple(cam.center) == pytest.approx(center)
