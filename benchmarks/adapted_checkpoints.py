"""Test-split figures of an adapted checkpoint beside its source model and the skeleton, for bundling.

    python benchmarks/adapted_checkpoints.py --set spacenet --candidate runs/adapt/road2-finetune.safetensors \
        --out runs/adapted/road-satellite.json

Scores the candidate (made by ``vesselgraph adapt`` on the set's shot split), the source checkpoint it was
adapted from (``meta["source_checkpoint"]["name"]``) and the classical skeleton on the set's TEST split, with the
real-data benchmark's scoring (``benchmarks/real_data.py``: splits, matching radius, length tolerance, the
skeleton's settings and each model's zoom chosen on the shot split only), in one run. The JSON it writes is what
``scripts/bundle_checkpoint.py --test-figures`` records in the bundled checkpoint's ``adaptation.test``; the
real-data section of docs/benchmarks.md repeats these rows for every bundled checkpoint.

    python benchmarks/adapted_checkpoints.py --report runs/adapted/A.json runs/adapted/B.json --section KEY \
        --title "..." [--write]

renders such JSON files as one markdown table (each candidate beside its source and the skeleton, from the same
run, with each file's command) and, with ``--write``, puts it into that section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT / "src")):
    if p not in sys.path:
        sys.path.insert(0, p)

import real_data as rd

KEYS = ("length_quality", "length_quality_wide", "length_completeness", "length_correctness", "junction_f1", "smd",
        "smd_um", "node_f1", "edge_f1")  # fmt: skip


def unit(name: str, label: str, method: str, ckpt: str | None, folder: Path, data: Path, threads: int) -> dict:
    return {"set": name, "label": label, "method": method, "ckpt": ckpt, "folder": str(folder), "data": str(data),
            "quick": False, "threads": threads, "device": "cpu", "run": True, "test": True, "n_test": None}  # fmt: skip


def figures(result: dict) -> dict:
    per = result["per_image"]
    out = {"choice": result["choice"], "n": len(per)}
    for k in KEYS:
        vals = [float(p[k]) for p in per if k in p and p[k] is not None and np.isfinite(p[k])]
        if vals:
            out[k] = round(float(np.mean(vals)), 4)
            out[k + "_std"] = round(float(np.std(vals)), 4)
    out["seconds_per_image"] = round(float(np.mean([p["seconds"] for p in per])), 2)
    return out


def _cell(f: dict, k: str, nd: int = 3) -> str:
    if k not in f:
        return "-"
    return f"{f[k]:.{nd}f} ± {f.get(k + '_std', 0.0):.{nd}f}"


def report(paths, title: str) -> str:
    """One markdown table of the result files ``paths`` (candidate, source and skeleton rows of each)."""
    lines = [f"## {title}", ""]
    for path in paths:
        r = json.loads(Path(path).read_text())
        lines.append(f"- `{r['command']}` ({r['date']}, {r['seconds']:.0f} s)")
    lines += ["", "| set (test split) | method | choice (shots) | SMD px | completeness | correctness | LQ 3 px "
              "| junction F1 | Δ LQ vs skeleton | Δ SMD vs skeleton | s/image |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for path in paths:
        r = json.loads(Path(path).read_text())
        sk = r["rows"]["skeleton"]
        for label, f in r["rows"].items():
            name = Path(r["candidate"]).stem if label == "adapted" else label
            if label == "skeleton":
                d_lq = d_smd = "-"
            else:
                d = f["length_quality"] - sk["length_quality"]
                d_lq = f"{d:+.3f}" + (" (loses)" if d <= 0 else "")
                e = f["smd"] - sk["smd"]
                d_smd = f"{e:+.1f}" + (" (loses)" if e >= 0 else "")
            lines.append(f"| {r['set']} (n={f['n']}) | {name} | {f['choice']} | {_cell(f, 'smd', 1)} | "
                         f"{_cell(f, 'length_completeness')} | {_cell(f, 'length_correctness')} | "
                         f"{_cell(f, 'length_quality')} | {_cell(f, 'junction_f1')} | {d_lq} | {d_smd} | "
                         f"{f['seconds_per_image']:.1f} |")  # fmt: skip
    lines += ["", "Every row is on the set's TEST split; every choice (skeleton settings, model zoom) was made on the "
              "shot split, as in the real-data sections (`benchmarks/real_data.py`)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--report" in argv:
        rp = argparse.ArgumentParser(description="render result files as markdown")
        rp.add_argument("--report", nargs="+", required=True)
        rp.add_argument("--section", required=True)
        rp.add_argument("--title", required=True)
        rp.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
        r = rp.parse_args(argv)
        md = report(r.report, r.title)
        print(md)
        if r.write:
            from _report import write_section

            print(write_section(r.section, md))
        return 0
    ap.add_argument("--set", required=True, choices=sorted(rd.SPLITS))
    ap.add_argument("--candidate", required=True, help="the adapted checkpoint (.safetensors)")
    ap.add_argument("--source", default=None, help="source checkpoint (default: the one the candidate records)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "realdata"))
    ap.add_argument("--work", default=str(ROOT / "runs" / "realdata"))
    ap.add_argument("--cache", default=None, help="jsonl cache of per-image rows (default <work>/cache.jsonl)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, help="JSON file to write")
    a = ap.parse_args(argv)

    from napari_vesselgraph.checkpoints import read_metadata

    data, work = Path(a.data), Path(a.work)
    why = rd.available(a.set, data)
    if why:
        print(f"adapted_checkpoints: skipped {a.set}: {why}", file=sys.stderr)
        return 2
    meta = read_metadata(a.candidate)
    ad = meta.get("adaptation") or {}
    if not ad:
        print(f"adapted_checkpoints: {a.candidate} is not an adapted checkpoint (no 'adaptation')", file=sys.stderr)
        return 2
    source = a.source or (meta.get("source_checkpoint") or {}).get("name")
    t0 = time.perf_counter()
    folder = rd.prepare_set(a.set, data, work, rebuild=False)  # the folder the shots were adapted on
    cache = rd.Cache(Path(a.cache) if a.cache else work / "cache.jsonl")
    rows = {}
    for label, method, ckpt in (("skeleton", "skeleton", None), (f"source {source}", "model", source),
                                ("adapted", "model", a.candidate)):  # fmt: skip
        if ckpt is not None and method == "model":
            from napari_vesselgraph.checkpoints import resolve

            ckpt = str(resolve(ckpt))
        res = rd.eval_unit(unit(a.set, label if label != "adapted" else Path(a.candidate).stem, method, ckpt, folder,
                                data, a.threads), cache.get, cache.put)  # fmt: skip
        rows[label] = figures(res)
        f = rows[label]
        print(f"{a.set} {label} [{f['choice']}]: LQ {f['length_quality']:.3f} SMD {f['smd']:.1f} px junction F1 "
              f"{f['junction_f1']:.3f}" + (f" LQ 12 px {f['length_quality_wide']:.3f}" if "length_quality_wide" in f
                                          else ""))  # fmt: skip
    cmd = "python benchmarks/adapted_checkpoints.py " + " ".join(argv)
    out = {"set": a.set, "split": "test", "splits": rd.SPLITS[a.set], "rows": rows, "command": cmd,
           "candidate": str(a.candidate), "source": source, "radius_px": rd.RADIUS[a.set],
           "length_tol_px": rd.LENGTH_TOL, "seconds": round(time.perf_counter() - t0, 1),
           "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    p = Path(a.out)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(p)
    print(f"wrote {p} ({out['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
