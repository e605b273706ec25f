"""The plan of one model prediction, whatever runs its windows.

:func:`napari_vesselgraph.inference.predict` (windows run here, tile by tile) and
:func:`napari_vesselgraph.inference.distributed.predict_distributed` (tiles run on dask workers) do the same
things in the same order, and both take them from here:

1. the caller's options are checked into a :class:`PredictOptions` (:meth:`PredictOptions.from_call`: the
   keyword arguments of ``predict``; unknown ones are refused with the list of known ones);
2. the image is opened (:func:`open_image`, :func:`as_array`) and its layout read (:func:`image_layout`);
3. :meth:`PredictionPlan.build` resolves the thresholds (the call's, else the checkpoint's, else 0.5) and the
   clean-up (:class:`~napari_vesselgraph.inference.postprocess.CleanupSettings`: the defaults, then the
   checkpoint's ``meta["postprocess"]``, then the call's), and lays out the window grid, the tiles, the region
   box and the metadata of the result;
4. the windows of each tile are cut into batches (:func:`tile_batches`), predicted, and merged by the plan's
   :meth:`PredictionPlan.stitcher`;
5. :meth:`PredictionPlan.finish` applies the thresholds and the clean-up
   (:func:`~napari_vesselgraph.inference.postprocess.finish_graph`), or keeps the raw candidates.

The model side of a plan is anything with ``ndim``, ``patch_size`` and ``meta``: a loaded
:class:`~napari_vesselgraph.model.predictor.PatchPredictor`, or the client's
:class:`~napari_vesselgraph.inference.distributed.CheckpointInfo` (no model loaded).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, VesselGraphError
from ..graph import VesselGraph
from .grid import Tile, WindowGrid, make_tiles, normalize_region, sliding_window
from .postprocess import CleanupSettings, finish_graph
from .reader import PAD_MODES, ImageSource
from .stitch import DEFAULT_MERGE_RADIUS, StreamingStitcher

METHODS = ("model", "skeleton")
NORMALIZE_MODES = ("auto", "whole", "tiles")


# ------------------------------------------------------------------ the image
def is_multiscale(image) -> bool:
    """A napari multiscale image: ``MultiScaleData`` or a list/tuple of arrays, largest first."""
    if type(image).__name__ == "MultiScaleData":
        return True
    if isinstance(image, (list, tuple)) and len(image) > 1:
        levels = [a for a in image if hasattr(a, "shape") and hasattr(a, "dtype") and len(a.shape) >= 2]
        if len(levels) == len(image):
            shapes = [tuple(int(n) for n in a.shape) for a in levels]
            same_rank = all(len(sh) == len(shapes[0]) for sh in shapes)
            return (
                same_rank
                and all(all(x >= y for x, y in zip(a, b)) for a, b in itertools.pairwise(shapes))
                and shapes[0] != shapes[-1]
            )
    return False


def open_image(image):
    """``(array, path, file_scale)`` for what ``predict`` accepts as an image.

    A path (str or ``os.PathLike``) is opened lazily with :func:`napari_vesselgraph.io.load_image`
    (``lazy=True``: Zarr/OME-Zarr as dask arrays, TIFF and ``.npy`` memory-mapped or through Zarr;
    ``file_scale`` is the voxel size the file records); a napari multiscale
    image (a list of levels, largest first) gives its full-resolution level; anything else is returned
    as it is.
    """
    import os

    if isinstance(image, (str, os.PathLike)):
        from ..io import load_image

        arr, file_scale = load_image(image, lazy=True)
        return arr, os.fspath(image), tuple(file_scale)
    if is_multiscale(image):
        return image[0], None, None
    return image, None, None


def as_array(image):
    """``image`` as an array-like that can be read window by window (numpy, dask, zarr, ...), checked: not
    empty, numbers or booleans, 2D to 4D."""
    if image is None:
        raise VesselGraphError("no image given")
    if isinstance(image, np.ndarray):
        arr = image
    elif hasattr(image, "shape") and hasattr(image, "dtype") and hasattr(image, "__getitem__"):
        arr = image  # dask, zarr, h5py, ...: read window by window
    else:
        try:
            arr = np.asarray(image)
        except (TypeError, ValueError):
            raise VesselGraphError(f"cannot use an object of type {type(image).__name__} as an image") from None
    shape = tuple(int(n) for n in arr.shape)
    if len(shape) == 0 or math.prod(shape) == 0:
        raise VesselGraphError(f"the image is empty (shape {shape})")
    kind = np.dtype(arr.dtype).kind
    if kind not in "biuf":
        raise VesselGraphError(f"cannot predict on an image of dtype {arr.dtype} (numbers or booleans expected)")
    if len(shape) == 1:
        raise VesselGraphError(f"the image is 1D (shape {shape}); a 2D image or a 3D volume is needed")
    if len(shape) > 4:
        raise VesselGraphError(
            f"the image is {len(shape)}D (shape {shape}); pick a single time point / channel first "
            "so that a 2D image (Y, X), an RGB image (Y, X, 3) or a volume (Z, Y, X) is left"
        )
    return arr


def looks_rgb(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4


def image_layout(shape: tuple[int, ...], model_ndim: int | None, channel) -> tuple[int, bool, bool]:
    """``(spatial_ndim, has_channels, select_channel)`` for an image of ``shape``.

    ``model_ndim`` is the checkpoint's dimensionality (``None`` for the skeleton baseline: guessed from
    the image). ``channel`` picks one entry of the last axis.
    """
    nd = len(shape)
    if channel is not None:
        if not isinstance(channel, (int, np.integer)) or isinstance(channel, bool):
            raise VesselGraphError(f"channel must be an integer index into the last axis, got {channel!r}")
        if nd < 3:
            raise VesselGraphError(
                f"channel={channel} was given but the image is 2D (shape {shape}): it has no channel axis"
            )
        if not -shape[-1] <= int(channel) < shape[-1]:
            raise VesselGraphError(
                f"channel={channel} is out of range: the last axis of the image (shape {shape}) has {shape[-1]} entries"
            )
        if shape[-1] > 16:
            raise VesselGraphError(
                f"channel picks an entry of the last axis, but the last axis of the image (shape {shape}) has "
                f"{shape[-1]} entries, which looks like a spatial axis; pick a plane / time point first"
            )
        spatial = shape[:-1]
        sel = True
        has_ch = False
    else:
        spatial = shape
        sel = False
        has_ch = False
        if nd == 4:
            raise VesselGraphError(
                f"the image is 4D (shape {shape}); pick a single time point (e.g. image[t]) or a channel "
                "(channel=...) first"
            )
        if nd == 3 and (model_ndim == 2 or (model_ndim is None and looks_rgb(shape))) and shape[-1] <= 4:
            spatial, has_ch = shape[:-1], True
    snd = len(spatial)
    if model_ndim == 3 and snd == 3 and not sel and looks_rgb(shape):
        raise VesselGraphError(
            f"this checkpoint is 3D but the image looks like a 2D colour image (shape {shape}); use a 2D checkpoint"
        )
    if model_ndim is not None and snd != model_ndim:
        if model_ndim == 2:
            hint = " (if the first axis holds colour channels, move it last)" if snd == 3 and shape[0] <= 4 else ""
            raise VesselGraphError(
                f"this checkpoint is 2D but the image is {snd}D (shape {shape}); pick a single slice "
                f"(e.g. image[z]) or use a 3D checkpoint{hint}"
            )
        raise VesselGraphError(
            f"this checkpoint is 3D but the image is {snd}D (shape {shape}); use a 2D checkpoint or a volume (Z, Y, X)"
        )
    if snd not in (2, 3):
        raise VesselGraphError(f"cannot predict on an image of shape {shape}")
    return snd, has_ch, sel


def check_scale(scale, ndim: int) -> tuple[float, ...] | None:
    """``scale`` as one positive number per spatial axis (one number is repeated), or None."""
    if scale is None:
        return None
    s = np.ravel(np.asarray(scale, dtype=float))
    if s.size == 1:
        s = np.repeat(s, ndim)
    if s.size != ndim:
        raise VesselGraphError(f"scale has {s.size} values but the image has {ndim} spatial axes")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise VesselGraphError(f"scale must be positive, got {tuple(s)}")
    return tuple(float(v) for v in s)


def check_threshold(v, what: str) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise VesselGraphError(f"{what} must be a number in [0, 1], got {v!r}") from None
    if not 0.0 <= v <= 1.0:
        raise VesselGraphError(f"{what} must be in [0, 1], got {v}")
    return v


def check_cancel(cancel) -> None:
    """Raise :class:`~napari_vesselgraph.errors.Cancelled` when the cancel token is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("prediction cancelled")


