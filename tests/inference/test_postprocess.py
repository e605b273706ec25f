import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference.postprocess import (
    drop_fragments,
    finish_graph,
    finish_raw,
    link_components,
    prune_shortcuts,
    settings,
)


def _g(nodes, edges, conf=None, **node_attrs):
    ea = {"confidence": np.asarray(conf, float)} if conf is not None else {}
    return VesselGraph(np.asarray(nodes, float), np.asarray(edges, int).reshape(-1, 2), node_attrs, ea)


def _edges(g):
    return {tuple(sorted(map(int, e))) for e in g.edges}


def test_prune_shortcuts_removes_long_side_of_flat_triangle_only():
    # 0-1-2 almost straight, plus the shortcut 0-2; 3 is far off the line 0-2 (a real loop 0-3-2)
    g = _g([[0, 0], [0.5, 10], [0, 20], [15, 10]], [[0, 1], [1, 2], [0, 2], [0, 3], [3, 2]])
    out = prune_shortcuts(g, flat=1.5)
    assert _edges(out) == {(0, 1), (1, 2), (0, 3), (2, 3)}
    assert prune_shortcuts(g, flat=1.0).n_edges == 5  # switched off


def test_prune_shortcuts_keeps_a_path_in_overlapping_triangles():
    # four collinear nodes, fully connected: pruning must leave the chain 0-1-2-3
    nodes = [[0, 0], [0, 10], [0, 20], [0, 30]]
    edges = [[i, j] for i in range(4) for j in range(i + 1, 4)]
    out = prune_shortcuts(_g(nodes, edges), flat=1.2)
    assert _edges(out) == {(0, 1), (1, 2), (2, 3)}


def test_link_components_adds_only_weak_edges_that_join_components():
    nodes = [[0, 0], [0, 10], [0, 20], [0, 30], [10, 0]]
    # strong 0-1, 2-3; weak 1-2 joins them; weak 0-4... joins 4; weak 0-2 would close a cycle after 1-2
    edges = [[0, 1], [2, 3], [1, 2], [0, 2], [0, 4]]
    conf = [0.9, 0.9, 0.4, 0.3, 0.1]
    g = _g(nodes, edges, conf)
    out = link_components(g, edge_threshold=0.7, link_threshold=0.2)
    assert _edges(out) == {(0, 1), (2, 3), (1, 2)}
    assert _edges(link_components(g, 0.7, None)) == {(0, 1), (2, 3)}


def test_drop_fragments_by_total_length():
    g = _g([[0, 0], [0, 30], [50, 50], [50, 53], [80, 80]], [[0, 1], [2, 3]])
    out = drop_fragments(g, min_length=5)
    assert out.n_nodes == 2 and _edges(out) == {(0, 1)}
    assert drop_fragments(g, 0).n_nodes == 5


def test_finish_graph_records_settings_and_finish_raw_without_settings_is_plain():
    nodes = [[0, 0], [0.5, 10], [0, 20]]
    g = _g(nodes, [[0, 1], [1, 2], [0, 2]], [0.9, 0.9, 0.9], confidence=np.ones(3))
    out = finish_graph(g, 0.5, 0.5, link_threshold=0.2, flat=1.5, min_length=0)
    assert out.n_edges == 2 and out.metadata["postprocess"]["flat"] == 1.5
    # a graph with no recorded clean-up (e.g. the skeleton's) is only thresholded
    assert finish_raw(g, 0.5, 0.5).n_edges == 3


def test_settings_precedence_and_errors():
    assert settings()["flat"] > 1
    assert settings(meta={"postprocess": {"flat": 1.1}})["flat"] == 1.1
    assert settings({"flat": 2.0}, meta={"postprocess": {"flat": 1.1}})["flat"] == 2.0
    off = settings({"postprocess": False})
    assert off["link_threshold"] is None and off["flat"] == 1.0 and off["min_length"] == 0.0
    with pytest.raises(VesselGraphError, match="clean-up"):
        settings({"bogus": 1})
