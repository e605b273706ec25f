import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference.postprocess import (
    OFF,
    dedupe_nodes,
    drop_fragments,
    finish_graph,
    finish_raw,
    link_components,
    prune_shortcuts,
    resample_chains,
    settings,
)


def _g(nodes, edges, conf=None, **node_attrs):
    ea = {"confidence": np.asarray(conf, float)} if conf is not None else {}
    return VesselGraph(np.asarray(nodes, float), np.asarray(edges, int).reshape(-1, 2), node_attrs, ea)


def _ncomp(g):
    from napari_vesselgraph.graph.morphometrics import connected_components

    return connected_components(g)[0]


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
    assert off == OFF and off["link_threshold"] is None and off["dedupe_radius"] == 0 and off["spacing"] == 0
    with pytest.raises(VesselGraphError, match="clean-up"):
        settings({"bogus": 1})


def test_dedupe_nodes_keeps_the_most_confident_and_remaps_edges():
    # 1 and 2 are one node seen twice (2 px apart); 2 is more confident; both got an edge to 0 and 3
    nodes = [[0, 0], [0, 10], [0, 12], [0, 22], [40, 40]]
    g = _g(nodes, [[0, 1], [0, 2], [1, 3], [2, 3]], [0.9, 0.6, 0.7, 0.8], confidence=np.array([1, 0.5, 0.9, 1, 1]))
    out = dedupe_nodes(g, 3.0)
    assert out.n_nodes == 4
    np.testing.assert_allclose(out.nodes[1], [0, 12])  # the more confident copy stays where it was
    assert _edges(out) == {(0, 1), (1, 2)}
    conf = {tuple(sorted(map(int, e))): c for e, c in zip(out.edges, out.edge_attrs["confidence"])}
    assert conf[(0, 1)] == 0.9 and conf[(1, 2)] == 0.8  # parallel copies keep the strongest
    assert dedupe_nodes(g, 0).n_nodes == 5 and dedupe_nodes(g, 1.5).n_nodes == 5


def test_dedupe_nodes_drops_self_loops_between_copies():
    g = _g([[0, 0], [0, 2], [0, 20]], [[0, 1], [1, 2]], [0.9, 0.9], confidence=np.array([1.0, 0.5, 1.0]))
    out = dedupe_nodes(g, 3.0)
    assert out.n_nodes == 2 and _edges(out) == {(0, 1)}


def test_resample_chains_places_nodes_at_equal_spacing_along_a_chain():
    # an unevenly placed straight chain 30 px long between two end points
    ys = [0, 3, 9, 17, 30]
    g = _g([[y, 0] for y in ys], [[i, i + 1] for i in range(4)], [0.9, 0.8, 0.7, 0.95],
           confidence=np.array([1.0, 0.2, 0.2, 0.2, 0.5]))
    out = resample_chains(g, spacing=11.0, tol=2.0)
    order = np.argsort(out.nodes[:, 0])
    np.testing.assert_allclose(out.nodes[order, 0], [0, 10, 20, 30], atol=1e-9)
    assert out.n_edges == 3 and _ncomp(out) == 1
    # the end points keep their attributes; a new node interpolates them along the traced edge
    c = out.node_attrs["confidence"][order]
    assert c[0] == 1.0 and c[3] == 0.5
    assert 0.2 <= c[1] <= 0.2 + 1e-9
    # each new edge gets the weakest traced edge it covers
    conf = {tuple(sorted(np.round(out.nodes[list(e), 0]).astype(int))): v
            for e, v in zip(out.edges, out.edge_attrs["confidence"])}
    assert conf[(0, 10)] == 0.7 and conf[(10, 20)] == 0.7 and conf[(20, 30)] == 0.95
    assert resample_chains(g, spacing=0).n_nodes == 5  # off


def test_resample_chains_keeps_junctions_corners_and_loops():
    # a T: junction at (0, 0) with three straight arms of 20 px, one of which bends by 90 degrees
    nodes = [[0, 0], [0, 7], [0, 20], [0, -20], [7, 0], [20, 0], [20, 20]]
    edges = [[0, 1], [1, 2], [0, 3], [0, 4], [4, 5], [5, 6]]
    out = resample_chains(_g(nodes, edges, np.ones(6)), spacing=11.0, tol=2.0)
    pts = {tuple(np.round(p, 6)) for p in out.nodes}
    for keep in [(0, 0), (0, 20), (0, -20), (20, 20), (20, 0)]:  # junction, end points, the corner
        assert keep in pts
    deg = np.bincount(out.edges.ravel(), minlength=out.n_nodes)
    assert max(deg) == 3 and (deg == 1).sum() == 3 and _ncomp(out) == 1
    # a closed loop of degree-2 nodes keeps at least three nodes (a triangle, not a self loop)
    t = np.linspace(0, 2 * np.pi, 9)[:-1]
    ring = _g(np.stack([5 * np.sin(t), 5 * np.cos(t)], 1), [[i, (i + 1) % 8] for i in range(8)], np.ones(8))
    r = resample_chains(ring, spacing=30.0, tol=10.0)
    assert r.n_nodes == 3 and r.n_edges == 3


def test_resample_chains_reproduces_the_synthetic_ground_truth_convention():
    # the synthetic ground truth is built with the same rule (max_edge 12 on a ~1 px dense centreline):
    # re-placing the nodes of a ground-truth graph must give (nearly) the same nodes back
    from napari_vesselgraph import synth
    from napari_vesselgraph.metrics.matching import node_edge_prf

    _, gt = synth.make_sample("road-clean", 20_000_001)
    out = resample_chains(gt, spacing=11.0, tol=1.0)
    r = node_edge_prf(out, gt, 3.0)
    assert r["node_f1"] > 0.9 and r["edge_f1"] > 0.85
