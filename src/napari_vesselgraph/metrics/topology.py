"""Betti numbers of graphs and Betti errors.

For a graph, b0 is the number of connected components (isolated nodes count) and b1 the cycle
rank E - V + b0 (number of independent loops), computed after dropping self loops and duplicate
edges. Betti errors are |b0(pred) - b0(gt)| and |b1(pred) - b1(gt)|. They do not depend on node
density (subdividing an edge changes E and V alike).

Optionally (Relationformer style) the errors are also averaged over random patches: both graphs
are clipped to the same axis-aligned box (edges cut at the box border get a new end node there)
and the Betti numbers of the two clipped graphs are compared.
"""

from __future__ import annotations

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph
from ._geometry import Arrays, components, prepare, to_arrays


def _betti(n: int, edges: np.ndarray) -> tuple[int, int]:
    b0, _ = components(n, edges)
    return b0, int(len(edges) - n + b0)


def betti_numbers(graph: VesselGraph) -> tuple[int, int]:
    """``(b0, b1)``: connected components and independent cycles of the graph."""
    a = to_arrays(graph)
    return _betti(a.n_nodes, a.edges)


def clip_to_box(a: Arrays, lo: np.ndarray, hi: np.ndarray) -> tuple[int, np.ndarray]:
    """Clip a graph to the closed box [lo, hi]: returns the node count and edges of the clipped graph.

    Nodes inside the box keep their identity; each edge piece that leaves the box ends at a new
    node on the border. Pieces that only touch the box in one point are dropped.
    """
    inside = np.all((a.pts >= lo) & (a.pts <= hi), axis=1)
    new_index = np.full(a.n_nodes, -1, dtype=np.int64)
    new_index[inside] = np.arange(int(inside.sum()))
    n = int(inside.sum())
    if a.n_edges == 0:
        return n, np.zeros((0, 2), np.int64)
    p0 = a.pts[a.edges[:, 0]]
    d = a.pts[a.edges[:, 1]] - p0
    t0 = np.zeros(a.n_edges)
    t1 = np.ones(a.n_edges)
    valid = np.ones(a.n_edges, bool)
    for k in range(a.pts.shape[1]):
        dk = d[:, k]
        flat = dk == 0
        valid &= ~(flat & ((p0[:, k] < lo[k]) | (p0[:, k] > hi[k])))
        with np.errstate(divide="ignore", invalid="ignore"):
            ta = (lo[k] - p0[:, k]) / dk
            tb = (hi[k] - p0[:, k]) / dk
        t0 = np.where(flat, t0, np.maximum(t0, np.minimum(ta, tb)))
        t1 = np.where(flat, t1, np.minimum(t1, np.maximum(ta, tb)))
    both_in = inside[a.edges[:, 0]] & inside[a.edges[:, 1]]
    valid &= (t0 < t1) | both_in
    e = np.flatnonzero(valid)
    ends = []
    for side, t, default in ((0, t0, 0.0), (1, t1, 1.0)):
        orig = new_index[a.edges[e, side]]
        at_node = (orig >= 0) & np.isclose(t[e], default)
        ids = np.where(at_node, orig, -1)
        need = np.flatnonzero(~at_node)
        ids[need] = n + np.arange(len(need))
        n += len(need)
        ends.append(ids)
    return n, np.stack(ends, axis=1).reshape(-1, 2)


def betti_errors(
    pred: VesselGraph,
    gt: VesselGraph,
    patch_size=None,
    n_patches: int = 100,
    image_shape=None,
    seed: int = 0,
    physical: bool = False,
) -> dict[str, float]:
    """Betti-0 and Betti-1 errors of the whole graphs, and over random patches if ``patch_size`` is given.

    Patches (side ``patch_size``, a number or one per axis, in the graphs' units) have origins drawn
    uniformly (``seed``) inside ``image_shape`` (first D entries; in pixels, times the scale when
    ``physical``), or inside the bounding box of both graphs when no shape is given. Returns
    ``betti0_error``, ``betti1_error`` and, with patches, ``betti0_error_patch`` and
    ``betti1_error_patch`` (means over the patches).
    """
    p, g, ndim = prepare(pred, gt, physical)
    bp, bg = _betti(p.n_nodes, p.edges), _betti(g.n_nodes, g.edges)
    out = {"betti0_error": float(abs(bp[0] - bg[0])), "betti1_error": float(abs(bp[1] - bg[1]))}
    if patch_size is None:
        return out
    size = np.broadcast_to(np.asarray(patch_size, dtype=float), (ndim,)).copy()
    if np.any(size <= 0):
        raise VesselGraphError("patch_size must be positive")
    if image_shape is not None:
        shape = np.asarray(image_shape, dtype=float).ravel()[:ndim]
        if len(shape) != ndim:
            raise VesselGraphError(f"image_shape {tuple(np.ravel(image_shape))} does not fit {ndim}D graphs")
        if physical:
            shape = shape * np.asarray(gt.scale if gt.n_nodes else pred.scale)
        lo_dom, hi_dom = np.zeros(ndim), shape
    else:
        allp = np.concatenate([p.pts, g.pts])
        if len(allp) == 0:
            out.update(betti0_error_patch=0.0, betti1_error_patch=0.0)
            return out
        lo_dom, hi_dom = allp.min(axis=0), allp.max(axis=0)
    rng = np.random.default_rng(seed)
    span = np.maximum(hi_dom - lo_dom - size, 0.0)
    e0, e1 = [], []
    for _ in range(max(int(n_patches), 1)):
        lo = lo_dom + rng.random(ndim) * span
        hi = lo + size
        cp = _betti(*clip_to_box(p, lo, hi))
        cg = _betti(*clip_to_box(g, lo, hi))
        e0.append(abs(cp[0] - cg[0]))
        e1.append(abs(cp[1] - cg[1]))
    out["betti0_error_patch"] = float(np.mean(e0))
    out["betti1_error_patch"] = float(np.mean(e1))
    return out
