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
      or min–max, or nothing; optionally inverted.
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
    elif method != "none":
        raise VesselGraphError(f"unknown normalisation method {method!r}")
    img = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0)
    if m.get("invert"):
        img = 1.0 - img
    return np.ascontiguousarray(img, dtype=np.float32)
