"""From dense centrelines to the ground-truth graph: crossings become shared nodes, the dense graph is
clipped to the image box, split into chains and simplified (see :mod:`napari_vesselgraph.synth.geometry`).
"""

from __future__ import annotations

import math

import numpy as np

from ..graph.core import VesselGraph


# --------------------------------------------------------------------------- crossings
def _insert_crossings(pts, rad, edges, seg_r, group):
    """Add a shared node wherever two segments of different groups intersect (2D)."""
    if len(edges) < 2:
        return pts, rad, edges, seg_r, group
    from scipy.spatial import cKDTree

    a, b = pts[edges[:, 0]], pts[edges[:, 1]]
    lens = np.linalg.norm(b - a, axis=1)
    pairs = cKDTree((a + b) / 2).query_pairs(r=float(lens.max()) + 1e-6, output_type="ndarray")
    if not len(pairs):
        return pts, rad, edges, seg_r, group
    i, j = pairs[:, 0], pairs[:, 1]
    ei, ej = edges[i], edges[j]
    keep = (group[i] != group[j]) & (ei[:, 0] != ej[:, 0]) & (ei[:, 0] != ej[:, 1]) & (ei[:, 1] != ej[:, 0])
    keep &= ei[:, 1] != ej[:, 1]
    i, j = i[keep], j[keep]
    d1, d2 = b[i] - a[i], b[j] - a[j]
    w = a[j] - a[i]
    den = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    t = (w[:, 0] * d2[:, 1] - w[:, 1] * d2[:, 0]) / den
    u = (w[:, 0] * d1[:, 1] - w[:, 1] * d1[:, 0]) / den
    ok &= (t >= 0) & (t < 1) & (u >= 0) & (u < 1)
    i, j, t, u = i[ok], j[ok], t[ok], u[ok]
    if not len(i):
        return pts, rad, edges, seg_r, group
    x = a[i] + t[:, None] * (b[i] - a[i])
    ri = seg_r[i, 0] + t * (seg_r[i, 1] - seg_r[i, 0])
    rj = seg_r[j, 0] + u * (seg_r[j, 1] - seg_r[j, 0])
    new_idx = len(pts) + np.arange(len(i))
    pts = np.concatenate([pts, x])
    rad = np.concatenate([rad, np.maximum(ri, rj)])
    splits: dict[int, list[tuple[float, int]]] = {}
    for s, tt, nid in zip(np.concatenate([i, j]), np.concatenate([t, u]), np.concatenate([new_idx, new_idx])):
        splits.setdefault(int(s), []).append((float(tt), int(nid)))
    drop = np.zeros(len(edges), bool)
    new_e, new_r, new_g = [], [], []
    for s, lst in splits.items():
        drop[s] = True
        lst.sort()
        chain = [int(edges[s, 0])] + [nid for _, nid in lst] + [int(edges[s, 1])]
        ts = [0.0] + [tt for tt, _ in lst] + [1.0]
        r0, r1 = seg_r[s]
        rr = [r0 + tt * (r1 - r0) for tt in ts]
        for k in range(len(chain) - 1):
            new_e.append((chain[k], chain[k + 1]))
            new_r.append((rr[k], rr[k + 1]))
            new_g.append(group[s])
    edges = np.concatenate([edges[~drop], np.array(new_e, np.int64).reshape(-1, 2)])
    seg_r = np.concatenate([seg_r[~drop], np.array(new_r, float).reshape(-1, 2)])
    group = np.concatenate([group[~drop], np.array(new_g, np.int64)])
    return pts, rad, edges, seg_r, group


