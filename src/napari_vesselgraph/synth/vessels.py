"""Vessel trees: the branch-by-branch grower of ``vessel2d``/``vessel3d`` centrelines and its parameters
(see :mod:`napari_vesselgraph.synth.geometry`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ._centrelines import _ball, _Dense, _Draws, _random_perp, _rotate_towards, _smooth_path, _unit


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
