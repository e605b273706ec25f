"""Segmentation checkpoints: a small U-Net that paints the centre-line tubes of a network, and the graph of its mask.

This is the second kind of model the package runs (``meta["kind"] == "segmentation"``), beside the Relationformer
(``"relationformer"``, the default when a checkpoint does not say). vesselFM and SAM-Road get their graphs from a
dense segmentation; on the real 3D stacks (vesselNN, DIADEM) that route is where a learned model first beat the
classical skeleton (benchmarks/seg3d_probe.py, docs/benchmarks.md).

- :class:`SegConfig`: everything a segmentation checkpoint needs to run (dimensions, channels, input normalisation,
  patch size, tube radius, probability threshold, smallest kept component); stored as ``meta["segmentation"]``.
- :class:`UNet`: three levels (``channels``), instance norm, 2D or 3D.
- :func:`seg_input`: the two input channels: a global stretch (median to 99.9th percentile of the image) and the
  local contrast of :func:`~napari_vesselgraph.model.preprocess.local_contrast` (``cfg.local``).
- :func:`tube_target`: the training target of a graph (tubes of radius ``cfg.tube_radius`` around its edges).
- :func:`probability`: the sliding-window probability map of a whole image (progress callback, cancel token).
- :func:`mask_graph`: threshold, drop small components, :func:`importers.masks.mask_to_graph`.
- :class:`Segmenter`: a loaded checkpoint; ``segmenter.graph(image, scale=...)``.
- :func:`save_segmenter` / :func:`load_segmenter`: safetensors + JSON metadata, checked before any tensor is read.

Training: :mod:`napari_vesselgraph.model.segtrain` (``vesselgraph train-seg``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, VesselGraphError

from ..checkpoints.meta import SEGMENTATION_KIND as KIND
from ..checkpoints.meta import is_segmentation  # noqa: F401 (re-exported: model.segment.is_segmentation)
#: the local contrast that ``vessel3d-random`` uses (its preprocessing), the second input channel
DEFAULT_LOCAL = {"method": "local", "sigma": 16.0, "floor_stat": "mean", "min_std": 0.01, "channels": 1}


@dataclass
class SegConfig:
    ndim: int = 3
    channels: tuple[int, ...] = (8, 16, 32)
    patch: tuple[int, ...] = (24, 64, 64)
    tube_radius: float = 1.5
    threshold: float = 0.5
    min_size: int = 64
    local: dict = field(default_factory=lambda: dict(DEFAULT_LOCAL))
    node_spacing: float = 10.0
    window: tuple[int, ...] | None = None
    overlap: float = 0.125
    min_brightness: float = 0.0

    def __post_init__(self):
        if self.ndim not in (2, 3):
            raise VesselGraphError(f"segmentation config: ndim must be 2 or 3, got {self.ndim!r}")
        self.channels = tuple(int(c) for c in self.channels)
        self.patch = tuple(int(p) for p in self.patch)
        if self.window is not None:
            self.window = tuple(int(w) for w in self.window)
            if len(self.window) != self.ndim or not all(8 <= w <= 1024 and w % 4 == 0 for w in self.window):
                raise VesselGraphError(
                    f"segmentation config: window must be {self.ndim} multiples of 4 in 8..1024, got {self.window}"
                )
        if not 0.0 <= float(self.overlap) < 1.0:
            raise VesselGraphError(f"segmentation config: overlap must be in [0, 1), got {self.overlap!r}")
        if len(self.channels) != 3 or not all(1 <= c <= 256 for c in self.channels):
            raise VesselGraphError(f"segmentation config: channels must be three numbers in 1..256, got {self.channels}")
        if len(self.patch) != self.ndim or not all(4 <= p <= 1024 and p % 4 == 0 for p in self.patch):
            raise VesselGraphError(
                f"segmentation config: patch must be {self.ndim} multiples of 4 in 4..1024, got {self.patch}"
            )
        if not (0.0 < float(self.threshold) < 1.0):
            raise VesselGraphError(f"segmentation config: threshold must be in (0, 1), got {self.threshold!r}")
        if not (0.0 < float(self.tube_radius) <= 20.0) or int(self.min_size) < 0 or not float(self.node_spacing) > 0:
            raise VesselGraphError("segmentation config: tube_radius in (0, 20], min_size >= 0, node_spacing > 0")
        if not isinstance(self.local, dict):
            raise VesselGraphError("segmentation config: local must be a dict of local-contrast settings")
        if not 0.0 <= float(self.min_brightness) <= 1.5:
            raise VesselGraphError(
                f"segmentation config: min_brightness must be in [0, 1.5], got {self.min_brightness!r}"
            )

    def infer_window(self) -> tuple[int, ...]:
        """The prediction window: ``window``, else 1.5 times the training patch (rounded down to a multiple of 8):
        as good on the real stacks as the training patch and several times faster per voxel (fewer windows)."""
        if self.window is not None:
            return self.window
        return tuple(max(8, int(p * 1.5) // 8 * 8) for p in self.patch)

    def architecture(self) -> dict[str, Any]:
        """What training depends on (a run cannot resume with other values)."""
        return {k: v for k, v in self.to_dict().items() if k in ("ndim", "channels", "patch", "tube_radius", "local")}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"], d["patch"] = list(self.channels), list(self.patch)
        d["window"] = list(self.window) if self.window is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "checkpoint") -> SegConfig:
        if not isinstance(d, dict):
            raise VesselGraphError(f"{where}: metadata 'segmentation' must be an object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise VesselGraphError(f"{where}: unknown segmentation setting(s) {unknown}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise VesselGraphError(f"{where}: invalid segmentation config ({e})") from None


def build_unet(cfg: SegConfig, in_channels: int = 2):
    """The network for ``cfg`` (a ``torch.nn.Module``; logits of one channel, same spatial size as the input)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    conv = nn.Conv3d if cfg.ndim == 3 else nn.Conv2d
    norm = nn.InstanceNorm3d if cfg.ndim == 3 else nn.InstanceNorm2d
    up = nn.ConvTranspose3d if cfg.ndim == 3 else nn.ConvTranspose2d
    pool = F.max_pool3d if cfg.ndim == 3 else F.max_pool2d

    def block(ci, co):
        return nn.Sequential(conv(ci, co, 3, padding=1), norm(co, affine=True), nn.LeakyReLU(0.1),
                             conv(co, co, 3, padding=1), norm(co, affine=True), nn.LeakyReLU(0.1))  # fmt: skip

    c0, c1, c2 = cfg.channels

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.e0, self.e1, self.e2 = block(in_channels, c0), block(c0, c1), block(c1, c2)
            self.u1, self.d1 = up(c2, c1, 2, 2), block(2 * c1, c1)
            self.u0, self.d0 = up(c1, c0, 2, 2), block(2 * c0, c0)
            self.out = conv(c0, 1, 1)

        def forward(self, x):
            a = self.e0(x)
            b = self.e1(pool(a, 2))
            c = self.e2(pool(b, 2))
            b = self.d1(torch.cat([self.u1(c), b], 1))
            a = self.d0(torch.cat([self.u0(b), a], 1))
            return self.out(a)

    return UNet()


