"""The Annotate patches widget: patches and their corrected graphs saved on every change (run under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_vesselgraph._napari import _annotation_widget as aw
from napari_vesselgraph._napari._annotation_widget import EMPTY_LABEL, AnnotationWidget
from napari_vesselgraph._napari._widget_utils import camera
from napari_vesselgraph._napari.layers import add_graph_to_viewer, layers_to_graph
from napari_vesselgraph.annotations import AnnotationStore
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.synth import read_dataset

TIMEOUT = 10_000


def prediction() -> VesselGraph:
    """A 'predicted' chain across the image, with confidences (which annotations must not keep)."""
    nodes = np.array([[10.0, 10.0], [30.0, 30.0], [50.0, 40.0], [100.0, 100.0], [110.0, 60.0]])
    return VesselGraph(
        nodes,
        np.array([[0, 1], [1, 2], [2, 3], [3, 4]]),
        node_attrs={"radius": np.full(5, 2.0), "confidence": np.full(5, 0.9)},
        edge_attrs={"confidence": np.full(4, 0.8)},
    )


@pytest.fixture
def setup(make_napari_viewer, tmp_path, notes):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    image = viewer.add_image(rng.random((128, 128)).astype(np.float32), name="img", scale=(0.5, 0.5))
    add_graph_to_viewer(viewer, prediction(), image, name="pred")
    widget = AnnotationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotate patches")
    return viewer, widget, image, tmp_path / "project"


def wait_saved(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.pending(), timeout=TIMEOUT)


def move_node(layer, row, pos):
    data = np.asarray(layer.data).copy()
    data[row] = pos
    layer.data = data  # emits data events like a drag does


def test_annotate_two_patches_close_and_reopen(setup, qtbot):
    viewer, widget, image, folder = setup
    assert widget.source_combo.currentText() == "pred nodes"  # the prediction, not an empty graph
    widget.open_project(folder, image)
    assert widget.size_spin.value() == 64  # the bundled 2D checkpoint's patch size
    a = widget.add_patch(center=(32, 32))
    widget.source_combo.setCurrentText(EMPTY_LABEL)
    b = widget.add_patch(center=(96, 96))
    store = widget.store
    assert store.origin(a) == (1, 1) and store.size(a) == (64, 64)
    first = store.load_graph(a)
    assert first.n_nodes == 4 and first.n_edges == 3  # 3 nodes inside + one where the chain leaves the patch
    assert set(first.node_attrs) == {"radius"}
    assert store.load_graph(b).n_nodes == 0

    # correct patch a: move a node; add two nodes to patch b and connect them
    nodes_a = widget.patch_layers[a]["nodes"]
    move_node(nodes_a, 1, (25.0, 35.0))
    nodes_b = widget.patch_layers[b]["nodes"]
    nodes_b.add(np.array([[70.0, 70.0], [80.0, 90.0]]))
    wait_saved(qtbot, widget)
    nodes_b.selected_data = {0, 1}
    assert widget.connect_selected(b)

    expect_a = widget.current_graph(a)
    expect_b = widget.current_graph(b)
    assert np.allclose(store.to_image(a, store.load_graph(a)).nodes, expect_a.nodes)
    assert store.load_graph(b).edges.tolist() == [[0, 1]]

    widget.close_project()
    assert widget.patch_layers == {} and not any(lyr.name.startswith("patch_") for lyr in viewer.layers)

    # a new widget on the same folder brings both patches back as layers, intact
    again = AnnotationWidget(viewer)
    viewer.window.add_dock_widget(again, name="Annotate patches 2")
    again.open_project(folder, image)
    assert sorted(again.patch_layers) == [a, b]
    for pid, expect in ((a, expect_a), (b, expect_b)):
        g = layers_to_graph(again.patch_layers[pid]["nodes"], again.patch_layers[pid]["edit_edges"])
        assert np.allclose(g.nodes, expect.nodes) and g.edges.tolist() == expect.edges.tolist()
    assert again.patch_list.count() == 2
    assert len(again.boxes_layer.data) == 2
    # and it is a dataset
    recs = read_dataset(folder)
    assert [r.id for r in recs] == [a, b] and recs[0].image.shape == (64, 64)
    assert np.allclose(recs[0].image, np.asarray(image.data)[1:65, 1:65])


def test_connect_and_disconnect_key_bindings(setup, qtbot):
    viewer, widget, image, folder = setup
    widget.open_project(folder, image)
    pid = widget.add_patch(center=(32, 32))
    nodes = widget.patch_layers[pid]["nodes"]
    before = widget.store.load_graph(pid)
    assert [0, 2] not in before.edges.tolist()
    viewer.layers.selection.active = nodes
    nodes.selected_data = {0, 2}
    keys = viewer.window._qt_viewer._key_map_handler
    keys.press_key("c")
    keys.release_key("c")
    after = widget.store.load_graph(pid)
    assert after.n_edges == before.n_edges + 1 and [0, 2] in after.edges.tolist()
    # the new edge is drawn as a line from node 0 to node 2
    lines = [np.asarray(v) for v in widget.patch_layers[pid]["edit_edges"].data]
    assert any(np.allclose(v, nodes.data[[0, 2]]) for v in lines)
    nodes.selected_data = {0, 1, 2}
    keys.press_key("x")
    keys.release_key("x")
    left = widget.store.load_graph(pid)
    assert not any(set(e) <= {0, 1, 2} for e in left.edges.tolist())
    assert "C" in widget.keys_label.text() and "X" in widget.keys_label.text()


def test_lines_snap_to_nodes_and_follow_moved_nodes(setup, qtbot):
    _viewer, widget, image, folder = setup
    widget.open_project(folder, image)
    widget.source_combo.setCurrentText(EMPTY_LABEL)
    pid = widget.add_patch(center=(32, 32))
    nodes = widget.patch_layers[pid]["nodes"]
    edges = widget.patch_layers[pid]["edit_edges"]
    nodes.add(np.array([[10.0, 10.0], [40.0, 20.0], [20.0, 50.0]]))
    edges.add_lines(np.array([[11.5, 9.0], [39.0, 21.0]]))  # drawn roughly between nodes 0 and 1
    wait_saved(qtbot, widget)
    assert widget.store.load_graph(pid).edges.tolist() == [[0, 1]]
    assert np.allclose(edges.data[0], [[10, 10], [40, 20]])  # redrawn on the nodes
    move_node(nodes, 1, (45.0, 30.0))
    wait_saved(qtbot, widget)
    assert np.allclose(edges.data[0], [[10, 10], [45, 30]])  # the line followed its node
    nodes.selected_data = {0}
    nodes.remove_selected()
    wait_saved(qtbot, widget)
    g = widget.store.load_graph(pid)
    assert g.n_nodes == 2 and g.n_edges == 0 and len(edges.data) == 0


def test_delete_asks_first(setup, qtbot, monkeypatch):
    viewer, widget, image, folder = setup
    widget.open_project(folder, image)
    a = widget.add_patch(center=(32, 32))
    b = widget.add_patch(center=(96, 96))
    questions = []

    def say(answer):
        def ask(parent, title, text):
            questions.append(text)
            return answer

        return ask

    monkeypatch.setattr(aw, "ask_yes_no", say(False))
    assert not widget.delete_patch(a)
    assert widget.store.ids() == [a, b] and a in widget.patch_layers and len(questions) == 1
    # deleting the rectangle in the patches layer asks too; "no" puts it back
    boxes = widget.boxes_layer
    boxes.selected_data = {0}
    boxes.remove_selected()
    qtbot.waitUntil(lambda: len(questions) == 2, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: len(boxes.data) == 2, timeout=TIMEOUT)
    assert AnnotationStore.open(folder).ids() == [a, b]

    monkeypatch.setattr(aw, "ask_yes_no", say(True))
    assert widget.delete_patch(a)
    assert AnnotationStore.open(folder).ids() == [b]
    assert a not in widget.patch_layers and not any(lyr.name.startswith(a) for lyr in viewer.layers)
    assert not (folder / "images" / f"{a}.tif").exists()
    assert list(boxes.features["patch_id"]) == [b]


def test_drawn_rectangle_becomes_a_patch_of_the_fixed_size(setup, qtbot):
    _viewer, widget, image, folder = setup
    widget.open_project(folder, image)
    widget.size_spin.setValue(32)
    widget.boxes_layer.add_rectangles(np.array([[50.0, 60.0], [50.0, 75.0], [70.0, 75.0], [70.0, 60.0]]))
    qtbot.waitUntil(lambda: len(widget.store) == 1, timeout=TIMEOUT)
    (entry,) = widget.store.patches()
    assert entry["size"] == [32, 32]
    assert entry["origin"] == [45, 52]  # pixels 45..76 x 52..83: centred on the drawn rectangle (60, 67.5)
    assert list(widget.boxes_layer.features["patch_id"]) == [entry["id"]]
    assert len(widget.boxes_layer.data) == 1  # the drawn rectangle was replaced by the patch


def test_view_centre_and_removed_layers_keep_the_patch(setup, qtbot):
    viewer, widget, image, folder = setup
    widget.open_project(folder, image)
    camera(viewer).center = (20.0, 30.0)  # world units: the image has a 0.5 scale, so pixel (40, 60)
    pid = widget.add_patch_at_view_centre()
    assert pid is not None
    assert widget.store.origin(pid) == (9, 29)  # pixels 9..72 x 29..92, centred on (40.5, 60.5)
    nodes = widget.patch_layers[pid]["nodes"]
    move_node(nodes, 0, (20.0, 40.0))
    viewer.layers.remove(nodes)  # saves the pending edit first
    assert pid not in widget.patch_layers and widget.store.ids() == [pid]
    g = widget.store.to_image(pid, widget.store.load_graph(pid))
    assert np.allclose(g.nodes[0], (20.0, 40.0))
    widget.go_to(pid)  # shows it again
    assert pid in widget.patch_layers


def test_volume_patches_are_boxes(make_napari_viewer, tmp_path, qtbot, notes):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.random.default_rng(1).random((40, 48, 48)).astype(np.float32), name="vol")
    widget = AnnotationWidget(viewer)
    widget.open_project(tmp_path / "vol", image)
    widget.size_spin.setValue(16)
    pid = widget.add_patch(center=(20, 24, 24))
    assert widget.store.ndim == 3 and widget.store.size(pid) == (16, 16, 16)
    assert len(widget.boxes_layer.data) == 16  # one rectangle per slice of the box
    nodes = widget.patch_layers[pid]["nodes"]
    nodes.add(np.array([[14.0, 20.0, 20.0], [20.0, 25.0, 27.0]]))
    wait_saved(qtbot, widget)
    nodes.selected_data = {0, 1}
    assert widget.connect_selected(pid)
    g = widget.store.load_graph(pid)
    assert g.ndim == 3 and g.edges.tolist() == [[0, 1]]
    assert read_dataset(tmp_path / "vol")[0].image.shape == (16, 16, 16)


def test_both_widgets_open_from_the_manifest(make_napari_viewer):
    from npe2 import PluginManifest

    from napari_vesselgraph._napari._finetune_widget import FinetuneWidget

    pm = PluginManifest.from_distribution("napari-vesselgraph")
    names = [w.display_name for w in pm.contributions.widgets]
    assert "Annotate patches" in names and "Fine-tune" in names
    viewer = make_napari_viewer()
    _, annotate = viewer.window.add_plugin_dock_widget("napari-vesselgraph", "Annotate patches")
    _, finetune = viewer.window.add_plugin_dock_widget("napari-vesselgraph", "Fine-tune")
    assert isinstance(annotate, AnnotationWidget) and isinstance(finetune, FinetuneWidget)


# ---------------------------------------------------------------- where to annotate next
def test_propose_patches_in_a_worker_and_accept_them(setup, qtbot, monkeypatch):
    from qtpy.QtCore import QTimer

    from napari_vesselgraph.checkpoints import user_dir

    from .test_predict_widget import tiny_checkpoint

    viewer, widget, image, folder = setup
    # random weights score nodes about 0.1: a node threshold there makes them uncertain
    ckpt = tiny_checkpoint(user_dir() / "tiny-propose.safetensors", thresholds={"node": 0.1, "edge": 0.5})
    widget.open_project(folder, image)
    widget.size_spin.setValue(32)
    first = widget.add_patch(center=(32, 32))
    assert not widget.accept_button.isEnabled()  # nothing proposed yet

    slow = aw.run_proposal

    def slower(*args, **kwargs):  # long enough to see the Qt event loop run meanwhile
        import time

        time.sleep(0.6)
        return slow(*args, **kwargs)

    monkeypatch.setattr(aw, "run_proposal", slower)
    ticks = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    assert widget.propose(n=3, checkpoint=str(ckpt))
    assert widget.is_proposing() and widget.propose_button.text() == "Cancel"
    qtbot.waitUntil(lambda: not widget.is_proposing(), timeout=TIMEOUT * 6)
    timer.stop()
    assert len(ticks) >= 5  # the viewer stayed responsive while the model ran
    props = widget.proposals
    assert 1 <= len(props) <= 3, widget.proposal_label.text()
    layer = widget.proposals_layer
    assert layer is not None and layer in viewer.layers and layer.name == "img proposals"
    assert len(layer.data) == len(props) and list(layer.features["rank"]) == list(range(1, len(props) + 1))
    assert np.allclose(layer.scale, image.scale) and "proposed by tiny-propose" in widget.proposal_label.text()
    taken = widget.store.get(first)
    for p in props:  # never over the patch already annotated
        assert p.size == (32, 32)
        assert not all(o < to + ts and to < o + s for o, s, to, ts in zip(p.origin, p.size, taken["origin"], taken["size"]))

    # accept the selected one: it becomes a patch like a drawn rectangle (graph cut from 'Start from')
    layer.selected_data = {len(props) - 1}
    last = props[-1]
    (pid,) = widget.accept_proposals()
    assert widget.store.origin(pid) == last.origin and widget.store.size(pid) == (32, 32)
    assert pid in widget.patch_layers and list(widget.boxes_layer.features["patch_id"]).count(pid) == 1
    assert len(widget.proposals) == len(props) - 1 and len(layer.data) == len(props) - 1
    # no selection: the rest are accepted; the layer goes away
    ids = widget.accept_proposals()
    assert len(ids) == len(props) - 1 and len(widget.store) == len(props) + 1
    assert widget.proposals_layer is None and layer not in viewer.layers
    assert not widget.accept_button.isEnabled()
    assert read_dataset(folder)[-1].image.shape == (32, 32)


def test_propose_cancel_and_errors(setup, qtbot, notes):
    _viewer, widget, image, folder = setup
    assert not widget.propose()  # no project yet
    assert notes["error"] and "project" in notes["error"][-1]
    widget.open_project(folder, image)
    assert widget.propose(checkpoint="no-such-checkpoint")
    qtbot.waitUntil(lambda: not widget.is_proposing(), timeout=TIMEOUT)
    assert "Could not propose patches" in notes["error"][-1] and widget.proposals_layer is None
    widget.show_proposals([])
    assert widget.accept_proposals() == []
    # cancel: the job stops between batches of windows
    from napari_vesselgraph.annotations import Proposal

    assert widget.propose(checkpoint="vessel2d-random")
    widget._propose_clicked()  # the button reads Cancel while running
    qtbot.waitUntil(lambda: not widget.is_proposing(), timeout=TIMEOUT)
    assert widget.proposal_label.text() == "Cancelled." and widget.propose_button.text() == "Propose patches"
    widget.show_proposals([Proposal((10, 10), (64, 64), 2.0, "test", {"rank": 1})])
    assert len(widget.proposals_layer.data) == 1
    widget.close_project()  # the proposals go with the project
    assert widget.proposals_layer is None and not any(lyr.name == "img proposals" for lyr in _viewer.layers)


def test_propose_job_on_a_grey_stack_uses_a_relationformer():
    """Without a chosen checkpoint the job takes the Relationformer that suits the stack (the stack's default model is
    a segmentation checkpoint, which has no confidences to rank patches by), instead of failing."""
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.checkpoints.meta import is_segmentation

    bundled = {e["name"]: e for e in list_bundled()}
    if not any(not is_segmentation(e.get("meta")) and (e.get("meta") or {}).get("ndim") == 3 for e in bundled.values()):
        pytest.skip("no bundled 3D Relationformer")
    vol = np.random.default_rng(0).normal(10, 1, (32, 64, 64)).astype(np.float32)
    vol[14:17, 30:33, 4:60] += 40
    out = aw.run_proposal(vol, None, None, None, 2, None)
    assert out["status"] == "ok", out
    assert not is_segmentation(bundled[out["checkpoint"]].get("meta"))
