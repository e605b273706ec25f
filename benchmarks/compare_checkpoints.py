"""Should a newly trained checkpoint replace the bundled one? Compare them on VALIDATION images.

For one synthetic domain, predicts whole validation images (seeds ``20_000_000 + i``, never the test
seeds that docs/benchmarks.md section ``graph-quality`` reports) with the bundled checkpoint of that
domain and with each candidate checkpoint, beside the classical skeleton baseline, all in one run.
Every model uses the bundled checkpoint's clean-up settings and node refinement
(``meta["postprocess"]`` / ``meta["node_refinement"]``), so only the weights and the thresholds each
checkpoint records differ. Reports mean ± std over the images and, per candidate, on how many images
it has a lower SMD / higher edge F1 than the bundled model (paired).

    python benchmarks/compare_checkpoints.py --domain vessel3d-lightsheet runs/vessel3d_ema_s0/best.safetensors

The section (``checkpoint-candidates-DOMAIN``) records the verdict; bundling is a separate, manual step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _report import cpu_name, write_section

VAL_SEED0 = 20_000_000
KEYS = ("smd", "node_f1", "edge_f1", "apls")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", nargs="+", help="candidate checkpoint files (.safetensors)")
    p.add_argument("--domain", required=True, help="synthetic domain; its bundled checkpoint is the reference")
    p.add_argument("--n", type=int, default=10, help="validation images")
    p.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from napari_vesselgraph import synth
    from napari_vesselgraph.baseline import skeleton_graph
    from napari_vesselgraph.baseline.presets import preset
    from napari_vesselgraph.checkpoints import list_bundled, read_metadata
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.metrics import evaluate
    from napari_vesselgraph.model.predictor import make_predictor

    if a.domain not in synth.DOMAINS:
        print(f"error: unknown domain {a.domain!r}; known: {sorted(synth.DOMAINS)}", file=sys.stderr)
        return 2
    bundled = [e for e in list_bundled() if (e.get("meta") or {}).get("domain") == a.domain and not e.get("error")]
    if not bundled:
        print(f"error: no bundled checkpoint was trained on {a.domain}", file=sys.stderr)
        return 2
    ref = bundled[0]
    for c in a.candidates:
        if not os.path.isfile(c):
            print(f"error: no such checkpoint file: {c}", file=sys.stderr)
            return 2
    pp = dict(ref["meta"].get("postprocess") or {})
    refine = ref["meta"].get("node_refinement")
    t0 = time.time()
    samples = [synth.make_sample(a.domain, VAL_SEED0 + i) for i in range(a.n)]

    def score(graphs) -> list[dict]:
        return [
            evaluate(g, gt, radius=3.0, image_shape=img.shape[: gt.ndim], metrics=["prf", "smd", "apls"])
            for g, (img, gt) in zip(graphs, samples)
        ]

    rows: list[tuple[str, list[dict], str]] = []
    rows.append(
        ("skeleton", score([skeleton_graph(img, scale=gt.scale, **preset(a.domain)) for img, gt in samples]), "–")
    )
    for label, path in [(f"bundled `{ref['name']}`", ref["path"])] + [(f"candidate `{c}`", c) for c in a.candidates]:
        meta = read_metadata(path)
        pred = make_predictor(path, device="cpu", refine=refine)
        graphs = [predict(img, predictor=pred, **pp) for img, _ in samples]
        val = meta.get("validation") or {}
        origin = f"`{meta.get('command', '?')}` (seed {meta.get('seed', '?')}; best at step {val.get('step', '?')})"
        rows.append((label, score(graphs), origin))
        print(f"{label}: " + " ".join(f"{k} {np.mean([r[k] for r in rows[-1][1]]):.4f}" for k in KEYS), flush=True)

    ref_rows = rows[1][1]
    lines = [
        "| checkpoint | "
        + " | ".join(KEYS)
        + " | lower SMD than bundled | higher edge F1 than bundled | produced by |",
        "| --- " * (len(KEYS) + 4) + "|",
    ]
    verdicts = []
    for label, rs, origin in rows:
        cells = [f"{np.mean([r[k] for r in rs]):.4f} ± {np.std([r[k] for r in rs]):.4f}" for k in KEYS]
        if label.startswith("candidate"):
            smd_w = sum(r["smd"] < q["smd"] for r, q in zip(rs, ref_rows))
            f1_w = sum(r["edge_f1"] > q["edge_f1"] for r, q in zip(rs, ref_rows))
            paired = [f"{smd_w}/{a.n}", f"{f1_w}/{a.n}"]

            def mean(rows_, k):
                return float(np.mean([r[k] for r in rows_]))

            better = mean(rs, "smd") < mean(ref_rows, "smd") and mean(rs, "edge_f1") > mean(ref_rows, "edge_f1")
            verdicts.append(
                f"- {label}: {'better' if better else 'not better'} than the bundled checkpoint in mean SMD and edge F1"
            )
        else:
            paired = ["–", "–"]
        lines.append(f"| {label} | " + " | ".join(cells + paired) + f" | {origin} |")
    cmd = "python benchmarks/compare_checkpoints.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join(
        [
            f"## Candidate checkpoints for `{a.domain}` (validation images)",
            "",
            f"- Command: `{cmd.strip()}`",
            (
                f"- Date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; machine: {os.cpu_count()} CPU cores, {cpu_name()}; "
                f"wall time {time.time() - t0:.0f} s"
            ),
            (
                f"- Validation seeds {VAL_SEED0} … {VAL_SEED0 + a.n - 1} (never the test seeds); matching radius 3 px; "
                "SMD normalised by the image shape; mean ± std over the images"
            ),
            f"- Every model uses the bundled checkpoint's clean-up {pp} and node refinement {refine}",
            "",
            *lines,
            "",
            *verdicts,
        ]
    )
    print("\n" + text)
    if not a.no_write:
        write_section(f"checkpoint-candidates-{a.domain}", text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
