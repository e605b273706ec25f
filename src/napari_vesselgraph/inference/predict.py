"""``predict``: whole-image graph prediction, the one call the CLI and the widgets use."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoints.meta import SEGMENTATION_MAX_VOXELS
from ..errors import VesselGraphError
from ..graph import VesselGraph
from .grid import normalize_region
from .plan import (
    METHODS,
    MODEL_PARAMS,
    PredictionPlan,
    PredictOptions,
    as_array,
    check_cancel,
    check_scale,
    default_checkpoint,
    image_layout,
    open_image,
    tile_batches,
    tile_order,
)
from .reader import ImageSource, PatchReader
from .support import edge_brightness, edge_support

#: the order local prediction processes tiles in (a hook: tests shuffle it to show the result does not depend on it)
_tile_order = tile_order


# ------------------------------------------------------------------ the call
def suited_checkpoint(image, channel=None, tiled: bool = False, warn: bool = True):
    """The installed checkpoint that suits ``image`` best
    (:func:`napari_vesselgraph.checkpoints.suits.rank_checkpoints`, as the CLI and the widgets choose) and
    ``{"checkpoint", "auto": True, "warnings"}``. A segmentation checkpoint is passed over with ``tiled``
    (prediction tile by tile, or anything else that needs a Relationformer's windows: a segmentation checkpoint
    reads the image whole). With ``warn``, each warning (the image looks unlike what the checkpoint was made for) is
    also a Python warning. ``(None, None)`` when nothing is installed or the image cannot be looked at: predict's
    fallback default applies, and predict reports a bad image itself."""
    import warnings

    from ..checkpoints.meta import is_segmentation
    from ..checkpoints.suits import image_traits, rank_checkpoints

    try:
        arr = as_array(open_image(image)[0])
        sel = channel is not None and len(arr.shape) >= 3 and 0 <= int(channel) < arr.shape[-1]
        traits = image_traits(arr, rgb=False if sel else None, channel=int(channel) if sel else None)
        ranked = rank_checkpoints(traits)
    except (OSError, ValueError, TypeError, KeyError, IndexError, VesselGraphError):
        return None, None
    if tiled:
        ranked = [r for r in ranked if not is_segmentation(r["entry"].get("meta"))]
    if not ranked:
        return None, None
    best = ranked[0]
    for line in best["warnings"] if warn else ():
        warnings.warn(f"checkpoint {best['name']!r}: {line}", UserWarning, stacklevel=3)
    choice = {"checkpoint": best["name"], "auto": True, "warnings": list(best["warnings"])}
    return best["entry"].get("path") or best["name"], choice


def _with_suited_checkpoint(fn):
    """``predict`` with ``checkpoint=None`` (and no ``predictor``) for a model: the checkpoint
    :func:`suited_checkpoint` chooses, recorded as ``metadata["checkpoint_choice"]``."""
    import functools
    import inspect

    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        a = bound.arguments
        choice = None
        model = str(a.get("method", "model")).lower() == "model"
        if model and a.get("checkpoint") is None and a.get("predictor") is None:
            tiled = bool((a.get("method_params") or {}).get("tile_size"))
            tiled = tiled or a.get("scheduler") is not None or a.get("dask_workers") is not None
            a["checkpoint"], choice = suited_checkpoint(a["image"], a.get("channel"), tiled)
        g = fn(*bound.args, **bound.kwargs)
        if choice is not None:
            g.metadata["checkpoint_choice"] = choice
        return g

    return wrapper


@_with_suited_checkpoint
def predict(
    image,
    checkpoint=None,
    method: str = "model",
    device="auto",
    scale=None,
    node_threshold: float | None = None,
    edge_threshold: float | None = None,
    overlap: float | None = None,
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
    checkpoint : checkpoint name or path. ``None``: the installed checkpoint that suits the image best, as
        ``vesselgraph predict`` and the widgets choose (:func:`napari_vesselgraph.checkpoints.suits.rank_checkpoints`:
        an RGB fundus photo gets the fundus model, a grey stack a 3D one, ...; not a segmentation checkpoint with
        ``dask_workers``, ``scheduler`` or ``tile_size``); ``metadata["checkpoint_choice"]`` records it with the
        warnings (also Python warnings) where the image looks unlike what it was made for.
    method : ``"model"`` (Relationformer, sliding window) or ``"skeleton"`` (classical baseline,
        :func:`napari_vesselgraph.baseline.skeleton_graph`; ``method_params`` go to it; a lazy image is
        read whole, or only ``region``).
    device : ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"``, ...
    scale : pixel size per spatial axis (physical units), stored on the graph.
    node_threshold, edge_threshold : minimum confidence of kept nodes and edges; ``None`` (default): the
        thresholds the checkpoint records (chosen on its validation patches), else 0.5.
    overlap : fraction of a patch shared by neighbouring windows, in [0, 1) (``None``: 0.25; a segmentation
        checkpoint: the overlap it records; 0 works, but leaves the
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
        and the unit of work on a cluster; default 1024 in 2D, 192 in 3D) (all checked by
        :class:`~napari_vesselgraph.inference.plan.PredictOptions`); the clean-up of the thresholded graph: any
        field of :class:`~napari_vesselgraph.inference.postprocess.CleanupSettings` (hysteresis linking,
        shortcut pruning, fragments, duplicate nodes, node spacing; their defaults are ``postprocess.DEFAULTS``),
        or ``postprocess=False`` (none of these); a checkpoint's own settings (``meta["postprocess"]``) replace
        the defaults; for ``"skeleton"``: the baseline's parameters.

    zoom : resample the image by this factor (one number, or one per spatial axis) before predicting and map
        the graph back to the image's pixels (``zoom_factor`` in the metadata): e.g. ``0.25`` for roads 25 px
        wide in a 30 cm satellite tile when the model knows roads a few pixels wide. The image is read whole.
        ``None`` (default) or ``"auto"``: for a 2D image and a checkpoint that records the width of the
        structures it knows best (``meta["scale_reference"]["radius_p90"]``), the image is shrunk when its
        structures are wider (:func:`napari_vesselgraph.inference.autozoom.estimate_zoom`); never enlarged.
        ``1``: never resample. ``"isotropic"``: resample so that the voxels are cubic at the finest pixel
        size of ``scale`` (or of the file's voxel size; :func:`napari_vesselgraph.inference.autozoom.isotropic_zoom`),
        e.g. z x5 for a stack of 5 µm steps with 1 µm pixels: models trained on isotropic volumes then see tubes
        instead of flat slabs.

    Windows are read a tile (a block of neighbouring windows) at a time and each window's graph is merged
    into a :class:`~napari_vesselgraph.inference.stitch.StreamingStitcher` as soon as it is predicted, so
    memory holds one tile (and the next, read ahead), one batch, and the graph, whatever the image size
    (lazy images above ``reader.LAZY_WHOLE_LIMIT`` values; smaller ones are read once).

    Returns
    -------
    VesselGraph with node attributes ``confidence``, ``radius``, ``inserted`` (nodes the stitching put
    where an edge crosses a patch/region border) and edge attribute ``confidence``, and ``support`` (the
    normalised brightness under the edge, :mod:`napari_vesselgraph.inference.support`) and ``brightness`` (the
    same on the image stretched image-wide) in a raw graph and where the clean-up setting ``min_support``
    (``min_brightness``) is on (neither with dask workers; no ``support`` for predictors that normalise window
    by window); ``metadata`` records
    the method, checkpoint, thresholds, patch size, overlap, image shape, region and device.
    """
    if isinstance(zoom, str) and zoom == "isotropic":
        from .autozoom import isotropic_zoom

        sc = scale if scale is not None else open_image(image)[2]
        if sc is None:
            raise VesselGraphError("zoom='isotropic' needs the voxel size: give scale=(z, y, x)")
        zoom = isotropic_zoom(sc)
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

        if str(method).lower() == "model" and _names_segmentation(checkpoint, predictor):
            raise VesselGraphError(
                "a segmentation checkpoint runs on one machine (it segments the image whole); leave out "
                "dask_workers / scheduler"
            )

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
    arr = as_array(image)
    shape = tuple(int(n) for n in arr.shape)
    if m == "skeleton":
        g = _predict_skeleton(arr, shape, scale, region, channel, progress, cancel, method_params, t_start)
        if path:
            g.metadata["source_image"] = path
        return g

    segmenter = _segmenter_for(checkpoint, predictor, shape, channel, device)
    if segmenter is not None:
        own = predictor is None
        try:
            g = _predict_segmentation(
                arr, shape, scale, region, channel, segmenter, node_threshold, overlap, progress, cancel,
                method_params, t_start,
            )  # fmt: skip
        finally:
            if own:
                segmenter.close()
        if path:
            g.metadata["source_image"] = path
        return g

    overlap = 0.25 if overlap is None else overlap
    options = PredictOptions.from_call(node_threshold, edge_threshold, overlap, batch_size, **method_params)
    # cheap checks on the image before a model is loaded
    if channel is None and len(shape) == 4:
        image_layout(shape, None, None)  # raises the 4D message

    own_predictor = predictor is None
    if own_predictor:
        check_cancel(cancel)
        from ..model.predictor import make_predictor

        ckpt = checkpoint if checkpoint is not None else default_checkpoint(shape, channel)
        predictor = make_predictor(ckpt, device=device)
    try:
        plan = PredictionPlan.build(arr, shape, predictor, checkpoint, scale, region, channel, options)
        reader = PatchReader(plan.source, predictor, mode=options.normalize, pad_mode=options.pad_mode)
        plan.meta["normalization"] = reader.normalization
        plan.meta["device"] = str(getattr(predictor, "device", "unknown"))
        if path:
            plan.meta["source_image"] = path
        stitcher = plan.stitcher()
        _run_tiles(plan, reader, predictor, progress, cancel, stitcher)
        raw = stitcher.result()
        boxes = [t.box for t in plan.tiles]
        if keep_raw or plan.cleanup.min_support > 0:  # what the image shows under each edge (read again)
            support = edge_support(raw, reader, boxes)
            if support is not None:
                raw.edge_attrs["support"] = support
        if keep_raw or plan.cleanup.min_brightness > 0:
            raw.edge_attrs["brightness"] = edge_brightness(raw, plan.source, boxes, reader.brightness_stats)
    finally:
        if own_predictor and hasattr(predictor, "close"):
            predictor.close()
    return plan.finish(raw, keep_raw, t_start)


