"""Input normalisation shared by training and inference (numpy only).

The checkpoint stores the ``input_meta`` dict; :func:`normalize_image` turns any supported image into the
``(C, *spatial)`` float32 array the model was trained on. It is applied to whole images before patching, so the
statistics do not change from patch to patch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import VesselGraphError

LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)

DEFAULT_INPUT_META: dict[str, Any] = {
    "ndim": 2,
    "channels": 1,
    "method": "percentile",  # "percentile" | "minmax" | "none"
    "low": 1.0,
    "high": 99.5,
    "rgb_to_grey": "luminance",
    "invert": False,
}


def input_meta(ndim: int = 2, channels: int = 1, **kw) -> dict[str, Any]:
    meta = dict(DEFAULT_INPUT_META)
    meta.update(ndim=int(ndim), channels=int(channels))
    meta.update(kw)
    return meta


def to_channels_first(image, ndim: int) -> np.ndarray:
    """``(*S)`` → ``(1, *S)``; channels-last ``(*S, C)`` (C ≤ 4) → ``(C, *S)``; ``(C, *S)`` kept."""
    img = np.asarray(image)
    if img.ndim == ndim:
        return img[None]
    if img.ndim == ndim + 1:
        if img.shape[-1] <= 4:
            return np.moveaxis(img, -1, 0)
        if img.shape[0] <= 4:
            return img
    raise VesselGraphError(
        f"the model expects a {ndim}D image (grey, or with up to 4 channels), got an array of shape {img.shape}"
    )


def _to_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.bool_:
        return img.astype(np.float32)
    if img.dtype.kind in "ui":
        return img.astype(np.float32)
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    raise VesselGraphError(f"cannot use an image of dtype {img.dtype}")


def _sample(x: np.ndarray, max_values: int = 2_000_000) -> np.ndarray:
    flat = x.reshape(-1)
    if flat.size <= max_values:
        return flat
    step = int(np.ceil(flat.size / max_values))
    return flat[::step]


def normalize_image(image, meta: dict[str, Any] | None = None) -> np.ndarray:
    """Normalise a whole image for the model described by ``meta`` (a checkpoint's ``input`` entry).

    - channels: channels-last colour images become channels-first; colour is turned to grey by luminance when
      the model has one channel, grey is repeated when it has three;
    - intensity: per-image percentile stretch (``low``–``high``) to [0, 1], clipped (``method="percentile"``),
      or min–max, or local contrast (``method="local"``, :func:`local_contrast`: removes illumination,
      vignetting, colour and a dark field-of-view surround), or nothing; optionally inverted.
    Returns a float32 ``(C, *spatial)`` array.
    """
    m = dict(DEFAULT_INPUT_META)
    m.update(meta or {})
    ndim, channels = int(m["ndim"]), int(m["channels"])
    img = _to_float(to_channels_first(image, ndim))
    c = img.shape[0]
    if c == 4:  # drop alpha
        img, c = img[:3], 3
    if c == 2:
        img, c = img[:1], 1
    if channels == 1 and c == 3:
        img = np.tensordot(LUMINANCE, img, axes=(0, 0))[None].astype(np.float32)
    elif channels == 3 and c == 1:
        img = np.repeat(img, 3, axis=0)
    elif channels != img.shape[0]:
        raise VesselGraphError(f"the model expects {channels} channel(s), the image has {c}")
    method = m.get("method", "percentile")
    if method == "percentile":
        s = _sample(img)
        s = s[np.isfinite(s)]
        if s.size:
            lo, hi = np.percentile(s, [float(m["low"]), float(m["high"])])
        else:
            lo, hi = 0.0, 1.0
        if hi - lo < 1e-8:
            hi = lo + 1.0
        img = (img - lo) / (hi - lo)
    elif method == "minmax":
        lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
        img = (img - lo) / max(hi - lo, 1e-8)
    elif method == "local":
        img = np.stack([local_contrast(ch, m) for ch in img])
    elif method != "none":
        raise VesselGraphError(f"unknown normalisation method {method!r}")
    img = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0)
    if m.get("invert"):
        img = 1.0 - img
    return np.ascontiguousarray(img, dtype=np.float32)


def _dark_surround(x: np.ndarray) -> np.ndarray | None:
    """Mask of the bright aperture of a 2D image with a black surround (fundus cameras), or None."""
    if x.ndim != 2:
        return None
    from scipy import ndimage as ndi

    hi = float(np.percentile(_sample(x), 99))
    lo = float(np.percentile(_sample(x), 1))
    if hi - lo <= 1e-8:
        return None
    dark = ndi.uniform_filter(x, 5) <= lo + 0.06 * (hi - lo)
    if dark.mean() < 0.04:
        return None
    # the surround touches the image border
    lab, n = ndi.label(dark)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    border = border[border > 0]
    if not len(border):
        return None
    surround = np.isin(lab, border)
    if surround.mean() < 0.04 or surround.mean() > 0.7:
        return None
    return ~ndi.binary_dilation(surround, iterations=2)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with ``sigma`` px, computed on a block-averaged copy for large sigmas (fast on big images)."""
    from scipy import ndimage as ndi

    f = int(max(1, sigma // 4))
    if f == 1 or min(x.shape) < 4 * f:
        return ndi.gaussian_filter(x, sigma, mode="reflect", truncate=3.0)
    pads = [(0, (-s) % f) for s in x.shape]
    xp = np.pad(x, pads, mode="reflect")
    small = xp.reshape([d for s in xp.shape for d in (s // f, f)]).mean(axis=tuple(range(1, 2 * x.ndim, 2)))
    small = ndi.gaussian_filter(small, sigma / f, mode="reflect", truncate=3.0)
    return _upsample_linear(small, x.shape, f)


def _upsample_linear(small: np.ndarray, shape: tuple[int, ...], f: int) -> np.ndarray:
    """``small`` (one value per ``f``-pixel block) read back at the centres of the pixels of ``shape``: linear
    interpolation, edge values beyond the first / last block centre. The same as
    ``ndi.map_coordinates(small, coords, order=1, mode="nearest")`` at ``(i + 0.5) / f - 0.5`` per axis, one axis
    at a time (linear interpolation is separable), which is several times faster. Computed in float32 (the result's
    type; a smooth field of block means needs no more)."""
    out = np.asarray(small, np.float32)
    for ax, n in enumerate(shape):
        m = small.shape[ax]
        c = np.clip((np.arange(n) + 0.5) / f - 0.5, 0.0, m - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, m - 1)
        w = (c - i0).astype(np.float32).reshape([-1 if k == ax else 1 for k in range(len(shape))])
        lo = np.take(out, i0, axis=ax)
        lo += (np.take(out, i1, axis=ax) - lo) * w
        out = lo
    return out


def local_contrast(x: np.ndarray, meta: dict[str, Any] | None = None) -> np.ndarray:
    """Local contrast normalisation of one channel, to [0, 1] with the local background at 0.5.

    ``(x - local mean) / sqrt(local variance + (floor * typical std)^2)``, both over a Gaussian window of
    ``sigma`` px (default 12: wider than the widest vessels the models know), mapped by ``0.5 + z * gain``
    (gain 0.125) and clipped. The typical std is the median (``floor_stat="median"``) or the mean
    (``"mean"``: sparse images, e.g. neurons on black, whose median local std is the noise) of the local
    std, at least ``min_std``. Illumination, vignetting and colour casts go; so does the dark surround of a
    fundus photo (detected, left out of the local statistics and set to 0.5), whose rim would otherwise
    look like a vessel. Vessels keep their polarity (the models are trained on both).
    """
    m = meta or {}
    sigma = float(m.get("sigma", 12.0))
    gain = float(m.get("gain", 0.125))
    floor = float(m.get("floor", 0.5))
    x = np.asarray(x, np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        x = np.where(finite, x, float(np.nanmedian(x)) if finite.any() else 0.0).astype(np.float32)
    s = _sample(x)
    lo, hi = np.percentile(s, [0.5, 99.5])
    x = (x - lo) / max(float(hi - lo), 1e-8)
    fov = _dark_surround(x) if m.get("fov", True) else None
    if fov is None:
        mean = _smooth(x, sigma)
        d = x - mean
        var = _smooth(d * d, sigma)
    else:
        w = fov.astype(np.float32)
        ws = np.maximum(_smooth(w, sigma), 1e-3)
        mean = _smooth(x * w, sigma) / ws
        d = (x - mean) * w
        var = _smooth(d * d, sigma) / ws
    inside = var if fov is None else var[fov]
    stat = np.mean if m.get("floor_stat", "median") == "mean" else np.median
    typical = float(np.sqrt(stat(inside))) if inside.size else 0.0
    typical = max(typical, float(m.get("min_std", 0.0)))
    z = d / np.sqrt(var + (floor * typical) ** 2 + 1e-8)
    out = 0.5 + gain * z
    if fov is not None:
        out = np.where(fov, out, 0.5)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