# ------------------------------------------------------------------ the checkpoint
def default_checkpoint(shape: tuple[int, ...], channel):
    """A bundled checkpoint matching a 3D volume when none is named (``None``: the default 2D one)."""
    nd = len(shape) - (1 if channel is not None else 0)
    if nd != 3 or (channel is None and looks_rgb(shape)):
        return None
    try:
        from ..checkpoints import checkpoint_ndim, list_bundled

        for entry in list_bundled():
            if checkpoint_ndim(entry.get("meta") or {}) == 3:
                return entry["name"]
    except (OSError, ValueError, TypeError, KeyError, VesselGraphError):  # keep the clearer ndim error later
        return None
    return None


def checkpoint_name(checkpoint, model) -> str:
    """The name the result records for the checkpoint of ``model`` (a predictor or a ``CheckpointInfo``)."""
    meta = getattr(model, "meta", None) or {}
    if meta.get("name"):
        return str(meta["name"])
    if meta.get("path"):
        return Path(str(meta["path"])).stem
    if checkpoint is not None:
        return Path(str(checkpoint)).stem
    return type(model).__name__


# ------------------------------------------------------------------ options
@dataclass(frozen=True)
class PredictOptions:
    """What the caller asked of a model prediction, checked (``predict``'s keyword arguments).

    ``node_threshold`` / ``edge_threshold``: ``None`` means the checkpoint's (see :meth:`PredictionPlan.build`).
    ``cleanup``: the call's clean-up settings (fields of
    :class:`~napari_vesselgraph.inference.postprocess.CleanupSettings`, and ``postprocess=False`` for none);
    the checkpoint's own settings come between the defaults and these. Every other field is documented in
    :func:`napari_vesselgraph.inference.predict`.
    """

    node_threshold: float | None = None
    edge_threshold: float | None = None
    overlap: float = 0.25
    batch_size: int = 8
    merge_radius: float = DEFAULT_MERGE_RADIUS
    pad_mode: str = "reflect"
    normalize: str = "auto"
    skip_empty: bool = True
    drop_isolated: bool = False
    prefetch: bool = True
    tile_size: int | None = None
    cleanup: Mapping[str, Any] = field(default_factory=dict)

    #: the fields given as predict's own arguments; the others come through ``**method_params``
    CALL_ARGS = ("node_threshold", "edge_threshold", "overlap", "batch_size")

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("node_threshold", "edge_threshold"):
            v = getattr(self, name)
            put(name, None if v is None else check_threshold(v, name))
        try:
            overlap = float(self.overlap)
        except (TypeError, ValueError):
            raise VesselGraphError(f"overlap must be a number in [0, 1), got {self.overlap!r}") from None
        if not 0.0 <= overlap < 1.0:
            raise VesselGraphError(f"overlap must be in [0, 1), got {overlap}")
        put("overlap", overlap)
        try:
            batch_size = int(self.batch_size)
        except (TypeError, ValueError):
            batch_size = 0
        if batch_size < 1:
            raise VesselGraphError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        put("batch_size", batch_size)
        try:
            put("merge_radius", float(self.merge_radius))
        except (TypeError, ValueError):
            raise VesselGraphError(f"merge_radius must be a number of pixels, got {self.merge_radius!r}") from None
        if self.pad_mode not in PAD_MODES:
            raise VesselGraphError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.normalize not in NORMALIZE_MODES:
            raise VesselGraphError(f"normalize must be 'auto', 'whole' or 'tiles', got {self.normalize!r}")
        for name in ("skip_empty", "drop_isolated", "prefetch"):
            put(name, bool(getattr(self, name)))
        cleanup = {k: v for k, v in dict(self.cleanup or {}).items() if v is not None}
        CleanupSettings.resolve(cleanup)  # checks names and values now, before a model is loaded
        put("cleanup", cleanup)

    @classmethod
    def method_params(cls) -> tuple[str, ...]:
        """The names ``predict`` accepts in ``**method_params`` for the model method."""
        own = tuple(f.name for f in fields(cls) if f.name not in cls.CALL_ARGS and f.name != "cleanup")
        return (*own, "postprocess", *CleanupSettings.names())

    @classmethod
    def from_call(
        cls, node_threshold=None, edge_threshold=None, overlap=0.25, batch_size=8, **method_params
    ) -> PredictOptions:
        """The options of a ``predict(...)`` call; refuses names it does not know, listing those it does."""
        known = cls.method_params()
        unknown = sorted(set(method_params) - set(known))
        if unknown:
            raise VesselGraphError(
                f"unknown option(s) for method 'model': {', '.join(unknown)} (known: {', '.join(known)})"
            )
        cleanup_names = {"postprocess", *CleanupSettings.names()}
        own = {k: v for k, v in method_params.items() if k not in cleanup_names}
        cleanup = {k: v for k, v in method_params.items() if k in cleanup_names}
        return cls(
            node_threshold=node_threshold, edge_threshold=edge_threshold, overlap=overlap, batch_size=batch_size,
            cleanup=cleanup, **own,
        )  # fmt: skip


