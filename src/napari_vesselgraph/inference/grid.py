"""Sliding-window layout: where the patches go and which part of each patch is its *core*.

All coordinates are integer pixels in napari axis order. A window is ``[start, start + patch)`` along
each axis; ``start`` may be negative (or ``start + patch`` beyond the image) when the image is smaller
than a patch: the reader pads those parts.

The *core* of a window is the part of space that window is responsible for when the patch graphs
are stitched: along each axis the boundary between two neighbouring windows lies half-way between
their centres (the middle of their overlap), and the outermost windows own everything beyond them.
The cores of all windows therefore partition space exactly: every point belongs to one core.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import VesselGraphError


def axis_starts(lo: int, hi: int, patch: int, overlap: float, length: int) -> list[int]:
    """Window starts along one axis so that windows of size ``patch`` cover ``[lo, hi)``.

    ``length`` is the image size along the axis (windows stay inside ``[0, length)`` where they can).
    Consecutive windows overlap by at least ``overlap * patch`` pixels; the first window starts at
    ``lo`` and the last ends flush with ``hi``; the rest are spread evenly in between.
    When ``hi - lo`` is smaller than a patch, one window is centred on the range and moved inside the
    image if the image is large enough, or centred on the image (reaching outside it) if not.
    """
    if patch < 1:
        raise VesselGraphError(f"patch size must be at least 1 pixel, got {patch}")
    if not 0.0 <= overlap < 1.0:
        raise VesselGraphError(f"overlap must be in [0, 1), got {overlap}")
    extent = hi - lo
    if extent <= 0:
        raise VesselGraphError(f"empty range [{lo}, {hi})")
    if extent <= patch:
        if length >= patch:
            start = math.floor((lo + hi) / 2 - patch / 2)
            return [min(max(start, 0), length - patch)]
        return [-((patch - length) // 2)]
    stride = max(1, math.floor(patch * (1.0 - overlap)))
    n = math.ceil((extent - patch) / stride) + 1
    return [round(s) for s in np.linspace(lo, hi - patch, n)]


def axis_cores(starts: list[int], patch: int) -> list[tuple[float, float]]:
    """Core interval ``[a, b)`` of each window along one axis (outermost ones open to infinity)."""
    bounds = [-math.inf] + [(s0 + s1 + patch) / 2.0 for s0, s1 in itertools.pairwise(starts)] + [math.inf]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


@dataclass
class WindowGrid:
    """The windows of a sliding-window prediction (see :func:`sliding_window`)."""

    shape: tuple[int, ...]  # spatial image shape
    patch_size: tuple[int, ...]
    overlap: float
    region: tuple[tuple[int, int], ...]  # (lo, hi) per axis that the prediction covers
    starts: list[tuple[int, ...]] = field(default_factory=list)
    core_lo: np.ndarray = None  # type: ignore[assignment]  (n_windows, D) float, -inf allowed
    core_hi: np.ndarray = None  # type: ignore[assignment]
    axis_starts: tuple[list[int], ...] = ()

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def window_slices(self, i: int) -> tuple[slice, ...]:
        """The window's box in image coordinates (may reach outside the image)."""
        return tuple(slice(s, s + p) for s, p in zip(self.starts[i], self.patch_size))

    @property
    def needs_clip(self) -> bool:
        """True when some window reaches outside the region, so results must be cut to it."""
        for (lo, hi), starts, p in zip(self.region, self.axis_starts, self.patch_size):
            if min(starts) < lo or max(starts) + p > hi:
                return True
        return False

    def coverage(self) -> np.ndarray:
        """How many windows cover each pixel of the region (for checks and tests; small images only)."""
        cov = np.zeros(tuple(hi - lo for lo, hi in self.region), dtype=np.int32)
        for i in range(len(self)):
            sl = []
            for (lo, hi), s, p in zip(self.region, self.starts[i], self.patch_size):
                a, b = max(s, lo) - lo, min(s + p, hi) - lo
                sl.append(slice(a, max(a, b)))
            cov[tuple(sl)] += 1
        return cov

    def core_owner(self, points: np.ndarray) -> np.ndarray:
        """Index of the window whose core contains each point (N, D) (for checks and tests)."""
        pts = np.asarray(points, dtype=float)
        inside = np.all((pts[:, None, :] >= self.core_lo[None]) & (pts[:, None, :] < self.core_hi[None]), axis=2)
        return np.argmax(inside, axis=1)


