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

The rendering (``render.py``/``domains.py``) uses the *unclipped* centrelines, so vessels run
to the image border where their ground truth ends with a border node.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph

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


@dataclass(frozen=True)
class VesselParams:
    """Parameters of the vessel-tree grower (lengths in pixels, angles in degrees)."""

    n_roots: tuple[int, int] = (1, 3)
    max_roots: int = 5  # more trees enter while the image is still sparse
    border_root_p: float = 0.75
    root_radius: tuple[float, float] = (2.0, 3.6)
    min_radius: float = 0.8
    gap: float = 3.0
    curviness: float = 0.035
    persistence: float = 0.93
    branch_len: tuple[float, float] = (10.0, 26.0)
    len_per_radius: float = 3.0
    taper: tuple[float, float] = (0.04, 0.2)
    bifurcation_p: float = 0.9
    murray_alpha: tuple[float, float] = (0.72, 0.95)
    angle_major: tuple[float, float] = (12.0, 32.0)
    angle_minor: tuple[float, float] = (35.0, 65.0)
    side_rate: float = 1 / 18
    side_ratio: tuple[float, float] = (0.35, 0.6)
    side_angle: tuple[float, float] = (45.0, 80.0)
    density: float = 0.07  # centreline length per pixel of image area (2D) / per voxel (3D)
    max_branches: int = 300
    max_generation: int = 10
    cross_p: float = 0.7  # chance that a branch meeting another tree crosses it (2D only)
    cross_min_angle: float = 45.0


VESSEL2D = VesselParams()
VESSEL3D = VesselParams(
    root_radius=(1.6, 2.8), gap=2.0, curviness=0.03, density=0.0032, branch_len=(8.0, 20.0), side_rate=1 / 15
)


@dataclass(frozen=True)
class RoadParams:
    spacing: tuple[float, float] = (30.0, 52.0)
    jitter: float = 0.1  # of the spacing
    bend: float = 0.07  # control-point offset of a street, fraction of its length
    drop_p: float = 0.18
    street_radius: tuple[float, float] = (1.4, 2.2)
    avenue_p: float = 0.25
    avenue_radius: tuple[float, float] = (2.2, 2.9)
    curved_roads: tuple[float, ...] = (0.15, 0.6, 0.25)  # probability of 0, 1, 2 curved roads
    curved_radius: tuple[float, float] = (2.2, 3.2)
    curviness: float = 0.012
    persistence: float = 0.97
    gap: float = 3.0


ROAD2D = RoadParams()


# --------------------------------------------------------------------------- dense graph builder
class _Dense:
    """Accumulates centreline points and chains (polylines through those points)."""

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.pts: list[np.ndarray] = []
        self.rad: list[np.ndarray] = []
        self.n = 0
        self.chains: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []

    def add_points(self, p: np.ndarray, r) -> np.ndarray:
        p = np.asarray(p, float).reshape(-1, self.ndim)
        self.pts.append(p)
        self.rad.append(np.full(len(p), r, float) if np.ndim(r) == 0 else np.asarray(r, float))
        idx = np.arange(self.n, self.n + len(p))
        self.n += len(p)
        return idx

    def add_chain(self, idx: np.ndarray, r_start, r_end, group: int) -> None:
        """A polyline through points ``idx``; segment k runs from radius ``r_start[k]`` to ``r_end[k]``."""
        idx = np.asarray(idx, np.int64)
        if len(idx) < 2:
            return
        m = len(idx) - 1
        rs = np.full(m, r_start, float) if np.ndim(r_start) == 0 else np.asarray(r_start, float)
        re = np.full(m, r_end, float) if np.ndim(r_end) == 0 else np.asarray(r_end, float)
        self.chains.append((idx, rs, re, group))

    def arrays(self, render_step: int = 2):
        """Points, radii, dense edges (+radii, group) and decimated render edges (+radii, group)."""
        d = self.ndim
        pts = np.concatenate(self.pts) if self.pts else np.zeros((0, d))
        rad = np.concatenate(self.rad) if self.rad else np.zeros(0)
        if not self.chains:
            z2, z1 = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
            return pts, rad, z2, np.zeros((0, 2)), z1, z2, np.zeros((0, 2)), z1
        e, r, g, re_, rr, rg = [], [], [], [], [], []
        for idx, rs, rend, grp in self.chains:
            m = len(idx) - 1
            e.append(np.stack([idx[:-1], idx[1:]], 1))
            r.append(np.stack([rs, rend], 1))
            g.append(np.full(m, grp, np.int64))
            # rendering: every ``render_step``-th point (segments a few px long are still on the curve)
            k = np.arange(0, m + 1, render_step)
            if k[-1] != m:
                k = np.append(k, m)
            re_.append(np.stack([idx[k[:-1]], idx[k[1:]]], 1))
            rr.append(np.stack([rs[k[:-1]], rend[k[1:] - 1]], 1))
            rg.append(np.full(len(k) - 1, grp, np.int64))
        cat = np.concatenate
        return pts, rad, cat(e), cat(r), cat(g), cat(re_), cat(rr), cat(rg)