def _run_tiles(plan: PredictionPlan, reader, predictor, progress, cancel, stitcher) -> None:
    """Predict every window tile by tile (reading the next tile while the model runs) into ``stitcher``."""
    grid, tiles, patch, opts = plan.grid, plan.tiles, plan.patch, plan.options
    batch_size = opts.batch_size
    n = len(grid)
    n_batches = sum(-(-len(t.windows) // batch_size) for t in tiles)
    t0 = time.perf_counter()
    order = _tile_order(tiles)

    if progress is not None:
        progress(0, n, {"stage": "predict", "batch": 0, "n_batches": n_batches, "elapsed_s": 0.0})
    pool = None
    if opts.prefetch and len(order) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vesselgraph-read")
    done = b = 0
    try:
        pending = pool.submit(reader.read_box, tiles[order[0]].box) if pool is not None else None
        for k, ti in enumerate(order):
            tile = tiles[ti]
            check_cancel(cancel)
            data = pending.result() if pending is not None else reader.read_box(tile.box)
            if pool is not None and k + 1 < len(order):
                pending = pool.submit(reader.read_box, tiles[order[k + 1]].box)
            for idx, kept, batch in tile_batches(reader, data, tile, grid.starts, patch, batch_size, opts.skip_empty):
                check_cancel(cancel)
                results = {}
                if batch is not None:
                    out = predictor.predict_batch(batch, **plan.predict_kwargs)
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
    snd, has_ch, sel = image_layout(shape, None, channel)
    scale_nd = check_scale(scale, snd)
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    reg = normalize_region(region, source.shape)
    check_cancel(cancel)
    img = source.read(reg)
    from ..baseline import skeleton_graph

    _check_params(skeleton_graph, params, "skeleton")
    g = skeleton_graph(img, scale=scale_nd, progress=progress, cancel=cancel, **params)
    check_cancel(cancel)
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


# ------------------------------------------------------------------ segmentation checkpoints
def _segmenter_for(checkpoint, predictor, shape, channel, device="cpu"):
    """A loaded :class:`~napari_vesselgraph.model.segment.Segmenter` when the call is for a segmentation checkpoint
    (``predictor`` is one, or ``checkpoint`` names one), else None (a Relationformer checkpoint)."""
    from ..model.segment import Segmenter, is_segmentation, load_segmenter

    if predictor is not None:
        return predictor if isinstance(predictor, Segmenter) else None
    from ..checkpoints import read_metadata, resolve

    ckpt = checkpoint if checkpoint is not None else default_checkpoint(shape, channel)
    path = resolve(ckpt)
    if not is_segmentation(read_metadata(path)):
        return None
    from ..model.predictor import select_device

    return load_segmenter(path, device=select_device(device))


def _names_segmentation(checkpoint, predictor) -> bool:
    from ..model.segment import Segmenter, is_segmentation

    if predictor is not None:
        return isinstance(predictor, Segmenter)
    if checkpoint is None:
        return False
    from ..checkpoints import read_metadata, resolve

    try:
        return is_segmentation(read_metadata(resolve(checkpoint)))
    except VesselGraphError:
        return False  # the distributed path reports a bad checkpoint itself


def _predict_segmentation(arr, shape, scale, region, channel, segmenter, threshold, overlap, progress, cancel,
                          params, t_start) -> VesselGraph:  # fmt: skip
    """``predict`` with a segmentation checkpoint: the probability map of the image (or ``region``), thresholded
    (``node_threshold`` overrides the checkpoint's probability threshold; options ``min_size`` and
    ``min_brightness``, the checkpoint's by default), and the centre-line graph of the mask. The image (region) is
    read whole; ``min_brightness``'s image-wide scale is that of what was read (the region)."""
    unknown = sorted(set(params) - {"min_size", "min_brightness"})
    if unknown:
        raise VesselGraphError(
            f"unknown option(s) for a segmentation checkpoint: {', '.join(unknown)} (known: min_size, min_brightness)"
        )
    cfg = segmenter.cfg
    snd, has_ch, sel = image_layout(shape, None, channel)
    if snd != cfg.ndim:
        raise VesselGraphError(
            f"checkpoint {segmenter.meta.get('name') or segmenter.meta.get('path')} is a {cfg.ndim}D segmentation "
            f"model; this image is {snd}D (shape {shape})"
        )
    scale_nd = check_scale(scale, snd)
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    reg = normalize_region(region, source.shape)
    n_vox = int(np.prod([hi - lo for lo, hi in reg]))
    if n_vox > SEGMENTATION_MAX_VOXELS:
        raise VesselGraphError(
            f"a segmentation checkpoint reads the image whole, and this one has {n_vox / 1e6:.0f} million "
            f"pixels (the limit is {SEGMENTATION_MAX_VOXELS / 1e6:.0f} million): predict a region, or use a "
            "Relationformer checkpoint (tiled) or the skeleton"
        )
    check_cancel(cancel)
    img = source.read(reg)
    g = segmenter.graph(img, scale=scale_nd, threshold=threshold, min_size=params.get("min_size"), overlap=overlap,
                        progress=progress, cancel=cancel)  # fmt: skip
    from ..model.segment import grey_of
    from .support import drop_dim

    mb = float(cfg.min_brightness if params.get("min_brightness") is None else params["min_brightness"])
    g = drop_dim(grey_of(img, cfg), g, mb)
    g.metadata["min_brightness"] = mb
    offset = np.array([lo for lo, _ in reg], float)
    if offset.any() and g.n_nodes:
        g.nodes = g.nodes + offset
    meta = segmenter.meta
    g.metadata.update(
        checkpoint=str(meta.get("name") or Path(str(meta.get("path", "segmentation"))).stem),
        image_shape=list(shape),
        spatial_shape=list(source.shape),
        region=[list(r) for r in reg] if region is not None else None,
        channel=int(channel) if sel else None,
        elapsed_s=round(time.perf_counter() - t_start, 3),
    )
    return g


def _predict_zoomed(image, zoom, region=None, channel=None, scale=None, **kw) -> VesselGraph:
    """``predict`` on the image resampled by ``zoom``; the graph is mapped back to the original pixels."""
    from scipy import ndimage as ndi

    image, path, file_scale = open_image(image)
    if scale is None:
        scale = file_scale
    arr = as_array(image)
    shape = tuple(int(n) for n in arr.shape)
    snd, has_ch, sel = image_layout(shape, None, channel)
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
    zscale = None if scale is None else tuple(float(s) / f for s, f in zip(check_scale(scale, snd), real))
    g = predict(small, scale=zscale, zoom=1.0, **kw)
    lo = np.asarray([lo for lo, _ in reg], float)
    nodes = (g.nodes + 0.5) / real - 0.5 + lo
    attrs = dict(g.node_attrs)
    if "radius" in attrs:
        attrs["radius"] = np.asarray(attrs["radius"], float) / float(np.mean(real[-2:]))
    out = VesselGraph(nodes, g.edges, attrs, g.edge_attrs, None if scale is None else check_scale(scale, snd),
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
            shape0 = tuple(int(n) for n in as_array(arr0).shape)
            ckpt = checkpoint if checkpoint is not None else default_checkpoint(shape0, channel)
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
    arr = as_array(arr)
    snd, has_ch, sel = image_layout(tuple(int(n) for n in arr.shape), None, channel)
    source = ImageSource(arr, snd, has_ch, int(channel) if sel else None)
    z = estimate_zoom(source, float(ref))
    return None if z >= 1.0 else z


__all__ = ["METHODS", "MODEL_PARAMS", "open_image", "predict", "tile_batches"]
