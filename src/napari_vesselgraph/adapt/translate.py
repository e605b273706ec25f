"""Translation adaptation: an unpaired CycleGAN-style translator, target appearance -> source appearance.

Two generators (``G_ts``: target -> source, ``G_st``: source -> target) and two PatchGAN discriminators are
trained on normalised patches (the checkpoint's input recipe, so a grey model sees luminance) of unlabelled
target images and source images, with the least-squares GAN loss and cycle consistency (L1, weight
``LAMBDA_CYCLE`` = 10) (Zhu et al. 2017). The identity loss is off by default (``LAMBDA_IDENTITY`` = 0): on
vessel2d-fluo -> vessel2d-fundus (bright vs dark vessels) it held the translator near a flat image. Adam,
``lr`` and betas (0.5, 0.999).

The generator is small on purpose (``arch="local"``, see :class:`Translator`): a per-pixel branch with a
5-pixel receptive field plus a smooth low-frequency branch. A U-Net generator (``arch="unet"``) learned, within
1000 steps, to satisfy the cycle by painting vessels that were not there; the local one can only remap
intensities and flatten the background.

Only ``G_ts`` is kept: it is bundled into the output checkpoint under the ``translator.`` prefix with its
architecture in ``meta["translator"]``; loading such a checkpoint (:func:`checkpoints.load_checkpoint`) attaches
it to the model, which runs it on every normalised patch before the backbone, so :func:`inference.predict`
applies the translation with no further change. No annotation is used for training; labelled held-out samples,
when there are any, are only measured (the source checkpoint's thresholds, no model selection). 2D and 3D: the
convolutions follow ``ndim``. The latest translator is written every ``val_every`` steps and at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VesselGraphError
from ..model.loop import STOP_MAX_STEPS, StepOutput, TrainingLoop
from .config import AdaptConfig

DEFAULT_TRANSLATOR = {"features": 16, "blocks": 3, "arch": "local", "residual": False}
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.0
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
    with the last conv at zero, i.e. the identity at the start.
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
    ):
        super().__init__()
        if arch not in ("local", "unet"):
            raise VesselGraphError(f"unknown translator arch {arch!r} (local or unet)")
        self.residual, self.arch, self.ndim = bool(residual), arch, int(ndim)
        self.config = {
            "ndim": int(ndim),
            "channels": int(channels),
            "features": int(features),
            "blocks": int(blocks),
            "residual": self.residual,
            "arch": arch,
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
        return torch.sigmoid(torch.logit(x.clamp(EPS, 1 - EPS)) + y)


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
    ``arch``). The dict may come from a checkpoint file, so its sizes are bounded before anything is built."""
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
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VesselGraphError(f"invalid translator config {config!r}: {e}") from None


def attach_translator(model, translator: Translator) -> None:
    """Make ``model`` run ``translator`` on its input first (``model.translator``; saved with the weights)."""
    model.add_module("translator", translator)


def _lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