# --------------------------------------------------------------------------- small helpers
_BALLS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _ball(radius: int, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets within ``radius`` (and their norms), cached."""
    key = (int(radius), ndim)
    if key not in _BALLS:
        r = int(radius)
        g = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * ndim, indexing="ij"), -1).reshape(-1, ndim)
        n = np.sqrt((g.astype(float) ** 2).sum(1))
        keep = n <= r + 0.5
        _BALLS[key] = (g[keep], n[keep])
    return _BALLS[key]


class _Draws:
    """Scalar random draws from pre-drawn pools of a Generator (numpy's per-call cost dominates otherwise).

    Mimics the few ``Generator`` methods the growers use; array draws go to the Generator itself.
    """

    def __init__(self, gen: np.random.Generator):
        self.gen = gen
        self._u: list[float] = []
        self._n: list[float] = []

    def random(self) -> float:
        if not self._u:
            self._u = self.gen.random(512).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._n:
            self._n = self.gen.standard_normal(512).tolist()
        return self._n.pop()

    def uniform(self, lo=0.0, hi=1.0, size=None):
        if size is not None:
            return self.gen.uniform(lo, hi, size)
        return lo + (hi - lo) * self.random()

    def standard_normal(self, size=None, dtype=np.float64):
        if size is None:
            return self.normal()
        return self.gen.standard_normal(size, dtype)

    def integers(self, lo, hi=None, size=None):
        if size is not None:
            return self.gen.integers(lo, hi, size)
        if hi is None:
            lo, hi = 0, lo
        return min(int(lo + (hi - lo) * self.random()), hi - 1)

    def poisson(self, lam: float) -> int:
        limit, k, prod = math.exp(-lam), 0, self.random()
        while prod > limit:
            k += 1
            prod *= self.random()
        return k


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(math.sqrt(float(v @ v)), 1e-12)


def _random_perp(rng, h: np.ndarray) -> np.ndarray:
    """A random unit vector orthogonal to unit vector ``h`` (2D: one of the two normals)."""
    if len(h) == 2:
        n = np.array([h[1], -h[0]])
        return n if rng.random() < 0.5 else -n
    v = np.array([rng.standard_normal(), rng.standard_normal(), rng.standard_normal()])
    v -= float(v @ h) * h
    return _unit(v)


def _frame(h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Orthonormal frame whose first row is ``h``."""
    if len(h) == 2:
        return np.array([h, [h[1], -h[0]]])
    e2 = _random_perp(rng, h)
    return np.array([h, e2, np.cross(h, e2)])


def _rotate_towards(h: np.ndarray, u: np.ndarray, angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return _unit(math.cos(a) * h + math.sin(a) * u)


def _smooth_path(
    rng: np.random.Generator, start: np.ndarray, heading: np.ndarray, n: int, curviness: float, persistence: float
) -> np.ndarray:
    """``n`` points at unit steps after ``start``: heading angles follow an AR(1)-smoothed random walk."""
    d = len(start)
    a = persistence
    decay = _decay(a, n)
    # AR(1) angular velocity: omega_k = a * omega_{k-1} + eps_k, in closed form (a**-n stays small here)
    if d == 2:
        eps = rng.standard_normal(n) * (curviness * math.sqrt(1 - a * a))
        omega = np.cumsum(eps / decay) * decay
        omega += (rng.standard_normal() * curviness * 0.5 * a) * decay
        z = np.exp(1j * np.cumsum(omega))
        z *= complex(heading[0], heading[1])  # heading as a complex number y + ix
        np.cumsum(z, out=z)
        return z.view(np.float64).reshape(n, 2) + start
    eps = rng.standard_normal((n, d - 1)) * (curviness * math.sqrt(1 - a * a))
    dc = decay[:, None]
    omega = np.cumsum(eps / dc, axis=0) * dc
    omega += rng.standard_normal(d - 1) * curviness * 0.5 * a * dc
    ang = np.cumsum(omega, axis=0)
    fr = _frame(heading, rng)
    cp = np.cos(ang[:, 1:2])
    dirs = cp * np.cos(ang[:, :1]) * fr[0] + cp * np.sin(ang[:, :1]) * fr[1] + np.sin(ang[:, 1:2]) * fr[2]
    return start + np.cumsum(dirs, axis=0)


_DECAY: dict[float, np.ndarray] = {}


def _decay(a: float, n: int) -> np.ndarray:
    """``a ** arange(n)`` (cached)."""
    arr = _DECAY.get(a)
    if arr is None or len(arr) < n:
        arr = a ** np.arange(max(n, 512), dtype=float)
        _DECAY[a] = arr
    return arr[:n]


def _outside_distance(pts: np.ndarray, shape) -> np.ndarray:
    hi = np.asarray(shape, float) - 1
    return np.maximum(np.maximum(-pts, pts - hi), 0).max(1) if len(pts) else np.zeros(0)


# --------------------------------------------------------------------------- vessel trees
@dataclass
class _Branch:
    bid: int
    tree: int
    start_idx: int | None
    start: np.ndarray
    heading: np.ndarray
    r0: float
    r_parent: float
    allowed: tuple[int, ...]
    generation: int
    length: float
    continuation: bool = False  # a bifurcation child (or the other half of an interior root)


class _VesselGrower:
    def __init__(self, shape, rng: np.random.Generator, p: VesselParams):
        self.shape = tuple(int(s) for s in shape)
        self.d = len(shape)
        self.rng = _Draws(rng)
        self.p = p
        self.hi = np.asarray(self.shape, float) - 1
        # points are looked up at most r + 2 px outside the image, with balls of radius r + gap
        self.pad = int(math.ceil(2 * p.root_radius[1] + p.gap + 4))
        self.owner = np.zeros(tuple(s + 2 * self.pad for s in self.shape), np.int32)
        self.owner_flat = self.owner.ravel()
        self.strides = np.array([int(np.prod(self.owner.shape[i + 1 :])) for i in range(self.d)], np.int64)
        self.dense = _Dense(self.d)
        self.branch_pts: dict[int, np.ndarray] = {}
        self.tree_of: dict[int, int] = {}
        self.next_id = 1
        self.total = 0.0
        self.roots: list[np.ndarray] = []
        self.closing = False

    # -- owner grid
    def _flat(self, pts: np.ndarray) -> np.ndarray:
        return (np.rint(pts).astype(np.int64) + self.pad) @ self.strides

    def _lookup(self, pts: np.ndarray, r: float) -> np.ndarray:
        off, _ = _ball(int(math.ceil(r)), self.d)
        return self.owner_flat[self._flat(pts)[:, None] + (off @ self.strides)[None]]

    def _paint(self, pts: np.ndarray, rads: np.ndarray, bid: int) -> None:
        g = self.p.gap
        off, norms = _ball(int(math.ceil(rads.max() + g)), self.d)
        q = self._flat(pts)[:, None] + (off @ self.strides)[None]
        self.owner_flat[q[norms[None, :] <= (rads + g)[:, None]]] = bid

    def new_id(self, tree: int) -> int:
        b = self.next_id
        self.next_id += 1
        self.tree_of[b] = tree
        return b

    # -- roots
    def root(self, tree: int, first: bool) -> list[_Branch]:
        rng, p, d = self.rng, self.p, self.d
        shape = np.asarray(self.shape, float)
        r0 = rng.uniform(*p.root_radius) if first else rng.uniform(p.root_radius[0] * 0.8, p.root_radius[1] * 0.85)
        if rng.random() < p.border_root_p:
            axis = int(rng.integers(d))
            side = int(rng.integers(2))
            pos = rng.uniform(0.12, 0.88, d) * (shape - 1)
            pos[axis] = -2.0 if side == 0 else shape[axis] + 1.0
            inward = np.zeros(d)
            inward[axis] = 1.0 if side == 0 else -1.0
            h = _rotate_towards(inward, _random_perp(rng, inward), rng.uniform(-35, 35))
        else:
            # a tree that starts inside the image grows both ways from its first point
            pos = rng.uniform(0.2, 0.8, d) * (shape - 1)
            h = _unit(rng.standard_normal(d))
            self.roots.append(pos.copy())
            sidx = int(self.dense.add_points(pos[None], r0)[0])
            b1, b2 = self.new_id(tree), self.new_id(tree)
            out = []
            for bid, other, hh in ((b1, b2, h), (b2, b1, -h)):
                length = rng.uniform(15, 35) + p.len_per_radius * r0
                out.append(_Branch(bid, tree, sidx, pos, hh, r0, r0, (other,), 0, length))
            return out
        self.roots.append(pos.copy())
        bid = self.new_id(tree)
        length = rng.uniform(15, 35) + p.len_per_radius * r0
        return [_Branch(bid, tree, None, pos, h, r0, 0.0, (), 0, length)]

    # -- one branch
    def grow(self, br: _Branch, queue: deque) -> None:
        rng, p, d = self.rng, self.p, self.d
        n = max(int(br.length), 2)
        # a few extra points let a branch finish crossing another tree near its planned end
        n_full = n + (int(3 * (br.r0 + p.gap) + 8) if d == 2 else 0)
        pts = _smooth_path(rng, br.start, br.heading, n_full, p.curviness, p.persistence)
        taper = rng.uniform(*p.taper)
        rads = br.r0 * (1 - (taper / n) * np.arange(1, n_full + 1))
        np.maximum(rads, p.min_radius, out=rads)
        # leave the image: stop a little outside (the rendering reaches the border)
        out = np.maximum(-pts, pts - self.hi).max(1)
        beyond = np.flatnonzero(out > rads + 2)
        left_image = len(beyond) > 0
        if left_image:
            n_full = int(beyond[0]) + 1
            n = min(n, n_full)
            pts, rads, out = pts[:n_full], rads[:n_full], out[:n_full]
        owners = self._lookup(pts, br.r0)
        if br.start_idx is not None:
            n_skip = min(n_full, int(math.ceil(2 * (br.r_parent + br.r0 + p.gap + 1))))
            head = owners[:n_skip]
            for a_id in br.allowed:
                head[head == a_id] = 0
        hit = owners.any(1)
        cut = n
        truncated = False
        pos = 0
        crossings = 0
        while True:
            rel = np.flatnonzero(hit[pos:cut])
            if not len(rel):
                break
            k = pos + int(rel[0])
            run_end = self._crossing(br, pts, owners, k) if crossings < 2 else None
            if run_end is not None:
                hit[k:run_end] = False
                pos = run_end
                crossings += 1
                cut = max(cut, min(run_end + 6, n_full))
                continue
            cut = max(k - 1, 0)
            truncated = True
            break
        if cut < (8 if br.start_idx is None else 4):
            return
        left_image = left_image and cut == n_full
        pts, rads = pts[:cut], rads[:cut].copy()
        if truncated:
            # a vessel that stops short of another one thins out instead of ending bluntly
            m = min(cut // 2, 8)
            ramp = rads[-m] + (p.min_radius - rads[-m]) * np.arange(m) / max(m - 1, 1)
            rads[-m:] = np.minimum(rads[-m:], ramp)
        idx = self.dense.add_points(pts, rads)
        if br.start_idx is None:
            chain = np.concatenate([self.dense.add_points(br.start[None], br.r0), idx])
        else:
            chain = np.concatenate([[br.start_idx], idx])
        r_start = np.concatenate([[br.r0], rads[:-1]])
        self.dense.add_chain(chain, r_start, rads, br.tree)
        self._paint(pts, rads, br.bid)
        self.branch_pts[br.bid] = pts
        self.total += cut
        gen = br.generation + 1
        if gen > p.max_generation:
            return
        # side branches
        n_side = 0 if self.closing or cut <= 12 else rng.poisson(cut * p.side_rate)
        if n_side:
            rl = rads.tolist()
            for i in sorted({rng.integers(5, cut - 5) for _ in range(n_side)}):
                if rl[i] < 1.5 * p.min_radius:
                    continue
                h = _unit(pts[i + 1] - pts[i - 1])
                u = _random_perp(rng, h)
                r_side = max(p.min_radius, rl[i] * rng.uniform(*p.side_ratio))
                queue.append(
                    _Branch(
                        self.new_id(br.tree), br.tree, int(idx[i]), pts[i],
                        _rotate_towards(h, u, rng.uniform(*p.side_angle)), r_side, rl[i],
                        (br.bid, *br.allowed[:1]), gen, rng.uniform(*p.branch_len) + p.len_per_radius * r_side,
                    )
                )
        # bifurcation at the end
        r_end = float(rads[-1])
        if truncated or left_image or out[cut - 1] > 0 or r_end < 1.5 * p.min_radius or rng.random() > p.bifurcation_p:
            return
        h = _unit(pts[-1] - pts[-3])
        u = _random_perp(rng, h)
        alpha = rng.uniform(*p.murray_alpha)
        r1 = max(p.min_radius, alpha * r_end)
        r2 = max(p.min_radius, r_end * (1 - alpha**3) ** (1 / 3))
        b1, b2 = self.new_id(br.tree), self.new_id(br.tree)
        for bid, other, r, ang, uu in ((b1, b2, r1, p.angle_major, u), (b2, b1, r2, p.angle_minor, -u)):
            queue.append(
                _Branch(
                    bid, br.tree, int(idx[-1]), pts[-1], _rotate_towards(h, uu, rng.uniform(*ang)), r, r_end,
                    (br.bid, other, *br.allowed[:1]), gen,
                    rng.uniform(*p.branch_len) + p.len_per_radius * r, True,
                )
            )

    def _crossing(self, br: _Branch, pts: np.ndarray, owners: np.ndarray, k: int) -> int | None:
        """If the branch may cross the vessel it meets at point ``k``, the index after the crossing."""
        p = self.p
        if self.d != 2 or k < 2:
            return None
        ids = np.unique(owners[k])
        ids = ids[ids != 0]
        if len(ids) != 1:
            return None
        o = int(ids[0])
        if self.tree_of.get(o) == br.tree or o not in self.branch_pts or self.rng.random() > p.cross_p:
            return None
        has_o = (owners == o).any(1)
        after = np.flatnonzero(~has_o[k:])
        if not len(after):
            return None
        run_end = k + int(after[0])
        run = owners[k:run_end]
        if not np.all((run == 0) | (run == o)) or run_end + 4 >= len(pts):
            return None
        if run_end - k > 3 * (br.r0 + 4 + p.gap):
            return None
        q = self.branch_pts[o]
        j = int(np.argmin(((q - pts[k]) ** 2).sum(1)))
        if j < 3 or j > len(q) - 4:
            return None
        t = _unit(q[j + 2] - q[j - 2])
        h = _unit(pts[min(run_end, len(pts) - 1)] - pts[k - 1])
        if abs(float(t.dot(h))) > math.cos(math.radians(p.cross_min_angle)):
            return None

        def side(x):
            v = x - q[j]
            return np.sign(t[0] * v[1] - t[1] * v[0])

        if side(pts[k - 1]) == side(pts[run_end]):
            return None
        return run_end

    def run(self) -> None:
        rng, p = self.rng, self.p
        budget = p.density * float(np.prod(self.shape))
        n_roots = int(rng.integers(p.n_roots[0], p.n_roots[1] + 1))
        queue: deque = deque()
        trees = 0
        for t in range(n_roots):
            queue.extend(self.root(t, t == 0))
            trees += 1
        n_br = 0
        while n_br < p.max_branches:
            if self.total >= budget:
                # budget spent: only the continuations of already grown vessels are still grown
                queue = deque(b for b in queue if b.continuation)
                self.closing = True
            if not queue:
                if trees >= p.max_roots or self.total >= budget:
                    break
                queue.extend(self.root(trees, False))
                trees += 1
                continue
            self.grow(queue.popleft(), queue)
            n_br += 1


# --------------------------------------------------------------------------- roads
def _bezier(a: np.ndarray, c: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Points about one pixel apart on the quadratic Bezier a-c-b (including both ends)."""
    approx = np.linalg.norm(c - a) + np.linalg.norm(b - c)
    n = max(int(math.ceil(approx)), 1)
    t = np.linspace(0, 1, n + 1)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t**2 * b


def _clean_crossing(path: np.ndarray, rp: float, other: np.ndarray, ro: float, gap: float, tree) -> bool:
    """True if ``path`` stays clear of ``other`` (radius ``ro``) except for clean, steep crossings."""
    d, j = tree.query(path)
    close = d < rp + ro + gap
    if not close.any():
        return True
    if close[:3].any() or close[-3:].any():
        return False
    runs = np.flatnonzero(np.diff(close.astype(np.int8)) != 0) + 1
    starts, ends = runs[0::2], runs[1::2]
    for s, e in zip(starts, ends):
        if e - s > 2.5 * (rp + ro + gap) + 2:
            return False
        jj = int(j[(s + e) // 2])
        t = _unit(other[min(jj + 2, len(other) - 1)] - other[max(jj - 2, 0)])
        h = _unit(path[e] - path[s - 1])
        if abs(float(t.dot(h))) > math.cos(math.radians(40)):
            return False
        q = other[jj]

        def side(x):
            v = x - q
            return np.sign(t[0] * v[1] - t[1] * v[0])

        if side(path[s - 1]) == side(path[e]):
            return False
    return True


def _grow_roads(shape, rng: np.random.Generator, p: RoadParams) -> tuple[_Dense, list[np.ndarray]]:
    from scipy.spatial import cKDTree

    shape_a = np.asarray(shape, float)
    centre = (shape_a - 1) / 2
    dense = _Dense(2)
    # curved through-roads first: they win conflicts with the grid
    n_curved = int(rng.choice(len(p.curved_roads), p=np.asarray(p.curved_roads) / sum(p.curved_roads)))
    curved: list[tuple[np.ndarray, float]] = []
    for _ in range(n_curved):
        axis = int(rng.integers(2))
        side = int(rng.integers(2))
        pos = rng.uniform(0.15, 0.85, 2) * (shape_a - 1)
        pos[axis] = -4.0 if side == 0 else shape_a[axis] + 3.0
        inward = np.zeros(2)
        inward[axis] = 1.0 if side == 0 else -1.0
        h = _rotate_towards(inward, _random_perp(rng, inward), rng.uniform(-30, 30))
        n = int(3 * shape_a.sum())
        path = np.concatenate([pos[None], _smooth_path(rng, pos, h, n, p.curviness, p.persistence)])
        out = _outside_distance(path, shape)
        leave = np.flatnonzero((out > 5) & (np.arange(len(path)) > 10))
        if len(leave):
            path = path[: leave[0] + 1]
        r = rng.uniform(*p.curved_radius)
        if len(path) < 10:
            continue
        if all(_clean_crossing(path, r, q, rq, p.gap, cKDTree(q)) for q, rq in curved):
            curved.append((path, r))
    # jittered, rotated grid of streets
    ang = rng.uniform(0, np.pi)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    sp = rng.uniform(*p.spacing, 2)
    half = np.linalg.norm(shape_a) / 2 + sp.max()
    ni, nj = int(half // sp[0]) + 1, int(half // sp[1]) + 1
    ii, jj = np.meshgrid(np.arange(-ni, ni + 1), np.arange(-nj, nj + 1), indexing="ij")
    local = np.stack([ii * sp[0], jj * sp[1]], -1) + rng.uniform(0, 1, 2) * sp
    grid = centre + local @ rot.T + rng.standard_normal(local.shape) * p.jitter * sp.mean()
    lim = sp.max() * 1.0
    inside = np.all((grid > -lim) & (grid < shape_a - 1 + lim), -1)
    gid = np.full(ii.shape, -1)
    node_idx = dense.add_points(grid[inside], 0.0)
    gid[inside] = node_idx
    radii_rows = np.where(rng.random(ii.shape[0]) < p.avenue_p, rng.uniform(*p.avenue_radius, ii.shape[0]),
                          rng.uniform(*p.street_radius, ii.shape[0]))
    radii_cols = np.where(rng.random(ii.shape[1]) < p.avenue_p, rng.uniform(*p.avenue_radius, ii.shape[1]),
                          rng.uniform(*p.street_radius, ii.shape[1]))
    curved_trees = [(q, rq, cKDTree(q)) for q, rq in curved]
    group = 0
    node_r = np.zeros(dense.n)
    candidates = []
    for di, dj in ((1, 0), (0, 1)):
        for a_i in range(ii.shape[0] - di):
            for a_j in range(ii.shape[1] - dj):
                a, b = gid[a_i, a_j], gid[a_i + di, a_j + dj]
                if a < 0 or b < 0:
                    continue
                r = radii_cols[a_j] if di else radii_rows[a_i]
                candidates.append((a, b, r))
    pts_nodes = dense.pts[0]
    for a, b, r in candidates:
        if rng.random() < p.drop_p:
            continue
        pa, pb = pts_nodes[a], pts_nodes[b]
        seg = pb - pa
        L = float(np.linalg.norm(seg))
        if L < 4:
            continue
        c = (pa + pb) / 2 + np.array([-seg[1], seg[0]]) / L * rng.normal(0, p.bend * L)
        path = _bezier(pa, c, pb)
        if _outside_distance(path, shape).min() > 4:
            continue
        if not all(_clean_crossing(path, r, q, rq, p.gap, tr) for q, rq, tr in curved_trees):
            continue
        inner = dense.add_points(path[1:-1], r)
        chain = np.concatenate([[a], inner, [b]])
        dense.add_chain(chain, r, r, group)
        node_r[a] = max(node_r[a], r)
        node_r[b] = max(node_r[b], r)
        group += 1
    dense.rad[0] = node_r
    for q, rq in curved:
        idx = dense.add_points(q, rq)
        dense.add_chain(idx, rq, rq, group)
        group += 1
    return dense, [q[0] for q, _ in curved]


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
