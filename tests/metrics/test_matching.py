import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import match_nodes, match_points, node_edge_prf

from .helpers import graph, grid_network, polyline, shifted, square


def test_identical_graphs_score_one():
    g = grid_network(n_side=8, seed=3)
    r = node_edge_prf(g, g)
    for k in ("node_precision", "node_recall", "node_f1", "edge_precision", "edge_recall", "edge_f1"):
        assert r[k] == 1.0, k
    assert r["node_tp"] == g.n_nodes and r["edge_tp"] == g.n_edges


def test_shift_by_one_pixel_matched_at_radius_3_not_at_half():
    g = square()
    s = shifted(g, [1.0, 0.0])
    r = node_edge_prf(s, g, radius=3.0)
    assert r["node_f1"] == 1.0 and r["edge_f1"] == 1.0
    r = node_edge_prf(s, g, radius=0.5)
    assert r["node_f1"] == 0.0 and r["edge_f1"] == 0.0
    assert r["node_precision"] == 0.0 and r["edge_recall"] == 0.0


def test_radius_is_inclusive():
    g = graph([[0, 0]])
    assert node_edge_prf(graph([[0, 2.0]]), g, radius=2.0)["node_f1"] == 1.0
    assert node_edge_prf(graph([[0, 2.0]]), g, radius=1.999)["node_f1"] == 0.0


def test_missing_edge_gives_exact_edge_precision_recall():
    gt = square()
    pred = graph(gt.nodes, [[0, 1], [1, 2], [2, 3]])  # edge 3-0 missing
    r = node_edge_prf(pred, gt)
    assert r["node_f1"] == 1.0
    assert r["edge_precision"] == 1.0
    assert r["edge_recall"] == 0.75
    assert r["edge_f1"] == pytest.approx(2 * 0.75 / 1.75)
    # one missing and one wrong (diagonal) edge
    pred = graph(gt.nodes, [[0, 1], [1, 2], [2, 3], [0, 2]])
    r = node_edge_prf(pred, gt)
    assert r["edge_precision"] == 0.75 and r["edge_recall"] == 0.75 and r["edge_tp"] == 3


def test_edge_needs_matched_endpoints_through_the_matching():
    # prediction nodes listed in another order and with reversed edges: still all correct
    gt = square()
    perm = np.array([2, 0, 3, 1])
    inv = np.argsort(perm)
    pred = graph(gt.nodes[perm], inv[gt.edges][:, ::-1])
    assert node_edge_prf(pred, gt)["edge_f1"] == 1.0
    # an edge joining two matched nodes that are not joined in the ground truth is wrong
    pred = graph(gt.nodes, [[0, 2], [1, 3]])
    r = node_edge_prf(pred, gt)
    assert r["edge_precision"] == 0.0 and r["edge_recall"] == 0.0


def test_matching_is_one_to_one_and_maximal():
    # greedy nearest-first would pair A with gt1 (0.9) and leave B alone; the optimal matching pairs both
    gt = graph([[0, 0.0], [0, 2.0]])
    pred = graph([[0, 1.1], [0, 3.4]])
    ip, ig, d = match_nodes(pred, gt, radius=1.5)
    assert ip.tolist() == [0, 1] and ig.tolist() == [0, 1]
    assert d == pytest.approx([1.1, 1.4])
    r = node_edge_prf(pred, gt, radius=1.5)
    assert r["node_recall"] == 1.0
    # two predictions on one ground-truth node: only one can match
    r = node_edge_prf(graph([[0, 0], [0, 0.5]]), graph([[0, 0.2]]), radius=1.0)
    assert r["node_precision"] == 0.5 and r["node_recall"] == 1.0


def test_greedy_and_maximum_matching_methods():
    a = np.array([[0, 1.1], [0, 3.4]])
    b = np.array([[0, 0.0], [0, 2.0]])
    assert len(match_points(a, b, 1.5, method="greedy")[0]) == 1
    assert len(match_points(a, b, 1.5, method="maximum")[0]) == 2
    assert len(match_points(a, b, 1.5, method="optimal")[0]) == 2
    with pytest.raises(VesselGraphError):
        match_points(a, b, 1.5, method="magic")


def test_optimal_matching_agrees_with_brute_force():
    from itertools import permutations

    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.random((4, 2)) * 4
        b = rng.random((5, 2)) * 4
        ia, ib, d = match_points(a, b, 1.5)
        D = np.linalg.norm(a[:, None] - b[None], axis=2)
        best = (0, 0.0)
        for perm in permutations(range(5), 4):
            ok = [D[i, j] <= 1.5 for i, j in enumerate(perm)]
            n = sum(ok)
            cost = sum(D[i, j] for i, j in enumerate(perm) if D[i, j] <= 1.5)
            if n > best[0] or (n == best[0] and cost < best[1]):
                best = (n, cost)
        assert len(ia) == best[0]
        assert d.sum() == pytest.approx(best[1])
        assert len(set(ia.tolist())) == len(ia) and len(set(ib.tolist())) == len(ib)


def test_empty_prediction_and_empty_ground_truth():
    gt = square()
    r = node_edge_prf(VesselGraph.empty(), gt)
    assert r["node_recall"] == 0.0 and r["node_precision"] == 0.0 and r["node_f1"] == 0.0
    assert r["edge_recall"] == 0.0 and r["edge_precision"] == 0.0
    r = node_edge_prf(gt, VesselGraph.empty())
    assert r["node_precision"] == 0.0 and r["edge_precision"] == 0.0 and r["node_f1"] == 0.0
    r = node_edge_prf(VesselGraph.empty(), VesselGraph.empty())
    assert r["node_f1"] == 1.0 and r["edge_f1"] == 1.0
    # nodes right but no edges at all in either graph: edge scores are vacuously perfect
    r = node_edge_prf(graph([[0, 0]]), graph([[0, 0]]))
    assert r["edge_f1"] == 1.0
    # empty 2D prediction against a 3D ground truth is fine
    g3 = graph([[0, 0, 0], [0, 0, 5]], [[0, 1]])
    assert node_edge_prf(VesselGraph.empty(), g3)["node_recall"] == 0.0


def test_dimension_mismatch_raises():
    with pytest.raises(VesselGraphError):
        node_edge_prf(graph([[0, 0]]), graph([[0, 0, 0]]))


def test_3d_and_physical_units():
    gt = polyline([[0, 0, 0], [0, 0, 10], [0, 10, 10]])
    pred = shifted(gt, [1.0, 0, 0])
    assert node_edge_prf(pred, gt, radius=1.5)["edge_f1"] == 1.0
    # 2 um per pixel along z: the 1 px shift is 2 um
    gt_s = VesselGraph(gt.nodes, gt.edges, scale=(2.0, 1.0, 1.0))
    pred_s = VesselGraph(pred.nodes, pred.edges, scale=(2.0, 1.0, 1.0))
    assert node_edge_prf(pred_s, gt_s, radius=1.5, physical=True)["node_f1"] == 0.0
    assert node_edge_prf(pred_s, gt_s, radius=2.0, physical=True)["node_f1"] == 1.0


def test_self_loops_and_duplicate_edges_are_ignored():
    gt = square()
    pred = graph(gt.nodes, [[0, 1], [1, 0], [1, 2], [2, 3], [3, 0], [2, 2]])
    r = node_edge_prf(pred, gt)
    assert r["edge_precision"] == 1.0 and r["n_pred_edges"] == 4
