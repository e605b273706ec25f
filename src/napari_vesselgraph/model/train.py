"""Training loop for the Relationformer on synthetic data (or a dataset folder).

``train(config, progress=None, cancel=None, log=print) -> Path`` of the best-by-validation checkpoint.

- data: random synthetic images of ``domain`` (``synth.make_sample``) normalised whole with
  :func:`~napari_vesselgraph.model.preprocess.normalize_image`, cut into random patches (``synth.crop_patch``),
  flipped / transposed; or the samples of a dataset folder (``synth.read_dataset``) with ``data``.
- seeds: training images use seeds drawn from ``[0, 9_000_000)`` by a generator seeded with ``seed``;
  validation images use ``9_000_000 + k``; test seeds (``10_000_000`` and up) are never touched.
- every ``val_every`` steps: :func:`metrics.evaluate` on fixed validation patches; the best model (by
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
import math
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
from .config import ModelConfig
from .preprocess import input_meta as make_input_meta
from .preprocess import normalize_image

TRAIN_SEED_MAX = 9_000_000
VAL_SEED_BASE = 9_000_000
TEST_SEED_BASE = 10_000_000


@dataclass
class TrainConfig:
    domain: str = "vessel2d-fluo"
    data: str | None = None  # a dataset folder (synth.write_dataset layout) instead of on-the-fly synthesis
    extra_data: list | str | None = None  # dataset folder(s) mixed into the synthetic stream (e.g. imported real data)
    extra_p: float = 0.0  # probability that a training patch comes from ``extra_data`` (its train split)
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
    except Exception:  # noqa: BLE001 - fall back to the naming convention
        pass
    ndim = 3 if domain.startswith("vessel3d") else 2
    ch = 3 if domain in ("vessel2d-fundus", "road-clean", "road-hazy") else 1
    return ndim, ch


# ------------------------------------------------------------------ data
class PatchSampler:
    """Random training patches from a pool of normalised images (synthetic on the fly, or a dataset)."""

    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, in_meta: dict, rng: np.random.Generator, samples=None):
        self.cfg, self.mcfg, self.in_meta, self.rng = cfg, mcfg, in_meta, rng
        self.fixed = samples  # list of (image, graph) when training from a folder
        self.pool: list[tuple[np.ndarray, Any]] = []
        self.used_seeds: list[int] = []
        n = cfg.pool_size if samples is None else len(samples)
        for k in range(n):
            self.pool.append(self._new_image(k))
        self.calls = 0

    def _new_image(self, k: int):
        if self.fixed is not None:
            img, g = self.fixed[k % len(self.fixed)]
        else:
            seed = int(self.rng.integers(0, TRAIN_SEED_MAX))
            self.used_seeds.append(seed)
            img, g = make_synthetic(self.cfg.domain, seed, self.cfg.image_shape)
        return normalize_image(img, self.in_meta), g

    def refresh(self) -> None:
        if self.fixed is None:
            k = int(self.rng.integers(len(self.pool)))
            self.pool[k] = self._new_image(k)

    def patch(self):
        size = self.mcfg.patch_size
        for _ in range(20):
            img, g = self.pool[int(self.rng.integers(len(self.pool)))]
            spatial = img.shape[1:]
            if any(s < p for s, p in zip(spatial, size)):
                raise VesselGraphError(f"training image {spatial} smaller than the patch size {size}")
            origin = tuple(int(self.rng.integers(0, s - p + 1)) for s, p in zip(spatial, size))
            pimg, pg = cut_patch(img, g, origin, size)
            if pg.n_nodes or self.rng.random() < self.cfg.empty_patch_p:
                break
        nodes = pg.nodes
        if self.cfg.augment:
            pimg, nodes = _augment(pimg, nodes, self.rng)
        pg = _with_nodes(pg, nodes)
        return pimg, pg

    def batch(self, n: int):
        self.calls += 1
        if self.cfg.refresh_every and self.calls % self.cfg.refresh_every == 0:
            self.refresh()
        return [self.patch() for _ in range(n)]


class MixedSampler:
    """Patches from a main sampler, each replaced with probability ``p`` by one from an ``extra`` sampler."""

    def __init__(self, main: PatchSampler, extra: PatchSampler, p: float, rng: np.random.Generator):
        self.main, self.extra, self.p, self.rng = main, extra, float(p), rng

    @property
    def used_seeds(self):
        return self.main.used_seeds

    def patch(self):
        return self.extra.patch() if self.rng.random() < self.p else self.main.patch()

    def batch(self, n: int):
        self.main.calls += 1
        if self.main.cfg.refresh_every and self.main.calls % self.main.cfg.refresh_every == 0:
            self.main.refresh()
        return [self.patch() for _ in range(n)]


def _augment(pimg, nodes, rng):
    from .targets import augment

    return augment(pimg, nodes, rng)


def _with_nodes(g, nodes):
    from ..graph import VesselGraph

    return VesselGraph(nodes, g.edges, g.node_attrs, g.edge_attrs, g.scale, g.metadata)


def make_synthetic(domain: str, seed: int, shape=None):
    from .. import synth

    if shape is None:
        return synth.make_sample(domain, seed)
    return synth.make_sample(domain, seed, shape=tuple(shape))


def cut_patch(norm_image: np.ndarray, graph, origin, size):
    """Crop a normalised ``(C, *S)`` image and its graph (border nodes inserted by ``synth.crop_patch``)."""
    from .. import synth

    sl = tuple(slice(o, o + p) for o, p in zip(origin, size))
    patch = np.ascontiguousarray(norm_image[(slice(None),) + sl])
    crop = getattr(synth, "crop_patch", None)
    if crop is not None:
        _, pg = crop(norm_image[0], graph, tuple(origin), tuple(size))
    else:
        from .targets import crop_graph

        pg = crop_graph(graph, origin, size)
    return patch, pg


def validation_set(cfg: TrainConfig, mcfg: ModelConfig, in_meta: dict, samples=None):
    """Fixed validation patches from held-out images (seeds ``9_000_000 + k``)."""
    rng = np.random.default_rng(VAL_SEED_BASE)
    out = []
    if samples is None:
        images = [make_synthetic(cfg.domain, VAL_SEED_BASE + k, cfg.image_shape) for k in range(cfg.val_images)]
    else:
        images = samples
    images = [(normalize_image(i, in_meta), g) for i, g in images]
    per = max(1, math.ceil(cfg.val_patches / max(1, len(images))))
    for img, g in images:
        spatial = img.shape[1:]
        for _ in range(per):
            for _ in range(20):
                origin = tuple(int(rng.integers(0, s - p + 1)) for s, p in zip(spatial, mcfg.patch_size))
                p, pg = cut_patch(img, g, origin, mcfg.patch_size)
                if pg.n_nodes:
                    break
            out.append((p, pg))
    return out[: cfg.val_patches]


def node_count_stats(sampler: PatchSampler, mcfg: ModelConfig, n: int = 400) -> dict:
    """Nodes per patch and per query cell: checks that ``n_queries`` covers the data."""
    counts, per_cell = [], []
    cell = np.asarray(mcfg.patch_size) / np.asarray(mcfg.query_grid)
    for _ in range(n):
        _, g = sampler.patch()
        counts.append(g.n_nodes)
        if g.n_nodes:
            c = np.clip(np.floor(g.nodes / cell).astype(int), 0, np.asarray(mcfg.query_grid) - 1)
            per_cell.append(int(np.unique(c, axis=0, return_counts=True)[1].max()))
    counts = np.asarray(counts)
    return {
        "nodes_p50": float(np.percentile(counts, 50)),
        "nodes_p99": float(np.percentile(counts, 99)),
        "nodes_max": int(counts.max()),
        "max_nodes_per_cell_p99": float(np.percentile(per_cell, 99)) if per_cell else 0.0,
        "n_queries": mcfg.n_queries,
    }


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
def validate(model, val_set, cfg: TrainConfig, device, sweep: bool = True) -> dict:
    """Mean metrics over the validation patches.

    With ``sweep`` the node/edge score thresholds are also chosen on the validation patches (a small grid);
    the metrics at the best pair are reported with ``node_threshold``/``edge_threshold``, and the metrics at
    the configured thresholds (``val_node_threshold``/``val_edge_threshold``) under ``at_default``.
    """
    from ..metrics import evaluate
    from .predictor import PatchPredictor, candidates_to_graph

    was_training = model.training
    pred = PatchPredictor(model, {}, device=device, batch_size=32)
    cands = pred.predict_batch(np.stack([p for p, _ in val_set]))
    model.train(was_training)
    ndim, shape = model.cfg.ndim, tuple(model.cfg.patch_size)

    def run(nt: float, et: float, groups) -> dict:
        rows = []
        for cand, (_, gt) in zip(cands, val_set):
            g = candidates_to_graph(cand, nt, et, ndim=ndim)
            rows.append(evaluate(g, gt, radius=3.0, metrics=groups, image_shape=shape, smd_points=200))
        out = {}
        for k in sorted({k for r in rows for k in r}):
            vals = [r[k] for r in rows if k in r and r[k] is not None and np.isfinite(r[k])]
            if vals:
                out[k] = float(np.mean(vals))
        out["score"] = 0.5 * (out.get("node_f1", 0.0) + out.get("edge_f1", 0.0))
        return out

    default = (cfg.val_node_threshold, cfg.val_edge_threshold)
    best_pair = default
    if sweep:
        best = -1.0
        for nt in (0.3, 0.4, 0.5, 0.6, 0.7):
            for et in (0.3, 0.5, 0.7):
                sc = run(nt, et, ["prf"])["score"]
                if sc > best + 1e-9:
                    best, best_pair = sc, (nt, et)
    out = run(*best_pair, ["prf", "smd"])
    out["node_threshold"], out["edge_threshold"] = best_pair
    if best_pair != default:
        d = run(*default, ["prf"])
        out["at_default"] = {k: d[k] for k in ("node_f1", "edge_f1", "score") if k in d}
    return out


# ------------------------------------------------------------------ the loop
def _lr_factor(step: int, frac: float, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    frac = min(max(frac, 0.0), 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))


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

    samples = val_samples = data_domain = None
    if cfg.data:
        samples, val_samples, data_domain = _read_folder(cfg.data)
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
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
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
        extra_train, extra_val = [], []
        from .. import synth

        for folder in [cfg.extra_data] if isinstance(cfg.extra_data, str) else list(cfg.extra_data):
            for r in synth.read_dataset(folder):  # a folder may hold only validation images
                if r["split"] == "train":
                    extra_train.append((r["image"], r["graph"]))
                elif r["split"] in ("val", "validation"):
                    extra_val.append((r["image"], r["graph"]))
        if not extra_train:
            raise VesselGraphError(f"extra_data {cfg.extra_data}: no samples in the train split")
        if not 0.0 < cfg.extra_p <= 1.0:
            raise VesselGraphError(f"extra_p must be in (0, 1], got {cfg.extra_p}")
        sampler = MixedSampler(sampler, PatchSampler(cfg, mcfg, in_meta, rng, extra_train), cfg.extra_p, rng)
        if extra_val:
            val_set = val_set + validation_set(cfg, mcfg, in_meta, extra_val)
        log(f"extra data: {len(extra_train)} training / {len(extra_val)} validation images, p = {cfg.extra_p}")
    stats = node_count_stats(sampler, mcfg, cfg.stats_patches)
    log(f"data: {json.dumps(stats)}; {len(val_set)} validation patches; set-up {time.time() - t0:.1f}s")
    if stats["nodes_p99"] > mcfg.n_queries:
        log(f"WARNING: 99th percentile of nodes per patch ({stats['nodes_p99']}) exceeds the {mcfg.n_queries} queries")

    budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
    t_start = time.time()

    def elapsed() -> float:
        return elapsed_before + time.time() - t_start

    def frac() -> float:
        f = step / max(1, cfg.max_steps)
        if budget:
            f = max(f, elapsed() / budget)
        return f

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

    def save_state():
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
            "step": step,
            "best_score": best_score,
            "elapsed": elapsed(),
            "rng": rng.bit_generator.state,
            "history": history[-200:],
            "command": command,
            "seed": cfg.seed,
        }
        save_tensors(state_path, tensors, info, sidecar=False)

    def run_validation(reason: str):
        nonlocal best_score
        tv = time.time()
        metrics = validate(shown, val_set, cfg, device)
        entry = {"step": step, "minutes": round(elapsed() / 60, 2)}
        entry.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()})
        history.append({"kind": "val", **entry})
        improved = metrics["score"] > best_score
        if improved:
            best_score = metrics["score"]
            meta = base_meta()
            meta["validation"] = {**metrics, "step": step, "minutes": round(elapsed() / 60, 2)}
            meta["thresholds"] = {"node": metrics["node_threshold"], "edge": metrics["edge_threshold"]}
            save_checkpoint(best_path, shown, meta)
        save_state()
        log(
            f"[val {reason}] step {step} node_f1 {metrics.get('node_f1', 0):.3f} edge_f1 {metrics.get('edge_f1', 0):.3f} "
            f"smd {metrics.get('smd', float('nan')):.4f} score {metrics['score']:.3f} "
            f"(thresholds {metrics['node_threshold']}/{metrics['edge_threshold']})"
            f"{' (best, saved)' if improved else ''} [{time.time() - tv:.1f}s]"
        )
        with open(out / "history.jsonl", "a") as f:
            f.write(json.dumps({"kind": "val", **entry}) + "\n")

    model.train()
    run_loss: dict[str, float] = {}
    t_log = time.time()
    stop_reason = "max_steps"
    while step < cfg.max_steps:
        if cancel is not None and cancel.is_set():
            stop_reason = "cancelled"
            break
        if budget and elapsed() >= budget:
            stop_reason = "time budget"
            break
        batch = sampler.batch(cfg.batch_size)
        x = torch.from_numpy(np.stack([p for p, _ in batch])).to(device)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        targets = collate([graph_to_target(g, mcfg.patch_size, mcfg.stride) for _, g in batch], device=device)
        f = _lr_factor(step, frac(), cfg)
        for g, lr0 in zip(opt.param_groups, base_lrs):
            g["lr"] = lr0 * f
        o = model(x)
        loss, logs = crit(o, targets)
        if not torch.isfinite(loss):
            log(f"step {step}: non-finite loss, batch skipped")
            opt.zero_grad(set_to_none=True)
            step += 1
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            _ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        step += 1
        for k, v in logs.items():
            run_loss[k] = run_loss.get(k, 0.0) + v
        if step % cfg.log_every == 0:
            n = cfg.log_every
            avg = {k: v / n for k, v in run_loss.items()}
            dt = (time.time() - t_log) / n
            log(
                f"step {step} "
                + " ".join(f"{k} {v:.4f}" for k, v in avg.items())
                + f" lr {opt.param_groups[0]['lr']:.2e} {dt:.2f}s/step {elapsed() / 60:.1f}min"
            )
            with open(out / "history.jsonl", "a") as fh:
                fh.write(json.dumps({"kind": "train", "step": step, "minutes": round(elapsed() / 60, 2), **avg}) + "\n")
            run_loss, t_log = {}, time.time()
        if progress is not None:
            progress(step, cfg.max_steps, {"loss": logs["loss"], "elapsed": elapsed(), "step": step})
        if step % cfg.val_every == 0:
            run_validation("periodic")
    log(f"stopping at step {step}: {stop_reason} ({elapsed() / 60:.1f} min)")
    if not history or history[-1].get("step") != step:
        run_validation("final")
    if not best_path.exists():  # pragma: no cover - validation always saves once
        save_checkpoint(best_path, shown, base_meta())
    _free(device)
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


def _free(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()


def _read_folder(folder: str):
    """``(train_samples, val_samples)`` lists of ``(image, graph)`` from ``synth.read_dataset``."""
    from .. import synth

    records = synth.read_dataset(folder)
    train, val = [], []
    for r in records:
        split = r["split"] if not isinstance(r, (tuple, list)) else "train"
        sample = (r[0], r[1]) if isinstance(r, (tuple, list)) else (r["image"], r["graph"])
        if split in ("val", "validation"):
            val.append(sample)
        elif split == "train":
            train.append(sample)
    if not train:
        raise VesselGraphError(f"{folder}: no training samples found")
    if not val:
        k = max(1, len(train) // 10)
        train, val = train[k:] or train, train[:k]
    domains = {getattr(r, "domain", None) for r in records} - {None}
    return train, val, (domains.pop() if len(domains) == 1 else None)


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
    p.add_argument("--no-resume", action="store_true", help="start afresh even if OUT/state.safetensors exists")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    d: dict[str, Any] = {}
    if args.config:
        try:
            d.update(json.loads(Path(args.config).read_text()))
        except (OSError, ValueError) as e:
            raise VesselGraphError(f"cannot read config {args.config}: {e}") from None
    d.pop("_comment", None)
    for key, val in (
        ("domain", args.domain), ("data", args.data), ("out", args.out), ("seed", args.seed),
        ("max_minutes", args.max_minutes), ("max_steps", args.max_steps), ("batch_size", args.batch_size),
        ("lr", args.lr), ("threads", args.threads), ("device", args.device),
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
    except VesselGraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return 130
    print(f"best checkpoint: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
