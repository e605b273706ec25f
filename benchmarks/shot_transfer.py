"""Do settings chosen on a few labelled images carry over to the next image? Leave one out on the real sets'
SHOT images, for a bundled model's calibration and for the skeleton's settings, in one run.

    python benchmarks/shot_transfer.py [--sets drive diadem vesselnn] [--threads 1] [--no-write]

A calibrated checkpoint is only worth bundling if what it learnt on the shots holds on other images. With two
or three shot stacks per 3D set, the honest estimate is leave one out: choose on all images but one, score the
one left out. Shot splits only (``benchmarks/real_data.py``'s splits; no test image is read). For each set:

- model (``CHECKPOINTS``: ``vessel2d-random`` for DRIVE, ``vessel3d-twophoton`` for the stacks):
  ``adapt(method="calibrate", val_fraction=0)`` (the product's calibrate, the same call as ``vesselgraph adapt
  --method calibrate``): its metadata's ``leave_one_out`` gives each image's score and length quality with the
  settings chosen on the other images (thresholds and clean-up), and with the checkpoint's own settings;
  ``chosen_on_shots`` the in-sample mean (chosen on every image, itself included);
- skeleton: every option of ``real_data.skeleton_options`` (the defaults and the presets of the set's
  dimensionality, in 2D with each polarity) on every image; for each image the option chosen on the other images
  by the same score, and the defaults.

Score: calibrate's, ``(length quality + junction F1) / 2`` at 3 px; LQ: length quality at 3 px (the real-data
tables' column). Writes ``docs/benchmarks.md`` (section ``shot-transfer``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import cpu_name, write_section

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SETS = ("drive", "diadem", "vesselnn")
#: the checkpoint calibrated on each set (the 2D vessel model without fundus thresholds; the bundled 3D default)
CHECKPOINTS = {"drive": "vessel2d-random", "diadem": "vessel3d-twophoton", "vesselnn": "vessel3d-twophoton"}


def skeleton_rows(samples, ndim: int, log) -> dict[str, list[dict]]:
    """``{option: [metrics of each sample]}`` for every skeleton option of ``ndim``."""
    from real_data import skeleton_options

    from napari_vesselgraph.adapt.segcalibrate import _metrics
    from napari_vesselgraph.inference import predict

    out = {}
    for name, params in skeleton_options(ndim, quick=False):
        t0 = time.perf_counter()
        out[name] = [_metrics(predict(np.asarray(s["image"], np.float32), method="skeleton", **params), s["graph"],
                              np.shape(s["image"])) for s in samples]  # fmt: skip
        log(f"  skeleton {name}: {time.perf_counter() - t0:.0f} s")
    return out


def skeleton_loo(rows: dict[str, list[dict]], ids: list[str]) -> list[dict]:
    """Per sample: the option chosen on the other samples (ties: the earlier option) and its score / LQ there."""
    from napari_vesselgraph.model.thresholds import SCORES

    score_fn = SCORES["graph"][0]
    out = []
    for i, sid in enumerate(ids):
        others = [j for j in range(len(ids)) if j != i]
        best, best_score = None, -np.inf
        for name, ms in rows.items():
            sc = float(np.mean([score_fn(ms[j]) for j in others]))
            if sc > best_score + 1e-12:
                best, best_score = name, sc
        m, d = rows[best][i], rows["defaults"][i]
        out.append({"id": sid, "option": best, "score": float(score_fn(m)), "length_quality": m["length_quality"],
                    "own_score": float(score_fn(d)), "own_length_quality": d["length_quality"]})  # fmt: skip
    return out


def run_set(name: str, checkpoint: str, work: Path, data: Path, log) -> dict:
    from real_data import load_split, prepare_set

    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.checkpoints import read_metadata

    folder = prepare_set(name, data, work, log=log)
    samples = load_split(name, folder, "train", data)
    ids = [str(s["id"]) for s in samples]
    log(f"{name}: {len(ids)} shot images {ids}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = adapt({"checkpoint": checkpoint, "target": str(folder), "method": "calibrate", "val_fraction": 0,
                     "shots": len(samples),
                     "out": str(Path(tmp) / "cal.safetensors")}, log=lambda s: log("  " + s))  # fmt: skip
        meta = read_metadata(out)
    t_model = time.perf_counter() - t0
    ad = meta["adaptation"]
    t0 = time.perf_counter()
    srows = skeleton_rows(samples, int(samples[0]["graph"].ndim), log)
    t_skel = time.perf_counter() - t0
    return {"set": name, "checkpoint": checkpoint, "ids": ids, "model_loo": ad["leave_one_out"],
            "model_all": ad["chosen_on_shots"],
            "skeleton_loo": skeleton_loo(srows, ids), "t_model": t_model, "t_skel": t_skel}  # fmt: skip


def report(results: list[dict], cmd: str, wall: float) -> str:
    lines = [
        "## Do calibrated settings carry over? Leave one out on the real shot images",
        "",
        f"Command: `{cmd}` ({wall:.0f} s, {time.strftime('%Y-%m-%d')}). Machine: {cpu_name()}, {os.cpu_count()} CPU "
        f"cores visible, Python {platform.python_version()}. Shot splits only (no test image is read).",
        "",
        "Each image is scored with the settings chosen on the other shot images of its set (`LOO`) and with fixed "
        "settings (`own`: the checkpoint's own thresholds and clean-up; the skeleton's defaults). Model: "
        + ", ".join(f"`{r['checkpoint']}` on {r['set']}" for r in results)
        + ", calibrated by `adapt(method=\"calibrate\", val_fraction=0)` (a segmentation checkpoint: threshold x "
        "`min_brightness`; a Relationformer: node/edge thresholds, `min_support`, `min_brightness`); the LOO column "
        "shows the first two settings. Skeleton: its defaults or a preset (2D: with a polarity). Score: "
        "(LQ + junction F1) / 2 at 3 px, the calibrate score; LQ: "
        "length quality at 3 px. `in-sample`: the model's mean with the settings chosen on every stack, itself "
        "included (what calibrate reports).",
        "",
        "| set | image | skeleton own LQ | skeleton LOO (option) LQ | model own LQ | model LOO (settings) LQ | "
        "model LOO − skeleton LOO, LQ | model LOO − own, score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sk = {x["id"]: x for x in r["skeleton_loo"]}
        for m in r["model_loo"]:
            s = sk[m["id"]]
            first = (m["threshold"], m["min_brightness"]) if "threshold" in m else (m["node_threshold"],
                                                                                      m["edge_threshold"])
            lines.append(
                f"| {r['set']} | {m['id']} | {s['own_length_quality']:.3f} | {s['length_quality']:.3f} ({s['option']}) "
                f"| {m['own_length_quality']:.3f} | {m['length_quality']:.3f} ({first[0]:g} / {first[1]:g}) | "
                f"{m['length_quality'] - s['length_quality']:+.3f} | "
                f"{m['score'] - m['own_score']:+.3f} |"
            )
        mean = lambda rows, k: float(np.mean([x[k] for x in rows]))  # noqa: E731
        inside = r["model_all"].get("length_quality", float("nan"))
        lines.append(
            f"| {r['set']} | mean | {mean(r['skeleton_loo'], 'own_length_quality'):.3f} | "
            f"{mean(r['skeleton_loo'], 'length_quality'):.3f} | {mean(r['model_loo'], 'own_length_quality'):.3f} | "
            f"{mean(r['model_loo'], 'length_quality'):.3f} (in-sample {inside:.3f}) | "
            f"{mean(r['model_loo'], 'length_quality') - mean(r['skeleton_loo'], 'length_quality'):+.3f} | "
            f"{mean(r['model_loo'], 'score') - mean(r['model_loo'], 'own_score'):+.3f} |"
        )
    lines.append("")
    lines.append("Wall time: " + "; ".join(f"{r['set']} calibrate {r['t_model']:.0f} s, skeleton options "
                                           f"{r['t_skel']:.0f} s" for r in results) + ".")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    import real_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--data", type=Path, default=real_data.DATA)
    ap.add_argument("--work", type=Path, default=real_data.WORK)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        print(f"shot_transfer: no real data at {a.data} (see ../shared/realdata/README.md)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    results = [run_set(name, CHECKPOINTS[name], a.work, a.data, log=lambda s: print(s, flush=True)) for name in a.sets]
    cmd = "python benchmarks/shot_transfer.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = report(results, cmd.strip(), time.perf_counter() - t0)
    print(text)
    if not a.no_write:
        print(f"written to {write_section('shot-transfer', text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
