import numpy as np

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference import apply_thresholds, sliding_window, stitch
from napari_vesselgraph.inference.stitch import clip_segments

from .fakes import crop_graph


def _res(nodes, edges, ns=None, es=None, radius=None):
    nodes = np.asarray(nodes, float)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    return {
        "nodes": nodes,
        "node_score": np.full(len(nodes), 0.9) if ns is None else np.asarray(ns, float),
        "radius": np.full(len(nodes), 2.0) if radius is None else np.asarray(radius, float),
        "edges": edges,
        "edge_score": np.full(len(edges), 0.8) if es is None else np.asarray(es, float),
    }


def test_clip_segments():
    p0 = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, -5.0], [20.0, 20.0]])
    p1 = np.array([[10.0, 0.0], [4.0, 4.0], [5.0, 50.0], [30.0, 30.0]])
    t0, t1 = clip_segments(p0, p1, np.array([-np.inf, 2.0]), np.array([5.0, np.inf]))
    assert t0[0] > t1[0]  # y = 0 < 2: misses
    assert np.allclose([t0[1], t1[1]], [0.5, 1.0])
    assert np.allclose([t0[2], t1[2]], [7 / 55, 1.0])  # x from -5: enters at x = 2
    assert t0[3] > t1[3]  # y beyond 5


def test_edge_across_patch_border_is_cut_and_rejoined():
    # one straight edge from (10, 5) to (10, 110) in a 20 x 120 image, two 64-wide windows
    grid = sliding_window((20, 120), (20, 64), 0.25)
    assert grid.axis_starts[1] == [0, 28, 56]  # the edge passes right through the middle window
    gt = VesselGraph(np.array([[10.0, 5.0], [10.0, 110.0]]), np.array([[0, 1]]), node_attrs={"radius": [2.0, 4.0]})
    results = []
    for s in grid.starts:
        nodes, radius, edges = crop_graph(gt, s, (20, 64))
        results.append(_res(nodes, edges, radius=radius))
    raw = stitch(results, grid.starts, grid.core_lo, grid.core_hi)
    assert raw.n_nodes == 2 and raw.n_edges == 1
    assert np.allclose(raw.nodes, gt.nodes)
    assert np.allclose(raw.node_attrs["radius"], [2.0, 4.0])
    assert not raw.node_attrs["inserted"].any()
    assert np.allclose(raw.edge_attrs["confidence"], 0.8)


def test_duplicates_in_overlap_merge_with_max_score_and_weighted_position():
    # both windows predict the same node near the core boundary (x = 60), slightly apart
    starts = [(0, 0), (0, 56)]
    core_lo = np.array([[-np.inf, -np.inf], [-np.inf, 60.0]])
    core_hi = np.array([[np.inf, 60.0], [np.inf, np.inf]])
    a = _res([[10.0, 59.5], [10.0, 30.0]], [[0, 1]], ns=[0.6, 0.9])
    b = _res([[10.0, 60.5 - 56], [10.0, 100.0 - 56]], [[0, 1]], ns=[0.9, 0.9])
    raw = stitch([a, b], starts, core_lo, core_hi, merge_radius=2.0)
    assert raw.n_nodes == 3 and raw.n_edges == 2
    i = int(np.argmin(np.abs(raw.nodes[:, 1] - 60)))
    assert raw.node_attrs["confidence"][i] == 0.9
    assert np.isclose(raw.nodes[i, 1], (0.6 * 59.5 + 0.9 * 60.5) / 1.5)
    # both edges meet at the merged node
    assert set(raw.edges.ravel().tolist()) == {0, 1, 2} and np.bincount(raw.edges.ravel())[i] == 2