#: the names of ``predict``'s ``**method_params`` for the model method (derived from the dataclasses)
MODEL_PARAMS = PredictOptions.method_params()


# ------------------------------------------------------------------ the plan
@dataclass
class PredictionPlan:
    """Everything about one prediction that does not depend on where its windows run."""

    options: PredictOptions
    node_threshold: float
    edge_threshold: float
    cleanup: CleanupSettings
    source: ImageSource
    spatial_ndim: int
    has_channels: bool
    channel: int | None
    scale: tuple[float, ...] | None
    patch: tuple[int, ...]
    region: list[tuple[int, int]]
    grid: WindowGrid
    tiles: list[Tile]
    box: tuple[np.ndarray, np.ndarray] | None
    meta: dict
    #: extra keyword arguments of the model's ``predict_batch`` (see :func:`candidate_kwargs`)
    predict_kwargs: dict = field(default_factory=dict)

    @classmethod
    def build(cls, arr, shape, model, checkpoint, scale, region, channel, options: PredictOptions) -> PredictionPlan:
        """The plan for ``arr`` (of ``shape``) and ``model`` (anything with ``ndim``, ``patch_size``, ``meta``).

        Thresholds: the options' when given, else the checkpoint's ``meta["thresholds"]``, else 0.5. Clean-up:
        :meth:`CleanupSettings.resolve` of the options over the checkpoint's settings.
        """
        from ..checkpoints import checkpoint_thresholds

        pmeta = getattr(model, "meta", None) or {}
        recorded_node, recorded_edge = checkpoint_thresholds(pmeta)
        nt = options.node_threshold if options.node_threshold is not None else recorded_node
        et = options.edge_threshold if options.edge_threshold is not None else recorded_edge
        nt, et = check_threshold(nt, "node_threshold"), check_threshold(et, "edge_threshold")
        cleanup = CleanupSettings.resolve(dict(options.cleanup), pmeta)
        model_ndim = int(model.ndim)
        snd, has_ch, sel = image_layout(shape, model_ndim, channel)
        scale_nd = check_scale(scale, snd)
        patch = tuple(int(p) for p in model.patch_size)
        if len(patch) != snd:
            raise VesselGraphError(f"the predictor's patch size {patch} does not match its {model_ndim}D model")
        ch = int(channel) if sel else None
        source = ImageSource(arr, snd, has_ch, ch)
        reg = normalize_region(region, source.shape)
        grid = sliding_window(source.shape, patch, options.overlap, tuple(slice(lo, hi) for lo, hi in reg))
        tiles = make_tiles(grid, options.tile_size)
        box = None
        if grid.needs_clip:  # cut the graph at the first / last pixel of the region (or of the image)
            box = (np.array([lo for lo, _ in reg], float), np.array([hi for _, hi in reg], float) - 1.0)
        meta = {
            "method": "model",
            "checkpoint": checkpoint_name(checkpoint, model),
            "checkpoint_path": str(pmeta.get("path", checkpoint or "")) or None,
            "domain": pmeta.get("domain"),
            "node_threshold": nt,
            "edge_threshold": et,
            "patch_size": list(patch),
            "overlap": options.overlap,
            "n_patches": len(grid),
            "n_tiles": len(tiles),
            "merge_radius": options.merge_radius,
            "image_shape": list(shape),
            "spatial_shape": list(source.shape),
            "region": [list(r) for r in reg] if region is not None else None,
            "channel": ch,
            "pad_mode": options.pad_mode,
            "postprocess": cleanup.to_dict(),
        }
        kwargs, candidates = candidate_kwargs(model, nt)
        if candidates:
            meta["candidates"] = candidates
        return cls(
            options=options, node_threshold=nt, edge_threshold=et, cleanup=cleanup, source=source,
            spatial_ndim=snd, has_channels=has_ch, channel=ch, scale=scale_nd, patch=patch, region=reg, grid=grid,
            tiles=tiles, box=box, meta=meta, predict_kwargs=kwargs,
        )  # fmt: skip

    def stitcher(self) -> StreamingStitcher:
        """An empty stitcher for the plan's windows (its metadata is the plan's)."""
        return StreamingStitcher.for_grid(
            self.grid, self.options.merge_radius, region_box=self.box, scale=self.scale, metadata=self.meta
        )

    def finish(self, raw: VesselGraph, keep_raw: bool, t_start: float) -> VesselGraph:
        """The result: the raw candidates (``keep_raw``), or the thresholded, cleaned-up graph."""
        if keep_raw:
            out = raw
            out.metadata.update(raw=True)
        else:
            out = finish_graph(
                raw, self.node_threshold, self.edge_threshold, self.cleanup, drop_isolated=self.options.drop_isolated
            )
        out.metadata["elapsed_s"] = round(time.perf_counter() - t_start, 3)
        return out


