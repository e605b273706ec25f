"""The plugin's widgets in one viewer: shared per-viewer state, and room on a laptop screen (xvfb-run)."""

from __future__ import annotations

import shutil

import pytest

from napari_vesselgraph._napari._state import real_viewer, state_for

PLUGIN = "napari-vesselgraph"
WIDGETS = ("Predict graph", "Graph inspector", "Annotate patches", "Fine-tune")


def dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


# ---------------------------------------------------------------- one state per viewer
def test_widgets_from_the_plugin_menu_share_the_state_of_their_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    other = make_napari_viewer()
    predict, annotate = dock(viewer, "Predict graph"), dock(viewer, "Annotate patches")
    assert predict.viewer is not annotate.viewer  # napari gives each widget its own proxy of the viewer
    assert real_viewer(predict.viewer) is viewer and real_viewer(annotate.viewer) is viewer
    assert predict.state is annotate.state is state_for(viewer)
    assert state_for(other) is not state_for(viewer)


def test_annotate_then_finetune_from_the_plugin_menu_fills_in_the_folder(make_napari_viewer, tmp_path, notes):
    viewer = make_napari_viewer()
    (image, *_) = viewer.open_sample(PLUGIN, "vessel2d-fundus")
    annotate = dock(viewer, "Annotate patches")
    annotate.open_project(tmp_path / "ann", image)
    annotate.add_patch(center=(64, 64))
    finetune = dock(viewer, "Fine-tune")
    assert finetune.folder_edit.text() == str(tmp_path / "ann")
    assert "1 patch(es)" in finetune.project_info.text()
    # the base checkpoint suits the project's image (a vessel model for a fundus image, not the road model)
    from napari_vesselgraph.checkpoints.suits import pick_checkpoint

    base = finetune.checkpoint_combo.currentData()
    assert base is not None and base["name"] == pick_checkpoint(image.data) and base["name"] != "road-clean"
    assert finetune.checkpoint_info.text().startswith("For ")
    # no warning about a checkpoint that was only passed through while the list was filled
    assert all(f"'{base['name']}'" in m for m in notes["warning"] if "expects" in m or "made" in m), notes["warning"]


def test_finetune_first_then_annotate_and_a_typed_folder_is_kept(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    (image, *_) = viewer.open_sample(PLUGIN, "vessel2d-fluo")
    finetune = dock(viewer, "Fine-tune")
    annotate = dock(viewer, "Annotate patches")
    assert finetune.folder_edit.text() == ""
    annotate.open_project(tmp_path / "one", image)
    assert finetune.folder_edit.text() == str(tmp_path / "one")
    annotate.open_project(tmp_path / "two", image)  # follows the project while you have not typed one
    assert finetune.folder_edit.text() == str(tmp_path / "two")
    finetune.folder_edit.setText(str(tmp_path / "mine"))
    annotate.open_project(tmp_path / "three", image)
    assert finetune.folder_edit.text() == str(tmp_path / "mine")


def test_finetune_asks_annotate_to_save_first(make_napari_viewer, monkeypatch):
    viewer = make_napari_viewer()
    annotate = dock(viewer, "Annotate patches")
    finetune = dock(viewer, "Fine-tune")
    flushed = []
    monkeypatch.setattr(annotate, "flush", lambda: flushed.append(True))
    assert not finetune.train()  # no folder: it does not start, but pending edits were saved first
    assert flushed == [True]


def test_a_new_checkpoint_reaches_predict_through_the_state(make_napari_viewer, tmp_path):
    from napari_vesselgraph.checkpoints import list_bundled

    bundled = [e for e in list_bundled() if not e.get("error")]
    if not bundled:
        pytest.skip("no bundled checkpoint to copy")
    viewer = make_napari_viewer()
    predict = dock(viewer, "Predict graph")
    finetune = dock(viewer, "Fine-tune")
    path = tmp_path / "elsewhere" / "new-one.safetensors"
    path.parent.mkdir()
    shutil.copy(bundled[0]["path"], path)
    finetune.state.checkpoints_changed.emit(str(path))  # what Fine-tune does when training ends
    assert predict.method()["path"] == str(path)
    assert state_for(viewer).checkpoint["path"] == str(path)


def test_a_closed_widget_is_dropped_from_the_state(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    annotate = dock(viewer, "Annotate patches")
    state = state_for(viewer)
    before = len(state.flush_requested)
    viewer.window.remove_dock_widget("all")
    annotate.deleteLater()
    qtbot.wait(50)
    state.flush_requested.emit()  # must not call into the deleted widget
    assert len(state.flush_requested) < before


# ---------------------------------------------------------------- a laptop screen
def test_all_four_widgets_fit_a_1366x768_screen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    viewer.open_sample(PLUGIN, "retina")
    widgets = [dock(viewer, name) for name in WIDGETS]
    qtbot.waitExposed(window)
    qtbot.wait(300)
    assert window.height() <= 768 and window.width() <= 1366, window.size()
    for w in widgets:  # each widget scrolls instead of growing the window
        assert w.scroll_area.verticalScrollBarPolicy() is not None
        assert w.minimumSizeHint().height() < 300, (type(w).__name__, w.minimumSizeHint())


@pytest.mark.parametrize("name", WIDGETS)
def test_each_widget_alone_fits_a_1366x768_screen(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    dock(viewer, name)
    qtbot.waitExposed(window)
    qtbot.wait(200)
    assert window.height() <= 768 and window.width() <= 1366, window.size()


def test_wrapped_lines_get_their_height_in_a_narrow_dock(make_napari_viewer, qtbot):
    """A warning set while the dock is laid out narrower than its first width must not be cut off."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    viewer.open_sample(PLUGIN, "retina")
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name != WIDGETS[0])[1]
               for name in WIDGETS}  # fmt: skip
    qtbot.waitExposed(window)
    qtbot.wait(200)
    label = widgets["Fine-tune"].suit_label
    label.setText("⚠ " + "a long warning that wraps over several lines " * 8)
    label.setVisible(True)
    qtbot.wait(300)
    assert label.height() >= label.heightForWidth(label.width()) > 3 * label.fontMetrics().height()
