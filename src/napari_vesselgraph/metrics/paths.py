"""Path-based metrics: APLS (Van Etten et al., SpaceNet) and TOPO (Biagioni & Eriksson 2012).

Neither depends on node density: paths are measured along edges and both graphs are resampled
by arc length (control points / holes / marbles) before anything is counted. Both are
deterministic for a given ``seed``.

APLS, one way (source graph A, target graph B)
    1. Every edge of A longer than ``control_spacing`` is split by inserting nodes; the nodes of the
       result (with at least one edge) are A's control points.
    2. Each control point is snapped to the nearest point on B's edges within ``radius`` (the point
       is injected into B: path lengths are measured from that point along B).
    3. ``n_sources`` control points are drawn (``seed``); each is paired with every other control
       point connected to it in A by a path of length L >= ``min_path_length``.
    4. A pair contributes min(1, |L - L'| / L), where L' is the shortest path length in B between the
       two snapped points; 1 if either point could not be snapped or B has no such path.
    5. APLS(A -> B) = 1 - mean contribution.
   APLS = harmonic mean of APLS(gt -> pred) and APLS(pred -> gt). A direction without any pair (a
   graph without edges) is left out; two graphs without edges score 1. So an empty prediction
   against a non-empty ground truth scores 0.

TOPO
    ``n_seeds`` seed points are drawn uniformly by length along the ground-truth edges (``seed``)
    and snapped to the nearest point of the prediction within ``radius``. From the seed, each graph
    is explored along its edges up to path distance ``max_dist``; the ground truth's explored part
    carries "holes" and the prediction's "marbles", both the arc-length samples of their graph at
    ``spacing`` that lie in the explored part. Marbles and holes are matched one-to-one within
    ``radius`` so that as many pairs as possible form (``matching="maximum"``, Hopcroft-Karp; only
    the count matters). ``matching="greedy"`` takes pairs by increasing distance, closer to the
    original implementation, but it can miss pairs on chains of points spaced about ``radius``
    apart and then scores lower. Summed over seeds:
    precision = matched / marbles, recall = matched / holes, F1. A seed that cannot be snapped to
    the prediction contributes its holes and no marble. Ratios with denominator 0 are 1 when both
    graphs have no edge length, else 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph
from ._geometry import (
    Arrays,
    adjacency,
    dijkstra,
    f1,
    match_points,
    nearest_on_segments,
    prepare,
    safe_ratio,
    sample_along_edges,
    subdivide,
)


# --------------------------------------------------------------------------------- APLS
def _inject(b: Arrays, k: np.ndarray, t: np.ndarray):
    """Adjacency of ``b`` plus one extra node per location (edge ``k``, fraction ``t``), joined to the
    two ends of its edge; path lengths between original nodes do not change."""
    from scipy.sparse import csr_matrix

    n = b.n_nodes
    lens = b.lengths()
    w = np.maximum(lens, 1e-12)
    x = n + np.arange(len(k))
    u, v = b.edges[k, 0], b.edges[k, 1]
    wu = np.maximum(t * lens[k], 1e-12)
    wv = np.maximum((1 - t) * lens[k], 1e-12)
    rows = np.concatenate([b.edges[:, 0], b.edges[:, 1], x, u, x, v])
    cols = np.concatenate([b.edges[:, 1], b.edges[:, 0], u, x, v, x])
    vals = np.concatenate([w, w, wu, wu, wv, wv])
    return csr_matrix((vals, (rows, cols)), shape=(n + len(k), n + len(k)))


def _apls_one_way(a: Arrays, b: Arrays, radius: float, n_sources: int, min_path: float, rng) -> np.ndarray | None:
    """Contributions min(1, |L - L'| / L) of all sampled pairs of A (None when A has no pair)."""
    if a.n_edges == 0:
        return None
    deg = np.bincount(a.edges.ravel(), minlength=a.n_nodes)
    ctrl = np.flatnonzero(deg > 0)
    sources = np.sort(rng.choice(ctrl, size=min(int(n_sources), len(ctrl)), replace=False))
    da = dijkstra(adjacency(a), sources)
    kk = np.full(a.n_nodes, -1, dtype=np.int64)
    tt = np.zeros(a.n_nodes)
    if b.n_edges:
        _, k_snap, t_snap = nearest_on_segments(a.pts[ctrl], b, radius)
        kk[ctrl], tt[ctrl] = k_snap, t_snap
        lens_b = b.lengths()
        snapped = np.flatnonzero(kk[sources] >= 0)
        # path lengths in B from each snapped source, injected into B as an extra node
        db = dijkstra(_inject(b, kk[sources[snapped]], tt[sources[snapped]]), b.n_nodes + np.arange(len(snapped)))
        row = {int(si): r for r, si in enumerate(snapped)}
    out = []
    for si, s in enumerate(sources):
        L = da[si, ctrl]
        valid = np.isfinite(L) & (L > 0) & (L >= min_path) & (ctrl != s)
        if not valid.any():
            continue
        tgt, L = ctrl[valid], L[valid]
        c = np.ones(len(tgt))
        k = kk[s]
        if k >= 0:
            ds = db[row[si]]
            kt = kk[tgt]
            ok = kt >= 0
            ko, to = kt[ok], tt[tgt][ok]
            lo = lens_b[ko]
            lp = np.minimum(ds[b.edges[ko, 0]] + to * lo, ds[b.edges[ko, 1]] + (1 - to) * lo)
            same = ko == k
            lp[same] = np.minimum(lp[same], np.abs(to[same] - tt[s]) * lens_b[k])
            with np.errstate(invalid="ignore"):
                c[ok] = np.minimum(1.0, np.abs(L[ok] - lp) / L[ok])
            c[ok & ~np.isfinite(c)] = 1.0
        out.append(c)
    return np.concatenate(out) if out else None


def apls(
    pred: VesselGraph,
    gt: VesselGraph,
    radius: float = 3.0,
    n_sources: int = 100,
    control_spacing: float | None = None,
    min_path_length: float | None = None,
    seed: int = 0,
    physical: bool = False,
) -> dict[str, float]:
    """Average path length similarity (see the module docstring).

    ``control_spacing`` and ``min_path_length`` default to ``3 * radius``. Returns ``apls`` and the
    two one-way scores ``apls_gt_to_pred`` and ``apls_pred_to_gt`` (NaN for a direction without pairs).
    """
    radius = float(radius)
    spacing = 3 * radius if control_spacing is None else float(control_spacing)
    min_path = 3 * radius if min_path_length is None else float(min_path_length)
    if int(n_sources) < 1:
        raise VesselGraphError("APLS needs at least one source point")
    p, g, _ = prepare(pred, gt, physical)
    rng = np.random.default_rng(seed)
    ps, gs = subdivide(p, spacing), subdivide(g, spacing)
    c_gp = _apls_one_way(gs, ps, radius, n_sources, min_path, rng)
    c_pg = _apls_one_way(ps, gs, radius, n_sources, min_path, rng)
    one = [1.0 - float(c.mean()) if c is not None else float("nan") for c in (c_gp, c_pg)]
    present = [x for x in one if np.isfinite(x)]
    if not present:
        score = 1.0 if (p.n_edges == 0) == (g.n_edges == 0) else 0.0
    elif len(present) == 1:
        score = present[0]
    else:
        a, b = present
        score = 2 * a * b / (a + b) if a + b > 0 else 0.0
    return {"apls": float(score), "apls_gt_to_pred": one[0], "apls_pred_to_gt": one[1]}


# --------------------------------------------------------------------------------- TOPO
def _explored(a: Arrays, adj, lens: np.ndarray, samples, k: int, s0: float, max_dist: float) -> np.ndarray:
    """Mask of ``samples`` within path distance ``max_dist`` of the point at arc ``s0`` on edge ``k``."""
    u, v = a.edges[k]
    d = dijkstra(adj, [u, v], limit=max_dist)
    dn = np.minimum(s0 + d[0], (lens[k] - s0) + d[1])
    e = samples.edge
    dist = np.minimum(dn[a.edges[e, 0]] + samples.s, dn[a.edges[e, 1]] + lens[e] - samples.s)
    same = e == k
    dist[same] = np.minimum(dist[same], np.abs(samples.s[same] - s0))
    return dist <= max_dist


def topo(
    pred: VesselGraph,
    gt: VesselGraph,
    radius: float = 3.0,
    spacing: float | None = None,
    max_dist: float | None = None,
    n_seeds: int = 100,
    seed: int = 0,
    physical: bool = False,
    matching: str = "maximum",
) -> dict[str, float]:
    """TOPO precision, recall and F1 (see the module docstring).

    ``spacing`` (between holes and between marbles) defaults to ``radius`` and ``max_dist`` (how far
    each seed explores) to ``20 * radius``. ``matching``: "maximum" (default), "optimal" (same count,
    least total distance, slower) or "greedy" (see the module docstring). Returns ``topo_precision``,
    ``topo_recall``, ``topo_f1``.
    """
    radius = float(radius)
    spacing = radius if spacing is None else float(spacing)
    max_dist = 20 * radius if max_dist is None else float(max_dist)
    if not spacing > 0:
        raise VesselGraphError("TOPO needs a positive hole spacing (give radius > 0 or spacing)")
    p, g, _ = prepare(pred, gt, physical)
    lens_g, lens_p = g.lengths(), p.lengths()
    len_g, len_p = float(lens_g.sum()), float(lens_p.sum())
    if len_g == 0 or len_p == 0:
        v = 1.0 if (len_g == 0 and len_p == 0) else 0.0
        return {"topo_precision": v, "topo_recall": v, "topo_f1": v}
    holes_all = sample_along_edges(g, spacing=spacing)
    marbles_all = sample_along_edges(p, spacing=spacing)
    adj_g, adj_p = adjacency(g), adjacency(p)
    rng = np.random.default_rng(seed)
    pos = np.sort(rng.random(max(int(n_seeds), 1))) * len_g
    cum = np.concatenate([[0.0], np.cumsum(lens_g)])
    kg = np.clip(np.searchsorted(cum, pos, side="right") - 1, 0, g.n_edges - 1)
    sg = np.clip(pos - cum[kg], 0.0, lens_g[kg])
    tg = np.divide(sg, lens_g[kg], out=np.zeros_like(sg), where=lens_g[kg] > 0)
    seeds = g.pts[g.edges[kg, 0]] + tg[:, None] * (g.pts[g.edges[kg, 1]] - g.pts[g.edges[kg, 0]])
    _, kp, tp = nearest_on_segments(seeds, p, radius)
    n_holes = n_marbles = n_matched = 0
    for i in range(len(seeds)):
        holes = holes_all.coords[_explored(g, adj_g, lens_g, holes_all, kg[i], sg[i], max_dist)]
        n_holes += len(holes)
        if kp[i] < 0:
            continue
        marbles = marbles_all.coords[_explored(p, adj_p, lens_p, marbles_all, kp[i], tp[i] * lens_p[kp[i]], max_dist)]
        n_marbles += len(marbles)
        n_matched += len(match_points(holes, marbles, radius, method=matching)[0])
    prec = safe_ratio(n_matched, n_marbles, 0.0)
    rec = safe_ratio(n_matched, n_holes, 0.0)
    return {"topo_precision": prec, "topo_recall": rec, "topo_f1": f1(prec, rec)}
