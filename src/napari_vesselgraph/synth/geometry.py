"""Procedural centreline geometry and its ground-truth graph.

A geometry is built in three steps:

1. **Centrelines.** Densely sampled polylines (about one point per pixel) with a radius per point,
   stored as a *dense graph*: points, edges between neighbouring points, and per-edge radii used
   for rendering. Vessel trees grow branch by branch (smoothed random-walk heading, tapering
   radius, bifurcations following Murray's law, thinner side branches). Branches stop before they
   come closer than ``gap`` pixels to another vessel (wall to wall), so every visible contact of
   two vessels is in the graph. In 2D, branches of *separate* trees may cross each other steeply;
   road networks are a jittered grid of gently curved streets plus long curved roads.
2. **Crossings.** Every intersection of two centrelines of different trees/roads gets a node of
   degree 4 shared by both (choice documented here: a crossing is a node of the ground truth).
3. **Ground truth.** The dense graph is clipped to the image box ``[0, size - 1]`` on every axis
   (a node is added where a centreline leaves the image), split into chains between junctions /
   endpoints / crossings / border nodes, and each chain is simplified by Douglas-Peucker with
   ``tol`` pixels (default 1) and a maximum edge length along the centreline ``max_edge``
   (default 12 px) so that nodes are evenly spread. Every straight ground-truth edge therefore
   stays within ``tol`` pixels of the centreline. Node attribute ``radius`` is in pixels.

The growers live in ``vessels.py`` and ``roads.py`` (their shared dense-graph builder and helpers in
``_centrelines.py``), steps 2 and 3 in ``ground_truth.py``; this module puts them together
(:func:`make_geometry`) and keeps their names importable from here.

The rendering (``render.py``/``domains.py``) uses the *unclipped* centrelines, so vessels run
to the image border where their ground truth ends with a border node.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph

# the geometry's parts, one module per kind; their names stay importable from here
from ._centrelines import _Dense, _Draws  # noqa: F401
from .ground_truth import (  # noqa: F401
    _drop_small_components,
    _insert_crossings,
    _simplify_chains,
    clip_dense,
    dense_to_graph,
    simplify_chain,
)
from .roads import ROAD2D, RoadParams, _grow_roads  # noqa: F401
from .vessels import VESSEL2D, VESSEL3D, VesselParams, _VesselGrower  # noqa: F401

GEOMETRY_KINDS = ("vessel2d", "vessel3d", "road2d")
DEFAULT_SHAPES = {"vessel2d": (128, 128), "vessel3d": (64, 64, 64), "road2d": (128, 128)}
KIND_NDIM = {"vessel2d": 2, "vessel3d": 3, "road2d": 2}


# --------------------------------------------------------------------------- seeds
def as_rng(seed, *stream: int) -> np.random.Generator:
    """A Generator for ``seed`` (a non-negative int, or a Generator used as it is) and a sub-stream."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise VesselGraphError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(s) for s in stream]]))


def stable_code(name: str) -> int:
    """A stable integer for a name (used to give every domain its own noise stream)."""
    return zlib.crc32(name.encode("utf8"))


# --------------------------------------------------------------------------- geometry
@dataclass
class Geometry:
    """Centrelines of one synthetic sample and their ground-truth graph.

    ``points``/``radius`` are the dense centreline points (pixels, napari axis order, about one
    pixel apart, may lie outside the image). ``edges`` are the *render segments* between points
    (every second dense point, so about 2 px long), with ``seg_radius`` (radius at both ends) and
    ``group`` (tree or road id, lets styles vary appearance per vessel/road).
    ``graph`` is the clipped, simplified ground truth (``radius`` node attribute, pixels).
    """

    kind: str
    shape: tuple[int, ...]
    points: np.ndarray
    radius: np.ndarray
    edges: np.ndarray
    seg_radius: np.ndarray
    group: np.ndarray
    graph: VesselGraph
    seed: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return len(self.shape)


# --------------------------------------------------------------------------- public
def make_geometry(kind: str, seed=0, shape=None, tol: float = 1.0, max_edge: float = 12.0, params=None) -> Geometry:
    """Centrelines + ground-truth graph of kind ``vessel2d``, ``vessel3d`` or ``road2d``.

    ``seed``: non-negative int (reproducible; same seed -> same geometry for every domain of this
    kind) or a numpy Generator. ``shape``: image shape (default 128x128, or 64x64x64 in 3D).
    """
    if kind not in GEOMETRY_KINDS:
        raise VesselGraphError(f"unknown geometry kind {kind!r}; choose one of {', '.join(GEOMETRY_KINDS)}")
    shape = tuple(int(s) for s in (shape or DEFAULT_SHAPES[kind]))
    if len(shape) != KIND_NDIM[kind]:
        raise VesselGraphError(f"{kind} needs a {KIND_NDIM[kind]}D shape, got {shape}")
    if min(shape) < 16:
        raise VesselGraphError(f"synthetic images must be at least 16 pixels along every axis, got {shape}")
    rng = as_rng(seed, 0)
    extras: dict[str, Any] = {}
    if kind == "road2d":
        dense, starts = _grow_roads(shape, rng, params or ROAD2D)
        extras["starts"] = [s.tolist() for s in starts]
    else:
        p = params or (VESSEL2D if kind == "vessel2d" else VESSEL3D)
        grower = _VesselGrower(shape, rng, p)
        grower.run()
        dense = grower.dense
        extras["roots"] = [r.tolist() for r in grower.roots]
    pts, rad, edges, seg_r, group, r_edges, r_rad, r_group = dense.arrays()
    if len(shape) == 2:
        pts, rad, edges, seg_r, group = _insert_crossings(pts, rad, edges, seg_r, group)
    cp, cr, ce = clip_dense(pts, rad, edges, shape)
    graph = dense_to_graph(cp, cr, ce, tol=tol, max_edge=max_edge)
    graph.metadata.update({"kind": kind, "shape": list(shape)})
    return Geometry(
        kind, shape, pts, rad, r_edges, r_rad, r_group, graph,
        int(seed) if not isinstance(seed, np.random.Generator) else None, extras,
    )


def with_radius_scale(geometry: Geometry, factor: float) -> Geometry:
    """The same centrelines with every radius multiplied by ``factor``."""
    if factor == 1.0:
        return geometry
    g = geometry.graph.copy()
    g.node_attrs["radius"] = g.node_attrs["radius"] * factor
    return replace(geometry, radius=geometry.radius * factor, seg_radius=geometry.seg_radius * factor, graph=g)
