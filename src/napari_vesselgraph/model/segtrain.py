"""Train a segmentation checkpoint (:mod:`.segment`): a U-Net that paints the centre-line tubes of a network.

``train_segmenter(cfg, progress=None, cancel=None, log=print) -> Path`` (the best-by-validation checkpoint).

- data: ``synthetic_p`` of the patches come from random synthetic images of ``domain`` (a pool of ``pool``
  images, one replaced every 4 steps, seeds drawn from the run's generator below ``TRAIN_SEED_MAX``), the rest
  from the train split of the dataset folders ``data`` (e.g. imported real shot stacks; never a test split).
  Patches of ``seg.patch`` pixels, flipped and transposed at random; a patch without any vessel is redrawn up to
  three times (kept with probability 0.2).
- loss: binary cross-entropy (positive weight 3) + soft Dice; AdamW, linear warm-up (100 steps) then cosine
  decay to 10 % of ``lr`` at ``steps``.
- validation every ``val_every`` steps: Dice at ``seg.threshold`` on fixed patches of the folders' val splits
  (or, without any, of synthetic validation images, seeds ``VAL_SEED_BASE + k``); the best model goes to
  ``OUT/best.safetensors``, the latest to ``OUT/last.safetensors``.
- resume: the training state (weights, AdamW moments, step, the random generators' states, the best score) is
  saved to ``OUT/state.safetensors`` at every validation and at the end; running the same command again
  continues from it (the synthetic pool is drawn afresh, so a resumed run is not bit-identical to an
  uninterrupted one). Stops at ``steps``, after ``max_minutes`` of this invocation, or on ``cancel``.

- fine-tuning (``init``, ``--init``): the run starts from a segmentation checkpoint's weights and architecture
  (its other settings, e.g. the threshold, are this run's); the checkpoints record ``init`` (the source and its
  SHA-256) and ``adaptation`` (method ``finetune``, source, target folders, shot ids, seed, steps). ``--lr``
  defaults to 5e-4 for a fine-tune (2e-3 from scratch).

Command line: ``vesselgraph train-seg -o runs/seg3d --data runs/data/diadem-op1 runs/data/vesselnn-shots
--steps 6000`` (``python -m napari_vesselgraph.model.segtrain``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, VesselGraphError
from ..progress import exit_code
from .data import TRAIN_SEED_MAX, VAL_SEED_BASE, make_synthetic, read_splits
from .segment import SegConfig, build_unet, pad_to, save_segmenter, seg_input, tube_target


@dataclass
class SegTrainConfig:
    out: str = "runs/seg"
    domain: str = "vessel3d-random"
    data: list[str] = field(default_factory=list)
    synthetic_p: float = 0.6
    synthetic_shape: tuple[int, ...] = (48, 96, 96)
    pool: int = 16
    steps: int = 6000
    batch: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_every: int = 250
    val_patches: int = 8
    seed: int = 0
    max_minutes: float | None = None
    threads: int = 1
    description: str = ""
    command: str = ""
    init: str | None = None
    seg: SegConfig = field(default_factory=SegConfig)

    def __post_init__(self):
        if not 0.0 <= self.synthetic_p <= 1.0:
            raise VesselGraphError(f"synthetic_p must be in [0, 1], got {self.synthetic_p}")
        if self.synthetic_p < 1.0 and not self.data:
            raise VesselGraphError("synthetic_p < 1 needs dataset folders (--data) for the other patches")
        if self.steps < 1 or self.batch < 1 or self.val_every < 1 or self.pool < 1:
            raise VesselGraphError("steps, batch, val_every and pool must be positive")
        self.synthetic_shape = tuple(int(n) for n in self.synthetic_shape)
        if len(self.synthetic_shape) != self.seg.ndim:
            raise VesselGraphError(f"synthetic_shape must have {self.seg.ndim} numbers, got {self.synthetic_shape}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seg"] = self.seg.to_dict()
        d["synthetic_shape"] = list(self.synthetic_shape)
        return d


def cut(x: np.ndarray, y: np.ndarray, patch, rng: np.random.Generator):
    """A random ``patch`` of input ``x`` (C, *spatial) and target ``y`` (*spatial), randomly flipped/transposed."""
    x, y = pad_to(x, patch), pad_to(y, patch)
    o = [int(rng.integers(0, s - p + 1)) for s, p in zip(y.shape, patch)]
    sl = tuple(slice(a, a + p) for a, p in zip(o, patch))
    xp, yp = x[(slice(None),) + sl], y[sl]
    nd = y.ndim
    for ax in range(nd):
        if rng.random() < 0.5:
            xp, yp = np.flip(xp, ax + 1), np.flip(yp, ax)
    if patch[-1] == patch[-2] and rng.random() < 0.5:
        xp, yp = xp.swapaxes(nd - 1, nd), yp.swapaxes(nd - 2, nd - 1)
    return np.ascontiguousarray(xp), np.ascontiguousarray(yp)


def _prepare(pairs, seg: SegConfig):
    return [(seg_input(im, seg), tube_target(g, im.shape[: seg.ndim], seg)) for im, g in pairs]


def _val_patches(val, cfg: SegTrainConfig):
    """Fixed validation patches (with vessels) of the validation samples."""
    rng = np.random.default_rng(12345)
    out = []
    for x, y in val:
        got = 0
        for _ in range(cfg.val_patches * 10):
            xp, yp = cut(x, y, cfg.seg.patch, rng)
            if yp.sum() > 0:
                out.append((xp, yp))
                got += 1
                if got >= cfg.val_patches:
                    break
    return out


def val_dice(net, patches, seg: SegConfig) -> float:
    """Dice of ``probability >= seg.threshold`` against the tube targets, pooled over the patches."""
    import torch

    inter = tot = 0.0
    net.eval()
    with torch.inference_mode():
        for i in range(0, len(patches), 4):
            xs = torch.from_numpy(np.stack([p[0] for p in patches[i : i + 4]]))
            ys = np.stack([p[1] for p in patches[i : i + 4]])
            pred = (torch.sigmoid(net(xs))[:, 0].numpy() >= seg.threshold).astype(np.float32)
            inter += float((pred * ys).sum())
            tot += float(pred.sum() + ys.sum())
    net.train()
    return 2 * inter / max(tot, 1.0)


def _lr(step: int, cfg: SegTrainConfig) -> float:
    warm = min(1.0, (step + 1) / 100)
    frac = min(1.0, step / max(1, cfg.steps))
    return cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _log(line: str) -> None:
    print(line, flush=True)


def train_segmenter(cfg: SegTrainConfig, progress=None, cancel=None, log=_log) -> Path:
    import torch
    import torch.nn.functional as F

    from ..checkpoints.store import load_tensors, save_tensors
    from .train import optimizer_from_tensors, optimizer_to_tensors

    torch.set_num_threads(max(1, int(cfg.threads)))
    out = Path(cfg.out)
    seg = cfg.seg
    folders = [str(f) for f in cfg.data]
    for f in folders:
        if not (Path(f) / "manifest.json").is_file():
            raise VesselGraphError(f"{f}: not a dataset folder (no manifest.json)")
    source = None
    if cfg.init:  # fine-tune: start from a segmentation checkpoint's weights and take its architecture
        from .segment import load_segmenter

        source = load_segmenter(cfg.init)
        keep = {k: v for k, v in seg.to_dict().items() if k not in source.cfg.architecture()}
        seg = SegConfig.from_dict({**source.cfg.to_dict(), **keep}, cfg.init)
        cfg.seg = seg
        if len(cfg.synthetic_shape) != seg.ndim:
            raise VesselGraphError(f"{cfg.init} is a {seg.ndim}D model: its synthetic images must be {seg.ndim}D too")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # before any training, not after it
        raise VesselGraphError(f"cannot create the output folder {out} ({e.strerror or e})") from None
    tr_pairs, val_pairs = read_splits(folders) if folders else ([], [])
    if cfg.synthetic_p < 1.0 and not tr_pairs:
        raise VesselGraphError(f"no train samples in {', '.join(folders)}")
    real = _prepare(tr_pairs, seg)
    if not val_pairs:
        val_pairs = [make_synthetic(cfg.domain, VAL_SEED_BASE + k, cfg.synthetic_shape) for k in range(4)]
    val = _val_patches(_prepare(val_pairs, seg), cfg)
    log(f"train-seg: {len(real)} real train samples, {len(val)} validation patches, domain {cfg.domain}")

    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    net = build_unet(seg)
    if source is not None:
        net.load_state_dict(source.net.state_dict())
        log(f"train-seg: fine-tuning {source.meta.get('name') or cfg.init}")
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    step, best, history = 0, -1.0, []
    state_path = out / "state.safetensors"
    if state_path.is_file():
        tensors, info = load_tensors(state_path)
        if SegConfig.from_dict(info.get("train_config", {}).get("seg", {}), str(state_path)).architecture() != \
                seg.architecture():  # fmt: skip
            raise VesselGraphError(f"{state_path}: a run with another architecture; use a new output folder")
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        optimizer_from_tensors(opt, tensors, info["optimizer"])
        torch.set_rng_state(tensors["torch_rng"])
        rng.bit_generator.state = info["numpy_rng"]
        step, best, history = int(info["step"]), float(info["best"]), list(info.get("history", []))
        log(f"train-seg: resumed from {state_path} at step {step} (best validation Dice {best:.3f})")

    def synth():
        im, g = make_synthetic(cfg.domain, int(rng.integers(0, TRAIN_SEED_MAX)), cfg.synthetic_shape)
        return seg_input(im, seg), tube_target(g, im.shape[: seg.ndim], seg)

    pool = [synth() for _ in range(cfg.pool)] if cfg.synthetic_p > 0 else []
    meta_common = {
        "seed": cfg.seed,
        "domain": cfg.domain,
        "train_data": folders,
        "training": {"config": {**cfg.to_dict(), "extra_data": folders}},
        "description": cfg.description,
        "command": cfg.command,
    }
    if source is not None:
        from ..synth import read_dataset

        shots = sorted({r.id for f in folders for r in read_dataset(f, split="train", load=False)})
        ip = Path(source.meta["path"])
        src_name = source.meta.get("name") or f"{ip.parent.name}/{ip.stem}"
        import hashlib

        digest = hashlib.sha256(Path(source.meta["path"]).read_bytes()).hexdigest()
        meta_common["init"] = {"checkpoint": str(cfg.init), "name": src_name, "sha256": digest,
                               "command": source.meta.get("command"), "seed": source.meta.get("seed")}  # fmt: skip
        meta_common["adaptation"] = {"method": "finetune", "source": src_name, "target": folders,
                                     "shots": shots, "seed": cfg.seed, "steps": cfg.steps,
                                     "synthetic_p": cfg.synthetic_p}  # fmt: skip
        meta_common["target_domain"] = ", ".join(Path(f).name for f in folders) or cfg.domain

    def save_state():
        t = {f"net.{k}": v for k, v in net.state_dict().items()}
        ot, oj = optimizer_to_tensors(opt)
        t.update(ot)
        t["torch_rng"] = torch.get_rng_state()
        info = {"step": step, "best": best, "history": history, "optimizer": oj,
                "numpy_rng": rng.bit_generator.state, "train_config": cfg.to_dict()}  # fmt: skip
        save_tensors(state_path, t, info, sidecar=False)

    def save_ckpt(name, score):
        meta = dict(meta_common, steps=step, validation={"dice": round(score, 4), "step": step})
        save_segmenter(out / name, net, seg, meta)

    t0 = time.time()
    pos_w = torch.tensor(3.0)

    def one_step() -> float:
        xs, ys = [], []
        for _ in range(cfg.batch):
            use_synth = not real or (pool and rng.random() < cfg.synthetic_p)
            src = pool[int(rng.integers(len(pool)))] if use_synth else real[int(rng.integers(len(real)))]
            for _try in range(4):
                xp, yp = cut(*src, seg.patch, rng)
                if yp.sum() > 0 or rng.random() < 0.2:
                    break
            xs.append(xp)
            ys.append(yp)
        if pool and step % 4 == 0:
            pool[int(rng.integers(len(pool)))] = synth()
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))[:, None]
        for gp in opt.param_groups:
            gp["lr"] = _lr(step, cfg)
        logit = net(x)
        p = torch.sigmoid(logit)
        bce = F.binary_cross_entropy_with_logits(logit, y, pos_weight=pos_w)
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce + dice
        if torch.isfinite(loss):  # a non-finite batch is skipped
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())

    net.train()
    try:
        while step < cfg.steps:
            if cancel is not None and cancel.is_set():
                break
            if cfg.max_minutes is not None and time.time() - t0 > cfg.max_minutes * 60:
                break
            loss = one_step()
            step += 1
            if progress is not None:
                progress(step, cfg.steps, {"stage": "train", "loss": loss})
            if step % cfg.val_every == 0 or step == cfg.steps:
                d = val_dice(net, val, seg)
                history.append([step, round(loss, 4), round(d, 4)])
                log(f"train-seg: step {step}/{cfg.steps} loss {loss:.4f} val Dice {d:.3f} ({time.time() - t0:.0f} s)")
                save_ckpt("last.safetensors", d)
                if d > best:
                    best = d
                    save_ckpt("best.safetensors", d)
                save_state()
    except KeyboardInterrupt:
        save_state()  # Ctrl-C / SIGTERM: keep what was trained; the same command resumes
        raise
    save_state()
    if not (out / "best.safetensors").is_file():
        best = val_dice(net, val, seg)
        save_ckpt("best.safetensors", best)
    (out / "history.json").write_text(json.dumps(history) + "\n")
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"training stopped at step {step}; run the command again to resume")
    return out / "best.safetensors"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vesselgraph train-seg", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", required=True, help="output folder (running again resumes from its state)")
    p.add_argument("--domain", default="vessel3d-random", help="synthetic domain of the synthetic patches")
    p.add_argument("--data", nargs="*", default=[], help="dataset folders whose train split is mixed in")
    p.add_argument("--synthetic-p", type=float, default=0.6, help="share of synthetic patches (default 0.6)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--max-minutes", type=float, default=None, help="stop this invocation after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ndim", type=int, default=3, choices=(2, 3))
    p.add_argument("--patch", type=int, nargs="+", default=None, help="patch size per axis")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--description", default="", help="what images the model suits (stored in its metadata)")
    p.add_argument("--init", default=None, help="fine-tune: start from this segmentation checkpoint (name or path); "
                   "its architecture is used")  # fmt: skip
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 2e-3; 5e-4 with --init)")
    return p


def main(argv: list[str] | None = None) -> int:
    import shlex

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        ndim = args.ndim
        if args.init:  # a fine-tune keeps its checkpoint's dimensionality (and architecture)
            from ..checkpoints.store import read_metadata, resolve

            ndim = SegConfig.from_dict(read_metadata(resolve(args.init)).get("segmentation"), args.init).ndim
        patch = tuple(args.patch) if args.patch else ((24, 64, 64) if ndim == 3 else (128, 128))
        seg = SegConfig(ndim=ndim, patch=patch)
        shape = (48, 96, 96) if ndim == 3 else (256, 256)
        cfg = SegTrainConfig(out=args.out, domain=args.domain, data=list(args.data), synthetic_p=args.synthetic_p,
                             steps=args.steps, max_minutes=args.max_minutes, seed=args.seed, threads=args.threads,
                             description=args.description, seg=seg, synthetic_shape=shape, init=args.init,
                             lr=args.lr if args.lr is not None else (5e-4 if args.init else 2e-3),
                             command=shlex.join(["vesselgraph", "train-seg", *argv]))  # fmt: skip
        path = train_segmenter(cfg)
    except (VesselGraphError, FileNotFoundError, Cancelled, KeyboardInterrupt) as e:
        return exit_code(e, "vesselgraph train-seg", cancelled="stopped; run the same command again to resume")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
