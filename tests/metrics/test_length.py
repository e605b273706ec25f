import numpy as np
import pytest

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import length_metrics

from .helpers import grid_network, polyline, shifted, square


def test_identical_graphs():
    g = grid_network(n_side=8, seed=0)
    r = length_metrics(g, g)
    assert r == {"length_completeness": 1.0, "length_correctness": 1.0, "length_quality": 1.0}


def test_half_covered_line():
    gt = polyline([[0, 0], [0, 20]])
    pred = polyline([[0, 0], [0, 10]])
    # within tol = 1 of the prediction: x in [0, 11] -> 11 of 20 px
    r = length_metrics(pred, gt, tol=1.0, step=0.5)
    assert r["length_completeness"] == pytest.approx(0.55)
    assert r["length_correctness"] == 1.0
    # quality = TP / (TP + FP + FN) = 10 / (10 + 0 + 9)
    assert r["length_quality"] == pytest.approx(10 / 19)
    # the default step gives about the same
    r = length_metrics(pred, gt, tol=1.0)
    assert r["length_completeness"] == pytest.approx(0.55, abs=0.02)
    # and with a tiny tolerance it is one half
    assert length_metrics(pred, gt, tol=0.01)["length_completeness"] == pytest.approx(0.5, abs=0.01)


def test_tolerance_decides():
    gt = polyline([[0, 0], [0, 20]])
    pred = shifted(gt, [2.0, 0])
    assert length_metrics(pred, gt, tol=2.5)["length_quality"] == 1.0
    r = length_metrics(pred, gt, tol=1.5)
    assert r == {"length_completeness": 0.0, "length_correctness": 0.0, "length_quality": 0.0}


def test_distance_to_segment_not_to_nodes():
    # a long edge with nodes only at its ends still covers points along its middle
    gt = polyline([[1, 0], [1, 100]])
    pred = polyline([[0, 0], [0, 100]])
    assert length_metrics(pred, gt, tol=1.0)["length_completeness"] == 1.0


def test_spurious_branch_lowers_correctness():
    gt = polyline([[0, 0], [0, 30]])
    pred = VesselGraph(np.array([[0, 0], [0, 30], [0, 15], [30, 15.0]]), np.array([[0, 1], [2, 3]]))
    r = length_metrics(pred, gt, tol=1.0, step=0.25)
    # branch of 30 px, of which 1 px lies within tol of the gt
    assert r["length_completeness"] == 1.0
    assert r["length_correctness"] == pytest.approx(31 / 60, abs=0.01)


def test_empty_and_3d():
    g = square()
    e = VesselGraph.empty()
    r = length_metrics(e, g)
    assert r == {"length_completeness": 0.0, "length_correctness": 0.0, "length_quality": 0.0}
    r = length_metrics(g, e)
    assert r["length_correctness"] == 0.0 and r["length_quality"] == 0.0
    r = length_metrics(e, e)
    assert r["length_quality"] == 1.0
    g3 = polyline([[0, 0, 0], [0, 0, 20]])
    half = polyline([[0, 0, 0], [0, 0, 10]])
    assert length_metrics(half, g3, tol=1.0, step=0.5)["length_completeness"] == pytest.approx(0.55)
    assert length_metrics(shifted(g3, [0.5, 0.5, 0]), g3, tol=1.0)["length_quality"] == 1.0
