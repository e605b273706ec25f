import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import average_precision, node_edge_map
from napari_vesselgraph.metrics.ap import box_iou_pairs

from .helpers import graph, grid_network, polyline, shifted, square


def test_identical_graphs_have_map_one():
    g = grid_network(n_side=8, seed=1)
    r = node_edge_map(g, g)
    assert r == {"node_mAP": 1.0, "node_AP50": 1.0, "edge_mAP": 1.0, "edge_AP50": 1.0}


def test_one_pixel_shift_iou_five_sevenths():
    # boxes of side 6 shifted by 1 along one axis: IoU = 5/7 = 0.714 -> AP 1 at IoU 0.50..0.70, 0 above
    g = polyline([[0, 0], [0, 10]])
    r = node_edge_map(shifted(g, [1.0, 0]), g, radius=3.0)
    assert r["node_AP50"] == 1.0
    assert r["node_mAP"] == pytest.approx(0.5)
    # the edge box (0..10 padded by 3) shifted across its short side has the same IoU 5/7
    assert r["edge_AP50"] == 1.0
    assert r["edge_mAP"] == pytest.approx(0.5)


def test_3d_boxes():
    g = polyline([[0, 0, 0], [0, 0, 10], [0, 10, 10]])
    r = node_edge_map(g, g)
    assert r["node_mAP"] == 1.0 and r["edge_mAP"] == 1.0
    r = node_edge_map(shifted(g, [1.0, 0, 0]), g)  # cubes of side 6: IoU 5/7 again
    assert r["node_mAP"] == pytest.approx(0.5) and r["node_AP50"] == 1.0


def test_box_iou_values():
    lo = np.array([[0.0, 0.0]])
    hi = np.array([[2.0, 2.0]])
    i, j, iou = box_iou_pairs(lo, hi, lo + [1.0, 0.0], hi + [1.0, 0.0])
    assert iou == pytest.approx([2 / 6])
    i, j, iou = box_iou_pairs(lo, hi, lo + [1.0, 0.0], hi + [1.0, 0.0], min_iou=0.5)
    assert len(iou) == 0
    i, j, iou = box_iou_pairs(lo, hi, lo + [5.0, 0.0], hi + [5.0, 0.0])
    assert len(iou) == 0


def test_candidate_search_finds_boxes_of_very_different_sizes():
    rng = np.random.default_rng(0)
    lo_p = rng.random((40, 2)) * 50
    hi_p = lo_p + rng.random((40, 2)) * 30 + 0.1
    lo_g = rng.random((30, 2)) * 50
    hi_g = lo_g + rng.random((30, 2)) * 3 + 0.1
    i, j, iou = box_iou_pairs(lo_p, hi_p, lo_g, hi_g)
    inter = np.prod(np.clip(np.minimum(hi_p[:, None], hi_g[None]) - np.maximum(lo_p[:, None], lo_g[None]), 0, None), -1)
    vp, vg = np.prod(hi_p - lo_p, 1), np.prod(hi_g - lo_g, 1)
    full = inter / (vp[:, None] + vg[None] - inter)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*np.nonzero(full > 0)))
    assert iou == pytest.approx(full[i, j])


def test_confidence_ranks_predictions():
    gt = graph([[0, 0]])
    good, bad = [0, 0.2], [50, 50]
    # the false positive is ranked last: precision is 1 up to full recall
    pred = VesselGraph(np.array([good, bad], float), node_attrs={"confidence": np.array([0.9, 0.1])})
    assert node_edge_map(pred, gt)["node_AP50"] == 1.0
    # the false positive is ranked first: precision 1/2 at full recall
    pred = VesselGraph(np.array([good, bad], float), node_attrs={"confidence": np.array([0.9, 0.95])})
    assert node_edge_map(pred, gt)["node_AP50"] == pytest.approx(0.5)


def test_edge_confidence_attribute():
    gt = polyline([[0, 0], [0, 10], [0, 20]])
    pred = graph([[0, 0], [0, 10], [0, 20], [40, 0]], [[0, 1], [1, 2], [2, 3]],
                 edge_attrs={"confidence": np.array([0.5, 0.5, 0.9])})
    r = node_edge_map(pred, gt)
    # ranked: wrong (tp 0/1), right, right -> precision 1/2, 2/3 at recall 1/2, 1
    assert r["edge_AP50"] == pytest.approx(2 / 3)
    pred.edge_attrs["confidence"] = np.array([0.5, 0.5, 0.1])
    assert node_edge_map(pred, gt)["edge_AP50"] == 1.0


def test_average_precision_hand_case():
    # 3 detections: TP, FP, TP against 2 ground-truth boxes
    scores = np.array([0.9, 0.8, 0.7])
    pi, gi, iou = np.array([0, 2]), np.array([0, 1]), np.array([0.9, 0.6])
    ap = average_precision(scores, 2, pi, gi, iou, thresholds=[0.5, 0.75])
    # IoU 0.5: precision envelope 1 for recall <= 0.5, 2/3 for recall in (0.5, 1]
    assert ap[0] == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)
    # IoU 0.75: only the first detection is a TP -> recall <= 0.5 reached with precision 1
    assert ap[1] == pytest.approx(51 / 101)


def test_empty_cases():
    g = square()
    e = VesselGraph.empty()
    r = node_edge_map(e, g)
    assert r["node_mAP"] == 0.0 and r["edge_mAP"] == 0.0
    r = node_edge_map(g, e)
    assert r["node_mAP"] == 0.0 and r["edge_AP50"] == 0.0
    r = node_edge_map(e, e)
    assert r["node_mAP"] == 1.0 and r["edge_mAP"] == 1.0


def test_bad_box_size():
    g = square()
    with pytest.raises(VesselGraphError):
        node_edge_map(g, g, radius=0.0)
    assert node_edge_map(g, g, radius=0.0, node_box_size=4.0)["node_mAP"] == 1.0
