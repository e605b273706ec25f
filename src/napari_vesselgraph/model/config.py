"""Architecture configuration of the Relationformer model (plain data, no torch import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

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

    def __post_init__(self) -> None:
        self.ndim = int(self.ndim)
        if self.ndim not in (2, 3):
            raise VesselGraphError(f"model ndim must be 2 or 3, got {self.ndim}")
        self.patch_size = _tuple(self.patch_size, self.ndim, "patch_size")
        self.query_grid = _tuple(self.query_grid, self.ndim, "query_grid")
        self.backbone_channels = tuple(int(c) for c in self.backbone_channels)
        self.stride = int(self.stride)
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
        if self.in_channels < 1:
            raise VesselGraphError("in_channels must be at least 1")
        self.relation_line = int(self.relation_line)
        self.relation_line_channels = int(self.relation_line_channels)
        if self.relation_line < 0 or self.relation_line == 1:
            raise VesselGraphError(f"relation_line must be 0 (off) or at least 2 samples, got {self.relation_line}")
        if self.relation_line and len(self.backbone_channels) < 2:
            raise VesselGraphError("relation_line needs a backbone with at least one stride-2 stage")

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


def _tuple(v, ndim: int, what: str) -> tuple[int, ...]:
    if isinstance(v, (int, float)):
        return (int(v),) * ndim
    t = tuple(int(x) for x in v)
    if len(t) == 1:
        t = t * ndim
    if len(t) != ndim:
        raise VesselGraphError(f"{what} {t} does not match ndim={ndim}")
    return t


__all__ = ["ModelConfig"]
