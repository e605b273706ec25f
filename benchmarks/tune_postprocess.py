"""Choose the clean-up settings of predicted graphs on VALIDATION images (never test images).

For each bundled 2D/3D checkpoint, predicts the raw candidate graph of validation images
(seeds ``20_000_000 + i`` of its training domain) once, then scores every combination of
``link_threshold`` (hysteresis linking of components, ``postprocess.link_components``),
``dedupe_radius`` (``postprocess.dedupe_nodes``), ``flat`` (shortcut pruning,
``postprocess.prune_shortcuts``), ``min_length`` (fragment removal) and ``spacing`` (node
re-placement along chains, ``postprocess.resample_chains``) with the checkpoint's own thresholds, and
(``--refine on off``) node refinement on the patch intensities (``model.refine``) on or off.
With ``--node-threshold`` / ``--edge-threshold`` the thresholds are searched too (the checkpoint's own one was chosen on
training-size patches, before any clean-up; hysteresis linking changes what a good one is).
The score is (edge F1 + APLS) / 2 - W * SMD (W = ``--smd-weight``, default 5). Prints one table per checkpoint (best rows first), the
best setting per checkpoint, and the setting with the best mean score over all checkpoints
(``postprocess.DEFAULTS``, used by checkpoints that record no settings of their own).

With ``--write-checkpoints`` the best setting of each bundled checkpoint is stored in its metadata
(``meta["postprocess"]``, with the command and date under ``meta["postprocess_tuning"]``), which
``predict`` uses over the defaults.

    python benchmarks/tune_postprocess.py --n 8 --edge-threshold ckpt 0.6 0.7 0.8 0.9 --link 0.1 0.2 \
        --flat 2 --dedupe 3 4 5 --spacing 10 11 --write-checkpoints
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
    p.add_argument("--node-threshold", nargs="*", default=["ckpt"],
                   help="node thresholds to try ('ckpt': the one the checkpoint records, chosen on training patches)")
    p.add_argument("--edge-threshold", nargs="*", default=["ckpt"],
                   help="edge thresholds to try ('ckpt': the one the checkpoint records, chosen on training patches)")
    p.add_argument("--link", nargs="*", default=["none", "0.1", "0.2"])
    p.add_argument("--flat", nargs="*", type=float, default=[1.0, 2.0])
    p.add_argument("--min-length", nargs="*", type=float, default=[0.0])
    p.add_argument("--dedupe", nargs="*", type=float, default=[0.0, 3.0, 4.0, 5.0])
    p.add_argument("--spacing", nargs="*", type=float, default=[0.0, 10.0, 11.0, 12.0])
    p.add_argument("--spacing-tol", type=float, default=2.0)
    p.add_argument("--refine", nargs="*", default=["on"], choices=["on", "off"],
                   help="node refinement on the patch intensities (model.refine, default settings) on / off")
    p.add_argument("--smd-weight", type=float, default=5.0, help="score = (edge F1 + APLS) / 2 - W x SMD (default 5)")
    p.add_argument("--show", type=int, default=12, help="rows per checkpoint table (best first)")
    p.add_argument("--write-checkpoints", action="store_true",
                   help="store each checkpoint's best setting in its metadata (bundled files are rewritten)")
    p.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    p.add_argument("--val-data", nargs="*", default=[],
                   help="dataset folders whose 'val' split (e.g. imported real images of a shot split, never a test "
                        "split) is scored too, beside the synthetic validation seeds")  # fmt: skip
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from napari_vesselgraph import synth
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.model.predictor import make_predictor
    from napari_vesselgraph.model.thresholds import finished_metrics

    entries = [e for e in list_bundled() if not e.get("error")]
    if a.checkpoints:
        entries = [e for e in entries if e["name"] in a.checkpoints]
    links = [None if str(v).lower() == "none" else float(v) for v in a.link]
    nts = [v if v == "ckpt" else float(v) for v in a.node_threshold]
    ets = [v if v == "ckpt" else float(v) for v in a.edge_threshold]
    grid = list(itertools.product(a.refine, nts, ets, links, a.flat, a.min_length, a.dedupe, a.spacing))
    names = ("refine", "node_threshold", "edge_threshold", "link_threshold", "flat", "min_length", "dedupe_radius",
             "spacing")  # fmt: skip
    best_of: dict = {}
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
        t0 = time.time()
        raws: dict = {r: [] for r in a.refine}
        samples = [synth.make_sample(domain, VAL_SEED0 + i) for i in range(a.n)]
        for folder in a.val_data:
            samples += [(r["image"], r["graph"]) for r in synth.read_dataset(folder, split="val")]
        for r in a.refine:
            pred = make_predictor(entry["name"], device="cpu", refine=(r == "on"))
            for img, gt in samples:
                raws[r].append((predict(img, predictor=pred, keep_raw=True, scale=gt.scale), gt, img.shape[: gt.ndim]))
        out(
            f"\n### {entry['name']} on {domain} validation seeds {VAL_SEED0}..{VAL_SEED0 + a.n - 1}"
            f"{' + the val split of ' + ', '.join(a.val_data) if a.val_data else ''} "
            f"(thresholds {nt}/{et}; prediction {time.time() - t0:.0f}s)"
        )
        keys = ("smd", "node_f1", "edge_f1", "apls", "betti0_error", "betti1_error")
        rows = []
        for setting in grid:
            kw = dict(zip(names, setting))
            refine = kw.pop("refine")
            n_thr = nt if kw.pop("node_threshold") == "ckpt" else float(setting[1])
            e_thr = et if kw.pop("edge_threshold") == "ckpt" else float(setting[2])
            # the same finishing and averaging as the threshold selection of training and adaptation
            m = finished_metrics(
                [r for r, _, _ in raws[refine]],
                [g for _, g, _ in raws[refine]],
                n_thr,
                e_thr,
                {**kw, "spacing_tol": a.spacing_tol},
                shapes=[s for _, _, s in raws[refine]],
                groups=["prf", "smd", "betti", "apls"],
                smd_points=None,  # metrics.evaluate's default
            )
            m = {k: m[k] for k in keys}
            score = (m["edge_f1"] + m["apls"]) / 2 - a.smd_weight * m["smd"]
            overall[setting].append(score)
            rows.append((score, setting, m))
        rows.sort(key=lambda r: -r[0])
        off = [r for r in rows if r[1][1:] == ("ckpt", "ckpt", None, 1.0, 0.0, 0.0, 0.0)]
        out("| " + " | ".join(names) + " | score | " + " | ".join(keys) + " |")
        out("| --- " * (len(names) + 1 + len(keys)) + "|")
        for score, setting, m in rows[: a.show] + [r for r in off if r not in rows[: a.show]]:
            out("| " + " | ".join(str(v) for v in setting) + f" | {score:.4f} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |")
        best_of[entry["name"]] = rows[0]
        out(f"\n{len(grid)} settings; best for `{entry['name']}`: " + ", ".join(f"{k} {v}" for k, v in zip(names, rows[0][1])))
    best = max([g for g in grid if g[1:3] == ("ckpt", "ckpt")] or grid, key=lambda g: np.mean(overall[g]))
    out(
        f"\nbest overall at each checkpoint's own thresholds ((edge_f1 + apls) / 2 - {a.smd_weight:g} * smd, mean over "
        "the checkpoints; `postprocess.DEFAULTS`): " + ", ".join(f"{k} {v}" for k, v in zip(names[3:], best[3:]))
    )
    cmd = "python benchmarks/tune_postprocess.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.write_checkpoints:
        from napari_vesselgraph.checkpoints.store import load_tensors, save_tensors
        from napari_vesselgraph.model.refine import RefineSettings

        for entry in entries:
            score, setting, m = best_of[entry["name"]]
            tensors, meta = load_tensors(entry["path"])
            chosen = dict(zip(names, setting))
            refine = chosen.pop("refine")
            meta["node_refinement"] = RefineSettings().to_dict() if refine == "on" else False
            n_thr = chosen.pop("node_threshold")
            e_thr = chosen.pop("edge_threshold")
            meta["postprocess"] = {**chosen, "spacing_tol": a.spacing_tol}
            for kind, v in (("node", n_thr), ("edge", e_thr)):
                if v != "ckpt" and float(v) != float((meta.get("thresholds") or {}).get(kind, 0.5)):
                    thr = dict(meta.get("thresholds") or {})
                    thr.setdefault(f"{kind}_on_patches", thr.get(kind))
                    thr[kind] = float(v)
                    thr[f"{kind}_source"] = "benchmarks/tune_postprocess.py on whole validation images, with the clean-up"
                    meta["thresholds"] = thr
            meta["postprocess_tuning"] = {
                "command": cmd.strip(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "validation_seeds": [VAL_SEED0, VAL_SEED0 + a.n - 1],
                "validation_data": list(a.val_data),
                "score": round(score, 4),
                "metrics": {k: round(v, 4) for k, v in m.items()},
            }
            save_tensors(entry["path"], tensors, meta)
            out(f"wrote meta['postprocess'] of {entry['path']}")
    if not a.no_write:
        title = "## Clean-up settings of predicted graphs (validation images)"
        if a.checkpoints:
            title = f"## Clean-up settings of predicted graphs (validation images): {', '.join(sorted(a.checkpoints))}"
        head = [
            title,
            "",
            *(
                [
                    (
                        "- A run over these checkpoints only: for them it replaces the run over all bundled "
                        "checkpoints (section `postprocess-tuning`); the others keep that run's settings."
                    )
                ]
                if a.checkpoints else []
            ),
            f"- Command: `{cmd.strip()}`",
            f"- Date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; validation seeds only (never test seeds)",
            f"- Score: (edge F1 + APLS) / 2 - {a.smd_weight:g} x SMD; `None` = no linking; 0 = step off; the row with every step off is shown last",
            f"- spacing_tol {a.spacing_tol} px; each checkpoint's best setting is stored in its metadata; the best mean over the checkpoints is `postprocess.DEFAULTS`",
            "",
        ]
        # a run over some checkpoints only gets its own section (the full run's stays as it was)
        key = "postprocess-tuning" if not a.checkpoints else "postprocess-tuning-" + "-".join(sorted(a.checkpoints))
        write_section(key, "\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