# --------------------------------------------------------------------------- ground truth
def clip_dense(pts: np.ndarray, rad: np.ndarray, edges: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip a dense graph to the box ``[0, s - 1]``: a node is added where an edge leaves the box."""
    hi = np.asarray(shape, float) - 1
    inside = np.all((pts >= 0) & (pts <= hi), 1)
    if not len(edges):
        return pts[inside], rad[inside], np.zeros((0, 2), np.int64)
    ia, ib = inside[edges[:, 0]], inside[edges[:, 1]]
    both = edges[ia & ib]
    cross = edges[ia ^ ib]
    # orient crossing edges inside -> outside
    flip = ~inside[cross[:, 0]]
    cross = np.where(flip[:, None], cross[:, ::-1], cross)
    a, b = pts[cross[:, 0]], pts[cross[:, 1]]
    d = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = np.where(d > 0, (hi - a) / d, np.inf)
        t_lo = np.where(d < 0, (0 - a) / d, np.inf)
    t = np.clip(np.minimum(t_hi, t_lo).min(1), 0, 1)
    x = np.clip(a + t[:, None] * d, 0, hi)
    r = rad[cross[:, 0]] + t * (rad[cross[:, 1]] - rad[cross[:, 0]])
    real = t > 1e-6  # an inside point exactly on the border needs no new node
    n = len(pts)
    new_idx = n + np.arange(int(real.sum()))
    all_pts = np.concatenate([pts, x[real]])
    all_rad = np.concatenate([rad, r[real]])
    keep = np.concatenate([inside, np.ones(int(real.sum()), bool)])
    new_edges = np.concatenate([both, np.stack([cross[real, 0], new_idx], 1)])
    remap = np.full(len(all_pts), -1, np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    return all_pts[keep], all_rad[keep], remap[new_edges].reshape(-1, 2)


def _point_segment_distance2(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances of points ``p`` to the segment ``a``-``b``."""
    ab = b - a
    ap = p - a
    L2 = float((ab * ab).sum())
    if L2 < 1e-12:
        return (ap * ap).sum(1)
    t = (ap @ ab) / L2
    np.clip(t, 0.0, 1.0, out=t)
    diff = ap - t[:, None] * ab
    return (diff * diff).sum(1)


def simplify_chain(
    coords: np.ndarray, tol: float = 1.0, max_edge: float = 12.0, closed: bool | None = None
) -> list[int]:
    """Indices kept by Douglas-Peucker (``tol`` px) with at most ``max_edge`` px of centreline per edge."""
    m = len(coords)
    if m <= 2:
        return list(range(m))
    step = np.diff(coords, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.sqrt((step * step).sum(1)))])
    if closed is None:
        closed = bool(np.all(coords[0] == coords[-1]))
    if not closed and s[-1] <= max_edge:
        # the common short chain: one distance computation decides
        if _point_segment_distance2(coords[1:-1], coords[0], coords[-1]).max() <= tol * tol:
            return [0, m - 1]
    tol2 = tol * tol
    keep = [0, m - 1]
    stack = [(0, m - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        length = s[j] - s[i]
        if closed and i == 0 and j == m - 1:
            splits = [i + (j - i) // 3, i + 2 * (j - i) // 3]
        else:
            dist = _point_segment_distance2(coords[i + 1 : j], coords[i], coords[j])
            k = int(dist.argmax())
            if dist[k] > tol2:
                splits = [i + 1 + k]
            elif length > max_edge:
                parts = int(math.ceil(length / max_edge))
                targets = s[i] + length * np.arange(1, parts) / parts
                splits = sorted(set(np.clip(np.searchsorted(s, targets), i + 1, j - 1).tolist()))
            else:
                continue
        bounds = [i, *splits, j]
        keep.extend(splits)
        for u, v in zip(bounds[:-1], bounds[1:]):
            stack.append((u, v))
    return sorted(set(keep))


def dense_to_graph(
    pts: np.ndarray, rad: np.ndarray, edges: np.ndarray, tol: float = 1.0, max_edge: float = 12.0,
    min_component: float = 3.0,
) -> VesselGraph:
    """Ground-truth graph of a (clipped) dense centreline graph."""
    n = len(pts)
    d = pts.shape[1] if pts.ndim == 2 else 2
    if not len(edges):
        return VesselGraph(np.zeros((0, d)), np.zeros((0, 2), np.int64), {"radius": np.zeros(0)})
    deg = np.bincount(edges.ravel(), minlength=n)
    # adjacency lists (CSR), as python lists for a fast walk
    both = np.concatenate([edges, edges[:, ::-1]])
    order = np.argsort(both[:, 0], kind="stable")
    nbr = both[order, 1].tolist()
    eid = np.concatenate([np.arange(len(edges)), np.arange(len(edges))])[order].tolist()
    start = np.concatenate([[0], np.cumsum(deg)]).tolist()
    used = [False] * len(edges)
    key = (deg != 2).tolist()
    chains: list[list[int]] = []

    def walk(v0: int, k: int) -> list[int]:
        used[eid[k]] = True
        chain = [v0]
        v = nbr[k]
        while True:
            chain.append(v)
            if key[v] or v == v0:
                return chain
            k = start[v]
            if used[eid[k]]:
                k += 1
                if used[eid[k]]:
                    return chain
            used[eid[k]] = True
            v = nbr[k]

    for v0 in np.flatnonzero((deg != 2) & (deg > 0)).tolist():
        for k in range(start[v0], start[v0 + 1]):
            if not used[eid[k]]:
                chains.append(walk(v0, k))
    # loops without any junction
    for e in range(len(edges)):
        if not used[e]:
            v0 = int(edges[e, 0])
            key[v0] = True
            k = start[v0] + (0 if eid[start[v0]] == e else 1)
            chains.append(walk(v0, k))

    node_idx, g_edges = _simplify_chains(pts, chains, tol, max_edge)
    g = VesselGraph(pts[node_idx], g_edges, {"radius": rad[node_idx].astype(float)})
    return _drop_small_components(g, min_component)


def _simplify_chains(pts: np.ndarray, chains: list[list[int]], tol: float, max_edge: float):
    """Vectorised simplification of many chains (lists of dense point indices).

    Each chain is first cut into ``ceil(length / max_edge)`` pieces of equal centreline length;
    pieces whose points stray more than ``tol`` from their chord are refined by Douglas-Peucker.
    Returns the dense indices of the graph nodes and the graph edges (node numbering).
    """
    if not chains:
        return np.zeros(0, np.int64), np.zeros((0, 2), np.int64)
    lens = np.array([len(c) for c in chains])
    idx = np.fromiter((v for c in chains for v in c), np.int64, int(lens.sum()))
    first = np.concatenate([[0], np.cumsum(lens)[:-1]])
    last = first + lens - 1
    P = pts[idx]
    step = np.sqrt((np.diff(P, axis=0) ** 2).sum(1))
    step[first[1:] - 1] = 0.0  # no length across chain boundaries
    s = np.concatenate([[0.0], np.cumsum(step)])
    L = s[last] - s[first]
    closed = idx[first] == idx[last]
    # cut points snap to the next dense point, so aim a point spacing below max_edge
    spacing = max_edge - float(step.max(initial=0.0))
    parts = np.maximum(np.ceil(L / max(spacing, max_edge / 2)).astype(np.int64), 1)
    parts[closed] = np.maximum(parts[closed], 3)
    # equal-length cut points
    rep = np.repeat(np.arange(len(chains)), parts - 1)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(parts - 1) - (parts - 1), parts - 1) + 1
    targets = s[first[rep]] + L[rep] * k / parts[rep]
    cuts = np.searchsorted(s, targets, side="left")
    cuts = np.clip(cuts, first[rep] + 1, last[rep] - 1)
    ok = last[rep] - first[rep] >= 2
    bounds = np.unique(np.concatenate([first, last, cuts[ok]]))
    # deviation of every point from the chord of its piece
    piece = np.searchsorted(bounds, np.arange(len(idx)), side="right") - 1
    piece = np.minimum(piece, len(bounds) - 2)
    a, b = P[bounds[piece]], P[bounds[piece + 1]]
    ab = b - a
    L2 = np.maximum((ab * ab).sum(1), 1e-12)
    t = np.clip(((P - a) * ab).sum(1) / L2, 0, 1)
    dev2 = ((P - a - t[:, None] * ab) ** 2).sum(1)
    bad_pieces = np.unique(piece[dev2 > tol * tol])
    extra = []
    for bp in bad_pieces.tolist():
        i, j = int(bounds[bp]), int(bounds[bp + 1])
        sel = simplify_chain(P[i : j + 1], tol, max_edge, closed=False)
        extra.extend(i + q for q in sel[1:-1])
    if extra:
        bounds = np.unique(np.concatenate([bounds, np.asarray(extra, np.int64)]))
    # edges between consecutive bounds of the same chain
    chain_of = np.searchsorted(first, bounds, side="right") - 1
    same = chain_of[:-1] == chain_of[1:]
    u_d, v_d = idx[bounds[:-1][same]], idx[bounds[1:][same]]
    # a chain that became one edge duplicating another one (two parallel chains): keep its middle point
    pairs = np.sort(np.stack([u_d, v_d], 1), 1)
    _, first_occ = np.unique(pairs, axis=0, return_index=True)
    dup = np.ones(len(pairs), bool)
    dup[first_occ] = False
    dup |= pairs[:, 0] == pairs[:, 1]
    if dup.any():
        pos_u = bounds[:-1][same]
        pos_v = bounds[1:][same]
        add_u, add_v = [u_d[~dup]], [v_d[~dup]]
        for e in np.flatnonzero(dup).tolist():
            i, j = int(pos_u[e]), int(pos_v[e])
            if j - i >= 2:
                m = idx[(i + j) // 2]
                if j - i >= 3 and pairs[e, 0] == pairs[e, 1]:
                    m2 = idx[i + 2 * (j - i) // 3]
                    m = idx[i + (j - i) // 3]
                    add_u.append(np.array([u_d[e], m, m2]))
                    add_v.append(np.array([m, m2, v_d[e]]))
                else:
                    add_u.append(np.array([u_d[e], m]))
                    add_v.append(np.array([m, v_d[e]]))
        u_d, v_d = np.concatenate(add_u), np.concatenate(add_v)
    node_idx, inv = np.unique(np.concatenate([u_d, v_d]), return_inverse=True)
    e = inv.reshape(2, -1).T
    e = np.sort(e[e[:, 0] != e[:, 1]], 1)
    e = np.unique(e, axis=0)
    return node_idx, e


def _drop_small_components(g: VesselGraph, min_len: float) -> VesselGraph:
    if not g.n_nodes:
        return g
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = g.n_nodes
    m = coo_matrix((np.ones(g.n_edges), (g.edges[:, 0], g.edges[:, 1])), shape=(n, n))
    _, lab = connected_components(m, directed=False)
    comp_len = np.bincount(lab[g.edges[:, 0]], weights=g.edge_lengths(physical=False), minlength=lab.max() + 1)
    keep = (comp_len[lab] >= min_len) & (g.degree() > 0)
    return g if keep.all() else g.subgraph(keep)