def candidate_kwargs(model, node_threshold: float) -> tuple[dict, dict]:
    """``(kwargs, record)`` for a prediction with ``node_threshold``: ``kwargs`` for the model's ``predict_batch``
    and ``record``, the candidate selection the result's metadata records (``node_floor``, ``pair_radius``).

    A checkpoint may drop node candidates below a floor before scoring pairs
    (:mod:`napari_vesselgraph.model.predictor`); when the node threshold asked for is lower, the floor is lowered
    to it (``{"node_floor": node_threshold}``), so a threshold always sees every candidate above it. Models that
    say nothing about candidates (no ``node_floor`` attribute, no ``meta["candidates"]``) get ``({}, {})``. A
    raw graph (``keep_raw``) holds no node scored under ``record["node_floor"]``."""
    from ..checkpoints import checkpoint_candidates

    recorded = checkpoint_candidates(getattr(model, "meta", None) or {})
    floor = getattr(model, "node_floor", None)
    floor = recorded.get("node_floor") if floor is None else floor
    radius = getattr(model, "pair_radius", recorded.get("pair_radius"))
    if floor is None and radius is None:
        return {}, {}
    kwargs = {}
    if floor is not None and node_threshold < float(floor):
        floor = kwargs["node_floor"] = float(node_threshold)
    return kwargs, {"node_floor": None if floor is None else float(floor),
                    "pair_radius": None if radius is None else float(radius)}  # fmt: skip


