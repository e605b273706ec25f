"""Whole-volume prediction speed of a segmentation checkpoint, beside the 3D Relationformer and the skeleton.

    python benchmarks/seg_speed.py CHECKPOINT [--relationformer vessel3d-lightsheet] [--sizes 64 128 192]
                                   [--real] [--threads 1] [--no-write]

Each volume goes through ``predict(checkpoint=CHECKPOINT)`` (the segmentation route: windows, probability,
mask, centre-line graph), ``predict(checkpoint=RELATIONFORMER)`` and ``predict(method="skeleton")`` in the
same run, one after the other, so that the ratios hold on a shared, noisy machine. Volumes: the synthetic
``vessel3d-lightsheet`` sample tiled (mirrored) to N^3 voxels as ``inference_speed.py`` makes them; with
``--real`` also the vesselNN and DIADEM shot stacks (../shared/realdata, imported as ``real_data.py`` does;
skipped with a line when absent). Writes ``docs/benchmarks.md`` (section ``seg-speed``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _report import cpu_name, write_section

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def volumes(sizes, real: bool, log):
    from inference_speed import base_image, tiled

    base = base_image(3)
    for n in sizes:
        yield f"synthetic {n}^3", tiled(base, (n, n, n)), None
    if not real:
        return
    import real_data as rd

    for name in ("vesselnn", "diadem"):
        why = rd.available(name, rd.DATA)
        if why is not None:
            log(f"seg_speed: {why}; its stacks are skipped")
            continue
        folder = rd.prepare_set(name, rd.DATA, rd.WORK, log=rd.quiet)
        for rec in rd.load_split(name, folder, "train", rd.DATA):  # shot split only
            yield f"{name} {rec['id']}", np.asarray(rec["image"], np.float32), rec["voxel"]


def timed(fn):
    t = time.perf_counter()
    g = fn()
    return time.perf_counter() - t, g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a segmentation checkpoint (name or path)")
    ap.add_argument("--relationformer", default="vessel3d-lightsheet", help="the 3D Relationformer to compare")
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 192])
    ap.add_argument("--real", action="store_true", help="also the vesselNN and DIADEM shot stacks")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from napari_vesselgraph.checkpoints import read_metadata, resolve
    from napari_vesselgraph.errors import VesselGraphError
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.model.predictor import make_predictor
    from napari_vesselgraph.model.segment import is_segmentation

    torch.set_num_threads(args.threads)
    try:
        path = resolve(args.checkpoint)
        if not is_segmentation(read_metadata(path)):
            sys.exit(f"seg_speed: {args.checkpoint} is not a segmentation checkpoint")
        seg = make_predictor(str(path), device="cpu")
        rf = make_predictor(args.relationformer, device="cpu")
    except VesselGraphError as e:
        sys.exit(f"seg_speed: {e}")
    # one untimed call of each on a small volume first: the skeleton graph's numba kernels (skan) compile on
    # their first use, a one-off cost of a few seconds that would land on whichever method runs first
    warm = volumes([32], False, lambda s: None)
    _, wimg, _ = next(warm)
    for fn in (lambda: predict(wimg, predictor=seg), lambda: predict(wimg, predictor=rf),
               lambda: predict(wimg, method="skeleton")):  # fmt: skip
        fn()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for label, img, voxel in volumes(args.sizes, args.real, print):
        mv = img.size / 1e6
        ts, gs = timed(lambda: predict(img, predictor=seg, scale=voxel))
        tr, gr = timed(lambda: predict(img, predictor=rf, scale=voxel))
        tk, gk = timed(lambda: predict(img, method="skeleton", scale=voxel))
        row = (label, "x".join(map(str, img.shape)), mv, ts, tr, tk, gs, gr, gk)
        rows.append(row)
        print(f"{label}: {mv:.2f} MVox; segmentation {mv / ts:.3f} MVox/s, Relationformer {mv / tr:.3f}, "
              f"skeleton {mv / tk:.3f}", flush=True)  # fmt: skip
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = Path(path).stem
    lines = [
        f"## Whole-volume prediction speed: segmentation checkpoint `{name}` (CPU)",
        "",
        f"Command: `python benchmarks/seg_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}`. Machine: "
        f"{cpu_name()}, {os.cpu_count()} CPU cores visible, torch {torch.__version__} with {args.threads} "
        f"thread(s), Python {platform.python_version()}. Load average before / after: {load0:.1f} / {load1:.1f}.",
        "",
        f"Each volume, in one run: `predict(checkpoint='{name}')` (windows of about "
        f"{'x'.join(map(str, seg.cfg.infer_window()))} fitted to the volume, overlapping by at least "
        f"{seg.cfg.overlap:g}, probability, mask, "
        f"centre-line graph), `predict(checkpoint='{args.relationformer}')` (its defaults) and "
        "`predict(method='skeleton')` (defaults). MVox/s is for the whole call; `ratio` is the segmentation's "
        "throughput over the other's (above 1: faster). Each method ran once on a 32³ volume first (untimed).",
        "",
        "| volume | shape | MVox | segmentation s | MVox/s | Relationformer s | MVox/s | skeleton s | MVox/s "
        "| ratio vs Relationformer | ratio vs skeleton | graphs (seg / RF / skeleton edges) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, shape, mv, ts, tr, tk, gs, gr, gk in rows:
        lines.append(
            f"| {label} | {shape} | {mv:.2f} | {ts:.1f} | {mv / ts:.3f} | {tr:.1f} | {mv / tr:.3f} | {tk:.1f} | "
            f"{mv / tk:.3f} | {tr / ts:.2f} | {tk / ts:.2f} | {gs.n_edges:,} / {gr.n_edges:,} / {gk.n_edges:,} |"
        )
    md = "\n".join(lines) + "\n"
    print(md)
    if not args.no_write:
        print("wrote", write_section("seg-speed", md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
