"""Cross-domain adaptation: every method on the target test split of each synthetic domain pair.

For each pair (source -> target) the bundled checkpoint trained on the source domain is adapted with
``napari_vesselgraph.adapt.adapt`` and every result is evaluated on the target TEST split (seeds
``10_000_000 + i``, the domain's default shape) by ``inference.predict`` + ``metrics.evaluate`` (radius 3 px):

* ``skeleton``: classical baseline with the target domain's preset (``baseline.preset``); no training.
* ``source-only``: the bundled source checkpoint as it is (its own thresholds).
* ``finetune`` / ``contrastive`` / ``adversarial``: K labelled target images (train-split seeds drawn with
  ``shot_seed = seed``), for K in ``--shots`` and every seed; held-out images from the target VAL split
  (``val_fraction`` of all labelled images: 1, 2, 3 for K = 1, 5, 10) pick the best step and the thresholds.
* ``translation``: CycleGAN translator trained on 32 unlabelled target train images; no labels at all (the
  source checkpoint's thresholds; held-out labels only measured).
* ``oracle``: the ceiling -- ``finetune`` on ``--oracle-shots`` labelled target images for ``--oracle-steps``
  steps (plenty of target labels, more steps), same held-out protocol.

Rows are mean ± std over the seeds (each run: the mean over the test images); single-run rows
(``skeleton``, ``source-only``) show the std over the test images. ``train_s`` is the adaptation wall time
of one run on this machine (1 torch thread). ``gap`` is the share of the source-only -> oracle gap a method
recovers, on ``(node_f1 + edge_f1) / 2``.

    python benchmarks/adaptation.py                    # full: K 1 5 10, seeds 0 1 2, 300 steps (translation 1000), both pairs
    python benchmarks/adaptation.py --jobs 2           # the same, two runs at once (one per core)
    python benchmarks/adaptation.py --quick            # small honest version (a few minutes)
    python benchmarks/adaptation.py --jobs 2 --cache runs.jsonl   # resumable: finished runs are kept and read back
    python benchmarks/adaptation.py --pairs vessel2d-fluo:vessel2d-fundus --shots 5 --seeds 0 1 --steps 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import cpu_name, write_section

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

TEST_SEED0 = 10_000_000
PAIRS = ["vessel2d-fluo:vessel2d-fundus", "road-clean:road-hazy"]
SHOT_METHODS = ("finetune", "contrastive", "adversarial")
ALL_METHODS = ("skeleton", "source-only", "translation", *SHOT_METHODS, "oracle")
COLUMNS = ["smd", "node_f1", "edge_f1", "apls", "topo_f1", "train_s"]
GROUPS = ["prf", "smd", "apls", "topo"]


def bundled_for(domain: str) -> str:
    from napari_vesselgraph.checkpoints import list_bundled

    for e in list_bundled():
        if (e.get("meta") or {}).get("domain") == domain and not e.get("error"):
            return e["name"]
    raise SystemExit(f"no bundled checkpoint trained on {domain!r}")


def test_set(domain: str, n: int):
    from napari_vesselgraph import synth

    return [synth.make_sample(domain, TEST_SEED0 + i) for i in range(n)]


def score_graphs(preds, data) -> list[dict]:
    from napari_vesselgraph.metrics import evaluate

    rows = []
    for pred, (image, gt) in zip(preds, data):
        rows.append(evaluate(pred, gt, radius=3.0, metrics=GROUPS, image_shape=tuple(image.shape[: gt.ndim])))
    return rows


def eval_checkpoint(ckpt, data) -> list[dict]:
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.model.predictor import make_predictor

    pred = make_predictor(ckpt, device="cpu")
    try:
        return score_graphs([predict(img, predictor=pred) for img, _ in data], data)
    finally:
        pred.close()


def eval_skeleton(domain: str, data) -> list[dict]:
    from napari_vesselgraph.baseline import preset, skeleton_graph

    return score_graphs([skeleton_graph(img, scale=gt.scale, **preset(domain)) for img, gt in data], data)


def mean_row(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def run_adapt(cfg: dict, log) -> tuple[Path, float, dict]:
    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.checkpoints import read_metadata

    t0 = time.perf_counter()
    path = adapt(cfg, log=log)
    return path, time.perf_counter() - t0, read_metadata(path)["adaptation"]


def plan_jobs(args) -> list[dict]:
    """Every unit of work of the benchmark, independent of the others: one evaluation (skeleton, source-only)
    or one adaptation + its evaluation per (pair, method, K, seed). The longest first (better packing when
    they run in parallel)."""
    jobs: list[dict] = []
    for pair in args.pairs:
        src, tgt = pair.split(":")
        base = {"pair": pair, "source": src, "target": tgt, "n_test": args.n_test, "threads": args.threads,
                "device": args.device}  # fmt: skip
        for m in ("skeleton", "source-only"):
            if m in args.methods:
                jobs.append({**base, "method": m, "K": "-", "seed": "-", "cost": 1})
        for seed in args.seeds:
            if "oracle" in args.methods:
                jobs.append({**base, "method": "oracle", "K": args.oracle_shots, "seed": seed,
                             "steps": args.oracle_steps, "cost": 5 * args.oracle_steps})  # fmt: skip
            if "translation" in args.methods:
                jobs.append({**base, "method": "translation", "K": 0, "seed": seed,
                             "steps": args.translation_steps, "cost": 2 * args.translation_steps})  # fmt: skip
            for k in args.shots:
                for method in SHOT_METHODS:
                    if method in args.methods:
                        jobs.append({**base, "method": method, "K": k, "seed": seed, "steps": args.steps,
                                     "cost": 10 * args.steps})  # fmt: skip
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    pair_rank = {p: i for i, p in enumerate(args.pairs)}
    # pair by pair, seed by seed (an interrupted grid leaves whole seeds in the --cache), the longest first
    seed_rank = lambda j: -1 if j["seed"] == "-" else args.seeds.index(j["seed"])
    jobs.sort(key=lambda j: (pair_rank[j["pair"]], seed_rank(j), -j["cost"], order[j["method"]], str(j["K"])))
    return jobs


def job_key(job: dict) -> str:
    """What decides a job's result: the job settings and the exact bundled source checkpoint (its weights and
    metadata hash), so a cached result is never reused for a different model or protocol."""
    fields = {k: job[k] for k in sorted(job) if k not in ("cost", "device")}
    if job.get("method") == "translation":  # its generator's settings decide the result too (they changed once)
        from napari_vesselgraph.adapt.translate import DEFAULT_TRANSLATOR

        fields["translator"] = dict(DEFAULT_TRANSLATOR)
    return json.dumps({**fields, "source_sha": source_sha(job["source"])}, sort_keys=True)


@functools.lru_cache(maxsize=None)
def source_sha(domain: str) -> str:
    """Hash of the files (weights + metadata) of the checkpoint trained on ``domain``; read once per domain."""
    from napari_vesselgraph.checkpoints import resolve

    src = resolve(bundled_for(domain))
    h = hashlib.sha256()
    for f in sorted(src.parent.glob(src.stem + ".*")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_cache(path: str | None) -> dict[str, tuple]:
    if not path or not Path(path).exists():
        return {}
    cache = {}
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # blank, or the half-written last line of a killed run: run that job again
            continue
        cache[rec["key"]] = (rec["result"], rec["provenance"], rec["line"])
    return cache


def append_cache(path: str | None, key: str, res: tuple) -> None:
    if path:
        with open(path, "a+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():  # after a half-written line, start a new one
                fh.seek(fh.tell() - 1)
                if fh.read(1) != "\n":
                    fh.write("\n")
            fh.write(json.dumps({"key": key, "result": res[0], "provenance": res[1], "line": res[2]}, default=float) + "\n")


def run_job(job: dict, workdir: str, verbose: bool = False) -> tuple[dict, dict | None, str]:
    """Run one job; returns ``(result row, provenance or None, log line)``. Runs in a worker process too."""
    import torch

    torch.set_num_threads(job["threads"])
    pair, tgt, method, k, seed = job["pair"], job["target"], job["method"], job["K"], job["seed"]
    data = test_set(tgt, job["n_test"])
    ckpt = bundled_for(job["source"])
    quiet = print if verbose else (lambda s: None)
    train_s, ad = float("nan"), None
    if method == "skeleton":
        rows = eval_skeleton(tgt, data)
    elif method == "source-only":
        rows = eval_checkpoint(ckpt, data)
    else:
        cfg = {"checkpoint": ckpt, "target_domain": tgt, "threads": job["threads"], "device": job["device"],
               "steps": job["steps"], "seed": seed, "shot_seed": seed}  # fmt: skip
        if method == "translation":
            cfg.update(method="translation", out=str(Path(workdir) / f"{tgt}-translation-s{seed}.safetensors"))
        elif method == "oracle":
            cfg.update(method="finetune", shots=k, val_fraction=round(8 / (k + 8), 6),
                       out=str(Path(workdir) / f"{tgt}-oracle-s{seed}.safetensors"))  # fmt: skip
        else:
            cfg.update(method=method, shots=k, out=str(Path(workdir) / f"{tgt}-{method}-k{k}-s{seed}.safetensors"))
        path, train_s, ad = run_adapt(cfg, quiet)
        rows = eval_checkpoint(path, data)
    r = {"pair": pair, "method": method, "K": k, "seed": seed, **mean_row(rows), "train_s": train_s, "per_image": rows}
    line = (
        f"  {pair} {method:12s} K={k!s:4s} seed={seed!s:4s} node_f1 {r['node_f1']:.3f} edge_f1 {r['edge_f1']:.3f} "
        f"smd {r['smd']:.4f} apls {r['apls']:.3f}" + (f" (adapted in {train_s:.0f} s)" if np.isfinite(train_s) else "")
    )
    prov = None
    if ad is not None:
        prov = {"pair": pair, "method": method, "K": k, "seed": seed}
        for key in ("shot_ids", "heldout_ids", "unlabelled_ids", "steps_done", "before", "after"):
            prov[key] = ad.get(key)
    return r, prov, line


def benchmark(args, log=print):
    """Run every job (``args.jobs`` worker processes, each with ``args.threads`` torch threads); returns the
    result rows and the provenance (K sample ids) in a fixed order, whatever order the jobs finished in."""
    jobs = plan_jobs(args)
    workdir = tempfile.mkdtemp(prefix="vg-adapt-bench-")
    cache = load_cache(args.cache)
    keys = [job_key(job) for job in jobs] if args.cache else [None] * len(jobs)
    done: dict[int, tuple] = {i: cache[k] for i, k in enumerate(keys) if k in cache}
    todo = [i for i in range(len(jobs)) if i not in done]
    args.runs_total, args.runs_cached = len(jobs), len(done)
    log(f"{len(jobs)} jobs ({len(done)} from the cache {args.cache}) on {args.jobs} worker(s); pairs {args.pairs}")
    for i in sorted(done):
        log(done[i][2] + " [cached]")

    def finish(i, res):
        done[i] = res
        append_cache(args.cache, keys[i], res)
        log(res[2])

    try:
        if args.jobs <= 1:
            for i in todo:
                finish(i, run_job(jobs[i], workdir, args.verbose))
        elif todo:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(run_job, jobs[i], workdir, args.verbose): i for i in todo}
                for f in as_completed(futures):
                    finish(futures[f], f.result())
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"checkpoints kept in {workdir}")
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    key = lambda r: (r["pair"], order[r["method"]], str(r["K"]), str(r["seed"]))
    results = sorted((d[0] for d in done.values()), key=key)
    args.runs_train_s = float(sum(r["train_s"] for r in results if np.isfinite(r["train_s"])))
    provenance = sorted((d[1] for d in done.values() if d[1] is not None), key=key)
    return results, provenance


# ----------------------------------------------------------------------------- report
def summarise(results: list[dict]) -> list[dict]:
    """One row per (pair, method, K): mean ± std over seeds (single runs: over test images)."""
    from napari_vesselgraph.metrics import aggregate

    order = {m: i for i, m in enumerate(ALL_METHODS)}
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["pair"], r["method"], str(r["K"])), []).append(r)
    rows = []
    kkey = lambda k: (0, int(k)) if k.isdigit() else (-1, 0)  # K numerically: 1, 5, 10
    for (pair, method, k), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], order[kv[0][1]], kkey(kv[0][2]))):
        src = runs if len(runs) > 1 else runs[0]["per_image"]
        agg = aggregate([{c: x[c] for c in COLUMNS if c in x} for x in src])
        if len(runs) == 1:
            agg["train_s"], agg["train_s_std"] = runs[0]["train_s"], float("nan")
        rows.append(
            {
                "pair": pair,
                "method": method,
                "K": k,
                **{c: agg.get(c) for c in COLUMNS},
                **{f"{c}_std": agg.get(f"{c}_std") for c in COLUMNS},
                "runs": len(runs),
            }
        )
    # share of the source-only -> oracle gap recovered, on (node_f1 + edge_f1) / 2
    for pair in {r["pair"] for r in rows}:
        base = [r for r in rows if r["pair"] == pair and r["method"] == "source-only"]
        top = [r for r in rows if r["pair"] == pair and r["method"] == "oracle"]
        if not base or not top:
            continue
        s = lambda r: 0.5 * (r["node_f1"] + r["edge_f1"])
        gap = s(top[0]) - s(base[0])
        for r in rows:
            if r["pair"] == pair and abs(gap) > 1e-9:
                r["gap"] = (s(r) - s(base[0])) / gap
    return rows


def goal_lines(rows: list[dict]) -> list[str]:
    out = []
    for pair in sorted({r["pair"] for r in rows}):
        get = lambda m, k, pair=pair: [r for r in rows if r["pair"] == pair and r["method"] == m and r["K"] == k]
        con, ft, src, tr = (
            get("contrastive", "5"),
            get("finetune", "5"),
            get("source-only", "-"),
            get("translation", "0"),
        )
        if con and "gap" in con[0]:
            out.append(
                f"- {pair}: contrastive K=5 recovers {100 * con[0]['gap']:.0f}% of the source-only -> oracle gap "
                f"(goal ≥ 50%: {'met' if con[0]['gap'] >= 0.5 else 'NOT met'})"
            )
        if con and ft:
            sc = lambda r: 0.5 * (r["node_f1"] + r["edge_f1"])
            diff = sc(con[0]) - sc(ft[0])
            spread = max(float(r[f"{k}_std"] or 0.0) for r in (con[0], ft[0]) for k in ("node_f1", "edge_f1"))
            over = "seeds" if con[0]["runs"] > 1 else "test images (one seed)"
            out.append(
                f"- {pair}: contrastive K=5 {'beats' if diff > 0 else 'does NOT beat'} finetune K=5 on "
                f"(node_f1 + edge_f1) / 2: {sc(con[0]):.3f} vs {sc(ft[0]):.3f} (difference {diff:+.3f}; largest std "
                f"over {over} {spread:.3f}{': within the noise' if abs(diff) < spread else ''})"
            )
        if con and np.isfinite(con[0]["train_s"] or float("nan")):
            t, sd = con[0]["train_s"], con[0]["train_s_std"]
            pm = f" ± {sd:.0f} s" if sd is not None and np.isfinite(sd) else ""
            out.append(
                f"- {pair}: a K=5 contrastive adaptation took {t:.0f} s{pm} of wall time "
                f"(goal < 300 s: {'met' if t < 300 else 'NOT met'}; {con[0]['runs']} run(s))"
            )
        if tr and src:
            sc = lambda r: 0.5 * (r["node_f1"] + r["edge_f1"])
            smd_ok, f1_ok = tr[0]["smd"] < src[0]["smd"], sc(tr[0]) > sc(src[0])
            verdict = (
                "beats source-only on SMD and on F1"
                if smd_ok and f1_ok
                else "beats source-only on SMD only (its F1 is lower: NOT a win)"
                if smd_ok
                else "beats source-only on F1 only (its SMD is higher)"
                if f1_ok
                else "does NOT beat source-only"
            )
            out.append(
                f"- {pair}: translation (no labels) {verdict}: SMD {tr[0]['smd']:.4f} vs {src[0]['smd']:.4f}; "
                f"(node_f1 + edge_f1) / 2 {sc(tr[0]):.3f} vs {sc(src[0]):.3f}"
            )
    return out


def write_report(rows, provenance, args, command, elapsed) -> str:
    from napari_vesselgraph.metrics import format_table

    table = format_table(rows, columns=["pair", "method", "K", *COLUMNS, "gap", "runs"])
    lines = [
        "## Cross-domain adaptation" + ("" if args.section == "adaptation" else f": {', '.join(args.pairs)}"),
        "",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}; wall time {elapsed / 60:.1f} min"
        + (
            f" ({args.runs_cached} of the {args.runs_total} runs read back from `--cache`, where each was stored "
            "when it finished: earlier invocations of this command with the same settings and checkpoints; the "
            f"adaptations of all runs took {getattr(args, 'runs_train_s', 0.0) / 60:.0f} min in all, summed over runs)"
            if getattr(args, "runs_cached", 0)
            else ""
        ),
        (
            f"- Machine: {os.cpu_count()} CPU cores (nproc), {cpu_name()}, Python {platform.python_version()}; "
            f"{args.threads} torch thread(s) per run, {args.jobs} run(s) at once, device {args.device}"
        ),
        (
            f"- Test split: target seeds {TEST_SEED0} … {TEST_SEED0 + args.n_test - 1} ({args.n_test} images, default "
            "shape); whole-image `inference.predict` with each checkpoint's thresholds; `metrics.evaluate`, radius 3 px."
        ),
        (
            f"- Seeds {args.seeds} (training seed = shot seed); K ∈ {args.shots}; {args.steps} steps (finetune / "
            f"contrastive / adversarial, batch 8 source + 8 target patches), translation {args.translation_steps} steps "
            f"on 32 unlabelled target images; oracle = finetune on {args.oracle_shots} labelled target train images for "
            f"{args.oracle_steps} steps."
        ),
        (
            "- Held-out: labelled target VAL-split images (1 / 2 / 3 for K = 1 / 5 / 10; 8 for the oracle) pick the best "
            "step and the node/edge thresholds of finetune / contrastive / adversarial / oracle; translation and "
            "source-only use the source checkpoint's thresholds (no target labels)."
        ),
        (
            "- mean ± std over seeds; `skeleton` and `source-only` are single runs (± over test images). `gap`: share "
            "of the source-only → oracle gap recovered on (node_f1 + edge_f1) / 2."
        ),
        "",
        table.rstrip(),
        "",
    ]
    goals = goal_lines(rows)
    if goals:
        lines += ["Goals (issue 6):", "", *goals, ""]
        if args.quick:
            lines += [
                (
                    "This is the `--quick` run (one seed, few steps, an under-trained oracle on 30 images): it "
                    "shows that the harness works, it is no evidence for or against the goals."
                ),
                "",
            ]
    lines += ["<details><summary>K target samples used (synthetic train seeds), held-out seeds</summary>", ""]
    for p in provenance:
        ids = p["shot_ids"] if p["method"] != "translation" else f"unlabelled {p['unlabelled_ids']}"
        lines.append(f"- {p['pair']} {p['method']} K={p['K']} seed={p['seed']}: {ids}; held out {p['heldout_ids']}")
    lines += ["", "</details>", ""]
    return write_section(args.section, "\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", nargs="+", default=None, help=f"source:target pairs (default {PAIRS})")
    ap.add_argument("--shots", nargs="+", type=int, default=None, help="K values (default 1 5 10)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default 0 1 2)")
    ap.add_argument("--steps", type=int, default=None, help="adaptation steps (default 300)")
    ap.add_argument(
        "--translation-steps",
        type=int,
        default=None,
        help="default 1000 (a translation step costs about a quarter of an adaptation step)",
    )
    ap.add_argument("--oracle-shots", type=int, default=None, help="labelled target images of the oracle (default 200)")
    ap.add_argument("--oracle-steps", type=int, default=None, help="default 1500")
    ap.add_argument("--n-test", type=int, default=None, help="test images per pair (default 10)")
    ap.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small honest version: vessel pair, K 5, seed 0, 60 steps (translation 200), oracle 30 images / 150 steps, 3 test images",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job (default 1)")
    ap.add_argument("--jobs", type=int, default=1, help="jobs run at once in worker processes (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", action="store_true", help="keep the adapted checkpoints (printed folder)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument(
        "--section",
        default="adaptation",
        help="section of docs/benchmarks.md to (re)write (default adaptation; another name for a grid run "
        "with other settings, e.g. a smaller one for a second pair)",
    )
    ap.add_argument("--json", default=None, help="also write every run (and the K sample ids) to this JSON file")
    ap.add_argument(
        "--cache",
        default=None,
        help="JSON-lines file of finished runs: each run is appended when it ends and a rerun with the same "
        "settings and the same bundled source checkpoint reads it back instead of running it again "
        "(an interrupted grid resumes; the grid can be run pair by pair and reported in one command). "
        "Changes to the adaptation code are not detected: start a new file after changing it",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="show the adaptation logs")
    args = ap.parse_args(argv)
    q = args.quick
    defaults = {
        "pairs": [PAIRS[0]] if q else PAIRS,
        "shots": [5] if q else [1, 5, 10],
        "seeds": [0] if q else [0, 1, 2],
        "steps": 60 if q else 300,
        "translation_steps": 200 if q else 1000,
        "oracle_shots": 30 if q else 200,
        "oracle_steps": 150 if q else 1500,
        "n_test": 3 if q else 10,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for p in args.pairs:
        if p.count(":") != 1:
            ap.error(f"a pair is SOURCE:TARGET, got {p!r}")
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    results, provenance = benchmark(args)
    elapsed = time.perf_counter() - t0
    rows = summarise(results)
    from napari_vesselgraph.metrics import format_table

    print()
    print(format_table(rows, columns=["pair", "method", "K", *COLUMNS, "gap", "runs"]))
    for line in goal_lines(rows):
        print(line)
    print(f"wall time {elapsed / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"runs": results, "provenance": provenance, "summary": rows}, indent=1, default=float)
        )
    if not args.no_write:
        command = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:]))
        print(f"written {write_report(rows, provenance, args, command, elapsed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
