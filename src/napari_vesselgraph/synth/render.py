"""Vectorised rendering helpers: tube rasterisation, smooth random fields, blur and noise."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

_BALL_OFFSETS: dict[tuple[int, int], np.ndarray] = {}


def _ball_offsets(w: int, ndim: int) -> np.ndarray:
    """Integer offsets within distance ``w`` of the origin (float32), cached."""
    key = (w, ndim)
    if key not in _BALL_OFFSETS:
        g = np.stack(np.meshgrid(*[np.arange(-w, w + 1)] * ndim, indexing="ij"), -1).reshape(-1, ndim)
        _BALL_OFFSETS[key] = g[(g * g).sum(1) <= w * w].astype(np.float32)
    return _BALL_OFFSETS[key]


def rasterize_tubes(
    points: np.ndarray,
    edges: np.ndarray,
    seg_radius: np.ndarray,
    shape,
    tube: float = 0.0,
    values: np.ndarray | None = None,
    chunk: int = 300_000,
) -> np.ndarray:
    """Render tubes around segments into a float32 image of ``shape`` (max over overlapping tubes).

    Every segment ``points[edges[k]]`` is a truncated cone whose radius goes linearly from
    ``seg_radius[k, 0]`` to ``seg_radius[k, 1]``. The value at distance ``d`` from the centreline is
    the anti-aliased coverage ``clip(r + 0.5 - d, 0, 1)``; ``tube > 0`` darkens the walls like the
    projection of a filled cylinder (``1 - tube + tube * sqrt(1 - (d / (r + 0.5))**2)``).
    ``values`` (one per segment) scales each segment's contribution.
    """
    shape = tuple(int(s) for s in shape)
    d = len(shape)
    if not len(edges):
        return np.zeros(shape, np.float32)
    a = points[edges[:, 0]].astype(np.float32)
    b = points[edges[:, 1]].astype(np.float32)
    ra = seg_radius[:, 0].astype(np.float32)
    rb = seg_radius[:, 1].astype(np.float32)
    vals = np.ones(len(edges), np.float32) if values is None else np.asarray(values, np.float32)
    mid = (a + b) / 2
    c = np.rint(mid)
    # every pixel within r + 0.5 of the segment lies within this distance of the rounded midpoint
    reach = np.maximum(ra, rb) + 0.5 + np.sqrt(((b - a) ** 2).sum(1)) / 2 + np.sqrt(d) / 2
    hi = np.asarray(shape, np.float32) - 1
    vis = np.all((c + reach[:, None] >= 0) & (c - reach[:, None] <= hi), 1)
    if not vis.any():
        return np.zeros(shape, np.float32)
    w_all = np.ceil(reach).astype(np.int64)
    pad = int(w_all[vis].max()) + 1
    # segments whose window leaves the padded image are clamped into it: their far pixels are cropped anyway
    c = np.clip(c, -pad + w_all[:, None], hi + pad - w_all[:, None])
    pshape = tuple(s + 2 * pad for s in shape)
    out = np.zeros(int(np.prod(pshape)), np.float32)
    strides = np.array([int(np.prod(pshape[i + 1 :])) for i in range(d)], np.int64)
    base = (c.astype(np.int64) + pad) @ strides
    ca = c - a
    ab = b - a
    L2 = np.maximum((ab * ab).sum(1), 1e-12)
    dr = rb - ra
    for w in np.unique(w_all[vis]):
        sel = np.flatnonzero(vis & (w_all == w))
        off = _ball_offsets(int(w), d)
        off_flat = off.astype(np.int64) @ strides
        per = max(1, chunk // len(off))
        for s0 in range(0, len(sel), per):
            s = sel[s0 : s0 + per]
            q = off[None] + ca[s][:, None, :]  # sample - a
            t = (q * ab[s][:, None, :]).sum(-1) / L2[s][:, None]
            np.clip(t, 0, 1, out=t)
            q -= t[..., None] * ab[s][:, None, :]
            dist = np.sqrt((q * q).sum(-1))
            r = ra[s][:, None] + t * dr[s][:, None]
            v = r + 0.5 - dist
            np.clip(v, 0, 1, out=v)
            if tube:
                u = np.minimum(dist / (r + 0.5), 1)
                v *= 1 - tube + tube * np.sqrt(1 - u * u)
            if values is not None:
                v *= vals[s][:, None]
            m = v > 0
            flat = base[s][:, None] + off_flat[None]
            np.maximum.at(out, flat[m], v[m])
    out = out.reshape(pshape)
    return np.ascontiguousarray(out[tuple(slice(pad, pad + s) for s in shape)])


_AMPLITUDES: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
AMPLITUDE_CACHE_SIZE = 32  # fixed domains reuse a few (shape, sigma); randomised ones draw a new sigma per image


def _amplitude(shape: tuple[int, ...], sigma: float):
    """Gaussian spectral envelope for ``smooth_field`` restricted to the frequencies that matter.

    Cached for the last ``AMPLITUDE_CACHE_SIZE`` (shape, sigma) pairs only: the randomised domains draw sigma
    afresh for every image, and an unbounded cache grew by ~11 MB per 48x96x96 volume (a 3D training run died
    of it at 23 GB)."""
    key = (shape, round(float(sigma), 4))
    if key in _AMPLITUDES:
        _AMPLITUDES.move_to_end(key)
    else:
        freqs = [np.fft.fftfreq(s) for s in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
        k2 = np.zeros([len(f) for f in freqs])
        for i, f in enumerate(freqs):
            sh = [1] * len(shape)
            sh[i] = len(f)
            k2 = k2 + f.reshape(sh) ** 2
        amp = np.exp(-2 * (math.pi * sigma) ** 2 * k2)
        amp.flat[0] = 0.0
        # normalise so that the field has unit variance (Parseval, irfft of a half spectrum)
        weight = np.full(amp.shape[-1], 2.0)
        weight[0] = 1.0
        if shape[-1] % 2 == 0:
            weight[-1] = 1.0
        var = 2 * float((amp**2 * weight).sum()) / float(np.prod(shape)) ** 2
        amp = (amp / math.sqrt(max(var, 1e-30))).astype(np.float32)
        _AMPLITUDES[key] = (amp, amp > 1e-4 * amp.max())
        while len(_AMPLITUDES) > AMPLITUDE_CACHE_SIZE:
            _AMPLITUDES.popitem(last=False)
    return _AMPLITUDES[key]


def smooth_field(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation length about ``sigma`` pixels, zero mean, unit std (float32).

    Periodic (it wraps around the image borders), made by filtering white noise in Fourier space;
    only the frequencies that survive the Gaussian envelope get random coefficients.
    """
    from scipy import fft

    shape = tuple(int(s) for s in shape)
    amp, keep = _amplitude(shape, sigma)
    spec = np.zeros(amp.shape, np.complex64)
    n = int(keep.sum())
    coef = rng.standard_normal((2, n), np.float32)
    spec[keep] = (coef[0] + 1j * coef[1]) * amp[keep]
    return fft.irfftn(spec, s=shape, axes=tuple(range(len(shape)))).astype(np.float32, copy=False)


def blur(img: np.ndarray, sigma, channel_axis: bool = False) -> np.ndarray:
    """Gaussian blur with a per-axis ``sigma`` (pixels); the trailing channel axis is not blurred."""
    from scipy.ndimage import gaussian_filter

    nd = img.ndim - (1 if channel_axis else 0)
    s = np.broadcast_to(np.asarray(sigma, float), (nd,))
    if not np.any(s > 0):
        return img
    sig = list(s) + ([0.0] if channel_axis else [])
    return gaussian_filter(img, sig, mode="nearest", truncate=3.0)


def radial(shape, centre, scale) -> np.ndarray:
    """Squared normalised distance from ``centre`` (pixels), float32."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = 0
    for g, c, s in zip(grids, centre, scale):
        r2 = r2 + ((g.astype(np.float32) - c) / s) ** 2
    return np.asarray(r2, np.float32)
