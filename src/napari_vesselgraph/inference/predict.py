"""``predict``: whole-image graph prediction, the one call the CLI and the widgets use."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, VesselGraphError
from ..graph import VesselGraph
from .grid import make_tiles, normalize_region, sliding_window
from .postprocess import finish_graph
from .reader import ImageSource, PatchReader
from .stitch import DEFAULT_MERGE_RADIUS, StreamingStitcher

METHODS = ("model", "skeleton")
MODEL_PARAMS = (
    "merge_radius", "pad_mode", "normalize", "skip_empty", "drop_isolated", "prefetch", "tile_size",
    "postprocess", "link_threshold", "flat", "min_length", "dedupe_radius", "spacing", "spacing_tol",
)  # fmt: skip
_CLEANUP = ("postprocess", "link_threshold", "flat", "min_length", "dedupe_radius", "spacing", "spacing_tol")


# ------------------------------------------------------------------ input checks
def _is_multiscale(image) -> bool:
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
    if _is_multiscale(image):
        return image[0], None, None
    return image, None, None


def _as_array(image):
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


def _looks_rgb(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4


def _layout(shape: tuple[int, ...], model_ndim: int | None, channel) -> tuple[int, bool, bool]:
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
        if nd == 3 and (model_ndim == 2 or (model_ndim is None and _looks_rgb(shape))) and shape[-1] <= 4:
            spatial, has_ch = shape[:-1], True
    snd = len(spatial)
    if model_ndim == 3 and snd == 3 and not sel and _looks_rgb(shape):
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


def _check_scale(scale, ndim: int):
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


def _check_threshold(v, what: str) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise VesselGraphError(f"{what} must be a number in [0, 1], got {v!r}") from None
    if not 0.0 <= v <= 1.0:
        raise VesselGraphError(f"{what} must be in [0, 1], got {v}")
    return v


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("prediction cancelled")


# ------------------------------------------------------------------ predictor
def _default_checkpoint(shape: tuple[int, ...], channel):
    """A bundled checkpoint matching a 3D volume when none is named (``None``: the default 2D one)."""
    nd = len(shape) - (1 if channel is not None else 0)
    if nd != 3 or (channel is None and _looks_rgb(shape)):
        return None
    try:
        from ..checkpoints import list_bundled

        for entry in list_bundled():
            if int((entry.get("meta") or {}).get("ndim", 0)) == 3:
                return entry["name"]
    except (OSError, ValueError, TypeError, KeyError, VesselGraphError):  # keep the clearer ndim error below
        return None
    return None


def _checkpoint_name(checkpoint, predictor) -> str:
    meta = getattr(predictor, "meta", None) or {}
    if meta.get("name"):
        return str(meta["name"])
    if meta.get("path"):
        return Path(str(meta["path"])).stem
    if checkpoint is not None:
        return Path(str(checkpoint)).stem
    return type(predictor).__name__


def _device_name(predictor) -> str:
    return str(getattr(predictor, "device", "unknown"))


# ------------------------------------------------------------------ the call
def predict(
    image,
    checkpoint=None,
    method: str = "model",
    device="auto",
    scale=None,
    node_threshold: float | None = None,
    edge_threshold: float | None = None,
    overlap: float = 0.25,
    batch_size: int = 8,
    region=None,
    channel: int | None = None,
    progress: Callable[[int, int, dict], Any] | None = None,
    cancel=None,
    predictor=None,
    keep_raw: bool = False,
    scheduler=None,
    dask_workers: int | None = None,
    zoom=None,
    **method_params,
) -> VesselGraph:
    """Predict the graph of a whole image (2D grey/RGB or 3D), patch by patch.

    Parameters
    ----------
    image : numpy array; a lazy array (dask, zarr, ...) read tile by tile; a napari multiscale image (a
        list of levels: the full-resolution one is used); or the path of an image file (Zarr / OME-Zarr
        and large TIFFs are opened lazily; the voxel size the file records is the default ``scale``).
        ``(Y, X)``, ``(Y, X, C)`` (colour, channels last) or ``(Z, Y, X)``.
    checkpoint : checkpoint name or path (``None``: the default bundled model; for a volume, a bundled
        3D model when there is one).
    method : ``"model"`` (Relationformer, sliding window) or ``"skeleton"`` (classical baseline,
        :func:`napari_vesselgraph.baseline.skeleton_graph`; ``method_params`` go to it; a lazy image is
        read whole, or only ``region``).
    device : ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"``, ...
    scale : pixel size per spatial axis (physical units), stored on the graph.
    node_threshold, edge_threshold : minimum confidence of kept nodes and edges; ``None`` (default): the
        thresholds the checkpoint records (chosen on its validation patches), else 0.5.
    overlap : fraction of a patch shared by neighbouring windows, in [0, 1) (0 works, but leaves the
        model's patch-border nodes in the graph; see :mod:`napari_vesselgraph.inference.stitch`).
    batch_size : patches per model call (progress is reported and cancel checked between calls).
    region : only predict this part: a tuple of slices (one per spatial axis) or a ``(start, stop)``
        box; the graph keeps full-image pixel coordinates, and is cut at the region's border.
    channel : pick this entry of the last axis first (e.g. one channel of a (Z, Y, X, C) stack).
    progress : ``progress(done, total, info)`` with ``done``/``total`` patches.
    cancel : object with ``.is_set()``; checked between batches, raises :class:`~napari_vesselgraph.errors.Cancelled`.
    predictor : an already loaded patch predictor (skips loading ``checkpoint``; reuse one across calls
        to avoid reloading). A predictor that ``predict`` loads itself is closed at the end (GPU memory
        freed).
    keep_raw : return the stitched low-threshold candidates instead (``raw=True`` in the metadata);
        :func:`~napari_vesselgraph.inference.postprocess.finish_graph` (with ``metadata["postprocess"]``)
        turns it into exactly the graph that the thresholds would give.
    scheduler, dask_workers : run the tiles on a dask.distributed cluster and stitch here: ``scheduler``
        is the address of a running one (``"tcp://host:8786"``) or a ``distributed.Client``;
        ``dask_workers=N`` starts a local cluster of N single-threaded worker processes for this call.
        See :func:`napari_vesselgraph.inference.distributed.predict_distributed` (more options).
    method_params : for ``"model"``: ``merge_radius`` (px, default 3), ``pad_mode`` (``"reflect"``),
        ``normalize`` (``"auto"`` | ``"whole"`` | ``"tiles"``), ``skip_empty`` (don't run the model on
        constant patches, default True), ``drop_isolated`` (default False), ``prefetch`` (read the next
        tile while the model runs, default True), ``tile_size`` (pixels per axis of the box read at once
        and the unit of work on a cluster; default 1024 in 2D, 192 in 3D); the clean-up of the
        thresholded graph (:mod:`napari_vesselgraph.inference.postprocess`): ``link_threshold``
        (weakest edge kept when it joins two components, default 0.1), ``flat`` (shortcut-triangle
        pruning, default 2.0), ``min_length`` (drop smaller fragments, px, default 0),
        ``dedupe_radius`` (merge nodes closer than this, px), ``spacing`` / ``spacing_tol`` (re-place
        the nodes along each chain, px; 0: off), ``postprocess=False`` (none of these); a checkpoint's
        own settings (``meta["postprocess"]``) replace the defaults; for ``"skeleton"``: the baseline's parameters.

    zoom : resample the image by this factor (one number, or one per spatial axis) before predicting and map
        the graph back to the image's pixels (``zoom_factor`` in the metadata): e.g. ``0.25`` for roads 25 px
        wide in a 30 cm satellite tile when the model knows roads a few pixels wide. The image is read whole.
        ``None`` (default) or ``"auto"``: for a 2D image and a checkpoint that records the width of the
        structures it knows best (``meta["scale_reference"]["radius_p90"]``), the image is shrunk when its
        structures are wider (:func:`napari_vesselgraph.inference.autozoom.estimate_zoom`); never enlarged.
        ``1``: never resample.

    Windows are read a tile (a block of neighbouring windows) at a time and each window's graph is merged
    into a :class:`~napari_vesselgraph.inference.stitch.StreamingStitcher` as soon as it is predicted, so
    memory holds one tile (and the next, read ahead), one batch, and the graph, whatever the image size
    (lazy images above ``reader.LAZY_WHOLE_LIMIT`` values; smaller ones are read once).

    Returns
    -------
    VesselGraph with node attributes ``confidence``, ``radius``, ``inserted`` (nodes the stitching put
    where an edge crosses a patch/region border) and edge attribute ``confidence``; ``metadata`` records
    the method, checkpoint, thresholds, patch size, overlap, image shape, region and device.
    """
    if zoom is None or (isinstance(zoom, str) and zoom == "auto"):
        zoom = _auto_zoom(image, checkpoint, method, predictor, channel, region, explicit=zoom is not None)
    if zoom is not None and not (np.ndim(zoom) == 0 and not isinstance(zoom, str) and float(zoom) == 1.0):
        return _predict_zoomed(
            image, zoom, checkpoint=checkpoint, method=method, device=device, scale=scale,
            node_threshold=node_threshold, edge_threshold=edge_threshold, overlap=overlap, batch_size=batch_size,
            region=region, channel=channel, progress=progress, cancel=cancel, predictor=predictor,
            keep_raw=keep_raw, scheduler=scheduler, dask_workers=dask_workers, **method_params,
        )  # fmt: skip
    if scheduler is not None or dask_workers is not None:
        from .distributed import predict_distributed

        return predict_distributed(
            image, checkpoint, method=method, device=device, scale=scale, node_threshold=node_threshold,
            edge_threshold=edge_threshold, overlap=overlap, batch_size=batch_size, region=region, channel=channel,
            progress=progress, cancel=cancel, predictor=predictor, keep_raw=keep_raw, scheduler=scheduler,
            dask_workers=dask_workers, **method_params,
        )  # fmt: skip
    t_start = time.perf_counter()
    m = str(method).lower() if method is not None else "model"
    if m not in METHODS:
        raise VesselGraphError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    image, path, file_scale = open_image(image)
    if scale is None:
        scale = file_scale
    arr = _as_array(image)
    shape = tuple(int(n) for n in arr.shape)
    if m == "skeleton":
        g = _predict_skeleton(arr, shape, scale, region, channel, progress, cancel, method_params, t_start)
        if path:
            g.metadata["source_image"] = path
        return g

    opts = _model_options(node_threshold, edge_threshold, overlap, batch_size, method_params)
    # cheap checks on the image before a model is loaded
    if channel is None and len(shape) == 4:
        _layout(shape, None, None)  # raises the 4D message

    own_predictor = predictor is None
    if own_predictor:
        _check_cancel(cancel)
        from ..model.predictor import make_predictor

        ckpt = checkpoint if checkpoint is not None else _default_checkpoint(shape, channel)
        predictor = make_predictor(ckpt, device=device)
    try:
        plan = _plan(arr, shape, predictor, checkpoint, scale, region, channel, opts)
        reader = PatchReader(plan.source, predictor, mode=opts["normalize"], pad_mode=opts["pad_mode"])
        plan.meta["normalization"] = reader.normalization
        plan.meta["device"] = _device_name(predictor)
        if path:
            plan.meta["source_image"] = path
        stitcher = plan.stitcher()
        _run_tiles(plan, reader, predictor, opts, progress, cancel, stitcher)
        raw = stitcher.result()
    finally:
        if own_predictor and hasattr(predictor, "close"):
            predictor.close()
    return _finish(raw, plan, opts, keep_raw, t_start)


def _model_options(node_threshold, edge_threshold, overlap, batch_size, method_params) -> dict:
    """Check the model-method arguments; returns them as a dict (thresholds may still be None)."""
    for t, what in ((node_threshold, "node_threshold"), (edge_threshold, "edge_threshold")):
        if t is not None:
            _check_threshold(t, what)
    try:
        overlap = float(overlap)
    except (TypeError, ValueError):
        raise VesselGraphError(f"overlap must be a number in [0, 1), got {overlap!r}") from None
    if not 0.0 <= overlap < 1.0:
        raise VesselGraphError(f"overlap must be in [0, 1), got {overlap}")
    try:
        batch_size = int(batch_size)
    except (TypeError, ValueError):
        batch_size = 0
    if batch_size < 1:
        raise VesselGraphError(f"batch_size must be a positive integer, got {batch_size!r}")
    unknown = sorted(set(method_params) - set(MODEL_PARAMS))
    if unknown:
        raise VesselGraphError(
            f"unknown option(s) for method 'model': {', '.join(unknown)} (known: {', '.join(MODEL_PARAMS)})"
        )
    return {
        "node_threshold": node_threshold,
        "edge_threshold": edge_threshold,
        "overlap": overlap,
        "batch_size": batch_size,
        "merge_radius": float(method_params.get("merge_radius", DEFAULT_MERGE_RADIUS)),
        "pad_mode": method_params.get("pad_mode", "reflect"),
        "normalize": method_params.get("normalize", "auto"),
        "skip_empty": bool(method_params.get("skip_empty", True)),
        "drop_isolated": bool(method_params.get("drop_isolated", False)),
        "prefetch": bool(method_params.get("prefetch", True)),
        "tile_size": method_params.get("tile_size"),
        "cleanup": {k: method_params[k] for k in _CLEANUP if k in method_params},
    }


class _Plan:
    """Everything about one prediction that does not depend on where the windows run."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def stitcher(self) -> StreamingStitcher:
        return StreamingStitcher.for_grid(
            self.grid, self.opts["merge_radius"], region_box=self.box, scale=self.scale, metadata=self.meta
        )


def _plan(arr, shape, predictor, checkpoint, scale, region, channel, opts) -> _Plan:
    """Layout, window grid, tiles and metadata of a prediction (thresholds resolved from the checkpoint)."""
    recorded = (getattr(predictor, "meta", None) or {}).get("thresholds") or {}
    nt = opts["node_threshold"]
    et = opts["edge_threshold"]
    opts["node_threshold"] = _check_threshold(recorded.get("node", 0.5) if nt is None else nt, "node_threshold")
    opts["edge_threshold"] = _check_threshold(recorded.get("edge", 0.5) if et is None else et, "edge_threshold")
    from .postprocess import settings as cleanup_settings

    opts["cleanup"] = cleanup_settings(opts.get("cleanup"), getattr(predictor, "meta", None))
    model_ndim = int(predictor.ndim)
    snd, has_ch, sel = _layout(shape, model_ndim, channel)
    scale_nd = _check_scale(scale, snd)
    patch = tuple(int(p) for p in predictor.patch_size)
    if len(patch) != snd:
        raise VesselGraphError(f"the predictor's patch size {patch} does not match its {model_ndim}D model")
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    reg = normalize_region(region, source.shape)
    grid = sliding_window(source.shape, patch, opts["overlap"], tuple(slice(lo, hi) for lo, hi in reg))
    tiles = make_tiles(grid, opts["tile_size"])
    box = None
    if grid.needs_clip:  # cut the graph at the first / last pixel of the region (or of the image)
        box = (np.array([lo for lo, _ in reg], float), np.array([hi for _, hi in reg], float) - 1.0)
    pmeta = getattr(predictor, "meta", None) or {}
    meta = {
        "method": "model",
        "checkpoint": _checkpoint_name(checkpoint, predictor),
        "checkpoint_path": str(pmeta.get("path", checkpoint or "")) or None,
        "domain": pmeta.get("domain"),
        "node_threshold": opts["node_threshold"],
        "edge_threshold": opts["edge_threshold"],
        "patch_size": list(patch),
        "overlap": float(opts["overlap"]),
        "n_patches": len(grid),
        "n_tiles": len(tiles),
        "merge_radius": opts["merge_radius"],
        "image_shape": list(shape),
        "spatial_shape": list(source.shape),
        "region": [list(r) for r in reg] if region is not None else None,
        "channel": int(channel) if sel else None,
        "pad_mode": opts["pad_mode"],
        "postprocess": dict(opts["cleanup"]),
    }
    return _Plan(
        source=source, spatial_ndim=snd, has_channels=has_ch, channel=int(channel) if sel else None, scale=scale_nd,
        patch=patch, region=reg, grid=grid, tiles=tiles, box=box, meta=meta, opts=opts,
    )  # fmt: skip


def _finish(raw: VesselGraph, plan: _Plan, opts: dict, keep_raw: bool, t_start: float) -> VesselGraph:
    if keep_raw:
        out = raw
        out.metadata.update(raw=True)
    else:
        out = finish_graph(
            raw, opts["node_threshold"], opts["edge_threshold"], drop_isolated=opts["drop_isolated"], **opts["cleanup"]
        )
    out.metadata["elapsed_s"] = round(time.perf_counter() - t_start, 3)
    return out


def _tile_order(tiles) -> list[int]:
    """The order tiles are processed in (raster order; the result does not depend on it)."""
    return list(range(len(tiles)))


def tile_batches(reader: PatchReader, data, tile, starts, patch, batch_size: int, skip_empty: bool):
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


def _run_tiles(plan: _Plan, reader, predictor, opts, progress, cancel, stitcher) -> None:
    """Predict every window tile by tile (reading the next tile while the model runs) into ``stitcher``."""
    grid, tiles, patch = plan.grid, plan.tiles, plan.patch
    batch_size = opts["batch_size"]
    n = len(grid)
    n_batches = sum(-(-len(t.windows) // batch_size) for t in tiles)
    t0 = time.perf_counter()
    order = _tile_order(tiles)

    if progress is not None:
        progress(0, n, {"stage": "predict", "batch": 0, "n_batches": n_batches, "elapsed_s": 0.0})
    pool = None
    if opts["prefetch"] and len(order) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vesselgraph-read")
    done = b = 0
    try:
        pending = pool.submit(reader.read_box, tiles[order[0]].box) if pool is not None else None
        for k, ti in enumerate(order):
            tile = tiles[ti]
            _check_cancel(cancel)
            data = pending.result() if pending is not None else reader.read_box(tile.box)
            if pool is not None and k + 1 < len(order):
                pending = pool.submit(reader.read_box, tiles[order[k + 1]].box)
            for idx, kept, batch in tile_batches(
                reader, data, tile, grid.starts, patch, batch_size, opts["skip_empty"]
            ):
                _check_cancel(cancel)
                results = {}
                if batch is not None:
                    out = predictor.predict_batch(batch)
                    if len(out) != len(kept):
                        raise VesselGraphError(f"the predictor returned {len(out)} results for {len(kept)} patches")
                    results = dict(zip(kept, out))
                for i in idx:
                    if i in results:
                        stitcher.add(i, results[i])
                    else:
                        stitcher.add_empty(i)
                done += len(idx)
                b += 1
                if progress is not None:
                    progress(
                        done,
                        n,
                        {
                            "stage": "predict",
                            "batch": b,
                            "n_batches": n_batches,
                            "elapsed_s": round(time.perf_counter() - t0, 3),
                        },
                    )
            del data
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------ skeleton baseline
def _check_params(func, params: dict, method: str) -> None:
    import inspect

    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    fixed = ("image", "scale", "progress", "cancel")
    known = [n for n, p in sig.parameters.items() if p.kind is not p.VAR_POSITIONAL and n not in fixed]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise VesselGraphError(
            f"unknown option(s) for method {method!r}: {', '.join(unknown)} (known: {', '.join(known)})"
        )


def _predict_skeleton(arr, shape, scale, region, channel, progress, cancel, params, t_start) -> VesselGraph:
    snd, has_ch, sel = _layout(shape, None, channel)
    scale_nd = _check_scale(scale, snd)
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    reg = normalize_region(region, source.shape)
    _check_cancel(cancel)
    img = source.read(reg)
    from ..baseline import skeleton_graph

    _check_params(skeleton_graph, params, "skeleton")
    g = skeleton_graph(img, scale=scale_nd, progress=progress, cancel=cancel, **params)
    _check_cancel(cancel)
    offset = np.array([lo for lo, _ in reg], float)
    if offset.any() and g.n_nodes:
        g.nodes = g.nodes + offset
    g.metadata = dict(g.metadata or {})
    g.metadata.update(
        method="skeleton",
        image_shape=list(shape),
        spatial_shape=list(source.shape),
        region=[list(r) for r in reg] if region is not None else None,
        channel=int(channel) if sel else None,
        device="cpu",
        elapsed_s=round(time.perf_counter() - t_start, 3),
    )
    return g


def _predict_zoomed(image, zoom, region=None, channel=None, scale=None, **kw) -> VesselGraph:
    """``predict`` on the image resampled by ``zoom``; the graph is mapped back to the original pixels."""
    from scipy import ndimage as ndi

    image, path, file_scale = open_image(image)
    if scale is None:
        scale = file_scale
    arr = _as_array(image)
    shape = tuple(int(n) for n in arr.shape)
    snd, has_ch, sel = _layout(shape, None, channel)
    try:
        z = np.broadcast_to(np.asarray(zoom, dtype=float), (snd,)).copy()
    except (TypeError, ValueError):
        z = None
    if z is None or not np.all(np.isfinite(z)) or np.any(z <= 0) or np.any(z > 8):
        raise VesselGraphError(f"zoom must be a positive factor (at most 8) or one per spatial axis, got {zoom!r}")
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    reg = normalize_region(region, source.shape)
    img = np.asarray(source.read(reg), dtype=np.float32)
    spatial = tuple(hi - lo for lo, hi in reg)
    new_shape = tuple(max(1, int(round(n * f))) for n, f in zip(spatial, z))
    real = np.asarray(new_shape, float) / np.asarray(spatial, float)  # the factor actually applied
    factors = tuple(real) + ((1.0,) if img.ndim > snd else ())
    if np.all(real < 1):  # anti-alias before shrinking
        sig = [max(0.0, (1 / f - 1) / 2) for f in real] + ([0.0] if img.ndim > snd else [])
        img = ndi.gaussian_filter(img, sig, mode="nearest")
    small = ndi.zoom(img, factors, order=1, mode="nearest", grid_mode=True)
    zscale = None if scale is None else tuple(float(s) / f for s, f in zip(_check_scale(scale, snd), real))
    g = predict(small, scale=zscale, zoom=1.0, **kw)
    lo = np.asarray([lo for lo, _ in reg], float)
    nodes = (g.nodes + 0.5) / real - 0.5 + lo
    attrs = dict(g.node_attrs)
    if "radius" in attrs:
        attrs["radius"] = np.asarray(attrs["radius"], float) / float(np.mean(real[-2:]))
    out = VesselGraph(nodes, g.edges, attrs, g.edge_attrs, None if scale is None else _check_scale(scale, snd),
                      dict(g.metadata))  # fmt: skip
    out.metadata["zoom_factor"] = [float(f) for f in real]
    out.metadata["image_shape"] = list(shape[:snd] if not has_ch else shape[:-1])
    if path:
        out.metadata["source_image"] = path
    return out


def _auto_zoom(image, checkpoint, method, predictor, channel, region, explicit: bool):
    """The zoom ``predict`` uses when none is given (``None``: no resampling)."""
    if str(method).lower() != "model":
        return None
    meta = getattr(predictor, "meta", None) if predictor is not None else None
    if meta is None:
        try:
            from ..checkpoints import read_metadata, resolve

            arr0, _, _ = open_image(image)
            shape0 = tuple(int(n) for n in _as_array(arr0).shape)
            ckpt = checkpoint if checkpoint is not None else _default_checkpoint(shape0, channel)
            meta = read_metadata(resolve(ckpt))
        except (OSError, ValueError, TypeError, KeyError, VesselGraphError):
            return None  # predict itself reports a bad checkpoint or image
    ref = ((meta or {}).get("scale_reference") or {}).get("radius_p90")
    if not ref:
        if explicit:
            raise VesselGraphError("zoom='auto' needs a checkpoint that records its scale reference; give a factor")
        return None
    from .autozoom import estimate_zoom

    arr, _, _ = open_image(image)
    arr = _as_array(arr)
    snd, has_ch, sel = _layout(tuple(int(n) for n in arr.shape), None, channel)
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    z = estimate_zoom(source, float(ref))
    return None if z >= 1.0 else z
