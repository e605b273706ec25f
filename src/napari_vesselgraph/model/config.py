"""Architecture configuration of the Relationformer model (plain data, no torch import)."""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from ..errors import VesselGraphError


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model before its weights are loaded.

    Sizes are kept small on purpose: the bundled models must train on a laptop CPU in under an hour.

    ``query_grid`` is the number of object queries along each axis. Each query owns a fixed reference point
    (the centre of its cell in a regular grid over the patch) and predicts its node as that point plus a
    bounded offset of at most ``max_offset`` cells, so every query learns a local job.
    """

    ndim: int = 2
    in_channels: int = 1
    patch_size: tuple[int, ...] = (64, 64)
    backbone_channels: tuple[int, ...] = (32, 64, 128)  # stem width, then one stage per stride-2 step
    blocks_per_stage: int = 1
    stride: int = 4  # 4 or 8: downsampling of the backbone (2 ** (len(backbone_channels) - 1))
    hidden: int = 128
    heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    ffn: int = 256
    dropout: float = 0.0
    query_grid: tuple[int, ...] = (8, 8)
    max_offset: float = 1.5  # in grid cells
    max_radius: float = 16.0  # pixels; radius head output range (0, max_radius)
    dense_head: bool = True  # auxiliary centreline / node heat maps from the backbone
    refine: bool = False  # each decoder layer refines the previous layer's positions (queries follow them)
    # relation head also reads the image between the two nodes: ``relation_line`` points sampled on the segment
    # joining them from a learned ``relation_line_channels``-channel map at backbone stride 2, plus their
    # displacement (0: off, the paper's head: [obj_i | obj_j | rln] only)
    relation_line: int = 0
    relation_line_channels: int = 8

    # Bounds: a checkpoint's metadata or a training config is untrusted input, and the model is allocated from
    # it. They are far above every bundled config (hidden 128, 2 + 2 layers, 64 queries, ~1.3 M parameters).
    MAX_PARAMETERS: ClassVar[int] = 50_000_000  # 200 MB of float32 weights
    MAX_TOKENS: ClassVar[int] = 4096  # encoder tokens (feature map cells) and object queries, each
    MAX_PATCH_VOXELS: ClassVar[int] = 512 * 512 * 8  # 2 M pixels: 512 x 4096 in 2D, 128 ** 3 in 3D

    def __post_init__(self) -> None:
        self.ndim = _int(self.ndim, "ndim", 2, 3)
        self.in_channels = _int(self.in_channels, "in_channels", 1, 4)
        self.patch_size = _tuple(self.patch_size, self.ndim, "patch_size", 1, 512)
        self.query_grid = _tuple(self.query_grid, self.ndim, "query_grid", 1, self.MAX_TOKENS)
        if isinstance(self.backbone_channels, (str, bytes)) or not hasattr(self.backbone_channels, "__len__"):
            raise VesselGraphError(f"backbone_channels must be a list of widths, got {self.backbone_channels!r}")
        if not 1 <= len(self.backbone_channels) <= 8:
            raise VesselGraphError(f"backbone_channels must list 1 to 8 widths, got {len(self.backbone_channels)}")
        self.backbone_channels = tuple(_int(c, "backbone width", 1, 1024) for c in self.backbone_channels)
        self.blocks_per_stage = _int(self.blocks_per_stage, "blocks_per_stage", 1, 8)
        self.stride = _int(self.stride, "stride", 1, 16)
        self.hidden = _int(self.hidden, "hidden", 2, 1024)
        self.heads = _int(self.heads, "heads", 1, 64)
        self.enc_layers = _int(self.enc_layers, "enc_layers", 0, 24)
        self.dec_layers = _int(self.dec_layers, "dec_layers", 1, 24)
        self.ffn = _int(self.ffn, "ffn", 1, 8192)
        self.dropout = _float(self.dropout, "dropout", 0.0, 0.99)
        self.max_offset = _float(self.max_offset, "max_offset", 1e-3, 1e3)
        self.max_radius = _float(self.max_radius, "max_radius", 1e-3, 1e6)
        self.dense_head = _bool(self.dense_head, "dense_head")
        self.refine = _bool(self.refine, "refine")
        if self.stride not in (2, 4, 8, 16):
            raise VesselGraphError(f"backbone stride must be 2, 4, 8 or 16, got {self.stride}")
        n_down = self.stride.bit_length() - 1
        if len(self.backbone_channels) != n_down + 1:
            raise VesselGraphError(
                f"stride {self.stride} needs {n_down + 1} backbone widths (stem + {n_down} stages), "
                f"got {len(self.backbone_channels)}"
            )
        for p in self.patch_size:
            if p % self.stride:
                raise VesselGraphError(f"patch size {self.patch_size} must be a multiple of the stride {self.stride}")
        if self.hidden % self.heads:
            raise VesselGraphError(f"hidden size {self.hidden} must be divisible by the head count {self.heads}")
        self.relation_line = _int(self.relation_line, "relation_line", 0, 64)
        self.relation_line_channels = _int(self.relation_line_channels, "relation_line_channels", 1, 256)
        if self.relation_line == 1:
            raise VesselGraphError(f"relation_line must be 0 (off) or at least 2 samples, got {self.relation_line}")
        if self.relation_line and len(self.backbone_channels) < 2:
            raise VesselGraphError("relation_line needs a backbone with at least one stride-2 stage")
        if math.prod(self.patch_size) > self.MAX_PATCH_VOXELS:
            raise VesselGraphError(
                f"patch_size {list(self.patch_size)} has {math.prod(self.patch_size)} pixels; at most "
                f"{self.MAX_PATCH_VOXELS} are supported"
            )
        if self.n_queries > self.MAX_TOKENS:
            raise VesselGraphError(
                f"query_grid {list(self.query_grid)} makes {self.n_queries} queries; at most {self.MAX_TOKENS}"
            )
        tokens = math.prod(self.feature_shape)
        if tokens > self.MAX_TOKENS:
            raise VesselGraphError(
                f"patch_size {list(self.patch_size)} at stride {self.stride} makes {tokens} encoder tokens; at most "
                f"{self.MAX_TOKENS} (use a larger stride or a smaller patch)"
            )
        n_par = self.estimated_parameters()
        if n_par > self.MAX_PARAMETERS:
            raise VesselGraphError(
                f"this architecture has {n_par / 1e6:.0f} M parameters; at most {self.MAX_PARAMETERS / 1e6:.0f} M "
                "are supported (lower hidden, ffn, layers or backbone widths)"
            )

    def estimated_parameters(self) -> int:
        """The number of weights :class:`~napari_vesselgraph.model.network.Relationformer` has for this config,
        worked out without torch (it is exact; a test keeps it so)."""
        d, f, nd, k = self.hidden, self.ffn, self.ndim, 3**self.ndim
        ch = self.backbone_channels
        n = self.in_channels * ch[0] * k + 2 * ch[0]  # stem conv + norm
        for a, b in itertools.pairwise(ch):
            n += a * b * k + b * b * k + 4 * b + a * b + 2 * b  # first block: two convs, two norms, strided skip
            n += (self.blocks_per_stage - 1) * (2 * b * b * k + 4 * b)
        n += ch[-1] * d + d  # input projection
        n += (ch[-1] * 2 + 2) if self.dense_head else 0
        attn = 4 * d * d + 4 * d
        ff = d * f + f + f * d + d
        n += self.enc_layers * (attn + 4 * d + ff) + 2 * d
        n += self.dec_layers * (2 * attn + 6 * d + ff) + 2 * d
        n += self.n_queries * d + 2 * d  # query content, [rln] token and position
        n += 2 * (d * d + d)  # query position MLP
        n += 2 * d + 2  # class head
        n += 2 * (d * d + d) + d * nd + nd  # position head
        h = d // 2
        n += d * h + h + h + 1  # radius head
        rel_in = 3 * d
        if self.relation_line:
            n += ch[1] * self.relation_line_channels + self.relation_line_channels
            rel_in += self.relation_line * self.relation_line_channels + nd + 1
        n += rel_in * d + d + d * d + d + d + 1  # relation head
        return int(n)

    @property
    def n_queries(self) -> int:
        n = 1
        for g in self.query_grid:
            n *= g
        return n

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(p // self.stride for p in self.patch_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise VesselGraphError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def _int(v, what: str, lo: int, hi: int) -> int:
    """``v`` as an int in ``[lo, hi]`` (a whole float such as ``128.0`` is accepted; bools and text are not)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise VesselGraphError(f"model config: {what} must be a whole number, got {v!r}")
    if isinstance(v, numbers.Integral):
        i = int(v)
    else:
        f = float(v)
        if not math.isfinite(f) or f != int(f):
            raise VesselGraphError(f"model config: {what} must be a whole number, got {v!r}")
        i = int(f)
    if not lo <= i <= hi:
        raise VesselGraphError(f"model config: {what} must be between {lo} and {hi}, got {i}")
    return i


def _float(v, what: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise VesselGraphError(f"model config: {what} must be a finite number, got {v!r}")
    if not lo <= float(v) <= hi:
        raise VesselGraphError(f"model config: {what} must be between {lo:g} and {hi:g}, got {float(v):g}")
    return float(v)


def _bool(v, what: str) -> bool:
    if isinstance(v, bool) or (isinstance(v, numbers.Integral) and int(v) in (0, 1)):
        return bool(v)
    raise VesselGraphError(f"model config: {what} must be true or false, got {v!r}")


def _tuple(v, ndim: int, what: str, lo: int = 1, hi: int = 1 << 30) -> tuple[int, ...]:
    if isinstance(v, numbers.Real):
        return (_int(v, what, lo, hi),) * ndim
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) > 8:
        raise VesselGraphError(f"model config: {what} must be a number or a list of {ndim}, got {v!r}")
    t = tuple(_int(x, what, lo, hi) for x in v)
    if len(t) == 1:
        t = t * ndim
    if len(t) != ndim:
        raise VesselGraphError(f"{what} {t} does not match ndim={ndim}")
    return t


__all__ = ["ModelConfig"]
