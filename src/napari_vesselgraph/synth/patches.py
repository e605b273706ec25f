"""Patches of an (image, graph) pair, cut the way Relationformer does.

A patch covers the pixel centres ``origin .. origin + size - 1`` on every axis. Nodes inside are
kept; an edge that crosses the patch border gets a new node exactly where it crosses (its
attributes interpolated along the edge), so a patch graph never loses the part of a vessel that
lies inside the patch. Coordinates of the patch graph are relative to the patch origin.
"""

from __future__ import annotations

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph

_EPS = 1e-9


def _as_size(size, ndim: int) -> tuple[int, ...]:
    if np.ndim(size) == 0:
        size = (int(size),) * ndim
    size = tuple(int(s) for s in size)
    if len(size) != ndim or min(size) < 1:
        raise VesselGraphError(f"patch size must be {ndim} positive integers, got {size}")
    return size


def _check_pair(image: np.ndarray, graph: VesselGraph) -> int:
    d = graph.ndim
    if image.ndim not in (d, d + 1):
        raise VesselGraphError(
            f"image of shape {image.shape} does not fit a {d}D graph (expected {d} axes, plus an optional channel axis)"
        )
    return d


def crop_patch(image: np.ndarray, graph: VesselGraph, origin, size) -> tuple[np.ndarray, VesselGraph]:
    """Cut ``image[origin : origin + size]`` and the matching graph, inserting border nodes.

    ``image`` is ``(Y, X)``, ``(Z, Y, X)`` or either with a trailing channel axis; parts of the
    patch outside the image are zero. Returns ``(patch, patch_graph)``; the graph's metadata gets
    ``patch_origin`` and ``patch_size``.
    """
    image = np.asarray(image)
    d = _check_pair(image, graph)
    size = _as_size(size, d)
    origin = tuple(int(round(float(o))) for o in np.ravel(origin))
    if len(origin) != d:
        raise VesselGraphError(f"patch origin must have {d} values, got {origin}")
    # image part (zero padding outside the image)
    patch = np.zeros(size + image.shape[d:], image.dtype)
    src, dst = [], []
    for o, s, n in zip(origin, size, image.shape[:d]):
        a, b = max(o, 0), min(o + s, n)
        if a >= b:
            src = None
            break
        src.append(slice(a, b))
        dst.append(slice(a - o, b - o))
    if src is not None:
        patch[tuple(dst)] = image[tuple(src)]
    return patch, crop_graph(graph, origin, size)


