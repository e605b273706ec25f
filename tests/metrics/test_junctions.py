"""Junction precision / recall / F1 (metrics.junctions)."""

import numpy as np

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import evaluate
from napari_vesselgraph.metrics.junctions import junction_points, junction_prf


def _t(shift=(0.0, 0.0), split=False):
    """A T: a horizontal bar and a stem meeting at (20, 20); ``split`` draws the junction as two close ones."""
    s = np.asarray(shift)
    if not split:
        nodes = np.array([[20, 0], [20, 20], [20, 40], [40, 20]], float) + s
        edges = [[0, 1], [1, 2], [1, 3]]
    else:
        nodes = np.array([[20, 0], [20, 19], [20, 40], [40, 20], [20, 21]], float) + s
        edges = [[0, 1], [1, 4], [4, 2], [1, 3], [4, 3]]
    return VesselGraph(nodes, np.array(edges))


def test_same_t_matches_and_shifted_t_does_not():
    assert junction_prf(_t(), _t(), 6.0)["junction_f1"] == 1.0
    assert junction_prf(_t((3, 0)), _t(), 6.0)["junction_f1"] == 1.0
    r = junction_prf(_t((10, 0)), _t(), 6.0)
    assert r["junction_f1"] == 0.0 and r["junctions_pred"] == 1 and r["junctions_gt"] == 1


def test_close_junctions_merge_into_one():
    pts = junction_points(_t(split=True), 6.0)
    assert len(pts) == 1 and np.allclose(pts[0], [20, 20])
    assert junction_prf(_t(split=True), _t(), 6.0)["junction_f1"] == 1.0


def test_empty_cases():
    line = VesselGraph(np.array([[0, 0], [0, 10.0]]), np.array([[0, 1]]))
    r = junction_prf(line, _t(), 6.0)
    assert r["junction_recall"] == 0.0 and r["junction_f1"] == 0.0
    assert junction_prf(line, line, 6.0)["junction_f1"] == 1.0  # nothing to find, nothing found
    assert junction_prf(_t(), line, 6.0)["junction_precision"] == 0.0


def test_evaluate_reports_junctions_with_twice_the_radius_by_default():
    m = evaluate(_t((5, 0)), _t(), radius=3.0, metrics=["junctions"])
    assert m["junction_f1"] == 1.0  # 5 px apart, default junction radius 6
    m = evaluate(_t((5, 0)), _t(), radius=3.0, metrics=["junctions"], junction_radius=4.0)
    assert m["junction_f1"] == 0.0


def test_physical_units_use_the_scale():
    # 4 px apart along y with 2 units per pixel in y: 8 units, outside a radius of 6 units (inside 6 px)
    pred, gt = _t((4, 0)), _t()
    assert junction_prf(pred, gt, 6.0)["junction_f1"] == 1.0
    pred.scale = gt.scale = (2.0, 1.0)
    assert junction_prf(pred, gt, 6.0, physical=True)["junction_f1"] == 0.0
    assert junction_prf(pred, gt, 9.0, physical=True)["junction_f1"] == 1.0
    m = evaluate(pred, gt, radius=3.0, metrics=["junctions"], physical=True)  # junction radius 6 units
    assert m["junction_f1"] == 0.0


def test_degree_two_chains_have_no_junction_and_a_cross_has_one():
    chain = VesselGraph(np.array([[0, 0], [0, 10], [0, 20.0]]), np.array([[0, 1], [1, 2]]))
    assert len(junction_points(chain, 6.0)) == 0
    cross = VesselGraph(np.array([[10, 0], [10, 10], [10, 20], [0, 10], [20, 10.0]]),
                        np.array([[0, 1], [1, 2], [3, 1], [1, 4]]))  # fmt: skip
    pts = junction_points(cross, 6.0)
    assert len(pts) == 1 and np.allclose(pts[0], [10, 10])
    r = junction_prf(cross, _t(), 6.0)  # both have one junction, 10 px apart
    assert r["junction_precision"] == 0.0 and r["junction_recall"] == 0.0
