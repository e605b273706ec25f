"""Training loop for the Relationformer on synthetic data (or a dataset folder).

``train(config, progress=None, cancel=None, log=print) -> Path``: one value, the path of the best-by-validation
checkpoint (``OUT/best.safetensors``).

- data (:mod:`.data`): random synthetic images of ``domain`` (``synth.make_sample``) normalised whole with
  :func:`~napari_vesselgraph.model.preprocess.normalize_image`, cut into random patches (``synth.crop_patch``),
  flipped / transposed; or the samples of a dataset folder (``synth.read_dataset``) with ``data``; with
  ``extra_data`` / ``extra_p`` patches of other dataset folders (e.g. imported real data) are mixed in, resampled
  by ``extra_zoom`` first when their structures are wider than the model's; ``init`` starts from the weights of
  a checkpoint.
- seeds: training images use seeds drawn from ``[0, 9_000_000)`` by a generator seeded with ``seed``;
  validation images use ``9_000_000 + k``; test seeds (``10_000_000`` and up) are never touched.
- the loop (:class:`.loop.TrainingLoop`): AdamW (the backbone may have its own learning rate:
  ``Relationformer.param_groups``), linear warm-up then cosine decay to ``min_lr_ratio``, gradient clipping,
  batches with a non-finite loss skipped.
- every ``val_every`` steps: :func:`validate` on fixed validation patches, each finished into a graph with the
  clean-up inference uses (thresholds chosen by :func:`.thresholds.select_thresholds`); the best model (by
  ``(node_f1 + edge_f1) / 2``) is saved to ``OUT/best.safetensors`` with its metadata; the training state
  (weights, AdamW moments, step, random states) goes to ``OUT/state.safetensors`` so a run can resume.
- with ``ema_decay > 0`` an exponential moving average of the weights (decay ramped up as
  ``min(ema_decay, (1 + step) / (10 + step))``) is kept beside the trained weights; it is what is validated
  and saved (the trained weights stay in the training state).
- stops at ``max_steps`` or after ``max_minutes`` (a time budget) or when ``cancel.is_set()``: it then
  validates, saves and returns the best checkpoint (stopping early is not an error).

Command line: ``python -m napari_vesselgraph.model.train --domain vessel2d-fluo --config configs/vessel2d_line.json
-o runs/vessel2d_line`` (also wired as ``vesselgraph train``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, VesselGraphError
from ..progress import exit_code, read_config
from .config import ModelConfig
from .data import (  # noqa: F401 - PatchSampler ... make_synthetic: also importable from here (old names)
    TEST_SEED_BASE,
    TRAIN_SEED_MAX,
    VAL_SEED_BASE,
    MixedSampler,
    PatchSampler,
    cut_patch,
    make_synthetic,
    node_count_stats,
    read_folder,
    read_splits,
    validation_set,
    with_nodes,
)
from .loop import StepOutput, TrainingLoop, warmup_cosine
from .preprocess import input_meta as make_input_meta

# the old private names, kept importable for one release (benchmarks and tests of older versions use them)
_read_folder = read_folder
_with_nodes = with_nodes

__all__ = ["TrainConfig", "build_parser", "config_from_args", "main", "train", "validate"]


@dataclass
class TrainConfig:
    domain: str = "vessel2d-fluo"
    data: str | None = None  # a dataset folder (synth.write_dataset layout) instead of on-the-fly synthesis
    extra_data: list | str | None = None  # dataset folder(s) mixed into the synthetic stream (e.g. imported real data)
    extra_p: float = 0.0  # probability that a training patch comes from ``extra_data`` (its train split)
    extra_zoom: float = 1.0  # ``extra_data`` images (and graphs) resampled by this factor, as ``predict --zoom``
    init: str | None = None  # start from the weights of this checkpoint (name or path) when not resuming
    out: str = "runs/train"
    seed: int = 0
    model: dict = field(default_factory=dict)  # ModelConfig fields (ndim / in_channels default from domain)
    input: dict = field(default_factory=dict)  # normalisation options (preprocess.input_meta)
    loss: dict = field(default_factory=dict)  # LossWeights fields
    image_shape: list | None = None  # synthetic image shape (None: synth default)
    batch_size: int = 16
    lr: float = 4e-4
    backbone_lr: float | None = None  # None: same as lr
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # > 0: validate and save an exponential moving average of the weights (e.g. 0.999)
    max_steps: int = 20000
    max_minutes: float | None = None
    pool_size: int = 48  # synthetic images kept in memory
    refresh_every: int = 2  # replace one pool image every this many steps
    empty_patch_p: float = 0.5  # keep a patch without nodes with this probability (else draw again)
    augment: bool = True
    val_images: int = 6
    val_patches: int = 48
    val_every: int = 300
    val_node_threshold: float = 0.5
    val_edge_threshold: float = 0.5
    log_every: int = 25
    stats_patches: int = 400  # patches drawn to check the node-count distribution against n_queries
    threads: int = 0  # 0: all cores
    workers: int = 0  # > 0: background processes that synthesise training images and cut patches (GPU machines)
    worker_patches: int = 32  # patches cut from each image a background worker makes
    channels_last: bool = False  # channels-last memory layout for the convolutions (faster 3D training on CPU)
    device: str = "auto"  # auto: cuda, then mps, then cpu
    resume: bool = True
    command: str | None = None  # recorded in the checkpoint metadata

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise VesselGraphError(f"unknown training config keys: {sorted(bad)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ domains
def domain_defaults(domain: str) -> tuple[int, int]:
    """``(ndim, channels of the images)`` of a synthetic domain."""
    try:
        from .. import synth

        spec = synth.DOMAINS[domain]
        ndim = int(getattr(spec, "ndim", None) or spec.get("ndim"))  # type: ignore[union-attr]
        ch = getattr(spec, "channels", None)
        if ch is None and isinstance(spec, dict):
            ch = spec.get("channels")
        if ch is not None:
            return ndim, int(ch)
    except Exception:  # noqa: BLE001, S110 - fall back to the naming convention
        pass
    ndim = 3 if domain.startswith("vessel3d") else 2
    ch = 3 if domain in ("vessel2d-fundus", "road-clean", "road-hazy") else 1
    return ndim, ch


# ------------------------------------------------------------------ optimiser state <-> tensors
def optimizer_to_tensors(opt) -> tuple[dict, dict]:
    import torch

    sd = opt.state_dict()
    tensors, state_json = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                state_json.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "state": state_json}


def optimizer_from_tensors(opt, tensors: dict, info: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for idx, d in info.get("state", {}).items():
        state.setdefault(int(idx), {}).update(d)
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


# ------------------------------------------------------------------ validation
def validate(model, val_set, cfg: TrainConfig, device, sweep: bool = True, cleanup: dict | None = None) -> dict:
    """Mean metrics over the validation patches, each patch's candidates finished into a graph as inference
    finishes whole images (:func:`inference.postprocess.finish_graph` with ``cleanup``, by default the
    clean-up defaults, which a new checkpoint uses).

    With ``sweep`` the node/edge score thresholds are also chosen on the validation patches
    (:func:`.thresholds.select_thresholds`, a small grid); the metrics at the best pair are reported with
    ``node_threshold``/``edge_threshold``, and the metrics at the configured thresholds
    (``val_node_threshold``/``val_edge_threshold``) under ``at_default``. Metrics without a finite value are
    left out.
    """
    from .predictor import PatchPredictor
    from .thresholds import cleanup_settings, finished_metrics, score, select_thresholds

    was_training = model.training
    pred = PatchPredictor(model, {}, device=device, batch_size=32)
    cands = pred.predict_batch(np.stack([p for p, _ in val_set]))
    model.train(was_training)
    shape = tuple(model.cfg.patch_size)
    gts = [g for _, g in val_set]
    cleanup = cleanup_settings() if cleanup is None else cleanup
    default = (cfg.val_node_threshold, cfg.val_edge_threshold)
    kw = {"shapes": [shape] * len(gts), "smd_points": 200}
    nt, et, out = select_thresholds(cands, gts, cleanup=cleanup, sweep=sweep, default=default, **kw)
    out = {k: v for k, v in out.items() if np.isfinite(v)}
    out["node_threshold"], out["edge_threshold"] = nt, et
    if (nt, et) != tuple(default):
        d = finished_metrics(cands, gts, *default, cleanup, groups=["prf"], **kw)
        d["score"] = score(d)
        out["at_default"] = {k: d[k] for k in ("node_f1", "edge_f1", "score") if k in d and np.isfinite(d[k])}
    return out


# ------------------------------------------------------------------ the loop
def _lr_factor(step: int, frac: float, cfg: TrainConfig) -> float:
    """The learning-rate factor of training at ``step`` (see :func:`.loop.warmup_cosine`)."""
    return warmup_cosine(cfg.warmup_steps, cfg.min_lr_ratio)(step, frac)


def train(
    config: dict | TrainConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    cancel=None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train a model; returns the path of the best-by-validation checkpoint (``OUT/best.safetensors``)."""
    import torch

    from ..checkpoints import load_tensors, save_checkpoint, save_tensors
    from .losses import LossWeights, SetCriterion
    from .network import Relationformer, count_parameters
    from .targets import collate, graph_to_target

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(int(threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    from .predictor import select_device

    device = select_device(cfg.device)
    if device.type == "cuda":  # TF32 matrix products and tuned convolutions: fast enough, and fp32 elsewhere
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    samples = val_samples = data_domain = None
    if cfg.data:
        samples, val_samples, data_domain = read_folder(cfg.data)
    ndim, _channels = domain_defaults(data_domain or cfg.domain)
    if samples:
        ndim = samples[0][1].ndim
    mkw = {"ndim": ndim, "in_channels": 1}
    mkw.update(cfg.model)
    mcfg = ModelConfig.from_dict(mkw)
    in_meta = make_input_meta(mcfg.ndim, mcfg.in_channels, **cfg.input)
    weights = LossWeights(**cfg.loss)

    model = Relationformer(mcfg).to(device)
    memory_format = None
    if cfg.channels_last:
        memory_format = torch.channels_last_3d if mcfg.ndim == 3 else torch.channels_last
        model = model.to(memory_format=memory_format)
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise VesselGraphError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    # the averaged model that is validated and saved (the trained one itself without EMA)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    shown = ema if ema is not None else model
    # two learning rates: the CNN backbone's, and the rest's (each list in model.parameters() order, which the
    # optimiser state of a saved run relies on)
    backbone = model.param_groups()["backbone"]
    in_backbone = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in in_backbone]
    opt = torch.optim.AdamW(
        [{"params": rest, "lr": cfg.lr}, {"params": backbone, "lr": cfg.backbone_lr or cfg.lr}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    base_lrs = [g["lr"] for g in opt.param_groups]
    crit = SetCriterion(model, weights, rng=np.random.default_rng(cfg.seed + 1))

    step, best_score, elapsed_before, history = 0, -1.0, 0.0, []
    state_path, best_path = out / "state.safetensors", out / "best.safetensors"
    if cfg.init and not (cfg.resume and state_path.exists()):
        from ..checkpoints import load_checkpoint

        init_model, init_meta = load_checkpoint(cfg.init, device="cpu")
        if init_model.cfg.to_dict() != mcfg.to_dict():
            raise VesselGraphError(f"init checkpoint {cfg.init!r} has another architecture than this config")
        model.load_state_dict(init_model.state_dict())
        if ema is not None:
            ema.load_state_dict(init_model.state_dict())
        del init_model
        log(f"initialised from {cfg.init} ({init_meta.get('domain')})")
    if cfg.resume and state_path.exists():
        tensors, info = load_tensors(state_path)
        if info.get("model") != mcfg.to_dict():
            raise VesselGraphError(f"{state_path}: saved run has another architecture; use another -o or --no-resume")
        model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        if ema is not None:
            saved = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
            ema.load_state_dict(saved or model.state_dict())
        optimizer_from_tensors(opt, tensors, info["optimizer"])
        base_lrs = info.get("base_lrs", base_lrs)
        step, best_score = int(info["step"]), float(info["best_score"])
        elapsed_before = float(info["elapsed"])
        history = info.get("history", [])
        rng.bit_generator.state = info["rng"]
        if "torch_rng" in tensors:
            torch.set_rng_state(tensors["torch_rng"])
        log(f"resumed from {state_path} at step {step} (best score {best_score:.3f})")

    command = cfg.command or f"train({json.dumps(cfg.to_dict(), sort_keys=True)})"
    log(
        f"model: {count_parameters(model) / 1e6:.2f} M parameters, {mcfg.n_queries} queries, "
        f"patch {mcfg.patch_size}, stride {mcfg.stride}; device {device}, {threads} thread(s)"
    )
    t0 = time.time()
    sampler = PatchSampler(cfg, mcfg, in_meta, rng, samples)
    val_set = validation_set(cfg, mcfg, in_meta, val_samples)
    if cfg.extra_data and cfg.extra_p > 0:
        # a folder may hold only validation images
        extra_train, extra_val = read_splits(cfg.extra_data, zoom=cfg.extra_zoom)
        if not extra_train:
            raise VesselGraphError(f"extra_data {cfg.extra_data}: no samples in the train split")
        if not 0.0 < cfg.extra_p <= 1.0:
            raise VesselGraphError(f"extra_p must be in (0, 1], got {cfg.extra_p}")
        sampler = MixedSampler(sampler, PatchSampler(cfg, mcfg, in_meta, rng, extra_train), cfg.extra_p, rng)
        if extra_val:
            val_set = val_set + validation_set(cfg, mcfg, in_meta, extra_val)
        zoomed = f", resampled by {cfg.extra_zoom:g}" if cfg.extra_zoom != 1 else ""
        log(f"extra data: {len(extra_train)} training / {len(extra_val)} validation images, p = {cfg.extra_p}{zoomed}")
    stats = node_count_stats(sampler, mcfg, cfg.stats_patches)
    log(f"data: {json.dumps(stats)}; {len(val_set)} validation patches; set-up {time.time() - t0:.1f}s")
    if stats["nodes_p99"] > mcfg.n_queries:
        log(f"WARNING: 99th percentile of nodes per patch ({stats['nodes_p99']}) exceeds the {mcfg.n_queries} queries")

    def base_meta() -> dict:
        return {
            "domain": cfg.domain if not cfg.data else (data_domain or f"data:{cfg.data}"),
            "data": str(cfg.data) if cfg.data else None,
            "input": in_meta,
            "adaptation": {"method": "none"},
            "command": command,
            "seed": cfg.seed,
            "training": {
                "config": cfg.to_dict(),
                "loss_weights": weights.to_dict(),
                "node_stats": stats,
                "train_seed_range": [0, TRAIN_SEED_MAX],
                "val_seeds": [VAL_SEED_BASE, VAL_SEED_BASE + cfg.val_images - 1] if not cfg.data else None,
            },
        }

    def save_state(loop: TrainingLoop) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        if ema is not None:
            tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
        ot, oinfo = optimizer_to_tensors(opt)
        tensors.update(ot)
        tensors["torch_rng"] = torch.get_rng_state()
        info = {
            "kind": "training-state",
            "format_version": 1,
            "model": mcfg.to_dict(),
            "optimizer": oinfo,
            "base_lrs": base_lrs,
            "step": loop.step,
            "best_score": best_score,
            "elapsed": loop.elapsed(),
            "rng": rng.bit_generator.state,
            "history": history[-200:],
            "command": command,
            "seed": cfg.seed,
        }
        save_tensors(state_path, tensors, info, sidecar=False)

    def run_validation(loop: TrainingLoop, reason: str) -> dict:
        """Validate the shown model; save it if best, and the training state always."""
        nonlocal best_score
        step, tv = loop.step, time.time()
        metrics = validate(shown, val_set, cfg, device)
        entry = {"step": step, "minutes": round(loop.elapsed() / 60, 2)}
        entry.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()})
        history.append({"kind": "val", **entry})
        improved = metrics["score"] > best_score
        if improved:
            best_score = metrics["score"]
            meta = base_meta()
            meta["validation"] = {**metrics, "step": step, "minutes": round(loop.elapsed() / 60, 2)}
            meta["thresholds"] = {
                "node": metrics["node_threshold"],
                "edge": metrics["edge_threshold"],
                "source": "grid search on the validation patches, each finished with the clean-up defaults "
                "(model.thresholds.select_thresholds)",
            }
            save_checkpoint(best_path, shown, meta)
        save_state(loop)
        log(
            f"[val {reason}] step {step} node_f1 {metrics.get('node_f1', 0):.3f} edge_f1 {metrics.get('edge_f1', 0):.3f} "
            f"smd {metrics.get('smd', float('nan')):.4f} score {metrics['score']:.3f} "
            f"(thresholds {metrics['node_threshold']}/{metrics['edge_threshold']})"
            f"{' (best, saved)' if improved else ''} [{time.time() - tv:.1f}s]"
        )
        with open(out / "history.jsonl", "a") as f:
            f.write(json.dumps({"kind": "val", **entry}) + "\n")
        return metrics

    def step_fn(loop: TrainingLoop) -> StepOutput:
        batch = sampler.batch(cfg.batch_size)
        x = torch.from_numpy(np.stack([p for p, _ in batch])).to(device)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        targets = collate([graph_to_target(g, mcfg.patch_size, mcfg.stride) for _, g in batch], device=device)
        loss, logs = crit(model(x), targets)
        return StepOutput(logs=logs, loss=loss)

    def update_ema(loop: TrainingLoop) -> None:
        _ema_update(ema, model, min(cfg.ema_decay, (1 + loop.step) / (10 + loop.step)))

    run_loss: dict[str, float] = {}
    t_log = [time.time()]

    def on_step(loop: TrainingLoop, logs: dict, skipped: bool) -> None:
        nonlocal run_loss
        if skipped:  # a non-finite loss: neither averaged nor logged
            return
        for k, v in logs.items():
            run_loss[k] = run_loss.get(k, 0.0) + v
        if loop.step % cfg.log_every == 0:
            n = cfg.log_every
            avg = {k: v / n for k, v in run_loss.items()}
            dt = (time.time() - t_log[0]) / n
            log(
                f"step {loop.step} "
                + " ".join(f"{k} {v:.4f}" for k, v in avg.items())
                + f" lr {loop.lr():.2e} {dt:.2f}s/step {loop.elapsed() / 60:.1f}min"
            )
            with open(out / "history.jsonl", "a") as fh:
                fh.write(
                    json.dumps({"kind": "train", "step": loop.step, "minutes": round(loop.elapsed() / 60, 2), **avg})
                    + "\n"
                )
            run_loss, t_log[0] = {}, time.time()

    def on_stop(loop: TrainingLoop, reason: str) -> None:
        log(f"stopping at step {loop.step}: {reason} ({loop.elapsed() / 60:.1f} min)")

    loop = TrainingLoop(
        max_steps=cfg.max_steps,
        step=step,
        budget_s=cfg.max_minutes * 60.0 if cfg.max_minutes else None,
        elapsed_before=elapsed_before,
        cancel=cancel,
        progress=progress,
        progress_keys=("loss",),
        log=log,
        optimizer=opt,
        params=model.parameters(),  # clipped together, in model order
        grad_clip=cfg.grad_clip,
        lr_schedule=warmup_cosine(cfg.warmup_steps, cfg.min_lr_ratio),
        base_lrs=base_lrs,
        after_update=update_ema if ema is not None else None,
        on_step=on_step,
        on_stop=on_stop,
        validate=run_validation,
        validate_every=cfg.val_every,
        last_validated=int(history[-1].get("step", -1)) if history else -1,
        final_validation="always",
        device=device,
    )
    model.train()
    try:
        loop.run(step_fn)
    finally:
        sampler.close()
    if not best_path.exists():  # pragma: no cover - validation always saves once
        save_checkpoint(best_path, shown, base_meta())
    return best_path


def _ema_update(ema, model, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for every floating-point tensor (others are copied)."""
    import torch

    with torch.no_grad():
        mine = ema.state_dict()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                mine[k].mul_(decay).add_(v.detach(), alpha=1.0 - decay)
            else:
                mine[k].copy_(v)


# ------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vesselgraph train", description="Train a Relationformer model.")
    p.add_argument("--domain", help="synthetic domain to train on (e.g. vessel2d-fluo)")
    p.add_argument("--data", help="dataset folder written by synth.write_dataset (instead of --domain)")
    p.add_argument("--config", help="JSON file with training options (keys of TrainConfig; 'model' sub-dict)")
    p.add_argument("-o", "--out", help="output folder (best.safetensors, state.safetensors, history.jsonl)")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--threads", type=int, help="torch threads (0: all cores)")
    p.add_argument("--device", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--workers", type=int, help="background processes that synthesise training images (0: none)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if OUT/state.safetensors exists")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    d: dict[str, Any] = {}
    if args.config:
        d.update(read_config(args.config))
    d.pop("_comment", None)
    for key, val in (
        ("domain", args.domain), ("data", args.data), ("out", args.out), ("seed", args.seed),
        ("max_minutes", args.max_minutes), ("max_steps", args.max_steps), ("batch_size", args.batch_size),
        ("lr", args.lr), ("threads", args.threads), ("device", args.device),
        ("workers", args.workers),
    ):  # fmt: skip
        if val is not None:
            d[key] = val
    if args.no_resume:
        d["resume"] = False
    d["command"] = "python -m napari_vesselgraph.model.train " + " ".join(shlex.quote(a) for a in argv)
    return TrainConfig.from_dict(d)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args, argv)
        path = train(cfg, log=lambda s: print(s, flush=True))
    except (VesselGraphError, Cancelled, KeyboardInterrupt) as e:
        return exit_code(e)
    print(f"best checkpoint: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
