"""The training loop of the ``contrastive``, ``finetune`` and ``adversarial`` methods, and helpers shared with
translation (held-out evaluation, output metadata, which layers train).

Every step draws ``batch_size`` source patches and ``batch_size`` patches of the K target shots and runs them
through the model in one batch::

    loss = task(source) + task(target)                      # finetune
         + align_weight * SupCon(tokens, relation embeddings)  # contrastive
         + align_weight * BCE(discriminators behind a GRL)     # adversarial

``task`` is the Relationformer set loss (:class:`model.losses.SetCriterion`, the weights the checkpoint was
trained with). Every ``val_every`` steps the model predicts the held-out target samples whole
(:func:`inference.predict`, sliding window + stitching, the checkpoint's clean-up); node/edge thresholds are
picked on them by a small grid search (:func:`model.thresholds.select_thresholds`, the same selection training
uses) and the model with the best ``(node_f1 + edge_f1) / 2`` is written (atomically). Without held-out
samples the latest model is written at those points instead. AdamW, linear warm-up, cosine decay to a tenth.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from ..model.loop import (  # noqa: F401 - free_device: its old place
    STOP_CANCELLED,
    STOP_MAX_STEPS,
    StepOutput,
    TrainingLoop,
    free_device,
    warmup_cosine,
)
from ..model.thresholds import THRESHOLD_GRID
from .config import AdaptConfig
from .data import TargetData, TargetSampler, source_sampler

LR_MIN_RATIO = 0.1  # the cosine decays to this fraction of lr
EVAL_GROUPS = ["prf", "smd"]
#: calibrate's leave-one-out warning names the shots that score more than this below the source's own settings
LOO_TOLERANCE = 0.01


# ------------------------------------------------------------------ shared helpers
#: the model's parameter groups (``Relationformer.param_groups``) each ``train_layers`` setting trains; a
#: translator bundled in the checkpoint is never trained
TRAINED_GROUPS = {
    "all": ("backbone", "input_proj", "encoder", "decoder", "heads"),
    "decoder+heads": ("decoder", "heads"),
    "heads": ("heads",),
}


def select_trainable(model, train_layers: str) -> list:
    """Freeze what ``train_layers`` leaves out; returns the trainable parameters (in model order).

    ``all``: everything. ``decoder+heads``: the decoder (layers, queries, [rln] token, query positions) and the
    heads; backbone, input projection and encoder frozen. ``heads``: only the node / position / radius /
    relation / dense heads. A translator bundled in the checkpoint is always frozen. The groups are the model's
    modules (:meth:`Relationformer.param_groups`), not parameter names.
    """
    if train_layers not in TRAINED_GROUPS:
        raise VesselGraphError(f"unknown train_layers {train_layers!r}")
    groups = model.param_groups()
    trained = {id(p) for g in TRAINED_GROUPS[train_layers] for p in groups[g]}
    keep = []
    for p in model.parameters():
        ok = id(p) in trained
        p.requires_grad_(ok)
        if ok:
            keep.append(p)
    if not keep:
        raise VesselGraphError(f"train_layers={train_layers!r} leaves nothing to train")
    return keep


def predictor_input_meta(model, meta: dict) -> dict:
    m = dict(meta.get("input") or {})
    m.setdefault("ndim", model.cfg.ndim)
    m.setdefault("channels", model.cfg.in_channels)
    return m


def evaluate_heldout(
    model, meta: dict, samples, device, sweep: bool = True, zoom=None, select_by: str = "f1"
) -> dict | None:
    """Whole-sample metrics (``inference.predict``) of ``model`` on labelled samples, averaged.

    The raw graphs are finished as ``predict`` finishes them (:func:`inference.postprocess.finish_graph` with
    the checkpoint's clean-up settings). With ``sweep`` the node/edge thresholds are picked on these samples
    (:func:`model.thresholds.select_thresholds` over ``THRESHOLD_GRID``, best ``(node_f1 + edge_f1) / 2``);
    otherwise the checkpoint's thresholds are used. ``zoom``: ``predict``'s (``1.0`` for samples already at the
    model's scale, :func:`.data.apply_zoom`). ``select_by``: the score (``model.thresholds.SCORES``) that picks
    the thresholds and is returned as ``score``. Returns ``None`` without samples. The model is left in the mode
    it was in.
    """
    if not samples:
        return None
    raws, default = raw_graphs(model, meta, samples, device, zoom)
    return select_on(raws, samples, meta, default, sweep, select_by)


def raw_graphs(model, meta: dict, samples, device, zoom=None) -> tuple[list, tuple[float, float]]:
    """The raw graphs (``predict(..., keep_raw=True)``) of the samples and the checkpoint's node/edge thresholds."""
    from ..inference import predict
    from ..model.predictor import PatchPredictor

    was_training = model.training
    pred = PatchPredictor(model, meta, device=device)
    try:
        raws = [predict(s.image, predictor=pred, keep_raw=True, zoom=zoom) for s in samples]
    finally:
        model.train(was_training)
    return raws, (pred.node_threshold, pred.edge_threshold)


def select_on(
    raws, samples, meta: dict, default, sweep: bool, select_by: str = "f1", cache: dict | None = None
) -> dict:
    """:func:`evaluate_heldout` on raw graphs already predicted (:func:`raw_graphs`), finished with ``meta``'s
    clean-up settings; ``default``: the thresholds used without ``sweep``; ``cache``: per-sample metrics kept
    across calls on the same raw graphs (:func:`model.thresholds.finished_metrics`)."""
    from ..model.thresholds import SCORES, cleanup_settings, select_thresholds

    _, _, out = select_thresholds(
        raws,
        [s.graph for s in samples],
        THRESHOLD_GRID,
        cleanup_settings(meta),
        shapes=[tuple(np.asarray(s.image).shape[: s.graph.ndim]) for s in samples],
        sweep=sweep,
        default=tuple(default),
        groups=EVAL_GROUPS,
        smd_points=300,
        score_fn=SCORES[select_by][0],
        score_groups=SCORES[select_by][1],
        cache=cache,
    )
    out["n"] = len(samples)
    return out


def phase(progress, total: int, text: str, validation: bool = False) -> None:
    """A progress update at step 0 that says what the run is doing before its first step (``info["phase"]``);
    ``validation``: it is a held-out measurement like those the run repeats (``info["validation"]``, so that a
    time-left estimate can learn what one costs: :class:`napari_vesselgraph.progress.TimeLeft`)."""
    if progress is not None:
        progress(0, total, {"phase": text, **({"validation": True} if validation else {})})


def report_leave_one_out(loo: list[dict], log) -> bool:
    """Log the leave-one-out scores, and a warning line when, on average over the shots, the settings chosen on
    the other shots score no better than the source's own (both kinds of calibrate). Returns whether it warned."""
    m_loo, m_own = float(np.mean([r["score"] for r in loo])), float(np.mean([r["own_score"] for r in loo]))
    log("leave one out (each shot scored with the settings chosen on the others; the source's own in brackets): "
        + ", ".join(f"{r['id']} {r['score']:.3f} ({r['own_score']:.3f})" for r in loo)
        + f"; mean {m_loo:.3f} ({m_own:.3f})")  # fmt: skip
    if m_loo > m_own + 1e-9:
        return False
    worse = [r["id"] for r in loo if r["score"] < r["own_score"] - LOO_TOLERANCE]
    log(f"warning: chosen on the other shots, the settings score {m_loo:.3f} on average on the shot left out, "
        f"against {m_own:.3f} with the source's own"
        + (f" (lower by more than {LOO_TOLERANCE:g} on {', '.join(worse)})" if worse else "")
        + ": the calibration does not carry over from shot to shot, so it may not improve your next image "
        "either; check it there, or label more shots")  # fmt: skip
    return True


def short_metrics(m: dict | None) -> dict | None:
    if m is None:
        return None
    keys = ("node_f1", "edge_f1", "smd", "node_precision", "node_recall", "edge_precision", "edge_recall",
            "length_quality", "junction_f1", "score")  # fmt: skip
    out = {k: round(float(m[k]), 4) for k in keys if k in m and m[k] is not None and np.isfinite(m[k])}
    for k in ("node_threshold", "edge_threshold", "min_support", "min_brightness", "n", "step"):
        if k in m:
            out[k] = m[k]
    return out


def record_selection(m: dict, chosen: dict, on: str) -> dict:
    """Write into checkpoint metadata ``m`` what a :func:`model.thresholds.select_thresholds` search chose
    (``chosen``): the node/edge thresholds and, when searched, the clean-up settings ``min_support`` and
    ``min_brightness`` (:mod:`napari_vesselgraph.inference.support`); ``on`` says on which samples. Returns ``m``."""
    m["thresholds"] = {
        "node": float(chosen["node_threshold"]),
        "edge": float(chosen["edge_threshold"]),
        "source": f"grid search on {on}, finished with the checkpoint's clean-up (adapt, "
        "model.thresholds.select_thresholds)",
    }
    for k in ("min_support", "min_brightness"):
        if k in chosen:
            m["postprocess"] = {**(m.get("postprocess") or {}), k: float(chosen[k])}
    return m


def default_out(cfg: AdaptConfig, meta: dict, data: TargetData) -> Path:
    from ..checkpoints import user_dir

    src = str(meta.get("name") or Path(str(meta.get("path", cfg.checkpoint))).stem)
    tgt = Path(data.name).name if not data.synthetic else data.name
    k = "" if cfg.method == "translation" else f"-k{len(data.shots)}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return user_dir() / f"{src}-{cfg.method}-{tgt}{k}-s{cfg.seed}-{stamp}.safetensors"


def output_path(cfg: AdaptConfig, meta: dict, data: TargetData) -> Path:
    if cfg.out is None:
        return default_out(cfg, meta, data)
    p = Path(cfg.out).expanduser()
    if p.is_dir():
        raise VesselGraphError(f"output {p} is a folder; give a .safetensors file name")
    if p.suffix.lower() != ".safetensors":
        p = p.with_name(p.name + ".safetensors")
    return p


def adapted_meta(src_meta: dict, cfg: AdaptConfig, data: TargetData, out: Path, source: str, **adaptation) -> dict:
    """The output checkpoint's metadata: the source's plus ``adaptation``, ``target_domain``, ``command``."""
    drop = ("path", "created", "parameters", "package_version", "name", "validation_at_0.5")
    m = {k: v for k, v in src_meta.items() if k not in drop}
    m["name"] = out.stem
    m["domain"] = src_meta.get("domain")
    m["target_domain"] = data.domain or data.name
    m["source_checkpoint"] = {
        "name": src_meta.get("name"),
        "path": src_meta.get("path"),
        "command": src_meta.get("command"),
        "adaptation": src_meta.get("adaptation"),
    }
    if "validation" in src_meta:
        m["source_validation"] = src_meta["validation"]
    m["command"] = cfg.command or f"napari_vesselgraph.adapt.adapt({json.dumps(cfg.to_dict(), sort_keys=True)})"
    m["seed"] = cfg.seed
    ad: dict[str, Any] = {
        "method": cfg.method,
        "shots": len(data.shots) if cfg.method != "translation" else None,
        "shot_ids": data.ids(data.shots),
        "heldout_ids": data.ids(data.heldout),
        "source": source,
        "target": data.name,
        "steps": cfg.steps,
        "temperature": cfg.temperature,
        "align_weight": cfg.align_weight,
        "train_layers": cfg.train_layers,
        "seed": cfg.seed,
        "shot_seed": cfg.shot_seed,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "metrics_on": "held-out target samples, whole-sample inference (inference.predict, sliding window + "
        "stitching, the checkpoint's clean-up), thresholds picked on them by grid search; radius 3 px",
        "config": cfg.to_dict(),
    }
    if cfg.method == "translation":
        ad["unlabelled_ids"] = data.ids(data.unlabelled)
    if data.zoom:
        ad["zoom"] = data.zoom  # (id, factor) the target images were resampled by
    if data.scale_reference:
        m["scale_reference"] = data.scale_reference
    ad.update(adaptation)
    m["adaptation"] = ad
    after = ad.get("after")
    if after:
        m["validation"] = {**after, "on": "held-out target samples"}
    return m


def run_meta(
    src_meta: dict, cfg: AdaptConfig, data: TargetData, out: Path, source: str, *, before: dict | None,
    after: dict | None, steps_done: int, history: list[dict], t_start: float, **adaptation,
) -> dict:
    """:func:`adapted_meta` with what every adaptation run records: the held-out metrics before and after (short),
    the steps done, the last 50 history rows and the wall time since ``t_start``."""
    return adapted_meta(
        src_meta,
        cfg,
        data,
        out,
        source,
        before=short_metrics(before),
        after=short_metrics(after),
        steps_done=steps_done,
        history=history[-50:],
        wall_s=round(time.time() - t_start, 1),
        **adaptation,
    )


def run_hooks(cfg: AdaptConfig, history: list[dict], log, t_start: float, name: str):
    """The :class:`~napari_vesselgraph.model.loop.TrainingLoop` hooks every adaptation run uses, ``(on_step,
    on_stop)``: ``on_step`` adds a training row to ``history`` every ``min(25, steps // 10)`` steps, ``on_stop``
    logs at which step and why ``adapt[name]`` stopped."""
    every = max(1, min(25, cfg.steps // 10))

    def on_step(loop: TrainingLoop, logs: dict, skipped: bool) -> None:
        if loop.step % every == 0:
            history.append({"kind": "train", "step": loop.step, **{k: round(v, 5) for k, v in logs.items()}})

    def on_stop(loop: TrainingLoop, reason: str) -> None:
        log(f"adapt[{name}]: stopped at step {loop.step} ({'steps' if reason == STOP_MAX_STEPS else reason}, "
            f"{(time.time() - t_start) / 60:.1f} min)")  # fmt: skip

    return on_step, on_stop


def lr_factor(step: int, frac: float, warmup: int) -> float:
    """Adaptation's learning-rate factor: warm-up, then a cosine down to a tenth (:func:`model.loop.warmup_cosine`)."""
    from ..model.loop import warmup_cosine

    return warmup_cosine(warmup, LR_MIN_RATIO)(step, frac)


def slice_out(o: dict, sl: slice) -> dict:
    """The model outputs of batch rows ``sl`` (aux layers and dense maps included)."""
    out = {}
    for k, v in o.items():
        if k == "aux":
            out[k] = [slice_out(a, sl) for a in v]
        elif v is None:
            out[k] = None
        else:
            out[k] = v[sl]
    return out


# ------------------------------------------------------------------ the loop
def run(
    cfg: AdaptConfig, model, meta: dict, data: TargetData, out_path: Path, device, progress=None, cancel=None, log=print
) -> Path:
    """Adapt ``model`` (loaded from ``cfg.checkpoint``) with the K shots of ``data``; returns the checkpoint."""
    import torch

    from ..checkpoints import save_checkpoint
    from ..model.losses import LossWeights, SetCriterion, hungarian_match
    from ..model.targets import collate, graph_to_target
    from .losses import AdversarialAlignment, ContrastiveAlignment, dann_lambda

    if not data.shots:
        raise VesselGraphError("no labelled target samples (shots) to adapt with")
    t_start = time.time()
    mcfg = model.cfg
    in_meta = predictor_input_meta(model, meta)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    lw = (meta.get("training") or {}).get("loss_weights") or {}
    weights = LossWeights(**{k: v for k, v in lw.items() if k in LossWeights.__dataclass_fields__})
    crit = SetCriterion(model, weights, rng=np.random.default_rng(cfg.seed + 1))

    phase(progress, cfg.steps, "preparing source and target patches")
    ssampler, source = source_sampler(cfg, meta, mcfg, in_meta, rng)
    tsampler = TargetSampler(data.shots, in_meta, mcfg.patch_size, np.random.default_rng(cfg.seed + 2))
    log(
        f"adapt[{cfg.method}]: source {source}, target {data.name}: {len(data.shots)} shot(s) {data.ids(data.shots)}, "
        f"{len(data.heldout)} held out {data.ids(data.heldout)}; device {device}"
    )

    model.to(device)
    params = select_trainable(model, cfg.train_layers)
    align = None
    if cfg.method == "contrastive":
        align = ContrastiveAlignment(
            mcfg.hidden, temperature=cfg.temperature, seed=cfg.seed + 3, feat_channels=model.backbone.out_channels
        )
    elif cfg.method == "adversarial":
        align = AdversarialAlignment(mcfg.ndim, model.backbone.out_channels, mcfg.hidden)
    if align is not None:
        align.to(device)
        params = params + list(align.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    warmup = max(1, min(20, cfg.steps // 10))

    feats: dict[str, torch.Tensor] = {}
    # the backbone's last feature map (a model whose relation head samples the image also returns its stride-2 map)
    hook = model.backbone.register_forward_hook(
        lambda m, i, o: feats.__setitem__("x", o[0] if isinstance(o, tuple) else o)
    )

    held_kw = {"zoom": 1.0 if data.zoomed else None, "select_by": cfg.selection}
    if data.heldout:
        phase(progress, cfg.steps, f"measuring the source model on {len(data.heldout)} held-out sample(s)", True)
    before = evaluate_heldout(model, meta, data.heldout, device, **held_kw)
    if before is not None:
        log(f"before: node_f1 {before['node_f1']:.3f} edge_f1 {before['edge_f1']:.3f} smd {before['smd']:.4f} "
            f"score ({cfg.selection}) {before['score']:.3f}")  # fmt: skip
    history: list[dict] = []
    best_score, best_metrics, saved = -math.inf, None, False
    best_after = -math.inf  # the best held-out score of an adapted step

    def save(step: int, metrics: dict | None, **extra) -> None:
        nonlocal saved
        m = run_meta(
            meta, cfg, data, out_path, source, before=before, after=metrics, steps_done=step, history=history,
            t_start=t_start, **extra,
        )  # fmt: skip
        if metrics is not None and data.heldout:
            record_selection(m, metrics, f"{len(data.heldout)} held-out target sample(s)")
        save_checkpoint(out_path, model, m)
        saved = True

    def validate(loop: TrainingLoop, reason: str) -> dict | None:
        nonlocal best_score, best_metrics, best_after
        step = loop.step
        if not data.heldout:
            save(step, None)
            log(f"[{reason}] step {step}: no held-out samples; checkpoint written")
            return None
        tv = time.time()
        met = evaluate_heldout(model, meta, data.heldout, device, **held_kw)
        met["step"] = step
        history.append({"kind": "val", **short_metrics(met)})
        best_after = max(best_after, met["score"])
        improved = met["score"] > best_score
        if improved:
            best_score, best_metrics = met["score"], met
            save(step, met)
        log(
            f"[val {reason}] step {step} node_f1 {met['node_f1']:.3f} edge_f1 {met['edge_f1']:.3f} "
            f"smd {met['smd']:.4f} score {met['score']:.3f}{' (best, saved)' if improved else ''} "
            f"[{time.time() - tv:.1f}s]"
        )
        return met

    source_state = None
    if before is not None:  # the source itself is the first candidate: the output is never worse on held-out
        before["step"] = 0
        best_score, best_metrics = before["score"], before
        save(0, before, source_weights=True)
        source_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    b = cfg.batch_size
    row_domain = [0] * b + [1] * b

    def step_fn(loop: TrainingLoop) -> StepOutput:
        batch = ssampler.batch(b) + tsampler.batch(b)
        x = torch.from_numpy(np.stack([p for p, _ in batch])).to(device)
        targets = collate([graph_to_target(g, mcfg.patch_size, mcfg.stride) for _, g in batch], device=device)
        o = model(x)
        l_src, _ = crit(slice_out(o, slice(0, b)), targets[:b])
        l_tgt, _ = crit(slice_out(o, slice(b, 2 * b)), targets[b:])
        loss = l_src + l_tgt
        logs = {"task_source": float(l_src.detach()), "task_target": float(l_tgt.detach())}
        if cfg.method == "contrastive":
            match = hungarian_match(o["logits"], o["pos"], targets, weights.cost_class, weights.cost_pos)
            l_al, al_logs = align(model, o, targets, match, row_domain, feats["x"])
            loss = loss + cfg.align_weight * l_al
            logs.update(align=float(l_al.detach()), **al_logs)
        elif cfg.method == "adversarial":
            lam = dann_lambda(loop.frac())
            l_al, al_logs = align(feats["x"], o["tokens"], o["rln"], row_domain, lam)
            loss = loss + cfg.align_weight * l_al
            logs.update(align=float(l_al.detach()), grl_lambda=lam, **al_logs)
        logs["loss"] = float(loss.detach())
        return StepOutput(logs=logs, loss=loss)

    on_step, on_stop = run_hooks(cfg, history, log, t_start, cfg.method)

    loop = TrainingLoop(
        max_steps=cfg.steps,
        budget_s=cfg.max_minutes * 60.0 if cfg.max_minutes else None,
        start_time=t_start,  # the budget counts the set-up and the first evaluation too
        cancel=cancel,
        progress=progress,
        log=log,
        optimizer=opt,
        params=params,
        grad_clip=1.0,
        lr_schedule=warmup_cosine(warmup, LR_MIN_RATIO),
        base_lrs=[cfg.lr] * len(opt.param_groups),
        on_step=on_step,
        on_stop=on_stop,
        validate=validate,
        validate_every=cfg.eval_every,
        final_validation="unless_cancelled",
        device=device,
    )
    model.train()
    try:
        reason = loop.run(step_fn)
        if not saved:  # cancelled before anything was written: the current state, marked as such
            save(loop.step, None, cancelled=True)
        elif data.heldout and best_metrics is not None and best_metrics.get("step") == 0:
            # written again with the whole history (the weights are the source's, kept aside)
            model.load_state_dict(source_state)
            extra = {"cancelled": True} if reason == STOP_CANCELLED else {}
            save(0, before, source_weights=True, steps_trained=loop.step, **extra)
            after = f"best after {best_after:.3f}" if math.isfinite(best_after) else "no adapted step measured"
            log(
                f"WARNING: adaptation did not beat the source model on the held-out samples (score before "
                f"{before['score']:.3f}, {after}): the output keeps the source weights, with the thresholds "
                "chosen on the held-out samples"
            )
    finally:
        hook.remove()
        for p in model.parameters():
            p.requires_grad_(True)
    return out_path
