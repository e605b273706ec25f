"""Stitching patch graphs into one graph.

The rule
--------
1. Each patch graph is shifted to image coordinates.
2. Each patch keeps only what lies in its *core* (see :mod:`.grid`; the cores of all windows
   partition space). Nodes in the core are kept as they are. Every edge is clipped to the core box:
   an edge with both ends in the core is kept; an edge that leaves the core keeps its part inside
   the core and ends at a new *cut node* placed where it crosses the core boundary (an edge passing
   through the core gets two). Nodes outside the core — the copies of a neighbour's nodes, and the
   nodes a patch model puts where vessels leave the patch — are dropped.
   Because both patches on either side of a boundary cut the same vessel at the same boundary, their
   cut nodes fall on (nearly) the same point.
3. Nodes of *different* patches closer than ``merge_radius`` are merged. Pairs come from a KD-tree
   and are accepted in this order: model nodes as mutual nearest neighbours (per pair of patches);
   cut nodes as mutual nearest neighbours when no model node is closer (the two sides of one cut
   edge); other cut nodes join the nearest model node of another patch; cut nodes still alone pair up
   as mutual nearest neighbours. A node thus merges with at most one node of each other patch (model
   nodes may absorb cut nodes), so two vessels that cross a core boundary a pixel apart are not fused
   through their copies in the neighbour. Pieces of edges that merely pass through a core corner
   (both ends cut, shorter than ``merge_radius``) are dropped first. Groups are the connected
   components of the accepted pairs. A merged node sits at the score-weighted mean of the model's
   nodes in its group (cut nodes count only when the group has no model node), its radius is the
   score-weighted mean, its confidence the maximum.
4. Edges are mapped to the merged nodes; self loops are dropped; duplicates keep the maximum
   confidence.
5. Cut nodes left with exactly two edges are spliced out (their two edges become one whose
   confidence is the smaller of the two), so a vessel crossing a patch border comes out as it would
   from one big patch. A cut node with one edge shorter than ``merge_radius`` is dropped (what is left
   when a model node and its copy across the boundary merged on one side of the cut). Other cut nodes
   with one edge (the neighbour saw nothing there, or the region ends) stay as end points with
   ``inserted=True``.

Thresholds are applied after stitching (:func:`.postprocess.apply_thresholds`, which splices again the cut nodes
whose other edges fell below the threshold), so a raw graph stitched from low-threshold candidates can
be re-thresholded without running the model again, and gives exactly what a prediction with those
thresholds gives.

Limits: with ``overlap=0`` neighbouring windows share no pixels, so the nodes a model puts on a patch
border lie inside a core; they stay in the graph as extra degree-2 nodes, and a vessel crossing the
border at a shallow angle can come out broken. Vessels closer than ``merge_radius`` to each other
where they cross a core boundary can be fused. Use the default overlap (0.25) or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..graph import VesselGraph

DEFAULT_MERGE_RADIUS = 3.0


def clip_segments(p0: np.ndarray, p1: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Liang–Barsky clipping of segments ``p0 -> p1`` (M, D) to the closed box ``[lo, hi]``.

    Returns ``(t0, t1)`` per segment: the part inside the box is ``p0 + t * (p1 - p0)`` for
    ``t0 <= t <= t1``; the segment misses the box where ``t0 > t1``. Bounds may be infinite.
    """
    p0 = np.asarray(p0, float)
    d = np.asarray(p1, float) - p0
    m = p0.shape[0]
    t0 = np.zeros(m)
    t1 = np.ones(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        for ax in range(p0.shape[1]):
            da, pa = d[:, ax], p0[:, ax]
            flat = da == 0
            outside = flat & ((pa < lo[ax]) | (pa > hi[ax]))
            ta = (lo[ax] - pa) / da
            tb = (hi[ax] - pa) / da
            tmin = np.where(flat, -np.inf, np.minimum(ta, tb))
            tmax = np.where(flat, np.inf, np.maximum(ta, tb))
            t0 = np.maximum(t0, tmin)
            t1 = np.minimum(t1, tmax)
            t1 = np.where(outside, -1.0, t1)
    return t0, t1


def _as_patch_arrays(res: dict, ndim: int):
    nodes = np.asarray(res.get("nodes", np.zeros((0, ndim))), dtype=float).reshape(-1, ndim)
    k = nodes.shape[0]
    score = res.get("node_score")
    score = np.ones(k) if score is None else np.asarray(score, dtype=float).reshape(k)
    radius = res.get("radius")
    radius = np.full(k, np.nan) if radius is None else np.asarray(radius, dtype=float).reshape(k)
    edges = np.asarray(res.get("edges", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    escore = res.get("edge_score")
    escore = np.ones(len(edges)) if escore is None else np.asarray(escore, dtype=float).reshape(len(edges))
    ok = (edges[:, 0] != edges[:, 1]) & (edges >= 0).all(axis=1) & (edges < k).all(axis=1)
    return nodes, score, radius, edges[ok], escore[ok]


def core_part(res: dict, start, lo, hi, ndim: int, min_piece: float = 0.0):
    """One patch's contribution: (pos, score, radius, inserted, edges, edge_score) in image coordinates.

    ``lo``/``hi``: the window's core (cut to the region); ``min_piece``: the merge radius (see below).

    Pieces of edges that only pass through the core (both ends cut) and are shorter than ``min_piece``
    are dropped: near a corner of the cores they would put two cut nodes next to each other, and the
    cut nodes of the patches on either side are within ``min_piece`` of each other anyway.
    """
    nodes, score, radius, edges, escore = _as_patch_arrays(res, ndim)
    nodes = nodes + np.asarray(start, float)
    in_core = np.all((nodes >= lo) & (nodes < hi), axis=1)
    n_in = int(in_core.sum())
    new_index = np.full(len(nodes), -1, np.int64)
    new_index[in_core] = np.arange(n_in)
    pos, sc, rad = [nodes[in_core]], [score[in_core]], [radius[in_core]]
    ins = [np.zeros(n_in, bool)]
    out_edges = np.zeros((0, 2), np.int64)
    out_escore = np.zeros(0)
    if len(edges):
        a, b = edges[:, 0], edges[:, 1]
        t0, t1 = clip_segments(nodes[a], nodes[b], lo, hi)
        ina, inb = in_core[a], in_core[b]
        # keep edges inside the core, and edges whose piece inside the core has a length
        keep = (ina & inb) | (t1 > t0)
        if min_piece > 0:
            seg = np.linalg.norm(nodes[b] - nodes[a], axis=1) * np.maximum(t1 - t0, 0.0)
            keep &= ina | inb | (seg >= min_piece)
        a, b, t0, t1, ina, inb, es = a[keep], b[keep], t0[keep], t1[keep], ina[keep], inb[keep], escore[keep]
        ends = np.stack([new_index[a], new_index[b]], axis=1)
        next_id = n_in
        for col, inside, t in ((0, ina, t0), (1, inb, t1)):
            cut = np.flatnonzero(~inside)
            if not len(cut):
                continue
            tt = t[cut][:, None]
            pa, pb = nodes[a[cut]], nodes[b[cut]]
            ra, rb = radius[a[cut]], radius[b[cut]]
            pos.append(pa + tt * (pb - pa))
            rad.append(ra + tt[:, 0] * (rb - ra))
            sc.append(es[cut])
            ins.append(np.ones(len(cut), bool))
            ends[cut, col] = next_id + np.arange(len(cut))
            next_id += len(cut)
        out_edges, out_escore = ends, es
    return (
        np.concatenate(pos).reshape(-1, ndim),
        np.concatenate(sc),
        np.concatenate(rad),
        np.concatenate(ins),
        np.asarray(out_edges, np.int64).reshape(-1, 2),
        np.asarray(out_escore, float),
    )


def stitch(
    results: Sequence[dict],
    starts: Sequence[Sequence[int]],
    core_lo: np.ndarray,
    core_hi: np.ndarray,
    merge_radius: float = DEFAULT_MERGE_RADIUS,
    ndim: int | None = None,
    scale=None,
    metadata: dict | None = None,
    region_box: tuple[np.ndarray, np.ndarray] | None = None,
) -> VesselGraph:
    """Stitch patch graphs (``predict_batch`` dicts in patch pixels) into one graph in image pixels.

    ``starts[i]`` is the image position of pixel 0 of patch ``i``; ``core_lo[i]``/``core_hi[i]`` its
    core box. ``region_box`` = ``(lo, hi)``: the graph is also cut at this box (cores are intersected
    with it), for windows that reach outside the region asked for. The result is the *raw* graph:
    node attributes ``confidence``, ``radius``, ``inserted`` (cut nodes, see the module doc) and edge
    attribute ``confidence``; no threshold is applied. The same as feeding a :class:`StreamingStitcher`
    all results (in any order).
    """
    if ndim is None:
        ndim = len(starts[0]) if len(starts) else 2
    st = StreamingStitcher(starts, core_lo, core_hi, merge_radius, ndim, scale, metadata, region_box)
    for i, res in enumerate(results):
        st.add(i, res)
    return st.result()


class StreamingStitcher:
    """Stitching for windows that arrive one at a time, in any order (tiles on a cluster, lazy images).

    ``add(i, result)`` takes the ``predict_batch`` dict of window ``i`` and keeps only its contribution:
    the nodes and edge pieces inside the window's core (step 2 of the module doc), as flat arrays; the
    window's result can then be dropped. ``add_part(i, part)`` takes a contribution already computed by
    :func:`core_part` (on a dask worker, say). ``result()`` merges everything (steps 3-5) and returns the
    raw graph, identical to :func:`stitch` on all results: contributions are put back in window order
    before merging, so the order of arrival does not matter.

    Memory: what is kept is the raw graph restricted to the cores, per node ``8 * D + 25`` bytes (position,
    score, radius, cut flag, window id) and per edge 32 bytes (two node indices, confidence, window id),
    plus a few hundred bytes per pending window until every ``consolidate_every`` windows the pending
    pieces are packed into one block. It grows with the number of candidates the model emits, never with
    the number of pixels; ``result()`` needs a few times that again while merging.
    """

    def __init__(
        self,
        starts: Sequence[Sequence[int]],
        core_lo: np.ndarray,
        core_hi: np.ndarray,
        merge_radius: float = DEFAULT_MERGE_RADIUS,
        ndim: int | None = None,
        scale=None,
        metadata: dict | None = None,
        region_box: tuple[np.ndarray, np.ndarray] | None = None,
        consolidate_every: int = 512,
    ):
        if ndim is None:
            ndim = len(starts[0]) if len(starts) else 2
        self.ndim = int(ndim)
        self.starts = np.asarray(starts, dtype=np.int64).reshape(-1, self.ndim)
        self.n_windows = len(self.starts)
        self.core_lo = np.asarray(core_lo, float).reshape(-1, self.ndim)
        self.core_hi = np.asarray(core_hi, float).reshape(-1, self.ndim)
        self.region_box = None
        if region_box is not None:
            rlo, rhi = (np.asarray(b, float).reshape(self.ndim) for b in region_box)
            self.region_box = (rlo, rhi)
            self.core_lo = np.maximum(self.core_lo, rlo)
            self.core_hi = np.minimum(self.core_hi, rhi)
        self.merge_radius = float(merge_radius)
        self.scale = scale
        self.metadata = dict(metadata or {})
        self.consolidate_every = max(1, int(consolidate_every))
        self._seen = np.zeros(self.n_windows, bool)
        self._pending: list[tuple[int, tuple]] = []
        self._blocks: list[dict[str, np.ndarray]] = []

    @classmethod
    def for_grid(cls, grid, merge_radius: float = DEFAULT_MERGE_RADIUS, region_box=None, **kw) -> StreamingStitcher:
        """A stitcher for the windows of a :class:`~napari_vesselgraph.inference.grid.WindowGrid`."""
        return cls(grid.starts, grid.core_lo, grid.core_hi, merge_radius, grid.ndim, region_box=region_box, **kw)

    # ------------------------------------------------------------ feeding
    def core_box(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The core of window ``i`` (cut to the region): what :func:`core_part` needs on a worker."""
        return self.core_lo[i], self.core_hi[i]

    def add(self, i: int, result: dict) -> None:
        """Add window ``i``'s ``predict_batch`` result (patch pixel coordinates)."""
        i = int(i)
        self._check_index(i)
        self.add_part(
            i, core_part(result, self.starts[i], self.core_lo[i], self.core_hi[i], self.ndim, self.merge_radius)
        )

    def add_part(self, i: int, part: tuple) -> None:
        """Add window ``i``'s contribution as returned by :func:`core_part`."""
        i = int(i)
        self._check_index(i)
        self._seen[i] = True
        if len(part[0]) or len(part[4]):
            self._pending.append((i, part))
        if len(self._pending) >= self.consolidate_every:
            self._consolidate()

    def add_empty(self, i: int) -> None:
        """Mark window ``i`` as done without any contribution (a skipped constant window)."""
        i = int(i)
        self._check_index(i)
        self._seen[i] = True

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.n_windows:
            raise IndexError(f"window {i} does not exist ({self.n_windows} windows)")
        if self._seen[i]:
            raise ValueError(f"window {i} was added twice")

    @property
    def n_done(self) -> int:
        return int(self._seen.sum())

    @property
    def complete(self) -> bool:
        return bool(self._seen.all())

    @property
    def nbytes(self) -> int:
        """Bytes held in the packed contributions (pending ones not counted)."""
        return int(sum(a.nbytes for b in self._blocks for a in b.values()))

    def _consolidate(self) -> None:
        if not self._pending:
            return
        d = self.ndim
        pos, sc, rad, ins, nwid, edges, escore, ewid = [], [], [], [], [], [], [], []
        offset = 0
        for i, (p, s, r, n, e, es) in self._pending:
            pos.append(np.asarray(p, float).reshape(-1, d))
            sc.append(np.asarray(s, float))
            rad.append(np.asarray(r, float))
            ins.append(np.asarray(n, bool))
            nwid.append(np.full(len(p), i, np.int64))
            edges.append(np.asarray(e, np.int64).reshape(-1, 2) + offset)
            escore.append(np.asarray(es, float))
            ewid.append(np.full(len(es), i, np.int64))
            offset += len(p)
        self._blocks.append(
            {
                "pos": np.concatenate(pos),
                "score": np.concatenate(sc),
                "radius": np.concatenate(rad),
                "inserted": np.concatenate(ins),
                "wid": np.concatenate(nwid),
                "edges": np.concatenate(edges),
                "edge_score": np.concatenate(escore),
                "edge_wid": np.concatenate(ewid),
            }
        )
        self._pending = []

    # ------------------------------------------------------------ the graph
    def _gather(self):
        """All contributions as flat arrays, nodes and edges in window order (as :func:`stitch` builds them)."""
        self._consolidate()
        d = self.ndim
        if not self._blocks:
            return None
        offsets = np.cumsum([0] + [len(b["pos"]) for b in self._blocks])
        pos = np.concatenate([b["pos"] for b in self._blocks]).reshape(-1, d)
        sc = np.concatenate([b["score"] for b in self._blocks])
        rad = np.concatenate([b["radius"] for b in self._blocks])
        ins = np.concatenate([b["inserted"] for b in self._blocks])
        wid = np.concatenate([b["wid"] for b in self._blocks])
        edges = np.concatenate([b["edges"] + o for b, o in zip(self._blocks, offsets[:-1])]).reshape(-1, 2)
        escore = np.concatenate([b["edge_score"] for b in self._blocks])
        ewid = np.concatenate([b["edge_wid"] for b in self._blocks])
        self._blocks = [
            {"pos": pos, "score": sc, "radius": rad, "inserted": ins, "wid": wid, "edges": edges,
             "edge_score": escore, "edge_wid": ewid}
        ]  # fmt: skip
        # window order; within a window the order the window listed them (stable sorts)
        order = np.argsort(wid, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        eorder = np.argsort(ewid, kind="stable")
        return pos[order], sc[order], rad[order], ins[order], wid[order], rank[edges[eorder]], escore[eorder]

    def result(self) -> VesselGraph:
        """The raw stitched graph of everything added so far (normally: all windows).

        Its metadata gets ``stitch_parts`` = ``[nodes, edges, bytes]`` of the contributions that were kept.
        """
        d = self.ndim
        gathered = self._gather()
        self.metadata["stitch_parts"] = [
            int(sum(len(b["pos"]) for b in self._blocks)),
            int(sum(len(b["edges"]) for b in self._blocks)),
            self.nbytes,
        ]
        if gathered is None:
            return _make_graph(
                np.zeros((0, d)),
                np.zeros(0),
                np.zeros(0),
                np.zeros(0, bool),
                np.zeros((0, 2), np.int64),
                np.zeros(0),
                self.scale,
                self.metadata,
            )
        pos, sc, rad, ins, pid, edges, escore = gathered
        return _merge_and_splice(
            pos, sc, rad, ins, pid, edges, escore, self.merge_radius, self.region_box, self.scale, self.metadata
        )


def _merge_and_splice(pos, sc, rad, ins, pid, edges, escore, merge_radius, region_box, scale, metadata) -> VesselGraph:
    """Steps 3-5 of the module doc on the concatenated core contributions of all windows."""
    labels = _merge_labels(pos, pid, merge_radius, ins)
    n = int(labels.max()) + 1 if len(labels) else 0
    mpos, msc, mrad, mins = _merge_nodes(labels, n, pos, sc, rad, ins)

    e = labels[edges] if len(edges) else np.zeros((0, 2), np.int64)
    # cut nodes on the region's border are real ends of the graph, never spurs
    spur_ok = mins.copy()
    if region_box is not None and n:
        rlo, rhi = region_box
        on_border = np.any(np.isclose(mpos, rlo, atol=1e-6) | np.isclose(mpos, rhi, atol=1e-6), axis=1)
        spur_ok &= ~on_border
    keep_nodes, e, es, _ = splice_inserted(n, mins, e, escore, mpos, merge_radius, spur_ok)
    index = np.full(n, -1, np.int64)
    index[keep_nodes] = np.arange(len(keep_nodes))
    e = index[e]
    return _make_graph(mpos[keep_nodes], msc[keep_nodes], mrad[keep_nodes], mins[keep_nodes], e, es, scale, metadata)


def _make_graph(pos, score, radius, inserted, edges, escore, scale, metadata) -> VesselGraph:
    return VesselGraph(
        pos,
        edges,
        {
            "confidence": np.asarray(score, float),
            "radius": np.asarray(radius, float),
            "inserted": np.asarray(inserted, bool),
        },
        {"confidence": np.asarray(escore, float)},
        scale=scale,
        metadata=dict(metadata or {}),
    )


def _nearest_per_patch(src: np.ndarray, dst: np.ndarray, d: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """For directed pairs ``src -> dst``: True where ``dst`` is the nearest node of its patch to ``src``."""
    key = src.astype(np.int64) * (int(pid.max()) + 1) + pid[dst]
    dmax = float(d.max()) if len(d) else 0.0
    if len(key) and key.max() < 2**40:  # one float sort: group key + distance as a fraction below 0.5
        order = np.argsort(key.astype(np.float64) + d / (2.0 * dmax + 1e-9))
    else:
        order = np.lexsort((d, key))
    k = key[order]
    first = np.ones(len(order), bool)
    first[1:] = k[1:] != k[:-1]
    out = np.zeros(len(src), bool)
    out[order[first]] = True
    return out


def _mutual_nearest(i: np.ndarray, j: np.ndarray, d: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)`` where each is the other's nearest node in the other's patch."""
    m = len(i)
    if not m:
        return np.zeros(0, bool)
    near = _nearest_per_patch(np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, d]), pid)
    return near[:m] & near[m:]


def _merge_labels(pos: np.ndarray, pid: np.ndarray, radius: float, inserted: np.ndarray | None = None) -> np.ndarray:
    """Group nodes of different patches closer than ``radius``; labels numbered by first appearance.

    See step 3 of the module doc for the order in which pairs are accepted. Vectorised (KD-tree pairs,
    sorting, connected components).
    """
    n = len(pos)
    if n == 0:
        return np.zeros(0, np.int64)
    if radius <= 0 or n == 1:
        return np.arange(n, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    ins = np.zeros(n, bool) if inserted is None else np.asarray(inserted, bool)
    pairs = cKDTree(pos).query_pairs(float(radius), output_type="ndarray")
    if len(pairs):
        pairs = pairs[pid[pairs[:, 0]] != pid[pairs[:, 1]]]
    if not len(pairs):
        return np.arange(n, dtype=np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.linalg.norm(pos[i] - pos[j], axis=1)
    accept = np.zeros(len(i), bool)
    # 1. model node with model node: mutual nearest per pair of patches
    mm = ~ins[i] & ~ins[j]
    accept[mm] = _mutual_nearest(i[mm], j[mm], d[mm], pid)
    # distance from each cut node to the nearest model node of another patch
    cm = np.flatnonzero(ins[i] != ins[j])
    cut = np.where(ins[i[cm]], i[cm], j[cm])
    model = np.where(ins[i[cm]], j[cm], i[cm])
    dmodel = np.full(n, np.inf)
    np.minimum.at(dmodel, cut, d[cm])
    # 2. cut node with cut node (the two sides of one cut edge): mutual nearest, when no model node is closer
    cc = np.flatnonzero(ins[i] & ins[j])
    cc = cc[d[cc] <= np.minimum(dmodel[i[cc]], dmodel[j[cc]]) + 1e-9]
    accept[cc] = _mutual_nearest(i[cc], j[cc], d[cc], pid)
    paired = np.zeros(n, bool)
    paired[i[cc[accept[cc]]]] = True
    paired[j[cc[accept[cc]]]] = True
    # 3. other cut nodes next to a model node of another patch join the nearest one
    free = ~paired[cut]
    if free.any():
        idx, c = cm[free], cut[free]
        order = np.lexsort((model[free], d[idx], c))
        first = np.ones(len(order), bool)
        first[1:] = c[order][1:] != c[order][:-1]
        accept[idx[order[first]]] = True
        paired[c[order[first]]] = True
    # 4. cut nodes still alone: mutual nearest among themselves
    cc = np.flatnonzero(ins[i] & ins[j] & ~paired[i] & ~paired[j])
    accept[cc] = _mutual_nearest(i[cc], j[cc], d[cc], pid)
    pairs = pairs[accept]
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    # renumber by first appearance so the output order follows the patch order
    _, first = np.unique(lab, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[lab].astype(np.int64)


def _merge_nodes(labels, n, pos, sc, rad, ins):
    d = pos.shape[1]
    # model nodes outweigh cut nodes: cut nodes only count in groups without a model node
    has_real = np.zeros(n, bool)
    np.logical_or.at(has_real, labels, ~ins)
    use = ~ins | ~has_real[labels]
    w = np.where(use, np.maximum(sc, 1e-6), 0.0)
    wsum = np.bincount(labels, weights=w, minlength=n)
    mpos = np.stack([np.bincount(labels, weights=w * pos[:, k], minlength=n) for k in range(d)], axis=1)
    mpos /= wsum[:, None]
    rvalid = use & np.isfinite(rad)
    wr = np.where(rvalid, w, 0.0)
    wrsum = np.bincount(labels, weights=wr, minlength=n)
    rnum = np.bincount(labels, weights=np.where(rvalid, wr * rad, 0.0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mrad = np.where(wrsum > 0, rnum / np.where(wrsum > 0, wrsum, 1.0), np.nan)
    msc = np.full(n, -np.inf)
    np.maximum.at(msc, labels, np.where(use, sc, -np.inf))
    return mpos, msc, mrad, ~has_real


def _dedupe_with_source(e: np.ndarray, es: np.ndarray, src: np.ndarray):
    """Drop self loops; one edge per node pair with the highest confidence; order by source index."""
    if not len(e):
        return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0, np.int64)
    e = np.sort(e, axis=1)
    ok = e[:, 0] != e[:, 1]
    e, es, src = e[ok], es[ok], src[ok]
    if not len(e):
        return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0, np.int64)
    # best first: highest confidence, then lowest source index
    order = np.lexsort((src, -es))
    e, es, src = e[order], es[order], src[order]
    _, first = np.unique(e, axis=0, return_index=True)
    e, es, src = e[first], es[first], src[first]
    order = np.argsort(src, kind="stable")
    return e[order], es[order], src[order]


def splice_inserted(
    n: int, inserted: np.ndarray, e: np.ndarray, es: np.ndarray, pos=None, spur: float = 0.0, spur_ok=None
):
    """Remove cut nodes of degree 2, joining their neighbours; drop isolated cut nodes, and cut nodes at
    the end of an edge shorter than ``spur`` (left over when a model node and its copy in the
    neighbouring patch were merged on one side of the cut). Repeated until nothing changes.

    A chain of degree-2 cut nodes between two other nodes becomes one edge whose confidence is the
    smallest along the chain. Returns ``(kept node indices, edges, edge confidences, source edge of each
    output edge)``; the source of a joined edge is its first piece (to carry other edge attributes
    over). Vectorised: chains are connected components.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    inserted = np.asarray(inserted, bool)
    e, es, src = _dedupe_with_source(
        np.asarray(e, np.int64).reshape(-1, 2), np.asarray(es, float), np.arange(len(e), dtype=np.int64)
    )
    removed = np.zeros(n, bool)
    check_spurs = spur > 0 and pos is not None
    may_spur = inserted & (np.ones(n, bool) if spur_ok is None else np.asarray(spur_ok, bool))
    for _ in range(1000):
        degree = np.bincount(e.ravel(), minlength=n)
        # spurs: a cut node whose only edge is shorter than `spur`
        if check_spurs:
            cand = may_spur & (degree == 1)
            if cand.any():
                ec = np.flatnonzero(cand[e[:, 0]] | cand[e[:, 1]])
                short = np.linalg.norm(pos[e[ec, 0]] - pos[e[ec, 1]], axis=1) < spur
                kill = ec[short]
                if len(kill):
                    ends = e[kill].ravel()
                    removed[ends[cand[ends]]] = True
                    keep = np.ones(len(e), bool)
                    keep[kill] = False
                    e, es, src = e[keep], es[keep], src[keep]
                    continue
        # chains of degree-2 cut nodes
        chain = inserted & (degree == 2) & ~removed
        if not chain.any():
            break
        in_chain = chain[e]
        internal = in_chain.all(axis=1)
        boundary = in_chain.any(axis=1) & ~internal
        static = ~in_chain.any(axis=1)
        ie = e[internal]
        _, comp = connected_components(
            coo_matrix((np.ones(len(ie)), (ie[:, 0], ie[:, 1])), shape=(n, n)), directed=False
        )
        be = e[boundary]
        first_in = chain[be[:, 0]]
        inner = np.where(first_in, be[:, 0], be[:, 1])
        outer = np.where(first_in, be[:, 1], be[:, 0])
        bc = comp[inner]
        conf = np.full(n, np.inf)
        np.minimum.at(conf, comp[ie[:, 0]], es[internal])
        np.minimum.at(conf, bc, es[boundary])
        first_src = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(first_src, comp[ie[:, 0]], src[internal])
        np.minimum.at(first_src, bc, src[boundary])
        # each chain has two boundary edges (none for a closed loop of cut nodes): join their outer ends
        order = np.argsort(bc, kind="stable")
        bcs, outs = bc[order], outer[order]
        counts = np.bincount(bc, minlength=n)
        comps = np.flatnonzero(counts == 2)
        at = np.searchsorted(bcs, comps)
        new_e = np.stack([outs[at], outs[at + 1]], axis=1)
        removed |= chain
        e = np.concatenate([e[static], new_e])
        es = np.concatenate([es[static], conf[comps]])
        src = np.concatenate([src[static], first_src[comps]])
        e, es, src = _dedupe_with_source(e, es, src)
    degree = np.bincount(e.ravel(), minlength=n)
    keep = ~removed & ~(inserted & (degree == 0))
    return np.flatnonzero(keep), e, es, src