def crop_graph(graph: VesselGraph, origin, size) -> VesselGraph:
    """The graph part of :func:`crop_patch` (box ``[origin, origin + size - 1]``, coordinates shifted)."""
    d = graph.ndim
    size = _as_size(size, d)
    lo = np.asarray(origin, float).reshape(d)
    hi = lo + np.asarray(size, float) - 1
    P = graph.nodes
    inside = np.all((P >= lo - _EPS) & (P <= hi + _EPS), 1) if len(P) else np.zeros(0, bool)
    E = graph.edges
    a, b = P[E[:, 0]], P[E[:, 1]]
    ia, ib = inside[E[:, 0]], inside[E[:, 1]]
    # Liang-Barsky: parameter range [t0, t1] of each segment inside the box
    dvec = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo = (lo - a) / dvec
        t_hi = (hi - a) / dvec
    t_in = np.where(dvec == 0, -np.inf, np.minimum(t_lo, t_hi))
    t_out = np.where(dvec == 0, np.inf, np.maximum(t_lo, t_hi))
    parallel_out = np.any((dvec == 0) & ((a < lo - _EPS) | (a > hi + _EPS)), 1)
    t0 = np.clip(t_in.max(1, initial=-np.inf), 0, 1)
    t1 = np.clip(t_out.min(1, initial=np.inf), 0, 1)
    crosses = ~parallel_out & (t0 < t1 - _EPS)

    n = graph.n_nodes
    new_t: list[np.ndarray] = []  # parameter along the edge of each new node
    new_e: list[np.ndarray] = []  # edge each new node comes from
    keep_edges = []  # (u, v, source edge) in the new numbering
    # both inside
    both = np.flatnonzero(ia & ib)
    keep_edges.append(np.stack([E[both, 0], E[both, 1], both], 1))
    # inside -> outside: a node where the edge leaves
    out_edges = np.flatnonzero(ia & ~ib & crosses)
    # outside -> inside: a node where the edge enters
    in_edges = np.flatnonzero(~ia & ib & crosses)
    # outside -> outside, passing through: two nodes
    thru = np.flatnonzero(~ia & ~ib & crosses)
    count = n
    ids_out = count + np.arange(len(out_edges))
    count += len(out_edges)
    ids_in = count + np.arange(len(in_edges))
    count += len(in_edges)
    ids_t0 = count + np.arange(len(thru))
    count += len(thru)
    ids_t1 = count + np.arange(len(thru))
    count += len(thru)
    new_t += [t1[out_edges], t0[in_edges], t0[thru], t1[thru]]
    new_e += [out_edges, in_edges, thru, thru]
    keep_edges.append(np.stack([E[out_edges, 0], ids_out, out_edges], 1))
    keep_edges.append(np.stack([ids_in, E[in_edges, 1], in_edges], 1))
    keep_edges.append(np.stack([ids_t0, ids_t1, thru], 1))
    t_all = np.concatenate(new_t)
    e_all = np.concatenate(new_e).astype(np.int64)
    ke = np.concatenate(keep_edges).astype(np.int64)

    new_pos = a[e_all] + t_all[:, None] * dvec[e_all]
    new_pos = np.clip(new_pos, lo, hi)
    all_pos = np.concatenate([P, new_pos])
    keep_nodes = np.concatenate([inside, np.ones(len(t_all), bool)])
    remap = np.full(len(all_pos), -1, np.int64)
    remap[keep_nodes] = np.arange(int(keep_nodes.sum()))
    node_attrs = {}
    u_src, v_src = E[e_all, 0], E[e_all, 1]
    for k, col in graph.node_attrs.items():
        if col.dtype.kind in "fiu":
            val = col[u_src].astype(float) + t_all * (col[v_src].astype(float) - col[u_src].astype(float))
            if col.dtype.kind in "iu":
                val = np.where(t_all < 0.5, col[u_src], col[v_src]).astype(col.dtype)
        else:
            val = np.where(t_all < 0.5, col[u_src], col[v_src])
        node_attrs[k] = np.concatenate([col, val.astype(col.dtype, copy=False)])[keep_nodes]
    edge_attrs = {k: col[ke[:, 2]] for k, col in graph.edge_attrs.items()}
    nodes = np.clip(all_pos[keep_nodes] - lo, 0, hi - lo)
    meta = dict(graph.metadata)
    meta["patch_origin"] = [int(x) for x in lo]
    meta["patch_size"] = list(size)
    return VesselGraph(nodes, remap[ke[:, :2]], node_attrs, edge_attrs, graph.scale, meta)


def random_patches(
    image: np.ndarray,
    graph: VesselGraph,
    size,
    n: int,
    rng=None,
    min_nodes: int = 3,
    tries: int = 20,
) -> list[tuple[np.ndarray, VesselGraph]]:
    """``n`` random patches of ``size`` that preferably contain at least ``min_nodes`` graph nodes.

    For each patch up to ``tries`` origins are drawn; the first one with enough nodes wins,
    otherwise the one with the most nodes. ``rng``: numpy Generator or int seed.
    """
    image = np.asarray(image)
    d = _check_pair(image, graph)
    size = _as_size(size, d)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    shape = np.asarray(image.shape[:d])
    span = np.maximum(shape - np.asarray(size), 0)
    out = []
    P = graph.nodes
    for _ in range(int(n)):
        cand = rng.integers(0, span + 1, size=(tries, d))
        if len(P):
            inside = np.all((P[None] >= cand[:, None]) & (P[None] <= cand[:, None] + np.asarray(size) - 1), -1)
            counts = inside.sum(1)
            ok = np.flatnonzero(counts >= min_nodes)
            pick = int(ok[0]) if len(ok) else int(np.argmax(counts))
        else:
            pick = 0
        out.append(crop_patch(image, graph, cand[pick], size))
    return out
