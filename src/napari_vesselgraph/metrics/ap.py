"""Node and edge mean average precision, Relationformer style (COCO-style AP over boxes).

Each node becomes an axis-aligned box (square in 2D, cube in 3D) of side ``node_box_size``
centred on it; each edge becomes the bounding box of its two endpoints padded by
``edge_box_pad`` on every side (by default half the node box size, so an edge box is the
bounding box of its two endpoint node boxes and never has zero area). Predictions are ranked by
their ``confidence`` attribute (node attribute for nodes, edge attribute for edges; 1 when absent).

AP at one IoU threshold follows COCO: detections in decreasing confidence are greedily matched to
the still unmatched ground-truth box of highest IoU (>= threshold); precision is made monotone
and read at 101 recall levels 0, 0.01, ..., 1. ``mAP`` averages AP over IoU 0.50:0.05:0.95;
``AP50`` is AP at IoU 0.5.

Like node/edge F1, these scores depend on node density (how many nodes describe a curve).
"""

from __future__ import annotations

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph
from ._geometry import Arrays, prepare

COCO_IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_LEVELS = np.linspace(0.0, 1.0, 101)


def node_boxes(a: Arrays, size: float) -> tuple[np.ndarray, np.ndarray]:
    half = float(size) / 2
    return a.pts - half, a.pts + half


def edge_boxes(a: Arrays, pad: float) -> tuple[np.ndarray, np.ndarray]:
    p0, p1 = a.pts[a.edges[:, 0]], a.pts[a.edges[:, 1]]
    return np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad


