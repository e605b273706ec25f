"""Shared pieces of the centreline growers: the dense graph builder, cheap scalar random draws and
small vector helpers (see :mod:`napari_vesselgraph.synth.geometry`).
"""

from __future__ import annotations

import math

import numpy as np


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
