"""Reading normalised patches from numpy, dask or zarr images.

The model was trained on images normalised as a whole (:meth:`PatchPredictor.prepare`: channel
conversion, then a percentile stretch over the whole image). Patches must see the same statistics
whatever part of the image they come from, so:

- ``"whole"``: the image is read once and ``predictor.prepare`` normalises all of it; patches are cut
  from the result. Used for numpy arrays up to ``WHOLE_LIMIT`` values and lazy (dask/zarr/...) arrays
  up to ``LAZY_WHOLE_LIMIT`` values.
- ``"tiles"``: for larger or lazy images only the windows are read. The intensity statistics
  (percentiles, or min/max) are computed once on a strided subsample of the whole image (at most
  ``STATS_SAMPLE`` values) and every tile is normalised with them, using the checkpoint's
  normalisation recipe (``predictor.input_meta`` + :func:`napari_vesselgraph.model.preprocess.normalize_image`);
  the luminance conversion is linear with weights summing to one, so stretching before or after it
  gives the same result. The subsample's statistics approximate the whole image's; in practice they
  differ by a fraction of a percent.
- A predictor without ``input_meta`` (or with an unknown normalisation method) gets ``prepare`` called
  on each tile on its own (``"per-tile"``; recorded in the graph metadata): a tile showing only
  background is then stretched like one full of vessels. Give such predictors a numpy image that fits
  in memory to avoid this.

Windows reaching outside the image (images smaller than a patch) are padded after normalisation
(``pad_mode``: ``"reflect"`` by default, ``"constant"`` for zeros, or ``"edge"``).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import VesselGraphError

WHOLE_LIMIT = 2**27  # values of a numpy image normalised in one go (512 MiB as float32)
LAZY_WHOLE_LIMIT = 2**24  # values of a lazy image read whole (64 MiB as float32)
STATS_SAMPLE = 2_000_000  # values in the strided subsample used for global statistics
PAD_MODES = ("reflect", "constant", "edge", "symmetric")


def is_lazy(array) -> bool:
    """Arrays not held in memory: dask, zarr, h5py, ... and memory-mapped files."""
    return not isinstance(array, np.ndarray) or isinstance(array, np.memmap)


def _is_dask(array) -> bool:
    return hasattr(array, "dask") and hasattr(array, "compute")


class ImageSource:
    """Spatial windows of an image, optionally one channel of its last axis, without loading it all.

    ``spatial_ndim`` is the number of spatial axes; the image has one more axis (channels last) when
    ``has_channels``. ``channel`` (int) picks one entry of the last axis at read time.
    """

    def __init__(self, array, spatial_ndim: int, has_channels: bool, channel: int | None = None):
        self.array = array
        self.spatial_ndim = int(spatial_ndim)
        self.has_channels = bool(has_channels)
        self.channel = channel
        self.shape = tuple(int(n) for n in array.shape[: self.spatial_ndim])
        self.lazy = is_lazy(array)

    @property
    def n_values(self) -> int:
        n = math.prod(self.shape)
        if self.has_channels:
            n *= int(self.array.shape[-1])
        return n

    def _index(self, spatial: tuple) -> tuple:
        idx = tuple(spatial)
        if self.channel is not None:
            idx = idx + (slice(None),) * (self.array.ndim - 1 - len(idx)) + (self.channel,)
        return idx

    def read(self, box: tuple[tuple[int, int], ...] | None = None, step: tuple[int, ...] | None = None) -> np.ndarray:
        """The raw pixels of ``box`` ((lo, hi) per spatial axis, inside the image) as numpy."""
        if box is None:
            box = tuple((0, n) for n in self.shape)
        step = step or (1,) * self.spatial_ndim
        sl = tuple(slice(lo, hi, s) for (lo, hi), s in zip(box, step))
        try:
            out = self.array[self._index(sl)]
            if _is_dask(out):
                # a few chunks: computed right here (also inside a dask worker, and whatever the default
                # scheduler is: a distributed Client would otherwise ship the pixels through the cluster)
                out = out.compute(scheduler="synchronous")
            return np.asarray(out)
        except (VesselGraphError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a chunk that cannot be read or decoded: one line, no traceback
            text = (str(e).strip().splitlines() or [""])[0][:200]
            where = ", ".join(f"{lo}:{hi}" for lo, hi in box)
            raise VesselGraphError(
                f"cannot read the image pixels [{where}] ({type(e).__name__}: {text}); the file may be damaged"
            ) from None


def _sample_step(source: ImageSource, budget: int = STATS_SAMPLE) -> tuple[int, ...] | None:
    """The stride per spatial axis of a sample of at most about ``budget`` values (None: the whole image)."""
    n = source.n_values
    if n <= budget:
        return None
    k = math.ceil((n / budget) ** (1.0 / source.spatial_ndim))
    return tuple(min(k, max(1, s)) for s in source.shape)


def _strided_sample(source: ImageSource, budget: int = STATS_SAMPLE) -> np.ndarray:
    step = _sample_step(source, budget)
    return source.read() if step is None else source.read(step=step)


#: ``inference.support``'s ``brightness`` is 1 at this percentile of the image (its brightest structures), 0 at the median
BRIGHT_PERCENTILE = 99.99


def brightness_reference(sample: np.ndarray, source: ImageSource) -> tuple[float, float]:
    """``(median, BRIGHT_PERCENTILE percentile)`` of raw pixels ``sample`` of ``source`` (channels last when it has
    them, averaged): the stretch of ``inference.support.edge_brightness`` (and of ``graph_brightness``)."""
    sample = np.asarray(sample, np.float32)
    if source.has_channels and source.channel is None:
        sample = sample.mean(axis=-1)
    lo, hi = np.percentile(sample, (50.0, BRIGHT_PERCENTILE))
    return float(lo), float(hi)


def _strided_view(raw: np.ndarray, source: ImageSource, budget: int = STATS_SAMPLE) -> np.ndarray:
    """The :func:`_strided_sample` of an image already read whole (``raw``), as a view."""
    step = _sample_step(source, budget)
    return raw if step is None else raw[tuple(slice(None, None, k) for k in step)]


_UNSET = object()


class PatchReader:
    """Normalised ``(C, *patch)`` float32 windows of an :class:`ImageSource` for a predictor.

    Windows are read one by one (:meth:`read`) or cut from a box read once (:meth:`read_box` then
    :meth:`cut`, what tiled prediction does: one read per tile instead of one per window). ``stats``:
    the ``(lo, hi)`` of :func:`global_stats` computed elsewhere (a distributed client sends them to its
    workers), used with ``mode="tiles"`` instead of sampling the image again (``None``: per tile).
    """

    def __init__(self, source: ImageSource, predictor, mode: str = "auto", pad_mode: str = "reflect", stats=_UNSET):
        if pad_mode not in PAD_MODES:
            raise VesselGraphError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        if mode not in ("auto", "whole", "tiles"):
            raise VesselGraphError(f"normalize must be 'auto', 'whole' or 'tiles', got {mode!r}")
        self.source = source
        self.predictor = predictor
        self.pad_mode = pad_mode
        if mode == "auto":
            limit = LAZY_WHOLE_LIMIT if source.lazy else WHOLE_LIMIT
            mode = "whole" if source.n_values <= limit else "tiles"
        self.mode = mode
        self._prepared = None
        self._stats = None
        #: ``inference.support.brightness_stats`` of the raw image, from the pixels read here (None: not read)
        self.brightness_stats = None
        if mode == "whole":
            raw = source.read()
            self.brightness_stats = brightness_reference(_strided_view(raw, source), source)
            self._prepared = self._prepare(raw)
            self.normalization = "whole image"
        else:
            if stats is _UNSET:
                sample = _strided_sample(source)
                self.brightness_stats = brightness_reference(sample, source)
                self._stats = global_stats(predictor, sample)
            else:
                self._stats = stats
            self.normalization = (
                "global statistics from a strided subsample, applied per tile"
                if self._stats is not None
                else "per tile"
            )

    def _prepare(self, raw: np.ndarray) -> np.ndarray:
        out = np.asarray(self.predictor.prepare(raw), dtype=np.float32)
        if out.ndim != self.source.spatial_ndim + 1:
            raise VesselGraphError(
                f"predictor.prepare returned shape {out.shape}; expected (C, *spatial) for a "
                f"{self.source.spatial_ndim}D image"
            )
        return out

    def _normalize_tile(self, raw: np.ndarray) -> np.ndarray:
        if self._stats is None:
            return self._prepare(raw)
        return apply_stats(self.predictor, raw, self._stats)

    @property
    def stats(self):
        """The global ``(lo, hi)`` used for every tile (``None``: whole-image or per-tile normalisation)."""
        return self._stats

    @property
    def per_window(self) -> bool:
        """True when each window is normalised on its own (a predictor without ``input_meta``)."""
        return self._prepared is None and self._stats is None

    def read_box(self, box: tuple[tuple[int, int], ...]) -> np.ndarray:
        """The box ``((lo, hi), ...)`` (inside the image) ready for :meth:`cut`: normalised ``(C, *box)``
        float32, or the raw pixels when windows are normalised one by one (:attr:`per_window`)."""
        box = tuple((int(lo), int(hi)) for lo, hi in box)
        if self._prepared is not None:
            return self._prepared[(slice(None),) + tuple(slice(lo, hi) for lo, hi in box)]
        raw = self.source.read(box)
        if self._stats is None:
            return raw
        return np.asarray(apply_stats(self.predictor, raw, self._stats), dtype=np.float32)

    def cut(self, data: np.ndarray, box, start: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
        """Window ``[start, start + size)`` from ``data = read_box(box)``; its part inside the image must lie
        in ``box``. Normalised and padded exactly as :meth:`read` does."""
        inner, pads = [], []
        for (blo, bhi), s, p, n in zip(box, start, size, self.source.shape):
            lo, hi = max(s, 0), min(s + p, n)
            if lo < blo or hi > bhi:
                raise ValueError(f"window {tuple(start)} + {tuple(size)} is not inside the box {tuple(box)}")
            inner.append(slice(lo - blo, hi - blo))
            pads.append((lo - s, s + p - hi))
        if self.per_window:
            tile = self._prepare(np.asarray(data[tuple(inner)]))
        else:
            tile = data[(slice(None),) + tuple(inner)]
        return self._pad(tile, pads)

    def read(self, start: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
        """Window ``[start, start + size)`` (may reach outside the image) normalised and padded."""
        box, pads = [], []
        for s, p, n in zip(start, size, self.source.shape):
            lo, hi = max(s, 0), min(s + p, n)
            box.append((lo, hi))
            pads.append((lo - s, s + p - hi))
        if self._prepared is not None:
            sl = (slice(None),) + tuple(slice(lo, hi) for lo, hi in box)
            tile = self._prepared[sl]
        else:
            tile = self._normalize_tile(self.source.read(tuple(box)))
        return self._pad(tile, pads)

    def _pad(self, tile: np.ndarray, pads) -> np.ndarray:
        if any(a or b for a, b in pads):
            kw = {"constant_values": 0.0} if self.pad_mode == "constant" else {}
            tile = np.pad(tile, [(0, 0)] + pads, mode=self.pad_mode, **kw)
        return np.ascontiguousarray(tile, dtype=np.float32)


# ------------------------------------------------------------------ global statistics
def global_stats(predictor, sample: np.ndarray):
    """``(lo, hi)`` intensity bounds the checkpoint's normalisation would use for the image ``sample``
    comes from, or ``None`` when the predictor does not describe its normalisation (``input_meta``)."""
    meta = getattr(predictor, "input_meta", None)
    if not isinstance(meta, dict):
        return None
    method = meta.get("method", "percentile")
    if method == "none":
        return (0.0, 1.0)
    if method not in ("percentile", "minmax"):
        return None
    from ..model.preprocess import normalize_image

    s = np.asarray(sample, dtype=np.float64)
    finite = np.isfinite(s)
    if not finite.any():
        return (0.0, 1.0)
    mn, mx = float(s[finite].min()), float(s[finite].max())
    span = (mx - mn) or 1.0
    unit = np.where(finite, (s - mn) / span, 0.0)  # in [0, 1]: the recipe's clip does nothing
    conv = normalize_image(unit, {**meta, "method": "none", "invert": False}).astype(np.float64).ravel()
    if method == "percentile":
        plo, phi = np.percentile(conv, [float(meta.get("low", 1.0)), float(meta.get("high", 99.5))])
    else:
        plo, phi = float(conv.min()), float(conv.max())
    lo, hi = mn + plo * span, mn + phi * span
    if method == "percentile" and hi - lo < 1e-8:
        hi = lo + 1.0
    if method == "minmax" and hi - lo < 1e-8:
        hi = lo + 1e-8
    return (float(lo), float(hi))


def apply_stats(predictor, raw: np.ndarray, stats) -> np.ndarray:
    """Normalise a tile with given ``(lo, hi)`` following the predictor's recipe (channels, clip, invert)."""
    from ..model.preprocess import normalize_image

    lo, hi = stats
    meta = predictor.input_meta
    x = (np.asarray(raw, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return normalize_image(x, {**meta, "method": "none"})