# ------------------------------------------------------------------ tiles and batches
def tile_order(tiles) -> list[int]:
    """The order tiles are processed in (raster order; the result does not depend on it)."""
    return list(range(len(tiles)))


def tile_batches(
    reader, data, tile, starts, patch, batch_size: int, skip_empty: bool
) -> Iterator[tuple[list[int], list[int], np.ndarray | None]]:
    """The batches of one tile: ``(windows, kept, patches)`` per batch of ``batch_size`` windows of ``tile``,
    where ``kept`` are the windows that go to the model (not constant when ``skip_empty``) and ``patches``
    their stacked ``(B, C, *patch)`` array (``None`` when none is left). ``data = reader.read_box(tile.box)``."""
    win = tile.windows
    for s in range(0, len(win), batch_size):
        idx = list(win[s : s + batch_size])
        cut = [reader.cut(data, tile.box, starts[i], patch) for i in idx]
        if skip_empty:
            keep = [k for k, t in enumerate(cut) if float(t.max() - t.min()) > 1e-6]
        else:
            keep = list(range(len(cut)))
        yield idx, [idx[k] for k in keep], (np.stack([cut[k] for k in keep]) if keep else None)


__all__ = [
    "METHODS",
    "MODEL_PARAMS",
    "CleanupSettings",
    "PredictOptions",
    "PredictionPlan",
    "as_array",
    "candidate_kwargs",
    "check_cancel",
    "check_scale",
    "check_threshold",
    "checkpoint_name",
    "default_checkpoint",
    "image_layout",
    "is_multiscale",
    "open_image",
    "tile_batches",
    "tile_order",
]
