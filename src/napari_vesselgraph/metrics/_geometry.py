"""Geometry helpers shared by the metrics: coordinates, sampling along edges, nearest points on
segments, one-to-one point matching, shortest paths.

Everything works on plain arrays: ``pts`` is an ``(N, D)`` float array and ``edges`` an ``(E, 2)``
int array (canonical: no self loops, no duplicates). scipy is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph


@dataclass
class Arrays:
    """A graph reduced to what the metrics need: coordinates (pixels or physical) and canonical edges."""

    pts: np.ndarray  # (N, D) float
    edges: np.ndarray  # (E, 2) int, i < j, no duplicates
    node_attrs: dict
    edge_attrs: dict

    @property
    def n_nodes(self) -> int:
        return int(self.pts.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def lengths(self) -> np.ndarray:
        if not self.n_edges:
            return np.zeros(0)
        return np.linalg.norm(self.pts[self.edges[:, 1]] - self.pts[self.edges[:, 0]], axis=1)


def prepare(pred: VesselGraph, gt: VesselGraph, physical: bool = False) -> tuple[Arrays, Arrays, int]:
    """Check a (prediction, ground truth) pair and return their arrays and the common dimension."""
    for name, g in (("prediction", pred), ("ground truth", gt)):
        if not isinstance(g, VesselGraph):
            raise VesselGraphError(f"{name} must be a VesselGraph, got {type(g).__name__}")
    if pred.n_nodes and gt.n_nodes and pred.ndim != gt.ndim:
        raise VesselGraphError(f"prediction is {pred.ndim}D but ground truth is {gt.ndim}D")
    ndim = gt.ndim if gt.n_nodes else pred.ndim
    return to_arrays(pred, physical, ndim), to_arrays(gt, physical, ndim), ndim


def to_arrays(g: VesselGraph, physical: bool = False, ndim: int | None = None) -> Arrays:
    c = g.canonical()
    pts = c.physical_nodes() if physical else np.asarray(c.nodes, dtype=float)
    if ndim is not None and pts.shape[0] == 0:
        pts = np.zeros((0, ndim))
    if not np.all(np.isfinite(pts)):
        raise VesselGraphError("graph has non-finite node coordinates")
    return Arrays(pts, np.asarray(c.edges, dtype=np.int64).reshape(-1, 2), c.node_attrs, c.edge_attrs)


def safe_ratio(num: float, den: float, both_empty: float = 1.0) -> float:
    """``num / den``; when ``den`` is 0: ``both_empty`` if ``num`` is 0 too (caller decides), else 0."""
    if den > 0:
        return float(num) / float(den)
    return float(both_empty)


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if (p + r) > 0 else 0.0


# --------------------------------------------------------------------------- sampling along edges
@dataclass
class Samples:
    coords: np.ndarray  # (M, D)
    edge: np.ndarray  # (M,) index of the edge each sample lies on
    s: np.ndarray  # (M,) arc position along that edge, measured from edges[k, 0]
    weight: float  # length represented by each sample (total / M)
    total: float  # total edge length


def sample_along_edges(a: Arrays, n: int | None = None, spacing: float | None = None) -> Samples:
    """Evenly spaced points along all edges, by arc length over the concatenated edges.

    Exactly ``n`` points, or ``ceil(total / spacing)`` points (so the real spacing is at most
    ``spacing``); point ``k`` sits at arc position ``(k + 0.5) * total / M``. Sampling by global arc
    length makes the samples independent of how many nodes subdivide a curve.
    """
    d = a.pts.shape[1]
    lens = a.lengths()
    total = float(lens.sum())
    if total <= 0:
        return Samples(np.zeros((0, d)), np.zeros(0, np.int64), np.zeros(0), 0.0, 0.0)
    if n is None:
        if spacing is None or spacing <= 0:
            raise VesselGraphError("sampling needs a positive spacing or number of points")
        n = int(np.ceil(total / spacing))
    n = max(int(n), 1)
    cum = np.concatenate([[0.0], np.cumsum(lens)])
    pos = (np.arange(n) + 0.5) * (total / n)
    k = np.clip(np.searchsorted(cum, pos, side="right") - 1, 0, len(lens) - 1)
    s = np.clip(pos - cum[k], 0.0, lens[k])
    t = np.divide(s, lens[k], out=np.zeros_like(s), where=lens[k] > 0)
    p0 = a.pts[a.edges[k, 0]]
    p1 = a.pts[a.edges[k, 1]]
    coords = p0 + t[:, None] * (p1 - p0)
    return Samples(coords, k.astype(np.int64), s, total / n, total)


# ------------------------------------------------------------------ nearest point on segments
def _edge_samples(a: Arrays, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along every edge, endpoints included, no farther than ``h`` apart; and their edge index."""
    lens = a.lengths()
    per = np.maximum(np.ceil(lens / h).astype(np.int64) + 1, 2)
    seg = np.repeat(np.arange(a.n_edges), per)
    start = np.repeat(np.cumsum(per) - per, per)
    local = np.arange(int(per.sum())) - start
    ts = local / (per[seg] - 1)
    p0 = a.pts[a.edges[seg, 0]]
    p1 = a.pts[a.edges[seg, 1]]
    return p0 + ts[:, None] * (p1 - p0), seg