def box_iou_pairs(lo_p, hi_p, lo_g, hi_g, min_iou: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (pred, gt) pairs of boxes with IoU > 0 and >= ``min_iou``, and their IoU (2D or 3D boxes)."""
    from scipy.spatial import cKDTree

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if len(lo_p) == 0 or len(lo_g) == 0:
        return empty
    cp, hp = (lo_p + hi_p) / 2, (hi_p - lo_p) / 2
    cg, hg = (lo_g + hi_g) / 2, (hi_g - lo_g) / 2
    Hp, Hg = hp.max(axis=1), hg.max(axis=1)
    # boxes overlap only if |c_p - c_g| < h_p + h_g on every axis, <= 2 * max(H_p, H_g): query from the
    # larger box of the pair with radius twice its half size (Chebyshev distance). IoU >= tau needs
    # the overlap along each axis to be >= tau * the larger side, so |c_p - c_g| <= 2 (1 - tau) max(H).
    f = 2.0 * (1.0 - min(max(float(min_iou), 0.0), 1.0))
    pi, gi = [], []
    res = cKDTree(cg).query_ball_point(cp, r=f * Hp + 1e-9, p=np.inf)
    lens = np.fromiter((len(r) for r in res), dtype=np.int64, count=len(res))
    pi.append(np.repeat(np.arange(len(cp)), lens))
    gi.append(np.fromiter((x for r in res for x in r), dtype=np.int64, count=int(lens.sum())))
    res = cKDTree(cp).query_ball_point(cg, r=f * Hg + 1e-9, p=np.inf)
    lens = np.fromiter((len(r) for r in res), dtype=np.int64, count=len(res))
    gi.append(np.repeat(np.arange(len(cg)), lens))
    pi.append(np.fromiter((x for r in res for x in r), dtype=np.int64, count=int(lens.sum())))
    i, j = np.concatenate(pi), np.concatenate(gi)
    if len(i) == 0:
        return empty
    key = np.unique(i * len(cg) + j)
    i, j = key // len(cg), key % len(cg)
    inter = np.prod(np.clip(np.minimum(hi_p[i], hi_g[j]) - np.maximum(lo_p[i], lo_g[j]), 0, None), axis=1)
    vp = np.prod(hi_p - lo_p, axis=1)
    vg = np.prod(hi_g - lo_g, axis=1)
    union = vp[i] + vg[j] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    keep = (iou > 0) & (iou >= min_iou)
    return i[keep], j[keep], iou[keep]


def average_precision(
    scores: np.ndarray, n_gt: int, pi: np.ndarray, gi: np.ndarray, iou: np.ndarray, thresholds=COCO_IOU_THRESHOLDS
) -> np.ndarray:
    """COCO-style AP (101 recall levels) at each IoU threshold, from candidate pairs and their IoU.

    Conventions: no ground truth and no prediction -> AP 1; ground truth but no prediction, or
    predictions but no ground truth -> AP 0.
    """
    thresholds = np.asarray(thresholds, dtype=float)
    n_pred = len(scores)
    if n_gt == 0 and n_pred == 0:
        return np.ones(len(thresholds))
    if n_gt == 0 or n_pred == 0:
        return np.zeros(len(thresholds))
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    rank = np.empty(n_pred, dtype=np.int64)
    rank[order] = np.arange(n_pred)
    # candidate pairs by detection rank, best IoU first
    o = np.lexsort((gi, -iou, rank[pi]))
    r_s, g_s, iou_s = rank[pi][o], gi[o], iou[o]
    starts = np.searchsorted(r_s, np.arange(n_pred + 1))
    g_list, iou_list = g_s.tolist(), iou_s.tolist()
    out = np.zeros(len(thresholds))
    for ti, thr in enumerate(thresholds):
        taken = np.zeros(n_gt, bool)
        tp = np.zeros(n_pred, bool)
        for r in range(n_pred):
            for c in range(starts[r], starts[r + 1]):
                if iou_list[c] < thr:
                    break
                g = g_list[c]
                if not taken[g]:
                    taken[g] = True
                    tp[r] = True
                    break
        ctp = np.cumsum(tp)
        cfp = np.cumsum(~tp)
        recall = ctp / n_gt
        precision = ctp / np.maximum(ctp + cfp, 1)
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, RECALL_LEVELS, side="left")
        q = np.where(idx < n_pred, precision[np.minimum(idx, n_pred - 1)], 0.0)
        out[ti] = q.mean()
    return out


def _confidence(attrs: dict, n: int) -> np.ndarray:
    c = attrs.get("confidence")
    if c is None:
        return np.ones(n)
    try:
        c = np.asarray(c, dtype=float)
    except (TypeError, ValueError):
        raise VesselGraphError("the 'confidence' attribute must be numeric") from None
    return np.where(np.isfinite(c), c, 0.0)


def node_edge_map(
    pred: VesselGraph,
    gt: VesselGraph,
    radius: float = 3.0,
    node_box_size: float | None = None,
    edge_box_pad: float | None = None,
    iou_thresholds=COCO_IOU_THRESHOLDS,
    physical: bool = False,
) -> dict[str, float]:
    """Node and edge mAP (IoU 0.5:0.95) and AP50. ``node_box_size`` defaults to ``2 * radius``.

    Depends on node density (see the module docstring). Returns ``node_mAP``, ``node_AP50``,
    ``edge_mAP``, ``edge_AP50``.
    """
    size = 2.0 * float(radius) if node_box_size is None else float(node_box_size)
    if not size > 0:
        raise VesselGraphError("node mAP needs a positive node box size (give radius > 0 or node_box_size)")
    pad = size / 2 if edge_box_pad is None else float(edge_box_pad)
    if not pad > 0:
        raise VesselGraphError("edge mAP needs a positive edge box padding")
    thresholds = np.asarray(iou_thresholds, dtype=float).ravel()
    p, g, _ = prepare(pred, gt, physical)
    out = {}
    for kind, boxes, arg, attrs_p, n_p, n_g in (
        ("node", node_boxes, size, p.node_attrs, p.n_nodes, g.n_nodes),
        ("edge", edge_boxes, pad, p.edge_attrs, p.n_edges, g.n_edges),
    ):
        lo_p, hi_p = boxes(p, arg)
        lo_g, hi_g = boxes(g, arg)
        pi, gi, iou = box_iou_pairs(lo_p, hi_p, lo_g, hi_g, min_iou=min(thresholds.min(), 0.5) - 1e-9)
        ap = average_precision(_confidence(attrs_p, n_p), n_g, pi, gi, iou, thresholds)
        out[f"{kind}_mAP"] = float(ap.mean()) if len(ap) else float("nan")
        at50 = np.flatnonzero(np.isclose(thresholds, 0.5))
        ap50 = ap[at50[0]] if len(at50) else average_precision(_confidence(attrs_p, n_p), n_g, pi, gi, iou, [0.5])[0]
        out[f"{kind}_AP50"] = float(ap50)
    return out
