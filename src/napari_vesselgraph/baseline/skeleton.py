"""Skeleton -> graph: pixel graph, junction clusters, spur pruning and polyline simplification.

The pixel graph and its paths come from skan (``skan.Skeleton``); the clean-up and simplification on
top of them are this project's. The steps:

1. **Pixel graph and paths (skan).** ``skan.csr.pixel_graph`` links skeleton pixels to their 8- (2D) /
   26- (3D) neighbours. A link that skips a corner (a diagonal step whose "corner" pixel is also on the
   skeleton) is dropped, so staircases do not form little triangles: the graph keeps the same
   connectivity. ``skan.csr.PathGraph`` splits it into paths between junction pixels (three or more
   links) and end pixels, an isolated closed loop being one path from a pixel back to itself.
2. **Segments.** Touching junction pixels form one junction cluster, which becomes one node at the
   cluster's centroid; end pixels are nodes. Each skan path becomes a *segment* (its ordered interior
   pixels between two nodes); a path that is only a link inside one cluster is dropped.
3. **Clean-up.** Junction nodes joined by a segment of at most ``merge_length`` px are merged (thick
   junctions, 2x2 pixel blocks); loops shorter than ``min_loop_length`` are removed; spurs (segments
   from an end point to a junction) shorter than ``prune_length`` px plus the vessel radius at their
   junction are pruned, shortest first, never more than leaves the junction with two segments; nodes
   left with two segments are dissolved into one segment; repeated until nothing changes.
4. **Simplification.** Every segment's path (lightly smoothed to take the pixel staircase out) is
   replaced by a polyline: Douglas-Peucker with ``simplify_tol`` px, then pieces longer than
   ``max_edge_length`` px of path are cut into equal lengths (as the synthetic ground truth is made),
   so edges are at most ``max_edge_length`` px long and the path stays within ``simplify_tol`` px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


# --------------------------------------------------------------------------- segment graph
@dataclass
class SegmentGraph:
    """Nodes (positions in pixels) joined by segments that carry their interior pixel path."""

    pos: list  # node positions (D,) float arrays
    junction: list  # bool per node: made from a junction cluster
    seg_a: list = field(default_factory=list)
    seg_b: list = field(default_factory=list)
    seg_path: list = field(default_factory=list)  # (m, D) float interior points, ordered a -> b
    seg_inner: list = field(default_factory=list)  # path length between the first and last interior point
    alive: list = field(default_factory=list)

    @property
    def ndim(self) -> int:
        return len(self.pos[0]) if self.pos else 2

    def add_segment(self, a: int, b: int, interior: np.ndarray) -> int:
        self.seg_a.append(a)
        self.seg_b.append(b)
        self.seg_path.append(interior)
        inner = float(np.sqrt((np.diff(interior, axis=0) ** 2).sum(axis=1)).sum()) if len(interior) > 1 else 0.0
        self.seg_inner.append(inner)
        self.alive.append(True)
        return len(self.seg_a) - 1

    def full_path(self, s: int) -> np.ndarray:
        a, b = self.seg_a[s], self.seg_b[s]
        return np.vstack([self.pos[a][None], self.seg_path[s], self.pos[b][None]])

    def length(self, s: int) -> float:
        """Path length from node a through the interior points to node b."""
        pa, pb, p = self.pos[self.seg_a[s]], self.pos[self.seg_b[s]], self.seg_path[s]
        if len(p) == 0:
            return math.dist(pa, pb)
        return self.seg_inner[s] + math.dist(pa, p[0]) + math.dist(p[-1], pb)

    def live(self) -> list[int]:
        return [s for s, ok in enumerate(self.alive) if ok]

    def incidence(self) -> list[list[int]]:
        inc: list[list[int]] = [[] for _ in self.pos]
        for s in self.live():
            inc[self.seg_a[s]].append(s)
            inc[self.seg_b[s]].append(s)  # a self loop appears twice
        return inc


def _skan_paths(skel: np.ndarray):
    """skan's pixel graph of ``skel`` without corner-cutting links, and skan's paths along it.

    Returns ``(coords (P, D), degree (P,), adjacency (P, P) csr, paths)``; ``paths`` is skan's
    path-by-pixel sparse matrix (row ``i``: the pixels of path ``i`` in order, end pixels included).
    """
    from scipy import sparse
    from skan.csr import PathGraph, pixel_graph

    d = skel.ndim
    adj, flat = pixel_graph(skel, mask=skel, connectivity=d)
    coords = np.stack(np.unravel_index(flat, skel.shape), axis=1).astype(np.int64)
    # each link once; a diagonal link whose "sub-step" pixel (its offset with some components zeroed) is on
    # the skeleton is dropped: the two pixels are joined by shorter steps already, and keeping it would make
    # every corner of a pixel staircase a junction with a little triangle
    up = sparse.triu(adj, k=1).tocoo()
    i, j = up.row, up.col
    off = coords[j] - coords[i]
    nz = off != 0
    redundant = np.zeros(len(i), dtype=bool)
    for bits in range(1, 2**d - 1):
        m = np.array([(bits >> k) & 1 for k in range(d)], dtype=bool)
        part = nz & m
        cand = np.flatnonzero(part.any(axis=1) & (part != nz).any(axis=1) & ~redundant)
        if len(cand):
            q = coords[i[cand]] + off[cand] * m  # inside the box of the two linked pixels: in the image
            redundant[cand] = skel[tuple(q.T)]
    keep = ~redundant
    n = len(coords)
    w = up.data[keep]
    a, b = i[keep], j[keep]
    adj = sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    pg = PathGraph.from_graph(adj=adj, node_coordinates=coords)
    return coords, np.diff(adj.indptr), adj, pg.paths


def skeleton_segments(skel: np.ndarray) -> tuple[SegmentGraph, np.ndarray]:
    """The junction clusters, end points and segments of a binary skeleton (2D or 3D), on skan's paths.

    The pixel graph and its paths come from skan (see :func:`_skan_paths`). On top of them: junction
    pixels (three or more links) that touch form one junction *cluster*, one node at the pixels'
    centroid; end pixels are nodes; every path becomes a segment between the nodes of its two end pixels
    carrying its interior pixels, except a direct link between two pixels of one cluster; an isolated
    closed loop gets one node where skan's path starts and ends. Returns ``(segment_graph, coords)``,
    ``coords`` the skeleton pixels (P, D).
    """
    from scipy.sparse.csgraph import connected_components

    skel = np.asarray(skel, dtype=bool)
    d = skel.ndim
    g = SegmentGraph(pos=[], junction=[])
    if not skel.any():
        return g, np.zeros((0, d), dtype=np.int64)
    coords, deg, adj, paths = _skan_paths(skel)
    cf = coords.astype(float)
    n = len(coords)
    node_of = np.full(n, -1, dtype=np.int64)
    jidx = np.flatnonzero(deg >= 3)
    if len(jidx):
        k, lab = connected_components(adj[jidx][:, jidx], directed=False)
        sums = np.zeros((k, d))
        np.add.at(sums, lab, cf[jidx])
        cnt = np.bincount(lab, minlength=k)[:, None]
        g.pos.extend(sums / cnt)
        g.junction.extend([True] * k)
        node_of[jidx] = lab
    ends = np.flatnonzero(deg == 1)
    node_of[ends] = np.arange(len(g.pos), len(g.pos) + len(ends))
    g.pos.extend(cf[ends])
    g.junction.extend([False] * len(ends))
    indptr = paths.indptr.tolist()
    indices = paths.indices
    for p in range(paths.shape[0]):
        pix = indices[indptr[p] : indptr[p + 1]]
        na, nb = int(node_of[pix[0]]), int(node_of[pix[-1]])
        if na < 0:  # an isolated closed loop: one node where skan's path starts and ends
            na = nb = len(g.pos)
            node_of[pix[0]] = na
            g.pos.append(cf[pix[0]])
            g.junction.append(False)
        if na == nb and len(pix) <= 2:
            continue  # a link inside a junction cluster
        g.add_segment(na, nb, cf[pix[1:-1]])
    return g, coords


# --------------------------------------------------------------------------- clean-up
def merge_close_junctions(g: SegmentGraph, merge_length: float) -> None:
    """Contract segments of at most ``merge_length`` between two junction nodes."""
    parent = list(range(len(g.pos)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    changed = False
    for s in g.live():
        a, b = g.seg_a[s], g.seg_b[s]
        if a != b and g.junction[a] and g.junction[b] and g.length(s) <= merge_length:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[rb] = ra
                changed = True
            g.alive[s] = False
    if not changed:
        return
    groups: dict[int, list[int]] = {}
    for i in range(len(g.pos)):
        groups.setdefault(find(i), []).append(i)
    for r, members in groups.items():
        if len(members) > 1:
            g.pos[r] = np.mean([g.pos[m] for m in members], axis=0)
    for s in range(len(g.seg_a)):
        g.seg_a[s] = find(g.seg_a[s])
        g.seg_b[s] = find(g.seg_b[s])


def _dissolve_degree_two(g: SegmentGraph) -> None:
    """Join the two segments at every node that has exactly two (distinct) segments."""
    inc = g.incidence()
    for v in range(len(g.pos)):
        segs = inc[v]
        if len(segs) != 2 or segs[0] == segs[1]:
            continue
        s1, s2 = segs
        # orient s1 to end at v, s2 to start at v
        p1 = g.seg_path[s1]
        a1, b1 = g.seg_a[s1], g.seg_b[s1]
        if b1 != v:
            a1, b1, p1 = b1, a1, p1[::-1]
        p2 = g.seg_path[s2]
        a2, b2 = g.seg_a[s2], g.seg_b[s2]
        if a2 != v:
            a2, b2, p2 = b2, a2, p2[::-1]
        new = g.add_segment(a1, b2, np.vstack([p1, g.pos[v][None], p2]))
        g.alive[s1] = g.alive[s2] = False
        inc[v] = []
        for end in (a1, b2):
            inc[end] = [new if s in (s1, s2) else s for s in inc[end]]
        # a node now only on one closed loop: keep it (it carries the loop)


def prune(g: SegmentGraph, prune_length: float, radius_at, min_loop_length: float, max_rounds: int = 20) -> None:
    """Remove short loops, short spurs and short isolated pieces; dissolve degree-2 nodes."""
    for s in g.live():
        if g.seg_a[s] == g.seg_b[s] and g.length(s) < min_loop_length:
            g.alive[s] = False
    _dissolve_degree_two(g)
    for _ in range(max_rounds):
        inc = g.incidence()
        deg = [len(x) for x in inc]
        cands = []
        for s in g.live():
            a, b = g.seg_a[s], g.seg_b[s]
            if a == b:
                continue
            if deg[a] == 1 and deg[b] == 1:
                if g.length(s) < prune_length:
                    cands.append((g.length(s), s, -1))
                continue
            if deg[a] == 1 and deg[b] >= 3:
                j = b
            elif deg[b] == 1 and deg[a] >= 3:
                j = a
            else:
                continue
            ln = g.length(s)
            if ln < prune_length + radius_at(g.pos[j]):
                cands.append((ln, s, j))
        if not cands:
            break
        cands.sort()
        for _, s, j in cands:
            if j >= 0:
                if deg[j] < 3:
                    continue
                deg[j] -= 1
            g.alive[s] = False
        for s in g.live():
            if g.seg_a[s] == g.seg_b[s] and g.length(s) < min_loop_length:
                g.alive[s] = False
        _dissolve_degree_two(g)


# --------------------------------------------------------------------------- simplification
def smooth_path(p: np.ndarray, passes: int = 2) -> np.ndarray:
    """[1, 2, 1]/4 smoothing of the interior points of a polyline (end points kept)."""
    if len(p) < 3:
        return p
    q = p.copy()
    for _ in range(passes):
        q[1:-1] = 0.25 * q[:-2] + 0.5 * q[1:-1] + 0.25 * q[2:]
    return q


def _seg_dist(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    den = float(ab @ ab)
    if den <= 0:
        return np.linalg.norm(pts - a, axis=1)
    t = np.clip((pts - a) @ ab / den, 0.0, 1.0)
    return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)


def simplify_path(p: np.ndarray, max_edge_length: float, tol: float, closed: bool = False) -> list[int]:
    """Indices of the path points kept as graph nodes (first and last always kept).

    Douglas-Peucker with tolerance ``tol``, then every piece whose path is longer than
    ``max_edge_length`` is cut into equal lengths of path -- the convention of the synthetic ground
    truth, so nodes are spread alike. A straight edge is never longer than the path it replaces, so
    edges are at most ``max_edge_length`` long and every path point is within ``tol`` of its edge.
    A closed path (first point == last point) is first cut in three.
    """
    n = len(p)
    if n <= 2:
        return list(range(n))
    step = np.linalg.norm(np.diff(p, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    keep = {0, n - 1}
    stack = [(0, n - 1)]
    if closed and n >= 4:
        thirds = [n // 3, (2 * n) // 3]
        keep.update(thirds)
        stack = [(0, thirds[0]), (thirds[0], thirds[1]), (thirds[1], n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        d = _seg_dist(p[i + 1 : j], p[i], p[j])
        k = int(d.argmax())
        if d[k] > tol:
            m = i + 1 + k
            keep.add(m)
            stack += [(i, m), (m, j)]
            continue
        length = arc[j] - arc[i]
        if length > max_edge_length:
            parts = int(np.ceil(length / max_edge_length))
            targets = arc[i] + length * np.arange(1, parts) / parts
            cuts = np.clip(np.searchsorted(arc, targets), i + 1, j - 1)
            bounds = [i, *sorted(set(cuts.tolist())), j]
            keep.update(bounds)
            # a piece's own chord differs from the long chord, and rounding to path points can leave a
            # piece a little too long: check every piece again
            stack += list(zip(bounds[:-1], bounds[1:]))
    return sorted(keep)


def _smooth_batched(P: np.ndarray, interior: np.ndarray, passes: int = 2) -> np.ndarray:
    """``smooth_path`` on many concatenated paths at once (``interior``: not a path's first/last point)."""
    idx = np.flatnonzero(interior)
    Q = P.copy()
    for _ in range(passes):
        Q[idx] = 0.25 * Q[idx - 1] + 0.5 * Q[idx] + 0.25 * Q[idx + 1]
    return Q


def to_node_edge_graph(g: SegmentGraph, max_edge_length: float, simplify_tol: float, smooth: bool = True):
    """Simplify every live segment; returns ``(nodes, edges, points, ranges)`` in pixels.

    ``points`` are all (smoothed) segment paths concatenated; edge ``k`` replaces
    ``points[ranges[k, 0]:ranges[k, 1] + 1]`` (for sampling attributes along it). Unused nodes are
    dropped; closed loops keep at least three nodes and two segments between the same pair of nodes
    at least one interior node, so no edge repeats. Segments whose whole path already fits one edge
    are recognised in one vectorised pass; only the others are simplified one by one.
    """
    d = g.ndim
    live = g.live()
    used = sorted({g.seg_a[s] for s in live} | {g.seg_b[s] for s in live})
    new_id = {v: i for i, v in enumerate(used)}
    nodes = [np.asarray(g.pos[v], dtype=float) for v in used]
    if not live:
        return np.zeros((0, d)), np.zeros((0, 2), dtype=np.int64), np.zeros((0, d)), np.zeros((0, 2), dtype=np.int64)
    parts = []
    for s in live:
        parts += [g.pos[g.seg_a[s]][None], g.seg_path[s], g.pos[g.seg_b[s]][None]]
    counts = np.array([len(g.seg_path[s]) + 2 for s in live])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ends = starts + counts - 1
    P = np.concatenate(parts).astype(float)
    interior = np.ones(len(P), dtype=bool)
    interior[starts] = False
    interior[ends] = False
    if smooth:
        P = _smooth_batched(P, interior)
    # one vectorised check: does the whole segment fit one edge?
    sid = np.repeat(np.arange(len(live)), counts)
    A, B = P[starts[sid]], P[ends[sid]]
    ab = B - A
    den = (ab * ab).sum(axis=1)
    t = np.clip(((P - A) * ab).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0, 1.0)
    dist = np.sqrt(((P - (A + t[:, None] * ab)) ** 2).sum(axis=1))
    maxdist = np.maximum.reduceat(dist, starts)
    steps = np.zeros(len(P))
    steps[1:] = np.sqrt((np.diff(P, axis=0) ** 2).sum(axis=1))
    steps[starts] = 0.0
    arc = np.add.reduceat(steps, starts)
    fits = (maxdist <= simplify_tol) & (arc <= max_edge_length)

    edges: list[tuple[int, int]] = []
    ranges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for k, s in enumerate(live):
        a, b = new_id[g.seg_a[s]], new_id[g.seg_b[s]]
        n = int(counts[k])
        o = int(starts[k])
        closed = a == b
        if fits[k] and not closed:
            keep = [0, n - 1]
        else:
            keep = simplify_path(P[o : o + n], max_edge_length, simplify_tol, closed=closed)
        if closed and len(keep) < 4:
            if n < 4:
                continue
            keep = sorted({0, n // 3, (2 * n) // 3, n - 1})
        if not closed and len(keep) == 2 and (min(a, b), max(a, b)) in seen and n >= 3:
            keep = [0, n // 2, n - 1]
        ids = []
        for t_, kk in enumerate(keep):
            if t_ == 0:
                ids.append(a)
            elif t_ == len(keep) - 1:
                ids.append(b)
            else:
                ids.append(len(nodes))
                nodes.append(P[o + kk].copy())
        for t_ in range(len(keep) - 1):
            u, v = ids[t_], ids[t_ + 1]
            if u == v:
                continue
            key = (min(u, v), max(u, v))
            if key in seen:
                continue
            seen.add(key)
            edges.append((u, v))
            ranges.append((o + keep[t_], o + keep[t_ + 1]))
    nodes_arr = np.array(nodes, dtype=float).reshape(-1, d)
    edges_arr = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return nodes_arr, edges_arr, P, np.array(ranges, dtype=np.int64).reshape(-1, 2)


def skeleton_to_graph(
    skel: np.ndarray,
    *,
    prune_length: float = 0.0,
    max_edge_length: float = 12.0,
    simplify_tol: float = 1.0,
    radius_at=None,
    merge_length: float = 2.5,
    min_loop_length: float = 10.0,
    smooth: bool = True,
):
    """Turn a binary skeleton (2D or 3D) into ``(nodes, edges, edge_paths, segment_graph)``.

    ``edge_paths[k]`` holds the (smoothed) skeleton path that edge ``k`` replaces. The building block
    of :func:`napari_vesselgraph.baseline.skeleton_graph`; usable on any skeleton.
    """
    g, _ = skeleton_segments(skel)
    if not g.pos:
        d = np.ndim(skel)
        return np.zeros((0, d)), np.zeros((0, 2), dtype=np.int64), [], g
    merge_close_junctions(g, merge_length)
    prune(g, prune_length, radius_at or (lambda p: 0.0), min_loop_length)
    nodes, edges, pts, ranges = to_node_edge_graph(g, max_edge_length, simplify_tol, smooth=smooth)
    paths = [pts[lo : hi + 1] for lo, hi in ranges]
    return nodes, edges, paths, g
