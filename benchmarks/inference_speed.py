"""Whole-image prediction speed on CPU: the Relationformer sliding window against the skeleton baseline.

    python benchmarks/inference_speed.py [--budget 420] [--threads 2] [--sizes 256 512 1024 2048 4096]
                                         [--sizes3d 32 64 96 128] [--no-write]

For each image size, in increasing order, the same image goes through
``inference.predict(method="model")`` (patches, batches, stitching, thresholds at 0.5) and
``inference.predict(method="skeleton")`` in the same run. Images are a synthetic ``vessel2d-fluo``
512 x 512 sample (``vessel3d-lightsheet`` 64 x 128 x 128 in 3D) tiled to the size asked for, so the vessel
density is the same at every size.

The model is the bundled checkpoint when ``checkpoints.list_bundled()`` has one of the right
dimensionality, else a randomly initialised model of the default ``ModelConfig`` (2D: 64 x 64 patches; 3D:
the same config with ``ndim=3``, 32^3 patches and a 4^3 query grid); the report says which. A random
model keeps many weak candidates (its scores sit near 0.5), which makes the relation head and the
stitching do more work than a trained model would.

Sizes are skipped once the time predicted from the previous size would overrun ``--budget`` seconds
(shared between 2D, 60 %, and 3D, 40 %); the report says where it stopped. Prints a table and writes it to
``docs/benchmarks.md (section inference-speed)``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
from _report import cpu_name, write_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class TimedPredictor:
    """Wraps a PatchPredictor and adds up the time spent in ``predict_batch`` (the model itself)."""

    def __init__(self, inner):
        self.inner = inner
        self.model_s = 0.0
        self.patches = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_batch(self, patches, **kw):
        t = time.perf_counter()
        out = self.inner.predict_batch(patches, **kw)
        self.model_s += time.perf_counter() - t
        self.patches += len(patches)
        return out

    def reset(self):
        self.model_s, self.patches = 0.0, 0


def load_predictor(ndim: int, name: str | None = None):
    """(predictor, description): the bundled checkpoint ``name`` (default: the default one of this
    dimensionality), else a random model."""
    import torch

    from napari_vesselgraph.checkpoints import DEFAULT_CHECKPOINT, list_bundled
    from napari_vesselgraph.model import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.predictor import PatchPredictor, make_predictor
    from napari_vesselgraph.model.preprocess import input_meta

    entries = [e for e in list_bundled() if int((e.get("meta") or {}).get("ndim", 0)) == ndim and not e.get("error")]
    entries.sort(key=lambda e: e["name"] != (name or DEFAULT_CHECKPOINT))
    if name and (not entries or entries[0]["name"] != name):
        raise SystemExit(f"inference_speed: no bundled {ndim}D checkpoint named {name!r}")
    if entries:
        name = entries[0]["name"]
        p = make_predictor(name, device="cpu")
        radius = "every pair" if p.pair_radius is None else f"pairs within {p.pair_radius:g} px"
        return p, (
            f"bundled checkpoint `{name}` (patch {'x'.join(map(str, p.patch_size))}; relation head on node candidates "
            f"scoring >= {p.node_floor:g}, {radius})"
        )
    torch.manual_seed(0)
    if ndim == 2:
        cfg = ModelConfig()
        what = "default `ModelConfig()`"
    else:
        cfg = ModelConfig(ndim=3, patch_size=(32, 32, 32), query_grid=(4, 4, 4))
        what = "default `ModelConfig` with `ndim=3, patch_size=32^3, query_grid=4^3`"
    model = Relationformer(cfg)
    p = PatchPredictor(model, {"name": f"random-{ndim}d", "input": input_meta(ndim, 1)}, device="cpu")
    n_par = sum(t.numel() for t in model.parameters())
    return (
        p,
        f"randomly initialised model, {what} ({n_par / 1e6:.2f} M parameters; no bundled {ndim}D checkpoint found)",
    )


def base_image(ndim: int) -> np.ndarray:
    from napari_vesselgraph import synth

    if ndim == 2:
        img, _ = synth.make_sample("vessel2d-fluo", seed=0, shape=(512, 512))
    else:
        img, _ = synth.make_sample("vessel3d-lightsheet", seed=0, shape=(64, 128, 128))
    return np.asarray(img, np.float32)


def tiled(base: np.ndarray, shape) -> np.ndarray:
    reps = [int(np.ceil(s / b)) for s, b in zip(shape, base.shape)]
    # mirror every other tile so that vessels continue across tile seams
    out = base
    for ax, r in enumerate(reps):
        parts = [out if k % 2 == 0 else np.flip(out, axis=ax) for k in range(r)]
        out = np.concatenate(parts, axis=ax)
    return np.ascontiguousarray(out[tuple(slice(0, s) for s in shape)])


def run_size(pred: TimedPredictor, img: np.ndarray, overlap: float, batch_size: int) -> dict:
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.inference.postprocess import finish_graph, settings

    pred.reset()
    t = time.perf_counter()
    raw = predict(img, predictor=pred, overlap=overlap, batch_size=batch_size, keep_raw=True)
    t_raw = time.perf_counter() - t
    # the thresholds and clean-up of the checkpoint, as predict() applies them by default
    meta = getattr(pred, "meta", None) or {}
    thr = meta.get("thresholds") or {}
    t = time.perf_counter()
    g = finish_graph(raw, float(thr.get("node", 0.5)), float(thr.get("edge", 0.5)), **settings(None, meta))
    t_clean = time.perf_counter() - t
    t_model = t_raw + t_clean
    t = time.perf_counter()
    sk = predict(img, method="skeleton")
    t_skel = time.perf_counter() - t
    mp = img.size / 1e6
    return {
        "shape": "x".join(map(str, img.shape)),
        "mpix": mp,
        "patches": raw.metadata["n_patches"],
        "model_run": pred.patches,
        "total_s": t_model,
        "clean_s": t_clean,
        "model_s": pred.model_s,
        "patches_per_s": raw.metadata["n_patches"] / t_model,
        "model_patches_per_s": pred.patches / pred.model_s if pred.model_s else float("nan"),
        "mpix_per_s": mp / t_model,
        "raw": (raw.n_nodes, raw.n_edges),
        "graph": (g.n_nodes, g.n_edges),
        "skel_s": t_skel,
        "skel_mpix_per_s": mp / t_skel,
        "skel_graph": (sk.n_nodes, sk.n_edges),
    }


def sweep(ndim, sizes, budget_s, overlap, batch_size, log, name=None) -> tuple[list[dict], str, str | None]:
    from napari_vesselgraph.inference import sliding_window

    raw_pred, what = load_predictor(ndim, name)
    pred = TimedPredictor(raw_pred)
    base = base_image(ndim)
    # warm-up (first-call overheads are not part of the numbers), the skeleton's too (imports, first filters)
    pred.predict_batch(np.zeros((2, pred.channels, *pred.patch_size), np.float32) + 0.5)
    from napari_vesselgraph.inference import predict

    predict(np.ascontiguousarray(base[tuple(slice(0, 32) for _ in range(ndim))]), method="skeleton")
    rows: list[dict] = []
    stopped = None
    t_start = time.perf_counter()
    for s in sizes:
        shape = (s,) * ndim
        n_patches = len(sliding_window(shape, pred.patch_size, overlap))
        if rows:
            last = rows[-1]
            est = last["total_s"] / last["patches"] * n_patches + last["skel_s"] * (np.prod(shape) / 1e6) / last["mpix"]
            left = budget_s - (time.perf_counter() - t_start)
            if est > left:
                stopped = (
                    f"stopped before {'x'.join(map(str, shape))}: estimated {est:.0f} s "
                    f"({n_patches} patches) > {max(left, 0):.0f} s left of the {budget_s:.0f} s budget"
                )
                log(stopped)
                break
        img = tiled(base, shape)
        row = run_size(pred, img, overlap, batch_size)
        rows.append(row)
        log(
            f"{ndim}D {row['shape']}: model {row['total_s']:.1f} s ({row['patches']} patches, "
            f"{row['patches_per_s']:.1f} patches/s, {row['mpix_per_s']:.3f} MP/s), skeleton {row['skel_s']:.2f} s"
        )
    return rows, what, stopped


def table(rows: list[dict], ndim: int) -> list[str]:
    unit = "MP" if ndim == 2 else "MVox"
    lines = [
        (
            f"| image | {unit} | patches | model total (s) | of which model (s) | of which clean-up (s) | patches/s | "
            f"{unit}/s | raw candidates (nodes / edges) | graph | skeleton (s) | skeleton {unit}/s | skeleton graph |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['mpix']:.3g} | {r['patches']} | {r['total_s']:.1f} | {r['model_s']:.1f} | "
            f"{r['clean_s']:.2f} | {r['patches_per_s']:.1f} | {r['mpix_per_s']:.3f} | {r['raw'][0]:,} / {r['raw'][1]:,} | "
            f"{r['graph'][0]:,} / {r['graph'][1]:,} | {r['skel_s']:.2f} | {r['skel_mpix_per_s']:.2f} | "
            f"{r['skel_graph'][0]:,} / {r['skel_graph'][1]:,} |"
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=420.0, help="seconds for the whole sweep (default 420)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--sizes3d", type=int, nargs="*", default=[32, 64, 96, 128, 192])
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/benchmarks.md (section inference-speed)")
    ap.add_argument("--checkpoint2d", default=None,
                    help="bundled 2D checkpoint to time (default: the default one); its own section inference-speed-NAME")
    ap.add_argument("--no-3d", action="store_true", help="2D only")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    def log(line: str) -> None:
        print(line, flush=True)

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    share = 1.0 if args.no_3d else 0.6
    rows2, what2, stop2 = sweep(2, args.sizes, share * args.budget, args.overlap, args.batch_size, log, args.checkpoint2d)
    left = args.budget - (time.perf_counter() - t0)
    if args.no_3d:
        rows3, what3, stop3 = [], "not run (--no-3d)", None
    else:
        rows3, what3, stop3 = sweep(3, args.sizes3d, max(left, 0.3 * args.budget), args.overlap, args.batch_size, log)
    load1 = os.getloadavg()

    cmd = "python benchmarks/inference_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = [
        "## Whole-image prediction speed (CPU)",
        "",
        (
            f"Command: `{cmd.strip()}`. Machine: {cpu_name()}, {os.cpu_count()} CPU cores visible, torch "
            f"{torch.__version__} with {torch.get_num_threads()} threads, Python {platform.python_version()}. "
            f"Load average before / after: {load0[0]:.1f} / {load1[0]:.1f} (the machine is shared, so timings "
            "vary from run to run)."
        ),
        "",
        (
            '`predict(method="model")`: sliding window with overlap '
            f"{args.overlap}, batch size {args.batch_size}, whole-image normalisation, stitching, then the "
            "checkpoint's thresholds and clean-up (`postprocess.finish_graph` with the settings it records); "
            '"model total" is all of it, "of which model" the time inside `predict_batch` (network + '
            'candidate extraction), "of which clean-up" the thresholds and clean-up; patches/s and MP/s are for '
            "the whole. "
            '`predict(method="skeleton")`: the classical baseline with its default parameters on the same image.'
        ),
        "Images: synthetic samples tiled (mirrored) to each size.",
        "",
        *(
            [
                (
                    "A randomly initialised model scores its queries near 0.5, so nearly all of them (and most pairs) "
                    "pass the 0.05 candidate floor: the raw graphs below are far larger than a trained model's, and the "
                    "time outside the model (reading, stitching all candidates, thresholds) is correspondingly larger."
                ),
                "",
            ]
            if "randomly initialised" in what2 + what3
            else []
        ),
        f"### 2D — model: {what2}",
        "",
        *table(rows2, 2),
        "",
        f"2D sweep: {stop2 or 'all sizes ran'}.",
        "",
        f"### 3D — model: {what3}",
        "",
        *table(rows3, 3),
        "",
        f"3D sweep: {stop3 or 'all sizes ran'}.",
        "",
    ]
    text = "\n".join(md)
    print()
    print(text)
    if not args.no_write:
        key = "inference-speed" if not args.checkpoint2d else f"inference-speed-{args.checkpoint2d}"
        print(f"written to {write_section(key, text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
