"""The Graph inspector widget (run under xvfb-run)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_vesselgraph._napari._inspector_widget import STAT_ROWS, InspectorWidget, format_value
from napari_vesselgraph._napari.layers import add_graph_to_viewer, find_graph_layers, layers_to_graph
from napari_vesselgraph.graph import VesselGraph, graph_statistics, segments
from napari_vesselgraph.io import read_graph

from .graphs import make_graph_2d, make_graph_3d

TIMEOUT = 60_000


@pytest.fixture
def notes(monkeypatch):
    from napari.utils import notifications

    seen: dict[str, list[str]] = {"info": [], "warning": [], "error": []}
    for level in ("info", "warning", "error"):
        monkeypatch.setattr(notifications, f"show_{level}", lambda msg, level=level: seen[level].append(str(msg)))
    return seen


def make_inspector(viewer) -> InspectorWidget:
    widget = InspectorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Graph inspector")
    return widget


def wait_result(qtbot, widget: InspectorWidget, n_nodes: int | None = None) -> dict:
    def ready():
        if widget.worker is not None or widget.result is None:
            return False
        return n_nodes is None or widget.result["graph"].n_nodes == n_nodes

    qtbot.waitUntil(ready, timeout=TIMEOUT)
    return widget.result


def tree_graph() -> VesselGraph:
    """A small tree (SWC can store it) with a radius."""
    nodes = np.array([[10, 10], [10, 30], [10, 50], [30, 30], [50, 30], [30, 60]], float)
    edges = np.array([[0, 1], [1, 2], [1, 3], [3, 4], [2, 5]])
    return VesselGraph(nodes, edges, node_attrs={"radius": np.full(6, 1.5)}, scale=(0.5, 0.5), metadata={"unit": "µm"})


def test_statistics_match_graph_statistics(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    graph = make_graph_2d(scale=(0.5, 0.5))
    add_graph_to_viewer(viewer, graph, name="g")
    widget = make_inspector(viewer)
    assert widget.graph_combo.currentText() == "g nodes"
    result = wait_result(qtbot, widget)
    layers = find_graph_layers(viewer.layers)
    expected = graph_statistics(layers_to_graph(layers["nodes"], layers["edges"]))
    assert result["statistics"] == expected
    assert expected == graph_statistics(graph)
    unit = result["unit"]
    assert unit == "scale units"  # no unit given and the scale is not 1
    for r, (key, _) in enumerate(STAT_ROWS):
        assert widget.stats_table.item(r, 1).text() == format_value(key, expected[key], unit)
    assert widget.stats_table.item(0, 1).text() == "6" and widget.stats_table.item(1, 1).text() == "6"
    segs = segments(graph)
    assert widget.segments_model.rowCount() == len(segs)
    np.testing.assert_allclose(result["segments"]["length"], [s.length for s in segs])
    assert len(widget.figure.axes) == 3  # segment length, degree, radius


def test_unit_from_metadata_and_3d(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, tree_graph(), name="tree")
    widget = make_inspector(viewer)
    result = wait_result(qtbot, widget)
    assert result["unit"] == "µm"
    assert widget.stats_table.item(6, 1).text().endswith("µm")

    add_graph_to_viewer(viewer, make_graph_3d(), name="three")
    # a newly added graph becomes the one inspected
    assert widget.graph_combo.currentText() == "three nodes"
    result = wait_result(qtbot, widget, n_nodes=12)
    assert result["statistics"] == graph_statistics(make_graph_3d())


def test_choosing_a_segment_selects_its_nodes_and_centres_the_view(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    graph = make_graph_2d()
    layers = add_graph_to_viewer(viewer, graph, name="g")
    points = next(lyr for lyr in layers if lyr.name == "g nodes")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    segs = segments(graph)
    # sort by length (descending) and choose the first row: the longest segment
    from qtpy.QtCore import Qt

    widget.segments_view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    widget.segments_view.selectRow(0)
    longest = int(np.argmax([s.length for s in segs]))
    assert widget.segments_model.segment_index(0) == longest
    assert points.selected_data == set(segs[longest].nodes)
    centre = graph.nodes[segs[longest].nodes].mean(axis=0)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre, atol=1e-6)
    assert viewer.layers.selection.active is points


def test_segment_in_a_volume_moves_the_slice(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    graph = make_graph_3d()
    add_graph_to_viewer(viewer, graph, name="v")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    seg = segments(graph)[0]
    widget.select_segment(0)
    centre_world = (graph.nodes[seg.nodes] * np.asarray(graph.scale)).mean(axis=0)
    assert abs(viewer.dims.point[0] - centre_world[0]) <= graph.scale[0]  # the z slider moved to the segment
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre_world[1:], atol=1e-6)


def test_statistics_follow_edits(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, make_graph_2d(), name="g")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget, n_nodes=6)
    points = viewer.layers["g nodes"]
    points.selected_data = {5}
    points.remove_selected()
    result = wait_result(qtbot, widget, n_nodes=5)
    assert result["statistics"]["edges"] == 5


def test_colour_by(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, make_graph_2d(), name="g")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    nodes, edges = viewer.layers["g nodes"], viewer.layers["g edges"]
    items = [widget.node_color_combo.itemText(i) for i in range(widget.node_color_combo.count())]
    assert {"degree", "radius", "confidence", "label"} <= set(items)
    assert widget.node_color_combo.currentText() == "confidence"
    widget.node_color_combo.setCurrentIndex(widget.node_color_combo.findText("degree"))
    widget.node_color_combo.activated.emit(widget.node_color_combo.currentIndex())
    assert nodes.face_color_mode == "colormap"
    assert nodes.metadata["vesselgraph"]["color_by"] == "degree"
    widget.set_color_by("nodes", "label")  # text: one colour per value
    assert nodes.face_color_mode == "cycle"
    widget.set_color_by("edges", "length")
    assert edges.edge_color_mode == "colormap"
    widget.set_color_by("edges", None)
    assert edges.edge_color_mode == "direct"


def test_save_writes_the_edited_graph(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, tree_graph(), name="tree")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    points = viewer.layers["tree nodes"]
    points.selected_data = {5}
    points.remove_selected()  # an edit: the saved graph must have it

    for suffix in ("graphml", "json", "swc", "vtk"):
        path = tmp_path / f"tree.{suffix}"
        written = widget.save_graph(path)
        assert written and path.exists(), notes["error"]
        back = read_graph(path)
        assert back.n_nodes == 5 and back.n_edges == 4
        np.testing.assert_allclose(back.scale, (0.5, 0.5))
    written = widget.save_graph(tmp_path / "tree.csv")
    assert len(written) >= 2 and read_graph(tmp_path / "tree.csv").n_nodes == 5  # node + edge tables (+ graph info)
    assert not notes["error"]


def test_save_swc_of_a_cyclic_graph_writes_nothing(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, make_graph_2d(), name="loop")  # has the cycle 0-1-2-3
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    path = tmp_path / "loop.swc"
    assert widget.save_graph(path) == []
    assert not path.exists() and not list(tmp_path.iterdir())
    assert notes["error"] and "cycle" in notes["error"][-1] and "GraphML" in notes["error"][-1]


def test_save_swc_with_cycles_broken_from_the_dialog(make_napari_viewer, qtbot, notes, tmp_path, monkeypatch):
    from napari_vesselgraph._napari import _inspector_widget as mod

    viewer = make_napari_viewer()
    graph = make_graph_2d()  # has the cycle 0-1-2-3
    add_graph_to_viewer(viewer, graph, name="loop")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    assert widget.save_graph(tmp_path / "refused.swc") == []
    assert "spanning tree" in notes["error"][-1]  # the refusal names the way out
    target = tmp_path / "tree"
    monkeypatch.setattr(
        mod.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), mod.FILE_FILTERS["swc_tree"]))
    )
    widget.save_button.click()
    back = read_graph(tmp_path / "tree.swc")
    removed = back.metadata["swc_removed_edges"]
    assert removed and back.n_nodes == graph.n_nodes and back.n_edges == graph.n_edges - len(removed)
    assert any("left out" in m for m in notes["warning"])
    assert any(f"{back.n_edges:,} edges" in m for m in notes["info"])


def test_save_button_uses_the_file_dialog(make_napari_viewer, qtbot, notes, tmp_path, monkeypatch):
    from napari_vesselgraph._napari import _inspector_widget as mod

    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, tree_graph(), name="tree")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    target = tmp_path / "chosen"
    monkeypatch.setattr(
        mod.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), mod.FILE_FILTERS["json"]))
    )
    widget.save_button.click()
    assert (tmp_path / "chosen.json").exists()  # the suffix of the chosen filter was added
    assert read_graph(tmp_path / "chosen.json").n_nodes == 6
    assert any("Saved" in m for m in notes["info"])


def test_copy_to_console(make_napari_viewer, qtbot, notes, monkeypatch):
    import napari
    import networkx as nx

    pushed = []
    monkeypatch.setattr(napari.Viewer, "update_console", lambda self, variables: pushed.append(variables))
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, make_graph_2d(), name="g")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    widget.console_button.click()
    assert len(pushed) == 1
    ns = pushed[0]
    assert isinstance(ns["vessel_graph"], VesselGraph) and isinstance(ns["nx_graph"], nx.Graph)
    assert ns["nx_graph"].number_of_nodes() == 6 and ns["nx_graph"].number_of_edges() == 6
    assert any("vessel_graph" in m for m in notes["info"])


def test_no_graph(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    widget = make_inspector(viewer)
    assert widget.graph_combo.count() == 0 and widget.result is None
    widget.console_button.click()
    assert notes["error"] and "No graph" in notes["error"][-1]


def test_large_graph_statistics_run_in_a_worker(make_napari_viewer, qtbot):
    """A 100k-edge graph: refresh returns at once, the statistics arrive later from the worker thread."""
    from qtpy.QtCore import QTimer

    rng = np.random.default_rng(0)
    n = 100_001
    # a long random walk with some branches: 100k edges
    steps = rng.normal(size=(n, 2))
    nodes = np.cumsum(steps, axis=0) + 500
    edges = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    big = VesselGraph(nodes, edges, node_attrs={"radius": np.ones(n)})
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, big, name="big")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget, n_nodes=n)

    ticks = {"n": 0, "while_running": 0}

    def tick():
        ticks["n"] += 1
        if widget.worker is not None:
            ticks["while_running"] += 1

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    t0 = time.perf_counter()
    widget.refresh_statistics()
    returned_after = time.perf_counter() - t0
    result = wait_result(qtbot, widget, n_nodes=n)
    total = time.perf_counter() - t0
    timer.stop()
    assert result["statistics"]["edges"] == n - 1
    assert returned_after < total  # the work went on after refresh_statistics returned
    assert ticks["while_running"] >= 1  # and the GUI handled timer events meanwhile


# ---------------------------------------------------------------- look
def test_histograms_are_never_wider_than_their_label(make_napari_viewer, qtbot):
    """A pixmap drawn for a wider label was centred and cropped, cutting off the first histogram's title."""
    viewer = make_napari_viewer(show=True)
    add_graph_to_viewer(viewer, make_graph_2d(), name="g")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    label = widget.histogram_label

    def fits() -> bool:
        pix = label.pixmap()
        return pix is not None and pix.width() / pix.devicePixelRatio() <= label.width() + 1

    qtbot.waitUntil(fits, timeout=5000)
    dock = widget.parentWidget()
    while dock is not None and type(dock).__name__ != "QtViewerDockWidget":
        dock = dock.parentWidget()
    window = viewer.window._qt_window
    window.resizeDocks([dock], [dock.width() - 120], __import__("qtpy.QtCore").QtCore.Qt.Orientation.Horizontal)
    qtbot.wait(50)
    assert fits()  # shrunk at once, never cropped
    qtbot.wait(300)  # ... and drawn again at the new width
    pix = label.pixmap()
    assert abs(pix.width() / pix.devicePixelRatio() - label.width()) <= 2


def test_a_legend_says_what_the_node_colours_mean(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, make_graph_2d(), name="g")
    widget = make_inspector(viewer)
    wait_result(qtbot, widget)
    assert "Nodes: confidence" in widget.legend_label.text()
    widget.set_color_by("nodes", "degree")
    text = widget.legend_label.text()
    degrees = sorted(set(viewer.layers["g nodes"].features["degree"]))
    assert "Nodes: degree" in text and text.count("■") >= len(degrees) + 1  # one swatch per degree + edges
    for d in degrees:
        assert f"■</span> {d}" in text
    widget.set_color_by("edges", None)
    assert "Edges: " in widget.legend_label.text() and "one colour" in widget.legend_label.text()
