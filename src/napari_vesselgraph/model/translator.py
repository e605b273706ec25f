"""The image translator of translation adaptation, a model part: built from a checkpoint's ``meta["translator"]``.

:func:`build_translator` turns that config (bounded first: it comes from a file) into a :class:`Translator`;
:func:`attach_translator` makes a Relationformer run it on every patch first (``model.translator``, saved with the
weights), which is how :func:`napari_vesselgraph.checkpoints.load_checkpoint` rebuilds a translation-adapted
checkpoint. :class:`PatchDiscriminator` is the critic its training (:mod:`napari_vesselgraph.adapt.translate`) uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VesselGraphError

EPS = 1e-3


def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _gn(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class _Res(nn.Module):
    def __init__(self, ndim: int, ch: int):
        super().__init__()
        Conv = _conv(ndim)
        self.body = nn.Sequential(Conv(ch, ch, 3, padding=1), _gn(ch), nn.ReLU(), Conv(ch, ch, 3, padding=1), _gn(ch))

    def forward(self, x):
        return F.relu(x + self.body(x))


class Translator(nn.Module):
    """Image-to-image generator for normalised ``(B, C, *S)`` patches.

    ``arch="local"`` (default): a per-pixel branch with a 5-pixel receptive field (two 3x3 convs and a 1x1 conv)
    plus a smooth low-frequency branch (average-pooled by 8, two 3x3 convs, upsampled) for illumination and
    background. It can remap intensities and flatten the background but cannot draw new structures, so the
    cycle cannot be satisfied by hallucinated vessels (a big generator learned to paint vessels that were not
    there on vessel2d-fundus). ``arch="unet"``: a small U-Net (full, 1/2, 1/4 resolution, ``blocks`` residual
    blocks, skip connections), for changes that need more context.

    ``residual=False`` (default): ``out = sigmoid(G(x))``. ``residual=True``: ``out = sigmoid(logit(x) + G(x))``
    with the last conv at zero, i.e. the identity at the start; with ``invert=True`` as well,
    ``sigmoid(-logit(x) + G(x))``, the inversion ``1 - x`` at the start (dark structures to bright ones).
    """

    POOL = 8  # low-frequency branch resolution (local)

    def __init__(
        self,
        ndim: int = 2,
        channels: int = 1,
        features: int = 16,
        blocks: int = 3,
        residual: bool = False,
        arch: str = "local",
        invert: bool = False,
    ):
        super().__init__()
        if arch not in ("local", "unet"):
            raise VesselGraphError(f"unknown translator arch {arch!r} (local or unet)")
        self.residual, self.arch, self.ndim = bool(residual), arch, int(ndim)
        self.invert = bool(invert) and self.residual  # residual start from 1 - x instead of x
        self.config = {
            "ndim": int(ndim),
            "channels": int(channels),
            "features": int(features),
            "blocks": int(blocks),
            "residual": self.residual,
            "arch": arch,
            "invert": self.invert,
        }
        Conv, f = _conv(ndim), int(features)
        self.mode = "bilinear" if ndim == 2 else "trilinear"

        def block(a: int, b: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(Conv(a, b, 3, stride=stride, padding=1), _gn(b), nn.ReLU())

        if arch == "local":
            self.local = nn.Sequential(
                Conv(channels, f, 3, padding=1),
                nn.ReLU(),
                Conv(f, f, 3, padding=1),
                nn.ReLU(),
                Conv(f, f, 1),
                nn.ReLU(),
            )
            self.smooth = nn.Sequential(Conv(channels, f, 3, padding=1), nn.ReLU(), Conv(f, f, 3, padding=1))
            self.head = Conv(f, channels, 1)
        else:
            self.enc0 = block(channels, f)
            self.enc1 = block(f, 2 * f, 2)
            self.enc2 = nn.Sequential(block(2 * f, 4 * f, 2), *[_Res(ndim, 4 * f) for _ in range(int(blocks))])
            self.dec1 = nn.Sequential(block(4 * f, 2 * f), block(4 * f, 2 * f))
            self.dec0 = nn.Sequential(block(2 * f, f), block(2 * f, f))
            self.head = Conv(f, channels, 3, padding=1)
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        return self.POOL if self.arch == "local" else 4

    def _up(self, x: torch.Tensor, factor: int) -> torch.Tensor:
        return F.interpolate(x, scale_factor=factor, mode=self.mode, align_corners=False)

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch == "local":
            pool = F.avg_pool2d if self.ndim == 2 else F.avg_pool3d
            low = self._up(self.smooth(pool(x, self.POOL)), self.POOL)
            return self.head(self.local(x) + low)
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        d1 = self.dec1[1](torch.cat([self.dec1[0](self._up(e2, 2)), e1], 1))
        d0 = self.dec0[1](torch.cat([self.dec0[0](self._up(d1, 2)), e0], 1))
        return self.head(d0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = [(-s) % self.multiple for s in x.shape[2:]]
        xp = x
        if any(pad):
            xp = F.pad(x, [p for q in reversed(pad) for p in (0, q)], mode="replicate")
        y = self._net(xp)
        if any(pad):
            y = y[(slice(None), slice(None)) + tuple(slice(0, s) for s in x.shape[2:])]
        y = y.to(x.dtype)
        if not self.residual:
            return torch.sigmoid(y)
        base = torch.logit(x.clamp(EPS, 1 - EPS))
        return torch.sigmoid((-base if self.invert else base) + y)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake logits, one per overlapping receptive field."""

    def __init__(self, ndim: int = 2, channels: int = 1, features: int = 16):
        super().__init__()
        Conv, f = _conv(ndim), int(features)
        self.net = nn.Sequential(
            Conv(channels, f, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            Conv(f, 2 * f, 4, stride=2, padding=1),
            _gn(2 * f),
            nn.LeakyReLU(0.2),
            Conv(2 * f, 4 * f, 3, padding=1),
            _gn(4 * f),
            nn.LeakyReLU(0.2),
            Conv(4 * f, 1, 3, padding=1),
        )

    def forward(self, x):
        return self.net(x)


def build_translator(config: dict) -> Translator:
    """A translator from ``meta["translator"]`` (``ndim``, ``channels``, ``features``, ``blocks``, ``residual``,
    ``arch``, ``invert``). The dict may come from a checkpoint file, so its sizes are bounded before anything is
    built."""
    if not isinstance(config, dict):
        raise VesselGraphError(f"invalid translator config {config!r}: not an object")
    bounds = {"ndim": (2, 3), "channels": (1, 4), "features": (1, 256), "blocks": (0, 16)}
    for key, (lo, hi) in bounds.items():
        v = config.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise VesselGraphError(
                f"invalid translator config: {key} must be a whole number from {lo} to {hi}, got {v!r}"
            )
    try:
        return Translator(
            **{k: config[k] for k in ("ndim", "channels", "features", "blocks")},
            residual=bool(config.get("residual", False)),
            arch=str(config.get("arch", "local")),
            invert=bool(config.get("invert", False)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VesselGraphError(f"invalid translator config {config!r}: {e}") from None


def attach_translator(model, translator: Translator) -> None:
    """Make ``model`` run ``translator`` on its input first (``model.translator``; saved with the weights)."""
    model.add_module("translator", translator)
