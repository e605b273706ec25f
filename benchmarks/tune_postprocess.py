"""Choose the clean-up settings of predicted graphs on VALIDATION images (never test images).

For each bundled 2D/3D checkpoint, predicts the raw candidate graph of validation images
(seeds ``20_000_000 + i`` of its training domain) once, then scores every combination of
``link_threshold`` (hysteresis linking of components, ``postprocess.link_components``), ``flat``
(shortcut pruning, ``postprocess.prune_shortcuts``) and ``min_length`` (fragment removal) with the
checkpoint's own thresholds. Prints one table per checkpoint and the setting with the best mean of
(edge F1 + APLS) / 2 - 5 * SMD over all checkpoints. ``postprocess.DEFAULTS`` come from this run.

    python benchmarks/tune_postprocess.py --n 8
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
from _report import write_section

VAL_SEED0 = 20_000_000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8, help="validation images per checkpoint")
    p.add_argument("--checkpoints", nargs="*", default=None)
    p.add_argument("--link", nargs="*", default=["none", "0.1", "0.2", "0.3"])
    p.add_argument("--flat", nargs="*", type=float, default=[1.0, 1.25, 1.5, 2.0])
    p.add_argument("--min-length", nargs="*", type=float, default=[0.0, 4.0])
    p.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from napari_vesselgraph import synth
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.inference.postprocess import finish_graph
    from napari_vesselgraph.metrics import evaluate
    from napari_vesselgraph.model.predictor import make_predictor

    entries = [e for e in list_bundled() if not e.get("error")]
    if a.checkpoints:
        entries = [e for e in entries if e["name"] in a.checkpoints]
    links = [None if str(v).lower() == "none" else float(v) for v in a.link]
    grid = list(itertools.product(links, a.flat, a.min_length))
    overall: dict = {g: [] for g in grid}
    lines: list[str] = []

    def out(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    for entry in entries:
        meta = entry["meta"]
        domain = meta["domain"]
        thr = meta.get("thresholds") or {}
        nt, et = float(thr.get("node", 0.5)), float(thr.get("edge", 0.5))
        pred = make_predictor(entry["name"], device="cpu")
        t0 = time.time()
        raws = []
        for i in range(a.n):
            img, gt = synth.make_sample(domain, VAL_SEED0 + i)
            raws.append((predict(img, predictor=pred, keep_raw=True, scale=gt.scale), gt, img.shape[: gt.ndim]))
        out(
            f"\n### {entry['name']} on {domain} validation seeds {VAL_SEED0}..{VAL_SEED0 + a.n - 1} "
            f"(thresholds {nt}/{et}; prediction {time.time() - t0:.0f}s)"
        )
        keys = ("smd", "node_f1", "edge_f1", "apls", "betti0_error", "betti1_error")
        out("| link_threshold | flat | min_length | " + " | ".join(keys) + " |")
        out("| --- " * (3 + len(keys)) + "|")
        for link, flat, ml in grid:
            rs = []
            for raw, gt, shape in raws:
                g = finish_graph(raw, nt, et, link_threshold=link, flat=flat, min_length=ml)
                rs.append(evaluate(g, gt, radius=3.0, image_shape=shape, metrics=["prf", "smd", "betti", "apls"]))
            m = {k: float(np.nanmean([r[k] for r in rs])) for k in keys}
            overall[(link, flat, ml)].append((m["edge_f1"] + m["apls"]) / 2 - 5 * m["smd"])
            out(f"| {link} | {flat} | {ml} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |")
    best = max(grid, key=lambda g: np.mean(overall[g]))
    out(
        f"\nbest overall ((edge_f1 + apls) / 2 - 5 * smd): link_threshold {best[0]}, flat {best[1]}, "
        f"min_length {best[2]}"
    )
    if not a.no_write:
        cmd = "python benchmarks/tune_postprocess.py " + " ".join(argv if argv is not None else sys.argv[1:])
        head = [
            "## Clean-up settings of predicted graphs (validation images)",
            "",
            f"- Command: `{cmd.strip()}`",
            f"- Date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; validation seeds only (never test seeds)",
            "- Score: (edge F1 + APLS) / 2 - 5 x SMD, mean over the checkpoints; `None` = no linking",
            "",
        ]
        write_section("postprocess-tuning", "\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
