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

The translator starts as the identity (``residual=True``: ``sigmoid(logit(x) + G(x))`` with the last conv at
zero) and moves away from it only as far as the adversarial loss pulls it; when the source checkpoint is made for
one polarity and the target images show the other (:func:`polarity_differs`, no labels), it starts from the
inverted image instead (``invert``). Started from random weights (``residual=False``, the default until
2026-12-04) it lost to no translation on every real set: on DRIVE from vessel2d-random, length quality 0.50
against 0.70 without translation; from the identity it kept 0.70-0.72, and on SpaceNet from the first road-random
(synthetic tiles only) it raised LQ at 12 px from 0.125 to 0.165 (mean of 3 seeds; docs/benchmarks.md, section
real-data-translation; from today's road-random, trained with those tiles, it loses: section real-data-road).
The cost:
on the synthetic pair vessel2d-fluo -> vessel2d-fundus the random start reached node F1 0.302, the inverted start
0.030; ``translator={"residual": False}`` brings the random start back.

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

from ..errors import VesselGraphError
from ..model.loop import StepOutput, TrainingLoop
from ..model.translator import (  # the model part; Translator re-exported for callers of adapt.translate
    PatchDiscriminator,
    Translator,  # noqa: F401
    attach_translator,
    build_translator,
)
from .config import AdaptConfig

DEFAULT_TRANSLATOR = {"features": 16, "blocks": 3, "arch": "local", "residual": True}
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.0


def _lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


def warn_if_worse(before: dict | None, after: dict | None, log=print) -> bool:
    """Say so when the translated model scores below the source on the labelled held-out samples.

    Translation selects nothing on labels (it stays label-free), so its output can be worse than no translation:
    from the random start it was on DRIVE, SpaceNet, vesselNN and DIADEM; from the identity start it still was
    for seed 2 on SpaceNet in SMD (docs/benchmarks.md)."""
    b, a = (before or {}).get("score"), (after or {}).get("score")
    if b is None or a is None or a >= b:
        return False
    log(f"adapt[translation]: WARNING the translated model scores {a:.3f} on the held-out samples, the source "
        f"without translation {b:.3f}: predict with the source checkpoint, or translate from more unlabelled images")
    return True


def polarity_differs(meta: dict, images, ndim: int, log=print) -> bool:
    """Whether the target images' structures have the other polarity than the source checkpoint's (dark vessels
    against a model of bright ones): then the translator starts from the inverted image. Label-free: the
    checkpoint's ``suits`` polarity (or its domain's) against the majority of ``checkpoints.suits.image_traits``
    polarities of up to 8 target images; False when the source takes either polarity or the images are unclear."""
    from ..checkpoints.suits import image_traits, model_purpose

    src = model_purpose(meta).get("polarity")
    if src not in ("bright", "dark"):
        return False
    votes = []
    for s in images[:8]:
        try:
            p = image_traits(s.image, ndim=ndim).get("polarity")
        except Exception:  # noqa: BLE001 - an image we cannot judge casts no vote
            p = None
        if p in ("bright", "dark"):
            votes.append(p)
    other = sum(v != src for v in votes)
    flip = 2 * other > len(votes) > 0
    log(
        f"adapt[translation]: source structures {src}; target images {other} of {len(votes)} judged the other way: "
        f"the translator starts from the {'inverted image' if flip else 'identity'}"
    )
    return flip


# ------------------------------------------------------------------ training
def run(
    cfg: AdaptConfig, model, meta: dict, data, out_path: Path, device, progress=None, cancel=None, log=print
) -> Path:
    """Train the translator on unlabelled target images and source patches; returns the checkpoint path."""
    from ..checkpoints import save_checkpoint
    from .data import TargetSampler, source_sampler
    from .loop import evaluate_heldout, phase, predictor_input_meta, run_hooks, run_meta, short_metrics

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
    phase(progress, cfg.steps, "preparing source and target images")
    ssampler, source = source_sampler(cfg, meta, mcfg, in_meta, rng)
    tsampler = TargetSampler(images, in_meta, mcfg.patch_size, np.random.default_rng(cfg.seed + 2))
    log(
        f"adapt[translation]: source {source}, target {data.name}: {len(images)} unlabelled image(s); "
        f"{len(data.heldout)} labelled held out (measured only); device {device}"
    )
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if data.heldout:
        phase(progress, cfg.steps, f"measuring the source model on {len(data.heldout)} held-out sample(s)", True)
    before = evaluate_heldout(model, meta, data.heldout, device, sweep=False, zoom=1.0 if data.zoomed else None)

    nd, ch = mcfg.ndim, mcfg.in_channels
    tcfg = {"ndim": nd, "channels": ch, **DEFAULT_TRANSLATOR, **(cfg.translator or {})}
    if tcfg.get("residual") and "invert" not in tcfg:
        tcfg["invert"] = polarity_differs(meta, images, nd, log)
    g_ts, g_st = build_translator(tcfg).to(device), build_translator(tcfg).to(device)
    d_s, d_t = PatchDiscriminator(nd, ch).to(device), PatchDiscriminator(nd, ch).to(device)
    opt_g = torch.optim.Adam(list(g_ts.parameters()) + list(g_st.parameters()), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_s.parameters()) + list(d_t.parameters()), lr=cfg.lr, betas=(0.5, 0.999))
    attach_translator(model, g_ts)
    history: list[dict] = []
    saved = False
    final: dict = {}

    def save(loop: TrainingLoop, after=None, **extra) -> None:
        nonlocal saved
        m = run_meta(
            meta, cfg, data, out_path, source, before=before, after=after, steps_done=loop.step, history=history,
            t_start=t_start, translator=dict(tcfg),
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

    on_step, on_stop = run_hooks(cfg, history, log, t_start, "translation")

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
        final["met"] = met
        return met

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
        warn_if_worse(before, final.get("met"), log)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return out_path
