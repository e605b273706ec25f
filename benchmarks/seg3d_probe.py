"""Feasibility probe (not a product feature): a small 3D U-Net that segments centre-line tubes, and the graph
of its mask (``importers.masks.mask_to_graph``, the importer that makes vesselNN's ground truth graphs).

Why: no Relationformer checkpoint beats the classical skeleton on the vesselNN and DIADEM test stacks (issue 16);
vesselFM and SAM-Road get their graphs from a dense segmentation. This script measures whether that route is
worth building into the product, on the SHOT splits only (never a test split).

- ``train OUT MINUTES``: one core; patches (24, 64, 64), batch 4; 60 % synthetic ``vessel3d-random`` volumes
  (regenerated as it runs), 40 % the train stacks of runs/data/diadem-op1 and runs/data/vesselnn-shots (made
  as configs/vessel3d_robust.json's comment says). Target: tubes of radius 1.5 px around the ground-truth graph.
  Input: two channels, a global stretch (median to 99.9th percentile) and the local contrast of vessel3d-random.
  Weights: OUT/net.safetensors (seed 0).
- ``eval WEIGHTS`` (the probe's weights, or a segmentation checkpoint of ``vesselgraph train-seg``, run by
  its own ``Segmenter.probability``): every shot stack of DIADEM and vesselNN (the train stacks OP_1, bbbDisruption, tgMouse and
  the validation stacks OP_2, BBB_Leakage), probability thresholds 0.3/0.5/0.7 and a minimum component size
  64/256 voxels, scored as benchmarks/real_data.py scores, beside the skeleton with the preset the shot split
  chooses in real_data.py (DIADEM vessel3d-lightsheet, vesselNN vessel3d-twophoton), same run.
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from napari_vesselgraph.model.data import make_synthetic, read_splits
from napari_vesselgraph.model.preprocess import local_contrast
from napari_vesselgraph.model.segment import SegConfig, build_unet, pad_to, remove_small, tube_target
from napari_vesselgraph.model.segtrain import cut as seg_cut

LOCAL = {"method": "local", "sigma": 16.0, "floor_stat": "mean", "min_std": 0.01, "ndim": 3, "channels": 1}
TUBE_R = 1.5
PATCH = (24, 64, 64)
SHOT_FOLDERS = ("runs/data/diadem-op1", "runs/data/diadem-op2", "runs/data/vesselnn-shots")


def norm2(img):
    x = np.asarray(img, np.float32)
    s = x[:: max(1, x.shape[0] // 8), ::4, ::4].ravel()
    med, hi = np.percentile(s, [50, 99.9])
    g = np.clip((x - med) / max(hi - med, 1e-6), 0, 1.5)
    loc = local_contrast(x, LOCAL)
    return np.stack([g, np.clip(loc, 0, 1)]).astype(np.float32)


# the network, tube target, padding and patch cutting are the product's (model.segment / model.segtrain, which grew
# out of this probe): same layer names, same initialisation, same random draws, so runs/seg3d_a still loads
SEG = SegConfig(tube_radius=TUBE_R, patch=PATCH)


def target(g, shape):
    return tube_target(g, shape, SEG)


def UNet():  # noqa: N802 - the probe's old class name
    return build_unet(SEG)


def cut(x, y, rng):
    return seg_cut(x, y, PATCH, rng)


@torch.no_grad()
def predict_prob(net, img, step=(16, 48, 48)):
    x = norm2(img)
    shp = x.shape[1:]
    xp = pad_to(x, PATCH)
    P = xp.shape[1:]
    acc = np.zeros(P, np.float32)
    cnt = np.zeros(P, np.float32)
    starts = [sorted(set(list(range(0, max(1, s - p + 1), st)) + [max(0, s - p)])) for s, p, st in zip(P, PATCH, step)]
    net.eval()
    for z in starts[0]:
        for yy in starts[1]:
            for xx in starts[2]:
                sl = (slice(z, z + PATCH[0]), slice(yy, yy + PATCH[1]), slice(xx, xx + PATCH[2]))
                t = torch.from_numpy(np.ascontiguousarray(xp[(slice(None),) + sl]))[None]
                acc[sl] += torch.sigmoid(net(t))[0, 0].numpy()
                cnt[sl] += 1
    return (acc / np.maximum(cnt, 1))[: shp[0], : shp[1], : shp[2]]


def main(out, minutes):
    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    missing = [f for f in SHOT_FOLDERS if not (ROOT / f / "manifest.json").is_file()]
    if missing:
        sys.exit(f"seg3d_probe: {', '.join(missing)} not found (made as configs/vessel3d_robust.json's comment says)")
    tr, _val = read_splits([str(ROOT / f) for f in SHOT_FOLDERS])  # the val stacks are scored by eval
    real = [(norm2(im), target(g, im.shape)) for im, g in tr]
    print("real train", [r[0].shape for r in real], "pos frac", [float(r[1].mean()) for r in real], flush=True)
    pool, seed = [], 1000
    def synth():
        nonlocal seed
        seed += 1
        im, g = make_synthetic("vessel3d-random", seed, (48, 96, 96))
        return norm2(im), target(g, im.shape)
    for _ in range(16):
        pool.append(synth())
    net = UNet()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    t0, step = time.time(), 0
    while True:
        if time.time() - t0 > minutes * 60:
            break
        xs, ys = [], []
        for _ in range(4):
            src = real[rng.integers(len(real))] if rng.random() < 0.4 else pool[rng.integers(len(pool))]
            for _try in range(4):
                xp, yp = cut(*src, rng)
                if yp.sum() > 0 or rng.random() < 0.2:
                    break
            xs.append(xp)
            ys.append(yp)
        if step % 4 == 0:
            pool[rng.integers(len(pool))] = synth()
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))[:, None]
        lr = 2e-3 * min(1.0, (step + 1) / 100)
        for gp in opt.param_groups:
            gp["lr"] = lr
        net.train()
        logit = net(x)
        p = torch.sigmoid(logit)
        bce = F.binary_cross_entropy_with_logits(logit, y, pos_weight=torch.tensor(3.0))
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(step, round(loss.item(), 4), round(time.time() - t0), flush=True)
        if step % 500 == 0:
            save_file(net.state_dict(), str(out / "net.safetensors"))
    save_file(net.state_dict(), str(out / "net.safetensors"))
    print("done", step, flush=True)


def evaluate(weights):
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import real_data as rd

    from napari_vesselgraph.baseline.presets import preset
    from napari_vesselgraph.importers.masks import mask_to_graph

    sets = (("diadem", "vessel3d-lightsheet"), ("vesselnn", "vessel3d-twophoton"))
    for name, _ in sets:
        if (why := rd.available(name, rd.DATA)) is not None:
            sys.exit(f"seg3d_probe: {why}")
    from napari_vesselgraph.checkpoints import read_metadata
    from napari_vesselgraph.errors import VesselGraphError

    try:  # a segmentation checkpoint of `vesselgraph train-seg` (same network), or the probe's bare weights
        is_ckpt = read_metadata(weights).get("kind") == "segmentation"
    except VesselGraphError:
        is_ckpt = False
    if is_ckpt:
        from napari_vesselgraph.model.segment import load_segmenter

        seg = load_segmenter(weights)
        prob_of = seg.probability  # the product's own input normalisation and windows
    else:
        net = UNet()
        net.load_state_dict(load_file(weights))
        prob_of = lambda im: predict_prob(net, im)  # noqa: E731
    for name, skel in sets:
        folder = rd.prepare_set(name, rd.DATA, rd.WORK, log=rd.quiet)
        for rec in rd.load_split(name, folder, "train", rd.DATA):
            t = time.perf_counter()
            prob = prob_of(rec["image"])
            tp = time.perf_counter() - t
            line = [name, rec["id"], f"prob {tp:.0f}s"]
            for th in (0.3, 0.5, 0.7):
                for ms in (64, 256):
                    g = mask_to_graph(remove_small(prob >= th, ms))
                    m = rd.score(g, rec["graph"], name, rec["voxel"])
                    line.append(f"t{th}/m{ms}: LQ {m['length_quality']:.3f} SMD {m['smd']:.1f}")
            m = rd.predict_and_score(rec, name, "skeleton", params=preset(skel))
            line.append(f"skeleton: LQ {m['length_quality']:.3f} SMD {m['smd']:.1f} ({m['seconds']:.0f}s)")
            print(" | ".join(line), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "train":
        main(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "eval":
        evaluate(sys.argv[2])
    else:
        print("usage: seg3d_probe.py train OUT MINUTES | eval WEIGHTS", file=sys.stderr)
        sys.exit(2)
