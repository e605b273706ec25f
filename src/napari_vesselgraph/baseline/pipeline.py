"""The classical pipeline: grey -> vesselness -> threshold -> clean mask -> skeleton -> graph."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..errors import Cancelled, VesselGraphError
from ..graph import VesselGraph
from .skeleton import merge_close_junctions, prune, skeleton_segments, to_node_edge_graph
from .vesselness import choose_polarity, to_grey, vesselness

DEFAULT_SIGMAS = (1.0, 2.0, 3.0)
_STEPS = ("grey", "vesselness", "threshold", "mask", "skeleton", "graph", "attributes")


def _check(cancel):
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop connected components (full connectivity) smaller than ``min_size`` pixels."""
    from scipy import ndimage as ndi

    if min_size <= 1 or not mask.any():
        return mask
    lab, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim, bool))
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    small = sizes < min_size
    small[0] = False
    return mask & ~small[lab]


def _fill_small_holes(mask: np.ndarray, max_size: int) -> np.ndarray:
    """Fill background components (face connectivity) of at most ``max_size`` pixels."""
    from scipy import ndimage as ndi

    if max_size <= 0 or mask.all() or not mask.any():
        return mask
    lab, n = ndi.label(~mask)
    sizes = np.bincount(lab.ravel())
    small = sizes <= max_size
    small[0] = False
    return mask | small[lab]


def _threshold_value(v: np.ndarray, threshold) -> float:
    if isinstance(threshold, str):
        from skimage import filters

        fn = {"otsu": filters.threshold_otsu, "li": filters.threshold_li, "triangle": filters.threshold_triangle}
        try:
            f = fn[threshold]
        except KeyError:
            raise VesselGraphError(f"threshold must be a number or one of {sorted(fn)}, got {threshold!r}") from None
        vals = v[v > 0]
        if vals.size < 2 or float(vals.max()) <= float(vals.min()):
            return float("inf")
        return float(f(vals))
    t = float(threshold)
    if not np.isfinite(t) or t < 0:
        raise VesselGraphError(f"threshold must be a non-negative number, got {threshold!r}")
    return t


