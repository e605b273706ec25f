"""What ``predict()`` chooses by itself on variants of the real sets' SHOT images, beside the skeleton and named
checkpoints, in one run.

    python benchmarks/auto_choice.py [--sets drive spacenet vesselnn] [--threads 1] [--no-write]

The images a user brings are not always like the ones a model was made for: a red-free (green-channel) fundus
photo, a single-band satellite tile, a stack sampled twice as finely. For each variant, every row predicts every
shot image (``benchmarks/real_data.py``'s shot split; never a test split):

- ``auto``: ``predict(image)`` with no checkpoint, the choice the CLI and the widgets make
  (``inference.predict.suited_checkpoint``); the table says which checkpoints it took;
- named checkpoints, for comparison;
- ``skeleton``: ``predict(method="skeleton")`` with its defaults.

Variants: DRIVE colour photos and their green channel; the SpaceNet tiles, and the same band as a tinted colour
photo (there is no colour tile in the shared data); the vesselNN stacks as they are, and
resampled to twice as many pixels in x/y (linear interpolation), with and without ``zoom=(1, 0.5, 0.5)``.
Resampled graphs are mapped back to the stack's pixels and scored there against the original ground truth, so
every row of a set is scored alike (``real_data.score``: length quality at 3 px, SpaceNet also at 12 px; SMD in
pixels). Writes ``docs/benchmarks.md`` (section ``auto-choice``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _report import cpu_name, write_section

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def variants(name: str):
    """``(variant label, image function, rows)``; a row is ``(label, predict keyword arguments, resample)``."""
    if name == "drive":
        rows = [("auto", {}), ("vessel2d-fundus", {"checkpoint": "vessel2d-fundus"}),
                ("vessel2d-random", {"checkpoint": "vessel2d-random"}), ("road-random", {"checkpoint": "road-random"}),
                ("skeleton", {"method": "skeleton"})]  # fmt: skip
        yield "colour photo", lambda im: im, [(lbl, kw, 1) for lbl, kw in rows]
        yield "green channel (red-free)", lambda im: im[..., 1], [(lbl, kw, 1) for lbl, kw in rows]
    elif name == "spacenet":
        rows = [("auto", {}), ("road-satellite", {"checkpoint": "road-satellite"}),
                ("road-random", {"checkpoint": "road-random"}), ("vessel2d-random", {"checkpoint": "vessel2d-random"}),
                ("skeleton", {"method": "skeleton"})]  # fmt: skip
        yield "single-band tile", lambda im: im, [(lbl, kw, 1) for lbl, kw in rows]
        # the same band as a colour photo (R, G, B = 0.95, 1, 0.9 of it, stretched to its 99.5th percentile): how a
        # colour tile of the same scene reads to the picker; road-clean is the synthetic-only colour road model
        rows_rgb = [("auto", {}), ("road-satellite", {"checkpoint": "road-satellite"}),
                    ("road-clean", {"checkpoint": "road-clean"}), ("skeleton", {"method": "skeleton"})]  # fmt: skip
        yield "band as a tinted RGB photo", as_rgb, [(lbl, kw, 1) for lbl, kw in rows_rgb]
    elif name == "vesselnn":
        yield "as recorded", lambda im: im, [("auto", {}, 1), ("skeleton", {"method": "skeleton"}, 1)]
        yield "resampled x2 in x/y", lambda im: im, [
            ("auto", {}, 2), ("auto, zoom=(1, 0.5, 0.5)", {"zoom": (1.0, 0.5, 0.5)}, 2),
            ("skeleton", {"method": "skeleton"}, 2)]  # fmt: skip


def as_rgb(im: np.ndarray) -> np.ndarray:
    """A single-band tile as a slightly tinted colour photo in [0, 1] (R, G, B = 0.95, 1, 0.9 of the band)."""
    g = np.asarray(im, np.float32)
    g = g / max(float(np.percentile(g, 99.5)), 1e-6)
    return np.clip(np.stack([0.95 * g, g, 0.9 * g], -1), 0, 1)


def resample(img: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """``img`` (Z, Y, X) with ``f`` times the pixels in y and x, and the factor per axis that maps its pixel
    coordinates back (corner-aligned linear interpolation, as ``scipy.ndimage.zoom`` does by default)."""
    from scipy import ndimage as ndi

    out = ndi.zoom(np.asarray(img, np.float32), (1, f, f), order=1)
    return out, (np.array(out.shape) - 1) / np.maximum(np.array(img.shape) - 1, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="*", default=["drive", "spacenet", "vesselnn"],
                    choices=["drive", "spacenet", "vesselnn"])  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import real_data as rd
    import torch

    from napari_vesselgraph.graph import VesselGraph
    from napari_vesselgraph.inference import predict

    torch.set_num_threads(args.threads)
    t_run = time.perf_counter()
    sections = []
    for name in args.sets:
        why = rd.available(name, rd.DATA)
        if why is not None:
            print(f"auto_choice: {why}; {name} is skipped")
            continue
        folder = rd.prepare_set(name, rd.DATA, rd.WORK, log=rd.quiet)
        recs = rd.load_split(name, folder, "train", rd.DATA)  # the shot split only
        wide = name == "spacenet"
        lines = [f"### {name} (shot split: {len(recs)} images)", "",
                 f"| variant | row | checkpoint(s) used | LQ 3 px |{' LQ 12 px |' if wide else ''} SMD px | s/image |",
                 f"|---|---|---|---|{'---|' if wide else ''}---|---|"]  # fmt: skip
        for vlabel, make, rows in variants(name):
            for rlabel, kw, f in rows:
                ms, used, secs = [], Counter(), 0.0
                for r in recs:
                    img, back = make(np.asarray(r["image"])), None
                    if f > 1:
                        img, back = resample(img, f)
                    t = time.perf_counter()
                    g = predict(img, **kw)
                    secs += time.perf_counter() - t
                    used[str((g.metadata or {}).get("checkpoint") or "-")] += 1
                    if back is not None:  # scored in the recorded image's pixels
                        g = VesselGraph(np.asarray(g.nodes, float) / back, g.edges)
                    ms.append(rd.score(g, r["graph"], name))
                m = {k: float(np.mean([x[k] for x in ms])) for k in ("length_quality", "smd")}
                who = ", ".join(f"{k} ×{v}" for k, v in used.items()) if rlabel.startswith("auto") else "-"
                wq = f" {np.mean([x['length_quality_wide'] for x in ms]):.3f} |" if wide else ""
                lines.append(f"| {vlabel} | {rlabel} | {who} | {m['length_quality']:.3f} |{wq} {m['smd']:.1f} | "
                             f"{secs / len(recs):.1f} |")  # fmt: skip
                print(lines[-1], flush=True)
        sections.append("\n".join(lines))
    if not sections:
        return 1
    cmd = "python benchmarks/auto_choice.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = "\n".join([
        "## What predict() chooses by itself, on variants of the real shot images",
        "",
        f"Command: `{cmd.strip()}` ({time.perf_counter() - t_run:.0f} s, {time.strftime('%Y-%m-%d')}). Machine: "
        f"{cpu_name()}, {os.cpu_count()} CPU cores visible, {args.threads} torch thread(s), Python "
        f"{platform.python_version()}.",
        "",
        "Shot splits only (no test image is read). `auto` is `predict(image)` with no checkpoint, the choice the CLI "
        "and the widgets make; the other rows name their checkpoint, or the skeleton with its defaults. Resampled "
        "stacks are scored in the recorded stack's pixels. Several checkpoints were trained or adapted on these shot "
        "images (vessel2d-random and vessel2d-fundus on the DRIVE shots, road-random and road-satellite on 4 of the "
        "5 SpaceNet tiles, vessel3d-twophoton on 2 of the 3 vesselNN stacks): the figures compare choices, not "
        "models; the test-split figures are in the real-data sections.",
        "",
        *sections,
    ]) + "\n"  # fmt: skip
    print(md)
    if not args.no_write:
        print("wrote", write_section("auto-choice", md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