# ------------------------------------------------------------------ data
def seg_input(image, cfg: SegConfig) -> np.ndarray:
    """``(2, *spatial)`` float32: the image stretched from its median to its 99.9th percentile (clipped to
    [0, 1.5]) and its local contrast (clipped to [0, 1]). An RGB photo (last axis 3/4, 2D config) is made grey
    as its green channel, the one that shows vessels best in fundus photos."""
    from .preprocess import local_contrast

    x = grey_of(image, cfg)
    if x.ndim != cfg.ndim:
        raise VesselGraphError(f"this segmentation model needs a {cfg.ndim}D grey image, got shape {x.shape}")
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    step = [max(1, n // 64) for n in x.shape]
    s = x[tuple(slice(None, None, k) for k in step)].ravel()
    med, hi = np.percentile(s, [50, 99.9])
    g = np.clip((x - med) / max(float(hi - med), 1e-6), 0, 1.5)
    loc = local_contrast(x, dict(cfg.local, ndim=cfg.ndim))
    return np.stack([g, np.clip(loc, 0, 1)]).astype(np.float32)


def tube_target(graph, shape, cfg: SegConfig) -> np.ndarray:
    """1 inside tubes of radius ``cfg.tube_radius`` around the graph's edges, else 0 (float32, ``shape``)."""
    from ..synth.render import rasterize_tubes

    if graph.n_edges == 0:
        return np.zeros(shape, np.float32)
    r = np.full((graph.n_edges, 2), cfg.tube_radius, np.float32)
    tubes = rasterize_tubes(np.asarray(graph.nodes, np.float32), np.asarray(graph.edges), r, tuple(shape))
    return (tubes >= 0.5).astype(np.float32)


def pad_to(x: np.ndarray, shape) -> np.ndarray:
    """Zero-pad the last ``len(shape)`` axes of ``x`` up to ``shape`` (never crops)."""
    nd = len(shape)
    pads = [(0, max(0, p - s)) for s, p in zip(x.shape[-nd:], shape)]
    if any(p[1] for p in pads):
        x = np.pad(x, [(0, 0)] * (x.ndim - nd) + pads, mode="constant")
    return x


#: how far :func:`fitted_windows` may stretch a window beyond the nominal size (a share of it)
WINDOW_STRETCH = 0.25


def fitted_windows(shape, window, overlap: float) -> tuple[tuple[int, ...], list[list[int]]]:
    """The window size and origins per axis that cover ``shape`` with windows close to ``window`` pixels, overlapping
    by at least ``overlap`` of it (and by at most ``window`` - 4 pixels), sized so that the windows fit the axis: as
    few windows as windows at most ``1 + WINDOW_STRETCH`` times the nominal size allow, then the smallest multiple of
    4 that covers the axis with that many, spaced evenly. Fixed-size windows with the last one flush with the end
    cover 192 voxels with three windows of 96 (the third adds 12 new ones); fitted, that is two of 104 (2.6 against
    1.37 times the voxels of a 192^3 volume with 32x96x96 windows). Returns ``(window, starts)``; a window is never
    larger than its axis needs (rounded up to a multiple of 4)."""
    sizes, starts = [], []
    for s, w in zip(shape, window):
        s, w = int(s), int(w)
        cap = -(-s // 4) * 4
        if cap <= w:
            sizes.append(cap)
            starts.append([0])
            continue
        o = min(round(w * overlap), w - 4)  # each window adds at least 4 new pixels
        n = max(1, round((s - o) / (w - o)))
        while True:  # ends: as n grows, size falls towards o + 1 rounded up to a multiple of 4, at most w
            size = -(-(s + (n - 1) * o) // n)
            size = -(-size // 4) * 4
            if size <= w * (1 + WINDOW_STRETCH):
                break
            n += 1
        size = min(size, cap)
        last = max(0, s - size)
        org = sorted({round(i * last / (n - 1)) for i in range(n)}) if n > 1 else [0]
        sizes.append(size)
        starts.append(org)
    return tuple(sizes), starts


def probability(net, image, cfg: SegConfig, overlap: float | None = None, device="cpu", progress=None, cancel=None,
                batch_size: int = 1, window=None) -> np.ndarray:  # fmt: skip
    """The vessel probability of every pixel of ``image`` (float32, the image's spatial shape), window by window:
    windows of about ``window`` pixels (default ``cfg.infer_window()``; the network is fully convolutional, and
    windows a little larger than the training patches are faster per voxel) that share at least ``overlap`` of their
    size (default ``cfg.overlap``), fitted to the image by :func:`fitted_windows`; overlapping predictions are
    averaged.
    ``progress(done, total, info)`` is called after every batch, ``cancel.is_set()`` checked before it."""
    import itertools

    import torch

    overlap = cfg.overlap if overlap is None else float(overlap)
    if not 0.0 <= overlap < 1.0:
        raise VesselGraphError(f"overlap must be in [0, 1), got {overlap}")
    patch = tuple(int(w) for w in (window if window is not None else cfg.infer_window()))
    if len(patch) != cfg.ndim or any(w < 8 or w % 4 for w in patch):
        raise VesselGraphError(f"window must be {cfg.ndim} multiples of 4, at least 8, got {patch}")
    x = seg_input(image, cfg)
    shp = x.shape[1:]
    patch, per_axis = fitted_windows(shp, patch, overlap)
    xp = pad_to(x, patch)
    full = xp.shape[1:]
    starts = list(itertools.product(*per_axis))
    acc = np.zeros(full, np.float32)
    cnt = np.zeros(full, np.float32)
    t0 = time.perf_counter()
    net.eval()
    total = len(starts)
    with torch.inference_mode():
        for i in range(0, total, batch_size):
            if cancel is not None and cancel.is_set():
                raise Cancelled("prediction cancelled")
            sls = [tuple(slice(o, o + p) for o, p in zip(org, patch)) for org in starts[i : i + batch_size]]
            batch = np.stack([xp[(slice(None),) + sl] for sl in sls])
            prob = torch.sigmoid(net(torch.from_numpy(batch).to(device)))[:, 0].float().cpu().numpy()
            for sl, p in zip(sls, prob):
                acc[sl] += p
                cnt[sl] += 1
            if progress is not None:
                done = min(total, i + batch_size)
                progress(done, total, {"stage": "segment", "elapsed_s": round(time.perf_counter() - t0, 3)})
    out = acc / np.maximum(cnt, 1)
    return out[tuple(slice(0, n) for n in shp)]


def remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """``mask`` without its connected components (full connectivity) smaller than ``min_size`` pixels."""
    from ..baseline.pipeline import _remove_small

    return _remove_small(np.asarray(mask, bool), int(min_size))


def mask_graph(prob: np.ndarray, cfg: SegConfig, threshold: float | None = None, min_size: int | None = None,
               scale=None):  # fmt: skip
    """The centre-line graph of ``prob >= threshold`` without components under ``min_size`` pixels (defaults: the
    config's), by :func:`napari_vesselgraph.importers.masks.mask_to_graph` (nodes ``cfg.node_spacing`` px apart)."""
    from ..importers.masks import mask_to_graph

    th = cfg.threshold if threshold is None else float(threshold)
    ms = cfg.min_size if min_size is None else int(min_size)
    mask = remove_small(prob >= th, ms)
    if not mask.any():  # nothing found is an empty graph, not an error
        from ..graph import VesselGraph

        nd = prob.ndim
        return VesselGraph(nodes=np.zeros((0, nd)), edges=np.zeros((0, 2), int), scale=scale,
                           metadata={"n_mask_pixels": 0})  # fmt: skip
    return mask_to_graph(mask, scale=scale, spacing=cfg.node_spacing)


def grey_of(image, cfg: SegConfig) -> np.ndarray:
    """The grey image the model reads (float32): an RGB photo's green channel, else the image."""
    x = np.asarray(image, np.float32)
    if x.ndim == cfg.ndim + 1 and x.shape[-1] in (3, 4):
        x = x[..., 1]
    return x


# ------------------------------------------------------------------ checkpoints
def save_segmenter(path, net, cfg: SegConfig, meta: dict | None = None) -> Path:
    """Write ``net``'s weights and ``cfg`` (plus ``meta``: command, seed, domain, description, ...) as one
    safetensors file with a JSON sidecar (atomic writes)."""
    import datetime as _dt
    import sys

    from ..checkpoints.store import FORMAT_VERSION, PICKLE_SUFFIXES, SUFFIX, _package_version, save_tensors

    path = Path(path)
    if path.suffix.lower() != SUFFIX:  # as save_checkpoint: the checkpoint lists find only .safetensors files
        pickle = path.suffix.lower() in PICKLE_SUFFIXES
        path = path.with_suffix(SUFFIX) if pickle else path.with_name(path.name + SUFFIX)
    m: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "seed": None,
        "package_version": _package_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "ndim": cfg.ndim,
        "in_channels": 1,
        "patch_size": list(cfg.patch),
    }
    m.update(meta or {})
    m["kind"] = KIND
    m["segmentation"] = cfg.to_dict()
    m["format_version"] = FORMAT_VERSION
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    return save_tensors(path, tensors, m)


class Segmenter:
    """A loaded segmentation checkpoint: ``probability(image)`` and ``graph(image, scale)``."""

    def __init__(self, net, cfg: SegConfig, meta: dict, device="cpu"):
        self.net, self.cfg, self.meta, self.device = net, cfg, meta, device

    #: windows per network call: two are about 1.5x faster per window than one on a CPU thread (the 3D convolutions
    #: of a single small window take PyTorch's slow path; measured with runs/seg3d_b, windows of 32x96x96)
    batch_size = 2

    def probability(self, image, overlap: float | None = None, progress=None, cancel=None) -> np.ndarray:
        return probability(self.net, image, self.cfg, overlap, self.device, progress, cancel, self.batch_size)

    def graph(self, image, scale=None, threshold=None, min_size=None, overlap: float | None = None, progress=None,
              cancel=None, prob=None):  # fmt: skip
        """The centre-line graph of ``image`` (``prob``: its probability map when already computed). The
        checkpoint's ``min_brightness`` clean-up is not applied here: ``inference.predict`` applies it
        (``inference.support.drop_dim``)."""
        t0 = time.perf_counter()
        if prob is None:
            prob = self.probability(image, overlap, progress, cancel)
        if cancel is not None and cancel.is_set():
            raise Cancelled("prediction cancelled")
        g = mask_graph(prob, self.cfg, threshold, min_size, scale)
        ov = self.cfg.overlap if overlap is None else float(overlap)
        g.metadata = dict(g.metadata or {})
        g.metadata.update(
            method="model",
            kind=KIND,
            checkpoint=self.meta.get("name") or self.meta.get("path"),
            threshold=self.cfg.threshold if threshold is None else float(threshold),
            min_size=self.cfg.min_size if min_size is None else int(min_size),
            overlap=ov,
            window=list(fitted_windows(prob.shape, self.cfg.infer_window(), ov)[0]),  # the size used on this image
            device=str(self.device),
            elapsed_s=round(time.perf_counter() - t0, 3),
        )
        return g

    def close(self) -> None:
        self.net = None


def load_segmenter(name_or_path, device="cpu") -> Segmenter:
    """Load a segmentation checkpoint (bundled/user name or path): metadata and tensor shapes are checked against
    the architecture the metadata describes before the weights are read (never unpickles)."""
    import torch

    from ..checkpoints.store import _check_shapes, _metadata, load_tensors, read_header, resolve

    path = resolve(name_or_path)
    header = read_header(path)
    meta = _metadata(path, header)
    if not is_segmentation(meta):
        raise VesselGraphError(f"{path}: not a segmentation checkpoint (kind {meta.get('kind', 'relationformer')!r})")
    cfg = SegConfig.from_dict(meta.get("segmentation"), str(path))
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_unet(cfg).state_dict().items()}
    in_file = {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_shapes(path, in_file, expected)
    tensors, _ = load_tensors(path)
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise VesselGraphError(f"{path}: weight {k!r} contains NaN or infinite values")
    net = build_unet(cfg)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, strict=True)
    net.to(device).eval()
    meta["path"] = str(path)
    return Segmenter(net, cfg, meta, device)
