"""Which node candidates and node pairs the relation head of a checkpoint needs to score (validation images).

The relation head scores every pair of kept node candidates of a patch, so its cost grows with the square of
the candidates. A checkpoint can record in ``meta["candidates"]`` a node floor (candidates scoring below it are
dropped first) and a pair radius (pairs farther apart, in patch pixels, are not scored); see
:mod:`napari_vesselgraph.model.predictor`. This script measures what they change:

1. every validation image is predicted once with *all* candidates and *all* pairs scored, and each window's raw
   outputs (positions before node refinement, scores, radii, every pair's edge score) are kept;
2. each setting (node floor x pair radius) is replayed from those outputs exactly as ``PatchPredictor`` would
   select them (then node refinement, stitching, thresholds and the checkpoint's clean-up, as ``predict``),
   without running the model again, and scored with ``metrics.evaluate`` (radius 3 px);
3. the table (pairs scored, and per image set SMD, length quality, junction F1, node F1, APLS) goes to
   ``docs/benchmarks.md`` (section ``candidate-pruning-NAME``).

Validation only: a dataset folder's ``train`` split (``--val-data``, default the DRIVE images 21-30 of
``runs/data/fundus``) and synthetic validation seeds ``20_000_000 + i``; never a test split.
``--write-checkpoint FLOOR RADIUS`` stores the chosen setting in the bundled checkpoint's metadata.

    python benchmarks/candidate_pruning.py --checkpoint vessel2d-random --write-checkpoint 0.3 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time

import numpy as np
from _report import cpu_name, write_section

VAL_SEED0 = 20_000_000
SETS_DEFAULT = ("vessel2d-fluo", "vessel2d-fundus", "vessel2d-random")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="vessel2d-random")
    p.add_argument(
        "--val-data",
        default="runs/data/fundus:train",
        help="dataset folder[:split] of real validation images ('' for none)",
    )
    p.add_argument("--domains", nargs="*", default=list(SETS_DEFAULT), help="synthetic domains (validation seeds)")
    p.add_argument("--n", type=int, default=10, help="synthetic images per domain")
    p.add_argument("--node-floors", nargs="+", type=float, default=[0.05, 0.3])
    p.add_argument(
        "--radii",
        nargs="+",
        default=["none", "12", "16", "20", "24"],
        help="pair radii in patch pixels ('none': every pair)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-write", action="store_true", help="print only; do not write docs/benchmarks.md")
    p.add_argument(
        "--write-checkpoint",
        nargs=2,
        type=float,
        metavar=("NODE_FLOOR", "PAIR_RADIUS"),
        help="store this setting in the bundled checkpoint's meta['candidates']",
    )
    return p.parse_args(argv)


def load_sets(args):
    from napari_vesselgraph.synth import iter_dataset, make_sample

    sets = []
    if args.val_data:
        folder, _, split = args.val_data.partition(":")
        for rec in iter_dataset(folder, split=split or "train"):
            sets.append((os.path.basename(folder.rstrip("/")), rec.image, rec.graph, False))
    for dom in args.domains:
        for i in range(args.n):
            img, gt = make_sample(dom, VAL_SEED0 + i)
            sets.append((dom, img, gt, True))
    return sets


def record_outputs(pred, image, gt):
    """Predict ``image`` scoring all candidates and pairs; the per-window raw outputs, in call order."""
    import torch

    from napari_vesselgraph.inference import predict

    calls = []
    real = pred.predict_batch

    def full(patches, **_):
        patches = np.asarray(patches, np.float32)
        m = pred.model
        with torch.inference_mode():
            o = m(torch.from_numpy(np.ascontiguousarray(patches)), aux=False)
            prob = o["logits"].float().softmax(-1)[..., 1]
            pix = m.to_pixels(o["pos"].float())
            n = prob.shape[1]
            iu, ju = torch.triu_indices(n, n, 1)
            bi = torch.arange(len(patches)).repeat_interleave(len(iu))
            ps = torch.sigmoid(m.relation_logits(o["tokens"], o["rln"], bi, iu.repeat(len(patches)),
                                                 ju.repeat(len(patches)), o))  # fmt: skip
            ps = ps.reshape(len(patches), -1).numpy().astype(np.float64)
        out = [
            {"patch": patches[b], "pos": pix[b].numpy().astype(np.float64), "score": prob[b].numpy().astype(np.float64),
             "radius": o["radius"][b].float().numpy().astype(np.float64), "iu": iu.numpy(), "ju": ju.numpy(),
             "ps": ps[b]}
            for b in range(len(patches))
        ]  # fmt: skip
        calls.append(out)
        return select(out, 0.0, None, pred)

    pred.predict_batch = full
    try:
        predict(image, predictor=pred, scale=gt.scale)
    finally:
        pred.predict_batch = real
    return calls


def select(out, node_floor, radius, pred):
    """What ``PatchPredictor.predict_batch`` returns for these windows with this node floor and pair radius."""
    from napari_vesselgraph.model.predictor import EDGE_FLOOR
    from napari_vesselgraph.model.refine import refine_nodes_batch

    res = []
    for r in out:
        keep = np.flatnonzero(r["score"] >= node_floor)
        idx = np.full(len(r["score"]), -1)
        idx[keep] = np.arange(len(keep))
        sel = (idx[r["iu"]] >= 0) & (idx[r["ju"]] >= 0)
        if radius is not None:
            sel &= ((r["pos"][r["iu"]] - r["pos"][r["ju"]]) ** 2).sum(1) <= radius**2
        npairs = int(sel.sum())
        sel &= r["ps"] >= EDGE_FLOOR
        res.append({
            "nodes": r["pos"][keep], "node_score": r["score"][keep], "radius": r["radius"][keep],
            "edges": np.stack([idx[r["iu"][sel]], idx[r["ju"][sel]]], 1).astype(np.int64),
            "edge_score": r["ps"][sel], "_pairs": npairs,
        })  # fmt: skip
    if pred.refine.enabled:
        refined = refine_nodes_batch([r["patch"] for r in out], [r["nodes"] for r in res],
                                     [r["node_score"] for r in res], pred.refine)  # fmt: skip
        for r, nodes in zip(res, refined):
            r["nodes"] = nodes
    return res


def replay(pred, image, gt, calls, node_floor, radius):
    from napari_vesselgraph.inference import predict

    it = iter(calls)
    pairs = [0]
    real = pred.predict_batch

    def fake(patches, **_):
        res = select(next(it), node_floor, radius, pred)
        pairs[0] += sum(r.pop("_pairs") for r in res)
        return res

    pred.predict_batch = fake
    try:
        g = predict(image, predictor=pred, scale=gt.scale)
    finally:
        pred.predict_batch = real
    return g, pairs[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from napari_vesselgraph.metrics import aggregate, evaluate
    from napari_vesselgraph.model.predictor import make_predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    # everything scored: no floor, no radius (the recording itself)
    pred = make_predictor(args.checkpoint, device="cpu", candidates={"node_floor": 0.0, "pair_radius": None})
    sets = load_sets(args)
    print(f"{len(sets)} validation images; recording all candidates and pairs", flush=True)
    recorded = [record_outputs(pred, img, gt) for _, img, gt, _ in sets]
    radii = [None if str(r).lower() == "none" else float(r) for r in args.radii]
    names = list(dict.fromkeys(name for name, *_ in sets))
    keys = ("smd", "length_quality", "junction_f1", "node_f1", "apls")
    rows = []
    for nf in args.node_floors:
        for rad in radii:
            per: dict[str, list] = {n: [] for n in names}
            total = 0
            for (name, img, gt, synthetic), calls in zip(sets, recorded):
                g, n_pairs = replay(pred, img, gt, calls, nf, rad)
                total += n_pairs
                kw = {"image_shape": tuple(img.shape[: gt.ndim])} if synthetic else {}
                per[name].append(evaluate(g, gt, radius=3.0, **kw))
            rows.append((nf, rad, total, {n: aggregate(v) for n, v in per.items()}))
            print(f"  floor {nf} radius {rad}: {total} pairs", flush=True)
    base = max(r[2] for r in rows)
    head = "| node floor | pair radius (px) | pairs scored | " + " | ".join(names) + " |"
    lines = [
        head,
        "|---:|---:|---:|" + "---|" * len(names),
    ]
    for nf, rad, total, agg in rows:
        cells = [" / ".join(f"{agg[n][k]:.3f}" if k != "smd" else f"{agg[n][k]:.4g}" for k in keys) for n in names]
        rs = "all" if rad is None else f"{rad:g}"
        lines.append(f"| {nf:g} | {rs} | {total:,} ({total / base:.0%}) | " + " | ".join(cells) + " |")
    cmd = "python benchmarks/candidate_pruning.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = "\n".join(
        [
            f"## Candidate pruning of the relation head (validation images): {args.checkpoint}",
            "",
            (
                f"Command: `{cmd.strip()}`. Date {dt.date.today()}; {cpu_name()}, Python "
                f"{platform.python_version()}; {time.perf_counter() - t0:.0f} s."
            ),
            "",
            (
                "Each setting replays the same recorded model outputs (every candidate, every pair) as "
                "`PatchPredictor` would select them, then refinement, stitching, the checkpoint's thresholds and "
                "clean-up; metrics at 3 px. Cells: SMD / length quality / junction F1 / node F1 / APLS (mean over "
                "the images; DRIVE SMD in px, synthetic SMD as a fraction of the image). Images: "
                f"{args.val_data or 'none'} and {args.n} synthetic validation seeds ({VAL_SEED0}...) of "
                f"{', '.join(args.domains)}."
            ),
            "",
            *lines,
        ]
    )
    if args.write_checkpoint:
        nf, rad = args.write_checkpoint
        md += "\n\n" + write_checkpoint(args.checkpoint, nf, rad, cmd.strip())
    print(md)
    if not args.no_write:
        print("wrote", write_section(f"candidate-pruning-{args.checkpoint}", md))
    return 0


def write_checkpoint(name: str, node_floor: float, radius: float, cmd: str) -> str:
    from napari_vesselgraph.checkpoints import resolve
    from napari_vesselgraph.checkpoints.store import load_tensors, save_tensors

    path = resolve(name)
    tensors, meta = load_tensors(path)
    meta["candidates"] = {
        "node_floor": float(node_floor),
        "pair_radius": float(radius),
        "command": cmd,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    save_tensors(path, tensors, meta)
    return f"Wrote `meta['candidates']` = node floor {node_floor:g}, pair radius {radius:g} px to `{path.name}`."


if __name__ == "__main__":
    sys.exit(main())