def normalize_region(region, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Turn ``region`` into ``((lo, hi), ...)`` per spatial axis, inside the image.

    Accepted forms: ``None`` (whole image); a tuple of slices, one per spatial axis (``None`` or
    ``slice(None)`` for a whole axis; negative indices count from the end; no steps); or a
    ``(start, stop)`` box where ``start`` and ``stop`` each hold one integer per axis (a 2 x D array
    works too). A pair of pairs in 2D, e.g. ``((10, 20), (50, 80))``, is read as ``(start, stop)``:
    rows 10..50 and columns 20..80.
    """
    d = len(shape)
    if region is None:
        return tuple((0, int(n)) for n in shape)
    if isinstance(region, slice):
        region = (region,)
    items = list(region)
    if items and all(isinstance(r, slice) or r is None or r is Ellipsis for r in items):
        if any(r is Ellipsis for r in items):
            k = items.index(Ellipsis)
            items = items[:k] + [slice(None)] * (d - len(items) + 1) + items[k + 1 :]
        if len(items) > d:
            raise VesselGraphError(f"region has {len(items)} slices but the image has {d} spatial axes")
        items = items + [slice(None)] * (d - len(items))
        out = []
        for ax, (sl, n) in enumerate(zip(items, shape)):
            sl = slice(None) if sl is None else sl
            if sl.step not in (None, 1):
                raise VesselGraphError("region slices cannot have a step")
            lo, hi, _ = sl.indices(int(n))
            out.append((lo, hi))
    else:
        try:
            arr = np.asarray(region, dtype=float)
        except (TypeError, ValueError):
            raise VesselGraphError(
                "region must be a tuple of slices or a (start, stop) box with one value per axis"
            ) from None
        if arr.shape != (2, d):
            raise VesselGraphError(
                f"region must be a tuple of slices or a (start, stop) box of {d} values each, got shape {arr.shape}"
            )
        out = []
        for ax in range(d):
            lo, hi, _ = slice(math.floor(arr[0, ax]), math.ceil(arr[1, ax])).indices(int(shape[ax]))
            out.append((lo, hi))
    for ax, (lo, hi) in enumerate(out):
        if hi <= lo:
            raise VesselGraphError(f"region is empty along axis {ax} ({lo}..{hi} in an image of size {shape[ax]})")
    return tuple(out)


def sliding_window(shape, patch_size, overlap: float = 0.25, region=None) -> WindowGrid:
    """Windows of ``patch_size`` covering ``region`` (default: the whole image) of an image of ``shape``.

    Neighbouring windows overlap by at least ``overlap`` of a patch; the last window along each axis is
    flush with the border of the region; the windows are spread evenly between. Images (or regions)
    smaller than a patch get one window along that axis (padded by the reader where it leaves the image).
    """
    shape = tuple(int(n) for n in shape)
    patch_size = tuple(int(p) for p in np.broadcast_to(np.asarray(patch_size), (len(shape),)))
    if any(n < 1 for n in shape):
        raise VesselGraphError(f"the image is empty (shape {shape})")
    reg = normalize_region(region, shape)
    per_axis = tuple(axis_starts(lo, hi, p, overlap, n) for (lo, hi), p, n in zip(reg, patch_size, shape))
    per_axis_cores = [axis_cores(s, p) for s, p in zip(per_axis, patch_size)]
    starts, lo, hi = [], [], []
    for combo in itertools.product(*[range(len(s)) for s in per_axis]):
        starts.append(tuple(per_axis[a][k] for a, k in enumerate(combo)))
        lo.append([per_axis_cores[a][k][0] for a, k in enumerate(combo)])
        hi.append([per_axis_cores[a][k][1] for a, k in enumerate(combo)])
    return WindowGrid(
        shape=shape,
        patch_size=patch_size,
        overlap=float(overlap),
        region=reg,
        starts=starts,
        core_lo=np.asarray(lo, dtype=float).reshape(-1, len(shape)),
        core_hi=np.asarray(hi, dtype=float).reshape(-1, len(shape)),
        axis_starts=per_axis,
    )


# ------------------------------------------------------------------ tiles: blocks of neighbouring windows
DEFAULT_TILE_SIZE = {2: 1024, 3: 192}  # pixels per axis of the box a tile reads


@dataclass(frozen=True)
class Tile:
    """A block of neighbouring windows read in one go: the unit of work of tiled (and distributed) prediction.

    ``windows``: indices into the grid (ascending); ``box``: ``((lo, hi), ...)`` per axis, the part of the
    image those windows cover (clipped to the image: parts of windows outside it are padded by the reader).
    """

    index: int
    windows: tuple[int, ...]
    box: tuple[tuple[int, int], ...]

    @property
    def n_pixels(self) -> int:
        return math.prod(hi - lo for lo, hi in self.box)


def _axis_groups(starts: list[int], patch: int, tile: int) -> list[list[int]]:
    """Consecutive windows along one axis grouped so that each group spans at most ``tile`` pixels
    (at least one window per group)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    for k, s in enumerate(starts):
        if cur and s + patch - starts[cur[0]] > tile:
            groups.append(cur)
            cur = []
        cur.append(k)
    if cur:
        groups.append(cur)
    return groups


def make_tiles(grid: WindowGrid, tile_size=None) -> list[Tile]:
    """Group the windows of ``grid`` into tiles: boxes of at most ``tile_size`` pixels per axis (an int for
    every axis or one per axis; default :data:`DEFAULT_TILE_SIZE`; a box is never smaller than one patch).

    Every window belongs to exactly one tile; tiles are numbered in raster order and their windows listed
    in grid order.
    """
    d = grid.ndim
    if tile_size is None:
        tile_size = DEFAULT_TILE_SIZE.get(d, 256)
    sizes = tuple(int(t) for t in np.broadcast_to(np.asarray(tile_size), (d,)))
    if any(t < 1 for t in sizes):
        raise VesselGraphError(f"tile_size must be a positive number of pixels, got {tile_size!r}")
    per_axis = [_axis_groups(list(st), p, max(t, p)) for st, p, t in zip(grid.axis_starts, grid.patch_size, sizes)]
    counts = [len(st) for st in grid.axis_starts]
    tiles: list[Tile] = []
    for combo in itertools.product(*per_axis):
        multi = np.stack(np.meshgrid(*[np.asarray(g) for g in combo], indexing="ij"), -1).reshape(-1, d)
        flat = np.ravel_multi_index(tuple(multi.T), counts)
        box = []
        for a, g in enumerate(combo):
            st = grid.axis_starts[a]
            lo = max(0, st[g[0]])
            hi = min(grid.shape[a], st[g[-1]] + grid.patch_size[a])
            box.append((int(lo), int(max(hi, lo))))
        tiles.append(Tile(len(tiles), tuple(int(i) for i in np.sort(flat)), tuple(box)))
    return tiles
