"""Street mover distance (SMD; Belli & Kipf 2019, used by Relationformer).

Both graphs are turned into the same number ``n_points`` of points spread evenly by arc length
along their edges (point k at arc position (k + 0.5) / n of the total length, over the
concatenated edges). SMD is the Wasserstein-1 distance between the two uniform point clouds:
the mean distance of the optimal one-to-one assignment (Hungarian algorithm).

Units: pixels (or physical units with ``physical=True``). With ``image_shape`` every coordinate is
divided by the image size along its axis (the first D entries of ``image_shape``, so an RGB
``(Y, X, C)`` shape works; as Relationformer normalises node positions to [0, 1]),
so SMD is a fraction of the image side and at most sqrt(D).

A graph with nodes but no edge length counts as the point cloud of its nodes. Empty against
non-empty (nothing to transport) is given the largest possible value on the domain: sqrt(D) when
``image_shape`` is given, otherwise the diagonal of the box spanned by the origin and the
non-empty graph. Two empty graphs have SMD 0. SMD does not depend on node density.
"""

from __future__ import annotations

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph
from ._geometry import Arrays, prepare, sample_along_edges


def _cloud(a: Arrays, n: int) -> np.ndarray:
    s = sample_along_edges(a, n=n)
    if len(s.coords):
        return s.coords
    if a.n_nodes:  # nodes without edges: resample the nodes to n points
        return a.pts[np.arange(n) % a.n_nodes]
    return a.pts


def smd(
    pred: VesselGraph,
    gt: VesselGraph,
    n_points: int = 1000,
    image_shape=None,
    physical: bool = False,
) -> float:
    """Street mover distance between two graphs (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    n_points = int(n_points)
    if n_points < 1:
        raise VesselGraphError("SMD needs at least one sample point")
    p, g, ndim = prepare(pred, gt, physical)
    norm = None
    if image_shape is not None:
        shape = np.asarray(image_shape, dtype=float).ravel()[:ndim]  # (Y, X, C) -> (Y, X)
        if len(shape) != ndim or np.any(shape <= 0):
            raise VesselGraphError(f"image_shape {tuple(np.ravel(image_shape))} does not fit {ndim}D graphs")
        scale = np.asarray(gt.scale if gt.n_nodes else pred.scale, dtype=float) if physical else np.ones(ndim)
        norm = shape * scale
    a, b = _cloud(p, n_points), _cloud(g, n_points)
    if norm is not None:
        a, b = a / norm, b / norm
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        if norm is not None:
            return float(np.sqrt(ndim))
        other = a if len(a) else b
        lo = np.minimum(other.min(axis=0), 0.0)
        hi = np.maximum(other.max(axis=0), 0.0)
        return float(np.linalg.norm(hi - lo))
    cost = cdist(a, b)
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean())