def _sample_step(a: Arrays, max_dist: float) -> float:
    return max(float(max_dist), float(a.lengths().sum()) / 200_000.0, 1e-9)


def nearest_on_segments(q: np.ndarray, a: Arrays, max_dist: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query point, the nearest point on the edges of ``a`` no farther than ``max_dist``.

    Returns ``(dist, edge, t)``: distance (``inf`` when no edge is that close), edge index (-1) and
    the position ``t`` in [0, 1] of the nearest point along the edge. Exact point-to-segment
    distances; candidate edges come from a k-d tree over points sampled along the edges.
    """
    from scipy.spatial import cKDTree

    m = q.shape[0]
    dist = np.full(m, np.inf)
    edge = np.full(m, -1, dtype=np.int64)
    tt = np.zeros(m)
    if m == 0 or a.n_edges == 0 or max_dist < 0:
        return dist, edge, tt
    # every point of an edge lies within h/2 of one of its samples
    h = _sample_step(a, max_dist)
    samp, seg = _edge_samples(a, h)
    reach = float(max_dist) + h / 2 + 1e-9 * max(1.0, h)
    pairs = cKDTree(q).sparse_distance_matrix(cKDTree(samp), reach, output_type="ndarray")
    if len(pairs) == 0:
        return dist, edge, tt
    qi = pairs["i"].astype(np.int64)
    ek = seg[pairs["j"]]
    key = np.unique(qi * a.n_edges + ek)
    qi, ek = key // a.n_edges, key % a.n_edges
    d_, t_ = point_segment_distance(q[qi], a.pts[a.edges[ek, 0]], a.pts[a.edges[ek, 1]])
    ok = d_ <= max_dist
    qi, ek, d_, t_ = qi[ok], ek[ok], d_[ok], t_[ok]
    if len(qi) == 0:
        return dist, edge, tt
    order = np.lexsort((ek, d_, qi))
    qi, ek, d_, t_ = qi[order], ek[order], d_[order], t_[order]
    first = np.ones(len(qi), bool)
    first[1:] = qi[1:] != qi[:-1]
    dist[qi[first]] = d_[first]
    edge[qi[first]] = ek[first]
    tt[qi[first]] = t_[first]
    return dist, edge, tt


def within_distance(q: np.ndarray, a: Arrays, tol: float) -> np.ndarray:
    """Mask of the query points whose exact distance to the edges of ``a`` is at most ``tol``.

    Cheap for most points: the nearest sample along the edges settles it unless it lies in a thin
    band just beyond ``tol``, where the exact point-to-segment distance is computed.
    """
    from scipy.spatial import cKDTree

    out = np.zeros(len(q), bool)
    if len(q) == 0 or a.n_edges == 0 or tol < 0:
        return out
    h = max(float(tol) / 2, float(a.lengths().sum()) / 200_000.0, 1e-9)
    samp, _ = _edge_samples(a, h)
    band = float(tol) + h / 2 + 1e-9 * max(1.0, h)
    d, _ = cKDTree(samp).query(q, k=1, distance_upper_bound=band)
    out = d <= tol
    unsure = np.flatnonzero(~out & np.isfinite(d))
    if len(unsure):
        de, _, _ = nearest_on_segments(q[unsure], a, tol)
        out[unsure] = de <= tol
    return out


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise distance from points ``p`` to segments ``a``-``b`` and the nearest position ``t``."""
    ab = b - a
    den = np.einsum("ij,ij->i", ab, ab)
    t = np.divide(np.einsum("ij,ij->i", p - a, ab), den, out=np.zeros(len(p)), where=den > 0)
    t = np.clip(t, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1), t


# ------------------------------------------------------------------------ one-to-one matching
def candidate_pairs(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``(i, j, distance)`` with ``|a[i] - b[j]| <= radius``."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), float(radius), output_type="ndarray")
    i = pairs["i"].astype(np.int64)
    j = pairs["j"].astype(np.int64)
    v = pairs["v"].astype(float)
    keep = v <= radius
    return i[keep], j[keep], v[keep]


def match_points(
    a: np.ndarray, b: np.ndarray, radius: float, method: str = "optimal"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of point sets ``a`` and ``b``; pairs farther than ``radius`` are not allowed.

    ``method="optimal"``: among the matchings with the largest number of pairs, the one with the
    smallest total distance (Hungarian algorithm on each connected component of the "within
    radius" bipartite graph). ``method="greedy"``: pairs are taken in order of increasing distance
    while both points are free (what TOPO's marble/hole matching does; much cheaper on long chains
    of points, but it can leave up to half of the possible pairs unmatched). ``method="maximum"``:
    a matching with the largest number of pairs, distances otherwise ignored (Hopcroft-Karp; fast,
    enough when only the count matters, as in TOPO). Returns ``(ia, ib, dist)`` sorted by ``ia``.
    """
    i, j, v = candidate_pairs(a, b, radius)
    if len(i) == 0:
        return i, j, v
    if method == "greedy":
        ia, ib = _greedy(i, j, v, len(a), len(b))
    elif method == "maximum":
        ia, ib = _maximum(i, j, len(a), len(b))
    elif method == "optimal":
        ia, ib = _optimal(i, j, v, len(a), len(b), float(radius))
    else:
        raise VesselGraphError(f"unknown matching method {method!r}")
    d = np.linalg.norm(a[ia] - b[ib], axis=1)
    order = np.argsort(ia, kind="stable")
    return ia[order], ib[order], d[order]


def _optimal(i, j, v, na: int, nb: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i)), (i, na + j)), shape=(na + nb, na + nb))
    _, label = connected_components(graph, directed=False)
    comp = label[i]
    counts = np.bincount(comp, minlength=label.max() + 1)
    single = counts[comp] == 1  # a component with a single candidate pair is matched as it is
    out_a, out_b = [i[single]], [j[single]]
    multi = np.flatnonzero(~single)
    if len(multi):
        mi, mj, mv, mc = i[multi], j[multi], v[multi], comp[multi]
        order = np.argsort(mc, kind="stable")
        mi, mj, mv, mc = mi[order], mj[order], mv[order], mc[order]
        bounds = np.flatnonzero(np.diff(mc)) + 1
        for ci, cj, cv in zip(np.split(mi, bounds), np.split(mj, bounds), np.split(mv, bounds)):
            ua, li = np.unique(ci, return_inverse=True)
            ub, lj = np.unique(cj, return_inverse=True)
            # a forbidden pair costs more than any feasible total distance: the solver maximises the
            # number of allowed pairs first, then minimises their total distance
            big = (min(len(ua), len(ub)) + 1) * (radius + 1.0)
            if len(ua) * len(ub) <= 16_000_000:
                cost = np.full((len(ua), len(ub)), big)
                cost[li, lj] = cv
                r, c = linear_sum_assignment(cost)
                ok = cost[r, c] < big
                r, c = r[ok], c[ok]
            else:
                r, c = _sparse_assignment(li, lj, cv, len(ua), len(ub), big)
            out_a.append(ua[r])
            out_b.append(ub[c])
    return np.concatenate(out_a), np.concatenate(out_b)


def _maximum(i, j, na: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    m = csr_matrix((np.ones(len(i)), (i, j)), shape=(na, nb))
    col = maximum_bipartite_matching(m, perm_type="column")  # column matched to each row, or -1
    ia = np.flatnonzero(col >= 0)
    return ia.astype(np.int64), col[ia].astype(np.int64)


def _sparse_assignment(li, lj, v, na: int, nb: int, big: float) -> tuple[np.ndarray, np.ndarray]:
    """Same problem as the dense solve, for components too large for a dense cost matrix.

    Every point gets a private "unmatched" partner costing ``big``; dummy-dummy links mirror the
    real pairs so that a full matching always exists (LAPJVsp needs one).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    k = len(li)
    off = 1.0  # weights must be non-zero; a constant on every entry does not change the optimum
    rows = np.concatenate([li, np.arange(na), na + np.arange(nb), na + lj])
    cols = np.concatenate([lj, nb + np.arange(na), np.arange(nb), nb + li])
    vals = np.concatenate([v + off, np.full(na, big + off), np.full(nb, big + off), np.full(k, off)])
    r, c = min_weight_full_bipartite_matching(csr_matrix((vals, (rows, cols)), shape=(na + nb, na + nb)))
    ok = (r < na) & (c < nb)
    return r[ok], c[ok]


def _greedy(i, j, v, na: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching in the total order (distance, i, j), computed by rounds of mutual nearest
    neighbours (the smallest remaining pair is always mutual, so every round makes progress and the
    result equals the sequential greedy one)."""
    order = np.lexsort((j, i, v))
    i, j = i[order], j[order]
    free_a = np.ones(na, bool)
    free_b = np.ones(nb, bool)
    out_a, out_b = [], []
    best_b = np.full(na, -1, dtype=np.int64)
    best_a = np.full(nb, -1, dtype=np.int64)
    for _ in range(64):
        alive = free_a[i] & free_b[j]
        if not alive.any():
            break
        i, j = i[alive], j[alive]
        ua, fa = np.unique(i, return_index=True)
        best_b[ua] = j[fa]
        ub, fb = np.unique(j, return_index=True)
        best_a[ub] = i[fb]
        mutual = best_a[best_b[ua]] == ua
        ma, mb = ua[mutual], best_b[ua[mutual]]
        free_a[ma] = False
        free_b[mb] = False
        out_a.append(ma)
        out_b.append(mb)
    else:  # long monotone chains: finish sequentially
        for x, y in zip(i.tolist(), j.tolist()):
            if free_a[x] and free_b[y]:
                free_a[x] = free_b[y] = False
                out_a.append(np.array([x]))
                out_b.append(np.array([y]))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)


# --------------------------------------------------------------------------- shortest paths
def adjacency(a: Arrays):
    """Symmetric sparse matrix of edge lengths (zero-length edges get a tiny positive weight)."""
    from scipy.sparse import csr_matrix

    n = a.n_nodes
    w = np.maximum(a.lengths(), 1e-12)
    e = a.edges
    return csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))),
        shape=(n, n),
    )


def dijkstra(adj, sources, limit: float = np.inf) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra as _dijkstra

    sources = np.asarray(sources, dtype=np.int64)
    if len(sources) == 0:
        return np.zeros((0, adj.shape[0]))
    return np.atleast_2d(_dijkstra(adj, directed=False, indices=sources, limit=limit))


def subdivide(a: Arrays, max_len: float) -> Arrays:
    """Split every edge longer than ``max_len`` into equal pieces by inserting nodes (attributes dropped)."""
    if a.n_edges == 0 or not max_len or max_len <= 0:
        return Arrays(a.pts, a.edges, {}, {})
    lens = a.lengths()
    pieces = np.maximum(np.ceil(lens / max_len).astype(np.int64), 1)
    n0 = a.n_nodes
    extra = pieces - 1
    n_new = int(extra.sum())
    k = np.repeat(np.arange(a.n_edges), extra)
    local = np.arange(n_new) - np.repeat(np.cumsum(extra) - extra, extra) + 1  # 1..pieces-1
    t = local / pieces[k]
    p0 = a.pts[a.edges[k, 0]]
    p1 = a.pts[a.edges[k, 1]]
    new_pts = p0 + t[:, None] * (p1 - p0)
    new_id = n0 + np.arange(n_new)
    # chain of node ids along each edge: start, inserted..., end
    chain_len = pieces + 1
    chain = np.empty(int(chain_len.sum()), dtype=np.int64)
    starts = np.cumsum(chain_len) - chain_len
    chain[starts] = a.edges[:, 0]
    chain[starts + pieces] = a.edges[:, 1]
    inner = np.ones(len(chain), bool)
    inner[starts] = False
    inner[starts + pieces] = False
    chain[inner] = new_id
    last = np.zeros(len(chain), bool)
    last[starts + pieces] = True
    src = np.flatnonzero(~last)
    edges = np.stack([chain[src], chain[src + 1]], axis=1)
    return Arrays(np.concatenate([a.pts, new_pts]), edges, {}, {})


def components(n: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return 0, np.zeros(0, np.int64)
    m = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    k, lab = connected_components(m, directed=False)
    return int(k), lab