def test_unmatched_cut_node_stays_as_end_point():
    # window A sees an edge leaving its core, window B sees nothing there
    starts = [(0, 0), (0, 56)]
    core_lo = np.array([[-np.inf, -np.inf], [-np.inf, 60.0]])
    core_hi = np.array([[np.inf, 60.0], [np.inf, np.inf]])
    a = _res([[10.0, 40.0], [10.0, 63.0]], [[0, 1]])
    b = _res(np.zeros((0, 2)), [])
    raw = stitch([a, b], starts, core_lo, core_hi)
    assert raw.n_nodes == 2 and raw.n_edges == 1
    assert raw.node_attrs["inserted"].tolist() == [False, True]
    assert np.allclose(raw.nodes[1], [10.0, 60.0])
    g = apply_thresholds(raw, 0.5, 0.5)
    assert g.n_nodes == 2
    g = apply_thresholds(raw, 0.5, 0.85)  # edge dropped -> the cut node goes with it
    assert g.n_nodes == 1 and g.n_edges == 0


def test_apply_thresholds():
    raw = VesselGraph(
        np.array([[0.0, 0], [0, 10], [0, 20], [0, 30]]),
        np.array([[0, 1], [1, 2], [2, 3]]),
        node_attrs={"confidence": [0.9, 0.4, 0.8, 0.95], "radius": [1.0, 1, 1, 1], "inserted": [False] * 4},
        edge_attrs={"confidence": [0.9, 0.9, 0.3]},
        metadata={"raw": True},
    )
    g = apply_thresholds(raw, 0.5, 0.5)
    assert g.n_nodes == 3 and g.n_edges == 0  # node 1 too weak, edge 2-3 too weak
    assert g.metadata["raw"] is False and g.metadata["node_threshold"] == 0.5
    g = apply_thresholds(raw, 0.3, 0.2)
    assert g.n_nodes == 4 and g.n_edges == 3
    g = apply_thresholds(raw, 0.5, 0.5, drop_isolated=True)
    assert g.n_nodes == 0
    # a graph without confidence columns passes unchanged
    plain = VesselGraph(raw.nodes, raw.edges)
    assert apply_thresholds(plain, 0.9, 0.9).n_edges == 3


def test_stitch_empty():
    grid = sliding_window((100, 100), (64, 64), 0.25)
    empty = _res(np.zeros((0, 2)), [])
    raw = stitch([empty] * len(grid), grid.starts, grid.core_lo, grid.core_hi)
    assert raw.n_nodes == 0 and raw.ndim == 2
    assert set(raw.node_attrs) == {"confidence", "radius", "inserted"}


def test_model_node_duplicated_across_boundary_gives_clean_path():
    # a trained model predicts the same vessel point in both windows, 2 px apart across the boundary x=60
    starts = [(0, 0), (0, 56)]
    core_lo = np.array([[-np.inf, -np.inf], [-np.inf, 60.0]])
    core_hi = np.array([[np.inf, 60.0], [np.inf, np.inf]])
    a = _res([[10.0, 30.0], [10.0, 59.0], [10.0, 75.0]], [[0, 1], [1, 2]])
    b = _res([[10.0, 45.0 - 56], [10.0, 61.0 - 56], [10.0, 90.0 - 56]], [[0, 1], [1, 2]])
    raw = stitch([a, b], starts, core_lo, core_hi, merge_radius=3.0)
    g = apply_thresholds(raw, 0.5, 0.5)
    for graph in (raw, g):
        assert graph.n_nodes == 3 and graph.n_edges == 2, graph
        assert np.allclose(np.sort(graph.nodes[:, 1]), [30.0, 60.0, 90.0])
        assert not graph.node_attrs["inserted"].any()


def test_close_vessels_at_a_boundary_are_not_fused():
    # two parallel vessels 2 px apart cross the boundary x=60; both windows see both
    gt = VesselGraph(
        np.array([[10.0, 20.0], [10.0, 100.0], [12.0, 20.0], [12.0, 100.0]]),
        np.array([[0, 1], [2, 3]]),
        node_attrs={"radius": [1.0] * 4},
    )
    grid = sliding_window((24, 120), (24, 64), 0.25)
    results = []
    for s in grid.starts:
        nodes, _, edges = crop_graph(gt, s, (24, 64))
        results.append(_res(nodes, edges))
    raw = stitch(results, grid.starts, grid.core_lo, grid.core_hi, merge_radius=3.0)
    assert raw.n_nodes == 4 and raw.n_edges == 2
    assert sorted(map(tuple, raw.nodes.round(6).tolist())) == sorted(map(tuple, gt.nodes.tolist()))
