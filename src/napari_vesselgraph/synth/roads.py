"""Road networks: the ``road2d`` grower (a jittered grid of curved streets plus long curved roads) and its
parameters (see :mod:`napari_vesselgraph.synth.geometry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._centrelines import _Dense, _outside_distance, _random_perp, _rotate_towards, _smooth_path, _unit


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
