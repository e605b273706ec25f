"""Junction (branch point) precision, recall and F1 within a radius.

Junctions are nodes of degree >= 3. Junction nodes closer than ``radius`` to each other (one crossing drawn
as two close branch points, a common difference between annotators and between a model and a skeleton) are
merged into their mean first, in both graphs. Predicted and true junctions are then matched one-to-one
within ``radius`` (optimal assignment, :func:`~napari_vesselgraph.metrics._geometry.match_points`).
"""

from __future__ import annotations

import numpy as np

from ..graph.core import VesselGraph
from ._geometry import f1, match_points, safe_ratio


def junction_points(g: VesselGraph, radius: float, physical: bool = False) -> np.ndarray:
    """Positions of the junctions of ``g`` (degree >= 3), clusters closer than ``radius`` merged."""
    pts = np.asarray(g.nodes, float)
    if physical:
        pts = pts * np.asarray(g.scale, float)
    if not g.n_nodes or not g.n_edges:
        return np.zeros((0, pts.shape[1] if pts.ndim == 2 else 2))
    j = pts[g.degree() >= 3]
    if len(j) < 2 or radius <= 0:
        return j
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = np.array(sorted(cKDTree(j).query_pairs(radius)), dtype=np.int64).reshape(-1, 2)
    n = len(j)
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    k, lab = connected_components(adj, directed=False)
    out = np.zeros((k, j.shape[1]))
    np.add.at(out, lab, j)
    return out / np.bincount(lab, minlength=k)[:, None]


def junction_prf(pred: VesselGraph, gt: VesselGraph, radius: float = 6.0, physical: bool = False) -> dict:
    """``junction_precision``, ``junction_recall``, ``junction_f1`` (and the counts) within ``radius``."""
    p = junction_points(pred, radius, physical)
    t = junction_points(gt, radius, physical)
    if len(p) and len(t):
        ip, _, _ = match_points(p, t, radius)
        matched = len(ip)
    else:
        matched = 0
    prec = safe_ratio(matched, len(p))
    rec = safe_ratio(matched, len(t))
    return {
        "junction_precision": prec,
        "junction_recall": rec,
        "junction_f1": f1(prec, rec) if (len(p) or len(t)) else 1.0,
        "junctions_pred": float(len(p)),
        "junctions_gt": float(len(t)),
    }