def _sample(arr: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Nearest-pixel values of ``arr`` at float positions ``pts`` (clipped to the array)."""
    if len(pts) == 0:
        return np.zeros(0, dtype=arr.dtype)
    idx = np.rint(pts).astype(np.int64)
    idx = np.clip(idx, 0, np.array(arr.shape) - 1)
    return arr[tuple(idx.T)]


def field_of_view(raw: np.ndarray, shape: tuple[int, ...], margin: float = 6.0) -> np.ndarray | None:
    """The bright aperture of an image with a black surround (fundus photos), eroded by ``margin`` px.

    Returns None when there is no such surround (fewer than 5 % of the pixels near zero in every
    channel, a bright region covering less than a fifth of the image or not a solid convex shape, or
    a 3D image).
    """
    from scipy import ndimage as ndi

    if len(shape) != 2:
        return None
    arr = raw.astype(np.float32, copy=False)
    level = arr.max(axis=-1) if arr.shape != tuple(shape) else arr
    hi = float(np.percentile(level, 99))
    if hi <= 0:
        return None
    dark = level <= 0.04 * hi
    if dark.mean() < 0.05:
        return None
    lab, n = ndi.label(ndi.binary_fill_holes(~dark))
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    fov = lab == int(np.argmax(sizes))
    if fov.mean() < 0.2 or (fov & dark).sum() > 0.1 * fov.sum():  # an aperture is bright inside
        return None
    from skimage.measure import regionprops

    if regionprops(fov.astype(np.uint8))[0].solidity < 0.9:  # an aperture is a solid disc, not a vessel tree
        return None
    dist = ndi.distance_transform_edt(fov)
    return dist > margin


def skeleton_graph(
    image,
    scale: Sequence[float] | None = None,
    *,
    polarity: str = "auto",
    sigmas: Sequence[float] | None = None,
    sigma_units: str = "auto",
    flatten: float | None = None,
    threshold: str | float = "otsu",
    threshold_factor: float = 1.0,
    hysteresis: float | None = 0.5,
    min_object_size: int = 64,
    fill_holes: int = 16,
    prune_length: float = 5.0,
    max_edge_length: float = 12.0,
    simplify_tol: float = 1.0,
    extend_ends: str | None = "border",
    channel: str | int = "auto",
    rgb: bool | None = None,
    roi: np.ndarray | str | None = "auto",
    progress=None,
    cancel=None,
) -> VesselGraph:
    """Graph of the vessels (or roads, neurites) in ``image`` without deep learning.

    Pipeline: grey conversion -> multi-scale Sato vesselness -> threshold (+ hysteresis) -> removal of
    small objects and small holes -> skeletonize -> pixel graph with junction clusters collapsed ->
    spur pruning -> simplification to nodes and straight edges.

    Parameters
    ----------
    image : (Y, X), (Y, X, 3|4) RGB(A) channels-last, or (Z, Y, X) array; any numeric dtype.
    scale : physical size of a pixel per axis (napari order, length 2 or 3); stored on the graph.
    polarity : ``"bright"`` (bright vessels on dark, fluorescence), ``"dark"`` (dark vessels on a bright
        background: fundus, bright-field, roads drawn dark) or ``"auto"``: both Sato responses come from
        the same Hessian eigenvalues; weighted by how line-like the Hessian is (blobs do not vote), the
        polarity whose strongest 2 % responses are larger wins (a vessel's centre response is about
        twice its flank response of the other sign; edges and noise are symmetric). See
        :func:`~napari_vesselgraph.baseline.vesselness.choose_polarity`; the metadata records the
        polarity used and the ratio bright / dark (near 1: ambiguous, better say which).
    sigmas : Gaussian scales of the vesselness filter, roughly vessel radius / sqrt(2). Default
        (1, 2, 3) pixels. With an anisotropic ``scale`` and ``sigma_units="auto"`` they are in the
        physical units of ``scale`` and the filter is anisotropic in pixels (sigma / scale per axis);
        when not given they are then (1, 2, 3) x the finest voxel size.
    sigma_units : ``"pixels"``, ``"physical"`` or ``"auto"`` (physical iff ``scale`` is anisotropic).
    flatten : divide the grey image by its Gaussian blur with this sigma (pixels) plus 0.05 before the
        filter, which evens out contrast that falls with the local brightness (depth attenuation,
        vignetting); ``None`` (default) leaves the image as it is.
    threshold : ``"otsu"`` | ``"li"`` | ``"triangle"`` (computed on the positive vesselness values) or a
        number: an absolute vesselness threshold (the image is min-max rescaled to [0, 1] first).
    threshold_factor : multiplies the threshold (mostly useful with an automatic method: ``1.5`` keeps
        only clearly vessel-like pixels on textured backgrounds, whatever the image contrast).
    hysteresis : keep pixels above ``hysteresis * threshold`` that are connected to pixels above the
        threshold (keeps faint stretches of vessels connected); ``None`` or 0 for a plain threshold.
    min_object_size : connected components of the mask smaller than this (pixels/voxels) are dropped.
    fill_holes : holes in the mask up to this many pixels/voxels are filled (they would become
        spurious loops in the skeleton).
    prune_length : spurs (end point to junction) shorter than ``prune_length`` px + the vessel radius
        at the junction, and isolated pieces shorter than ``prune_length`` px, are removed.
    max_edge_length, simplify_tol : every edge is at most ``max_edge_length`` px long and the
        (lightly smoothed) skeleton path it replaces stays within ``simplify_tol`` px of it.
    extend_ends : ``"border"`` (default): end points within the local mask radius (+1 px) of the image
        border are moved onto the border along their segment -- skeletonization treats the outside as
        background, so vessels leaving the image would otherwise stop about one radius short.
        ``"radius"``: every end point moves outwards by the local mask radius - 0.5 (for masks that
        follow the vessel wall tightly; the vesselness mask already overshoots a free vessel end by
        about its radius, so this is off by default). ``None``: no change.
    channel, rgb : how RGB images become grey (see :func:`~.vesselness.to_grey`; ``"auto"`` = green
        channel for red-dominated fundus-like images, luminance otherwise); ``rgb`` forces or forbids
        reading a (Y, X, 3|4) array as RGB.
    roi : optional boolean mask (image shape without channels); vessels outside it are ignored, e.g.
        the field of view of a fundus photograph. ``"auto"`` (default) finds such a field of view when
        the image has a black surround (a fundus or microscope aperture: >= 5 % of the pixels near zero
        in every channel, outside one bright region), and keeps only vessels at least 3 x the largest
        sigma inside its rim, so the rim's edge is not taken for a vessel; otherwise no mask is used.
    progress, cancel : ``progress(done, total, info)`` callback and a cancel token with ``.is_set()``.

    Returns
    -------
    VesselGraph with node attributes ``radius`` (pixels: distance transform of the mask - 0.5 px; with
    the presets, within about +-0.4 px (interquartile range) of the synthetic ground truth; the mask, and
    so the radius, grows with the sigmas and shrinks with the threshold)
    and ``confidence`` (normalised vesselness in [0, 1]), edge attribute ``confidence`` (mean
    normalised vesselness along the edge's path), ``scale`` and ``metadata`` (method ``"skeleton"``,
    the parameters, the polarity and threshold actually used, timing).
    """
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    t0 = time.perf_counter()
    total = len(_STEPS)

    def report(k, **info):
        if progress is not None:
            progress(k, total, {"step": _STEPS[min(k, total - 1)] if k < total else "done", **info})

    _check(cancel)
    raw = np.asarray(image)
    grey, how = to_grey(raw, channel=channel, rgb=rgb)
    d = grey.ndim
    if scale is None:
        spacing = np.ones(d)
    else:
        spacing = np.asarray(scale, dtype=float).ravel()
        if spacing.shape != (d,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
            raise VesselGraphError(f"scale must have {d} positive values for a {d}D image, got {scale!r}")
    if polarity not in ("auto", "bright", "dark"):
        raise VesselGraphError(f"polarity must be 'auto', 'bright' or 'dark', got {polarity!r}")
    anisotropic = bool(np.ptp(spacing) > 1e-9 * spacing.max())
    if sigma_units == "auto":
        physical = anisotropic
    elif sigma_units in ("pixels", "physical"):
        physical = sigma_units == "physical"
    else:
        raise VesselGraphError(f"sigma_units must be 'auto', 'pixels' or 'physical', got {sigma_units!r}")
    if sigmas is None:
        sig = [s * (spacing.min() if physical else 1.0) for s in DEFAULT_SIGMAS]
    else:
        sig = [float(s) for s in np.atleast_1d(sigmas)]
        if not sig or not all(np.isfinite(s) and s > 0 for s in sig):
            raise VesselGraphError(f"sigmas must be positive numbers, got {sigmas!r}")
    if not (np.isfinite(threshold_factor) and threshold_factor > 0):
        raise VesselGraphError(f"threshold_factor must be a positive number, got {threshold_factor!r}")
    if isinstance(threshold, str):
        _threshold_value(np.zeros(1), threshold)  # unknown method names fail before any work
    if flatten is not None and not (np.isfinite(flatten) and flatten > 0):
        raise VesselGraphError(f"flatten must be None or a positive sigma in pixels, got {flatten!r}")
    if extend_ends not in (None, "none", "border", "radius"):
        raise VesselGraphError(f"extend_ends must be 'border', 'radius' or None, got {extend_ends!r}")
    if hysteresis is not None and not (np.isfinite(hysteresis) and 0 <= hysteresis < 1):
        raise VesselGraphError(f"hysteresis must be None or a fraction in [0, 1), got {hysteresis!r}")
    if isinstance(roi, str):
        if roi != "auto":
            raise VesselGraphError(f"roi must be a boolean mask, 'auto' or None, got {roi!r}")
        roi = field_of_view(raw, grey.shape, margin=3.0 * max(sig) / (spacing.min() if physical else 1.0))
    if roi is not None:
        roi = np.asarray(roi, dtype=bool)
        if roi.shape != grey.shape:
            raise VesselGraphError(f"roi has shape {roi.shape}, expected {grey.shape}")

    params: dict[str, Any] = {
        "polarity": polarity,
        "sigmas": sig,
        "sigma_units": "physical" if physical else "pixels",
        "flatten": None if flatten is None else float(flatten),
        "threshold": threshold,
        "threshold_factor": float(threshold_factor),
        "hysteresis": hysteresis,
        "min_object_size": int(min_object_size),
        "fill_holes": int(fill_holes),
        "prune_length": float(prune_length),
        "max_edge_length": float(max_edge_length),
        "simplify_tol": float(simplify_tol),
        "extend_ends": extend_ends,
        "channel": channel if isinstance(channel, str) else int(channel),
        "roi": None if roi is None else f"{float(roi.mean()):.3f} of the image",
    }
    meta: dict[str, Any] = {
        "method": "skeleton",
        "params": params,
        "image_shape": list(raw.shape),
        "grey": how,
    }

    def empty(reason: str) -> VesselGraph:
        meta["empty_reason"] = reason
        meta["seconds"] = time.perf_counter() - t0
        report(total)
        g = VesselGraph.empty(d, scale=tuple(spacing) if scale is not None else None, metadata=meta)
        g.node_attrs = {"radius": np.zeros(0), "confidence": np.zeros(0)}
        g.edge_attrs = {"confidence": np.zeros(0)}
        return g

    report(1)
    if not grey.any() or float(grey.max()) <= 0:
        return empty("flat image")

    if flatten is not None:
        grey = grey / (ndi.gaussian_filter(grey, float(flatten), mode="reflect") + 0.05)
        grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-12)

    # ------------------------------------------------------------ vesselness
    nsig = len(sig)

    def step(k):
        report(1, sigma=sig[k], sigmas_done=k + 1, sigmas_total=nsig)

    if polarity == "auto":
        bright, dark, ev = vesselness(grey, sig, spacing if physical else None, cancel=cancel, step=step, evidence=True)
        used, ratio = choose_polarity(*ev)
        del ev
        meta["polarity_ratio_bright_over_dark"] = ratio
    else:
        bright, dark = vesselness(grey, sig, spacing if physical else None, cancel=cancel, step=step)
        used = polarity
    meta["polarity_used"] = used
    v = bright if used == "bright" else dark
    del bright, dark
    if roi is not None:
        v = np.where(roi, v, 0).astype(np.float32)
    report(2)
    _check(cancel)

    # ------------------------------------------------------------ threshold and mask
    thr = _threshold_value(v, threshold) * float(threshold_factor)
    meta["threshold_value"] = thr if np.isfinite(thr) else None
    if not np.isfinite(thr) or float(v.max()) <= thr:
        return empty("no vesselness above the threshold")
    if hysteresis:
        from skimage.filters import apply_hysteresis_threshold

        mask = apply_hysteresis_threshold(v, hysteresis * thr, thr)
    else:
        mask = v > thr
    report(3)
    _check(cancel)
    mask = _fill_small_holes(mask, int(fill_holes))
    mask = _remove_small(mask, int(min_object_size))
    if not mask.any():
        return empty("mask empty after removing small objects")
    report(4)
    _check(cancel)

    # ------------------------------------------------------------ skeleton
    skel = skeletonize(mask)
    edt = ndi.distance_transform_edt(mask).astype(np.float32)
    report(5)
    _check(cancel)

    # ------------------------------------------------------------ graph
    sg, coords = skeleton_segments(skel)
    if not sg.pos:
        return empty("empty skeleton")
    merge_close_junctions(sg, 2.5)
    _check(cancel)
    prune(sg, float(prune_length), lambda p: float(_sample(edt, np.asarray(p)[None])[0]), min_loop_length=10.0)
    if extend_ends in ("border", "radius"):
        _extend_ends(sg, edt, np.array(grey.shape), extend_ends)
    nodes, edges, pts, ranges = to_node_edge_graph(sg, float(max_edge_length), float(simplify_tol))
    report(6)
    _check(cancel)

    # ------------------------------------------------------------ attributes
    if len(nodes) == 0:
        return empty("nothing left after pruning")
    skel_v = v[skel]
    vref = float(np.percentile(skel_v, 95)) if skel_v.size else 1.0
    vref = vref if vref > 0 else 1.0
    conf_map_at = lambda pts: np.clip(_sample(v, pts) / vref, 0.0, 1.0)  # noqa: E731
    node_conf = conf_map_at(nodes)
    node_rad = _sample(edt, nodes).astype(float)
    # junction centroids and extended ends may sit off the mask: use the nearest skeleton value
    off = node_rad <= 0
    if off.any() and len(coords):
        from scipy.spatial import cKDTree

        tree = cKDTree(coords)
        _, nn = tree.query(nodes[off])
        node_rad[off] = edt[tuple(coords[nn].T)]
        node_conf[off] = np.clip(v[tuple(coords[nn].T)] / vref, 0, 1)
    # the distance transform counts to the centre of the nearest background pixel: the mask's
    # boundary is half a pixel closer
    node_rad = np.maximum(node_rad - 0.5, 0.5)
    if len(ranges):
        # mean confidence over the path points each edge replaces (prefix sums: one pass)
        cs = np.concatenate([[0.0], np.cumsum(conf_map_at(pts))])
        lo, hi = ranges[:, 0], ranges[:, 1]
        edge_conf = (cs[hi + 1] - cs[lo]) / (hi - lo + 1)
    else:
        edge_conf = np.zeros(0)
    meta["seconds"] = time.perf_counter() - t0
    meta["n_skeleton_pixels"] = int(len(coords))
    graph = VesselGraph(
        nodes,
        edges,
        node_attrs={"radius": node_rad, "confidence": node_conf.astype(float)},
        edge_attrs={"confidence": edge_conf.astype(float)},
        scale=tuple(spacing) if scale is not None else None,
        metadata=meta,
    )
    report(total)
    return graph


def _extend_ends(sg, edt: np.ndarray, shape: np.ndarray, how: str) -> None:
    """Move free end points outwards (see ``extend_ends`` in :func:`skeleton_graph`)."""
    inc = sg.incidence()
    hi = shape - 1
    for v, segs in enumerate(inc):
        if len(segs) != 1 or sg.junction[v]:
            continue
        s = segs[0]
        if sg.seg_a[s] == sg.seg_b[s]:
            continue
        full = sg.full_path(s)
        if sg.seg_b[s] == v:
            full = full[::-1]
        if len(full) < 3:
            continue
        back = full[min(6, len(full) - 1)]
        direction = full[0] - back
        nrm = float(np.linalg.norm(direction))
        if nrm <= 0:
            continue
        direction = direction / nrm
        r = float(_sample(edt, full[:1])[0])
        p = full[0]
        if how == "radius":
            if r > 0.5:
                sg.pos[v] = np.clip(p + direction * (r - 0.5), 0, hi)
            continue
        # distance along `direction` to the image border
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = np.where(
                direction > 1e-9, (hi - p) / direction, np.where(direction < -1e-9, -p / direction, np.inf)
            )
        t = float(np.min(steps))
        if np.isfinite(t) and 0 < t <= r + 1.0:
            sg.pos[v] = np.clip(p + direction * t, 0, hi)