# ------------------------------------------------------------------ training
def run(
    cfg: AdaptConfig, model, meta: dict, data, out_path: Path, device, progress=None, cancel=None, log=print
) -> Path:
    """Train the translator on unlabelled target images and source patches; returns the checkpoint path."""
    from ..checkpoints import save_checkpoint
    from .data import TargetSampler, source_sampler
    from .loop import adapted_meta, evaluate_heldout, predictor_input_meta, short_metrics

    if meta.get("translator"):
        raise VesselGraphError("this checkpoint already carries a translator; translate from its base checkpoint")
    images = data.unlabelled or data.shots
    if not images:
        raise VesselGraphError("no target images to learn the translation from")
    t_start = time.time()
    mcfg = model.cfg
    in_meta = predictor_input_meta(model, meta)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    ssampler, source = source_sampler(cfg, meta, mcfg, in_meta, rng)
    tsampler = TargetSampler(images, in_meta, mcfg.patch_size, np.random.default_rng(cfg.seed + 2))
    log(
        f"adapt[translation]: source {source}, target {data.name}: {len(images)} unlabelled image(s); "
        f"{len(data.heldout)} labelled held out (measured only); device {device}"
    )
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    before = evaluate_heldout(model, meta, data.heldout, device, sweep=False, zoom=1.0 if data.zoomed else None)

    nd, ch = mcfg.ndim, mcfg.in_channels
    tcfg = {"ndim": nd, "channels": ch, **DEFAULT_TRANSLATOR}
    g_ts, g_st = build_translator(tcfg).to(device), build_translator(tcfg).to(device)
    d_s, d_t = PatchDiscriminator(nd, ch).to(device), PatchDiscriminator(nd, ch).to(device)
    opt_g = torch.optim.Adam(list(g_ts.parameters()) + list(g_st.parameters()), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_s.parameters()) + list(d_t.parameters()), lr=cfg.lr, betas=(0.5, 0.999))
    attach_translator(model, g_ts)
    history: list[dict] = []
    saved = False

    def save(loop: TrainingLoop, after=None, **extra) -> None:
        nonlocal saved
        m = adapted_meta(
            meta,
            cfg,
            data,
            out_path,
            source,
            before=short_metrics(before),
            after=short_metrics(after),
            steps_done=loop.step,
            history=history[-50:],
            wall_s=round(time.time() - t_start, 1),
            translator=dict(tcfg),
            losses={"gan": "least squares", "cycle_l1": LAMBDA_CYCLE, "identity_l1": LAMBDA_IDENTITY},
            **extra,
        )
        m["translator"] = dict(tcfg)
        g_ts.eval()
        save_checkpoint(out_path, model, m)
        g_ts.train()
        saved = True

    b = cfg.batch_size

    def step_fn(loop: TrainingLoop) -> StepOutput:
        t = torch.from_numpy(np.stack([p for p, _ in tsampler.batch(b)])).to(device)
        s = torch.from_numpy(np.stack([p for p, _ in ssampler.batch(b)])).to(device)
        # generators
        fake_s, fake_t = g_ts(t), g_st(s)
        adv = _lsgan(d_s(fake_s), True) + _lsgan(d_t(fake_t), True)
        cyc = F.l1_loss(g_st(fake_s), t) + F.l1_loss(g_ts(fake_t), s)
        loss_g = adv + LAMBDA_CYCLE * cyc
        idt = torch.zeros((), device=device)
        if LAMBDA_IDENTITY > 0:
            idt = F.l1_loss(g_ts(s), s) + F.l1_loss(g_st(t), t)
            loss_g = loss_g + LAMBDA_IDENTITY * idt
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # discriminators
        loss_d = 0.5 * (
            _lsgan(d_s(s), True)
            + _lsgan(d_s(fake_s.detach()), False)
            + _lsgan(d_t(t), True)
            + _lsgan(d_t(fake_t.detach()), False)
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        logs = {
            "loss": float(loss_g.detach()),
            "gan": float(adv.detach()),
            "cycle": float(cyc.detach()),
            "identity": float(idt.detach()),
            "disc": float(loss_d.detach()),
        }
        return StepOutput(logs=logs)  # both optimisers stepped here: no loss for the loop

    every = max(1, min(25, cfg.steps // 10))

    def on_step(loop: TrainingLoop, logs: dict, skipped: bool) -> None:
        if loop.step % every == 0:
            history.append({"kind": "train", "step": loop.step, **{k: round(v, 5) for k, v in logs.items()}})

    def validate(loop: TrainingLoop, reason: str) -> dict | None:
        """Measure the held-out samples (the source's thresholds; nothing is selected) and write the translator."""
        g_ts.eval()
        met = evaluate_heldout(model, meta, data.heldout, device, sweep=False, zoom=1.0 if data.zoomed else None)
        g_ts.train()
        if met is not None:
            history.append({"kind": "val", "step": loop.step, **short_metrics(met)})
            if reason == "final":
                log(f"after: node_f1 {met['node_f1']:.3f} edge_f1 {met['edge_f1']:.3f} smd {met['smd']:.4f}")
            else:
                log(
                    f"[val] step {loop.step} node_f1 {met['node_f1']:.3f} edge_f1 {met['edge_f1']:.3f} "
                    f"smd {met['smd']:.4f}"
                )
        save(loop, met)
        return met

    def on_stop(loop: TrainingLoop, reason: str) -> None:
        log(f"adapt[translation]: stopped at step {loop.step} ({'steps' if reason == STOP_MAX_STEPS else reason}, "
            f"{(time.time() - t_start) / 60:.1f} min)")  # fmt: skip

    loop = TrainingLoop(
        max_steps=cfg.steps,
        budget_s=cfg.max_minutes * 60.0 if cfg.max_minutes else None,
        start_time=t_start,
        cancel=cancel,
        progress=progress,
        log=log,
        on_step=on_step,
        on_stop=on_stop,
        validate=validate,
        validate_every=cfg.eval_every,
        final_validation="unless_cancelled",
        device=device,
    )
    try:
        g_ts.train(), g_st.train(), d_s.train(), d_t.train()
        loop.run(step_fn)
        if not saved:  # cancelled before anything was written: the current state, marked as such
            save(loop, None, cancelled=True)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return out_path
