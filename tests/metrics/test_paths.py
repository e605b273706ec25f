import numpy as np
import pytest

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import apls, topo
from napari_vesselgraph.metrics._geometry import subdivide, to_arrays

from .helpers import graph, grid_network, polyline, shifted


def test_subdivide_keeps_geometry():
    a = to_arrays(polyline([[0, 0], [0, 25], [10, 25]]))
    s = subdivide(a, 10.0)
    assert s.n_edges == 3 + 1
    assert s.lengths().sum() == pytest.approx(35.0)
    assert s.lengths().max() <= 10.0


def test_apls_identical_and_parallel_shift():
    g = grid_network(n_side=8, seed=0)
    assert apls(g, g)["apls"] == pytest.approx(1.0)
    line = polyline([[0, 0], [0, 50]])
    # a parallel copy 1 px away has the same path lengths everywhere
    assert apls(shifted(line, [1.0, 0]), line)["apls"] == pytest.approx(1.0)


def test_apls_gap_hand_computed():
    # gt: a 30 px line, control points every 10 px at x = 0, 10, 20, 30 (all used as sources)
    gt = polyline([[0, 0], [0, 30]])
    # prediction: the same line with a gap between x = 15 and x = 16
    pred = graph([[0, 0], [0, 15], [0, 16], [0, 30]], [[0, 1], [2, 3]])
    r = apls(pred, gt, radius=3.0, control_spacing=10.0, min_path_length=9.0, n_sources=100)
    # gt -> pred: 12 ordered pairs with L >= 9, the 8 across the gap have no path -> 1 - 8/12
    assert r["apls_gt_to_pred"] == pytest.approx(1 / 3)
    # pred -> gt: pairs (0, 15) and (16, 30) both ways, all lengths exact
    assert r["apls_pred_to_gt"] == pytest.approx(1.0)
    assert r["apls"] == pytest.approx(0.5)


def test_apls_detour_hand_computed():
    # gt straight 0 -> 20; prediction takes a detour through (10, 10): path 0 -> 20 of length 2 * sqrt(200)
    gt = polyline([[0, 0], [0, 20]])
    pred = polyline([[0, 0], [10, 10], [0, 20]])
    r = apls(pred, gt, radius=1.0, control_spacing=100.0, min_path_length=1.0)
    detour = 2 * np.sqrt(200)
    # gt -> pred: the only pair is (0, 20) both ways, |20 - detour| / 20
    assert r["apls_gt_to_pred"] == pytest.approx(1 - min(1.0, abs(20 - detour) / 20))
    # pred -> gt: the middle node (10, 10) cannot be snapped (too far): pairs with it score 1;
    # pair (0, 20) measured along gt is 20 instead of the detour
    expected = 1 - np.mean([1, 1, 1, 1, abs(detour - 20) / detour, abs(detour - 20) / detour])
    assert r["apls_pred_to_gt"] == pytest.approx(expected)


def test_apls_empty_and_deterministic():
    g = grid_network(n_side=8, seed=0)
    e = VesselGraph.empty()
    assert apls(e, g)["apls"] == 0.0
    assert apls(g, e)["apls"] == 0.0
    assert apls(e, e)["apls"] == 1.0
    pred = g.subgraph(np.arange(g.n_nodes) % 5 != 0)
    a = apls(pred, g, n_sources=10, seed=3)
    assert a == apls(pred, g, n_sources=10, seed=3)
    assert 0.0 < a["apls"] < 1.0


def test_apls_3d():
    g = polyline([[0, 0, 0], [0, 0, 20], [0, 20, 20], [20, 20, 20]])
    assert apls(g, g)["apls"] == pytest.approx(1.0)
    assert apls(shifted(g, [0.5, 0.5, 0.5]), g)["apls"] > 0.9


def test_topo_identical_shifted_empty():
    g = grid_network(n_side=8, seed=0)
    r = topo(g, g)
    assert r == {"topo_precision": 1.0, "topo_recall": 1.0, "topo_f1": 1.0}
    line = polyline([[0, 0], [0, 60]])
    assert topo(shifted(line, [1.0, 0]), line)["topo_f1"] == 1.0
    assert topo(shifted(line, [1.0, 0]), line, radius=0.5)["topo_f1"] == 0.0
    e = VesselGraph.empty()
    assert topo(e, g) == {"topo_precision": 0.0, "topo_recall": 0.0, "topo_f1": 0.0}
    assert topo(e, e)["topo_f1"] == 1.0


def test_topo_spurious_branch_and_gap():
    gt = polyline([[0, 0], [0, 60]])
    # a connected spurious branch lowers precision only
    pred = graph([[0, 0], [0, 30], [0, 60], [30, 30]], [[0, 1], [1, 2], [1, 3]])
    r = topo(pred, gt, radius=2.0, max_dist=100.0, spacing=1.0)
    assert r["topo_recall"] == 1.0
    assert r["topo_precision"] == pytest.approx(60 / 90, abs=0.03)
    # a gap: from a seed on one side the other side is unreachable -> recall drops
    pred = graph([[0, 0], [0, 29], [0, 31], [0, 60]], [[0, 1], [2, 3]])
    r = topo(pred, gt, radius=2.0, max_dist=100.0, spacing=1.0)
    assert r["topo_precision"] == 1.0
    assert 0.4 < r["topo_recall"] < 0.6


def test_topo_3d_and_deterministic():
    g = polyline([[0, 0, 0], [0, 0, 20], [0, 20, 20], [20, 20, 20]])
    assert topo(g, g)["topo_f1"] == 1.0
    pred = graph(g.nodes, g.edges[:2])
    assert topo(pred, g, seed=4) == topo(pred, g, seed=4)
    assert topo(pred, g)["topo_recall"] < 1.0
