"""Node and edge precision / recall / F1 at a matching radius.

These scores count *nodes*: they depend on node density. Two graphs tracing exactly the same
curves score badly if one places a node every 2 px and the other every 10 px. Use them to compare
methods that place nodes alike (e.g. the Relationformer convention of one node per ~patch
feature); use SMD, APLS/TOPO and the length metrics to compare geometry.
"""

from __future__ import annotations

import numpy as np

from ..graph.core import VesselGraph
from ._geometry import f1, match_points, prepare, safe_ratio


def match_nodes(pred: VesselGraph, gt: VesselGraph, radius: float = 3.0, physical: bool = False):
    """One-to-one matching of predicted to ground-truth nodes.

    Pairs farther apart than ``radius`` are not allowed (``<= radius`` is allowed). Among the
    matchings with the most pairs, the one with the least total distance is returned (Hungarian
    algorithm on each cluster of nearby nodes). Returns ``(pred_index, gt_index, distance)``.
    """
    p, g, _ = prepare(pred, gt, physical)
    return match_points(p.pts, g.pts, float(radius))


def node_edge_prf(pred: VesselGraph, gt: VesselGraph, radius: float = 3.0, physical: bool = False) -> dict:
    """Node and edge precision, recall and F1 (plus the counts behind them).

    - Nodes are matched one-to-one (see :func:`match_nodes`). node precision = matched / predicted
      nodes, node recall = matched / ground-truth nodes.
    - A predicted edge is a true positive when both its endpoints are matched and their matched
      ground-truth nodes are joined by a ground-truth edge. Because matching is one-to-one, true
      positive predicted edges and recovered ground-truth edges are in one-to-one correspondence, so
      edge precision = TP / predicted edges and edge recall = TP / ground-truth edges.
    - Self loops and duplicate edges are ignored (graphs are made canonical first).
    - Empty sets: a ratio whose denominator is 0 is 1 when the other graph is empty too (nothing to
      find, nothing wrongly found) and 0 otherwise. So an empty prediction against a non-empty
      ground truth gets precision 0, recall 0, F1 0; two empty graphs score 1.

    These scores depend on node density (see the module docstring).
    """
    p, g, _ = prepare(pred, gt, physical)
    ip, ig, _ = match_points(p.pts, g.pts, float(radius))
    tp_n = len(ip)
    both_nodes = 1.0 if (p.n_nodes == 0 and g.n_nodes == 0) else 0.0
    npre = safe_ratio(tp_n, p.n_nodes, both_nodes)
    nrec = safe_ratio(tp_n, g.n_nodes, both_nodes)

    tp_e = 0
    if len(ip) and p.n_edges and g.n_edges:
        to_gt = np.full(p.n_nodes, -1, dtype=np.int64)
        to_gt[ip] = ig
        a = to_gt[p.edges[:, 0]]
        b = to_gt[p.edges[:, 1]]
        ok = (a >= 0) & (b >= 0)
        lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
        n = max(g.n_nodes, 1)
        gt_keys = np.unique(g.edges[:, 0] * n + g.edges[:, 1])  # canonical: i < j
        tp_e = int(np.isin(lo * n + hi, gt_keys).sum())
    both_edges = 1.0 if (p.n_edges == 0 and g.n_edges == 0) else 0.0
    epre = safe_ratio(tp_e, p.n_edges, both_edges)
    erec = safe_ratio(tp_e, g.n_edges, both_edges)
    return {
        "node_precision": npre,
        "node_recall": nrec,
        "node_f1": f1(npre, nrec) if not both_nodes else 1.0,
        "edge_precision": epre,
        "edge_recall": erec,
        "edge_f1": f1(epre, erec) if not both_edges else 1.0,
        "node_tp": tp_n,
        "n_pred_nodes": p.n_nodes,
        "n_gt_nodes": g.n_nodes,
        "edge_tp": tp_e,
        "n_pred_edges": p.n_edges,
        "n_gt_edges": g.n_edges,
    }
