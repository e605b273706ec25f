"""Which patches to annotate: K patches chosen by the model's uncertainty against K random patches, on DRIVE.

Issue 17 item 4. The *Annotate patches* widget proposes the next patches to correct with
:func:`napari_vesselgraph.annotations.propose_patches` (node / edge confidences near the checkpoint's thresholds,
disagreement between overlapping windows); this script measures whether those patches teach an adaptation more
than patches placed at random (:func:`napari_vesselgraph.annotations.random_patches`, same size, same rules: no
overlap, not flat, at least half inside the field of view).

Protocol (DRIVE, fixed splits of ``benchmarks/real_data.py``: shot images 21-30, test images 31-40):

- the shot image ``--heldout`` (default 30) is the held-out sample of every run (adapt picks the step and the
  thresholds on it); the other nine are the pool the patches come from;
- ``uncertainty``: the source model is run over each pool image (windows overlapping by half) and the K best
  boxes of ``--patch-size`` px over the nine images are taken (scores in units shared by the nine images), the same
  boxes for every seed; ``random``: K boxes drawn with the seed (an image at random, then a box at random in it);
- each patch's graph is cut from the mask's centre-line graph (``annotations.initial_graph``: edges crossing the
  border end on it) and written with the held-out image into an annotation store (the folder the widget writes),
  which ``adapt`` reads as a target folder: ``shots`` = K, ``val_fraction`` so that exactly the held-out image is
  held out (checked after each run);
- ``adapt`` (``--method``, ``--steps``, training seed = selection seed), then the test images are predicted whole and
  scored as in the real-data benchmark (length quality at 3 px, junction F1, SMD in px, ...), beside the source model
  and the skeleton (their settings and the source's zoom chosen on the shot split, ``real_data.eval_unit``).

    python benchmarks/patch_selection.py --quick                         # tiny honest version (3 pool images, 20 steps, 2 test images)
    python benchmarks/patch_selection.py --cache runs/patch_selection/cache.jsonl --write
    python benchmarks/patch_selection.py --seeds 0 --cache runs/patch_selection/cache.jsonl   # a piece of the grid

``--cache FILE`` (JSON lines, ``real_data.Cache``) keeps the proposals, every adaptation run and every image
evaluation, keyed by their settings, the checkpoint's hash and the chosen boxes, so the grid runs in pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
from _report import cpu_name, write_section

SET = "drive"
DATASET = ROOT / "runs" / "data" / "fundus"
WORK = ROOT / "runs" / "patch_selection"
SELECTIONS = ("uncertainty", "random")
KEYS = ("length_quality", "junction_f1", "smd", "length_completeness", "length_correctness", "node_f1", "edge_f1")
NAMES = {**rd.NAMES, "length_quality": "LQ 3 px"}


def quiet(_s):
    pass


# ----------------------------------------------------------------------------- data
def dataset_folder(path: Path, data: Path, log=print) -> Path:
    """The DRIVE dataset folder (shot split ``train``, test split ``test``): ``path`` when it holds a manifest,
    else imported there by the product's importer (as ``vesselgraph import masks`` does)."""
    if (path / "manifest.json").is_file():
        return path
    from napari_vesselgraph.importers import import_masks

    shots, tests = rd.SPLITS[SET]
    d = data / rd.FOLDERS[SET]
    t0 = time.perf_counter()
    split = {**{i: "train" for i in shots}, **{i: "test" for i in tests}}
    import_masks(d / "images", d / "1st_manual", path, pattern="{id}_training.tif", mask_pattern="{id}_manual1.gif",
                 fov=d / "mask", fov_pattern="{id}_training_mask.gif", split=split, domain="drive",
                 ids=[*shots, *tests])  # fmt: skip
    log(f"imported DRIVE into {path} in {time.perf_counter() - t0:.0f}s")
    return path


def shot_records(folder: Path) -> dict[str, dict]:
    """``{id: {image, graph, fov, gt}}`` of the shot split (the field-of-view mask where the folder has one)."""
    from napari_vesselgraph.io import load_image
    from napari_vesselgraph.synth import read_dataset

    m = json.loads((folder / "manifest.json").read_text())
    fov = {s["id"]: s.get("fov") for s in m["samples"]}
    out = {}
    for r in sorted(read_dataset(folder, split="train"), key=lambda r: r.id):
        mask = None
        if fov.get(r.id):
            mask = np.asarray(load_image(folder / fov[r.id])[0])
            mask = mask[..., 0] if mask.ndim == 3 else mask
        out[r.id] = {"image": np.asarray(r.image), "graph": r.graph, "fov": mask, "gt": rd.graph_sha(r.graph)}
    return out


# ----------------------------------------------------------------------------- the two selections
def choose_uncertain(recs: dict, pool: list[str], predictor, k: int, size: int, zoom=None, log=print) -> list[dict]:
    """The ``k`` most uncertain boxes over the pool images (``propose_patches``' ranking, units shared by the
    images): ``[{id, origin, size, score, why, ...}]``, best first."""
    from napari_vesselgraph.annotations.propose import _Image, box_parts, mean_units, rank_boxes, window_evidence

    evs, parts, imgs = {}, [], {}
    for i in pool:
        t = time.perf_counter()
        imgs[i] = _Image(recs[i]["image"], None, int(predictor.ndim), recs[i]["fov"])
        evs[i] = window_evidence(recs[i]["image"], predictor, zoom=zoom, _img=imgs[i])
        parts.append(box_parts(evs[i], imgs[i].shape, size)[1])
        log(f"  uncertainty of shot image {i}: {evs[i].n_windows} windows, {time.perf_counter() - t:.1f}s")
    units = mean_units(parts)
    cands = []
    for i in pool:
        for p in rank_boxes(evs[i], imgs[i].shape, size, n=k, usable=imgs[i].usable, units=units):
            cands.append({"id": i, "origin": list(p.origin), "size": list(p.size), "score": p.score, "why": p.why,
                          **{kk: p.details[kk] for kk in ("near_nodes", "near_edges", "disagreement", "confident")}})  # fmt: skip
    cands.sort(key=lambda c: -c["score"])
    return cands[:k]


def choose_random(recs: dict, pool: list[str], k: int, size: int, seed: int) -> list[dict]:
    """``k`` random boxes over the pool images: for each, an image drawn with the seed, then a box in it
    (``random_patches``: not overlapping the boxes already drawn in that image, not flat, inside the field of view)."""
    from napari_vesselgraph.annotations import random_patches

    rng = np.random.default_rng(int(seed))
    out: list[dict] = []
    for _ in range(200 * k):
        if len(out) >= k:
            break
        i = str(rng.choice(pool))
        taken = [(b["origin"], b["size"]) for b in out if b["id"] == i]
        got = random_patches(recs[i]["image"], size, n=1, exclude=taken, seed=int(rng.integers(2**31)),
                             mask=recs[i]["fov"])  # fmt: skip
        if got:
            out.append({"id": i, "origin": list(got[0].origin), "size": list(got[0].size), "score": None,
                        "why": got[0].why})  # fmt: skip
    return out


# ----------------------------------------------------------------------------- the target folder
def heldout_position(n_samples: int, seed: int) -> int:
    """Where (in id order) the held-out sample must be so that ``adapt`` holds it out: adapt shuffles the sorted
    train split with ``default_rng(shot_seed)`` and holds out the first ``n_heldout`` (adapt.data)."""
    return int(np.random.default_rng(int(seed)).permutation(n_samples)[0])


def write_target(folder: Path, recs: dict, boxes: list[dict], heldout: str, seed: int) -> tuple[str, list[str]]:
    """An annotation store with the ``boxes`` (image pixels and graph cut from the mask graph) and the whole
    held-out image, ordered so that ``adapt(shot_seed=seed, val_fraction=1/(K+1))`` holds out the held-out image.
    Returns ``(held-out patch id, patch ids)``."""
    from napari_vesselgraph.annotations import AnnotationStore, cut_patch, initial_graph

    shutil.rmtree(folder, ignore_errors=True)
    h = recs[heldout]
    store = AnnotationStore.create(folder, scale=h["graph"].scale, ndim=2, channels=3, domain="drive",
                                   source_image="DRIVE shot split", patch_size=boxes[0]["size"] if boxes else None)  # fmt: skip
    n = len(boxes) + 1
    at = heldout_position(n, seed)
    todo = list(boxes)
    held_id, ids = None, []
    for pos in range(n):
        if pos == at:
            shape = h["image"].shape[:2]
            held_id = store.add_patch(h["image"], (0, 0), initial_graph(h["graph"], (0, 0), shape), status="done")
            continue
        b = todo.pop(0)
        r = recs[b["id"]]
        img = cut_patch(r["image"], b["origin"], b["size"])
        ids.append(store.add_patch(img, b["origin"], initial_graph(r["graph"], b["origin"], b["size"]), status="done"))
    return held_id, ids


def val_fraction_for(k: int) -> float:
    """A ``val_fraction`` that holds out exactly one of ``k + 1`` samples (``adapt.data.n_heldout_for``)."""
    return 1.0 / (k + 1)


# ----------------------------------------------------------------------------- one adaptation run
def run_job(job: dict) -> dict:
    """Adapt (unless ``job["adapted"]``, a cached run whose checkpoint is still on disk), then predict and score the
    test images, each at the zoom the source was evaluated at (``job["test_zoom"]``: an adapted checkpoint's own
    scale reference depends on its patches, and would otherwise change the zoom and with it the figures).
    Returns ``{"adapted": {train_s, provenance, checkpoint}, "per_image": [...]}``."""
    import torch

    from napari_vesselgraph.model.predictor import make_predictor

    torch.set_num_threads(job["threads"])
    done = job.get("adapted")
    if not done or not Path(done.get("checkpoint") or "").is_file():
        done = adapt_job(job)
    tests = [
        r for r in rd.load_split(SET, Path(job["folder"]), "test", Path(job["data"])) if r["id"] in job["test_ids"]
    ]
    pred = make_predictor(done["checkpoint"], device=job["device"])
    try:
        per = [rd.predict_and_score(r, SET, "model", predictor=pred, zoom=job["test_zoom"].get(r["id"])) for r in tests]
    finally:
        pred.close()
    return {"adapted": done, "per_image": per}


def adapt_job(job: dict) -> dict:
    """Write the target folder and adapt: ``{train_s, provenance, checkpoint}``."""
    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.checkpoints import read_metadata

    work = Path(job["work"])
    tag = f"{job['selection']}-k{job['K']}-s{job['seed']}-{job['method']}-{job['steps']}steps"
    recs = shot_records(Path(job["folder"]))
    target = work / "targets" / tag
    held_id, _ids = write_target(target, recs, job["boxes"], job["heldout"], job["seed"])
    out = work / "adapted" / f"{tag}.safetensors"
    cfg = {"method": job["method"], "checkpoint": job["ckpt"], "target": str(target), "seed": job["seed"],
           "shot_seed": job["seed"], "shots": job["K"], "val_fraction": val_fraction_for(job["K"]),
           "steps": job["steps"], "out": str(out), "device": job["device"], "threads": job["threads"],
           "zoom": job["adapt_zoom"]}  # fmt: skip
    t0 = time.perf_counter()
    path = adapt(cfg, log=print if job.get("verbose") else quiet)
    train_s = time.perf_counter() - t0
    ad = read_metadata(path).get("adaptation") or {}
    if list(ad.get("heldout_ids") or []) != [held_id]:
        raise RuntimeError(f"adapt held out {ad.get('heldout_ids')}, not the held-out image {held_id}")
    prov = {k: ad.get(k) for k in ("shot_ids", "heldout_ids", "steps_done", "steps_trained", "before", "after",
                                   "source_weights")}  # fmt: skip
    vals = [h["score"] for h in ad.get("history") or [] if h.get("kind") == "val" and h.get("score") is not None]
    prov["best_adapted"] = max(vals) if vals else None  # the best held-out score of an adapted step
    return {"train_s": train_s, "provenance": prov, "checkpoint": str(path)}


def eval_key(job: dict, adapted: dict) -> str:
    """The test figures of one adapted checkpoint (its file hash) at the source's zooms."""
    sha = rd.checkpoint_sha(adapted["checkpoint"]) if Path(adapted["checkpoint"]).is_file() else "missing"
    return rd.make_key(kind="patch-selection-eval", adapt=job_key(job), ckpt_file=sha, test_zoom=job["test_zoom"],
                       radius=rd.RADIUS[SET], tol=rd.LENGTH_TOL)  # fmt: skip


def job_key(job: dict) -> str:
    keep = ("selection", "K", "seed", "method", "steps", "ckpt_sha", "boxes", "heldout", "heldout_gt", "test_ids",
            "adapt_zoom", "zoom_value", "patch_size")  # fmt: skip
    boxes = [{k: b[k] for k in ("id", "origin", "size")} for b in job["boxes"]]
    return rd.make_key(kind="patch-selection-adapt", **{k: (boxes if k == "boxes" else job[k]) for k in keep})


# ----------------------------------------------------------------------------- the benchmark
def source_zoom(src: dict) -> tuple[float, object]:
    """``(adapt zoom, predict zoom)`` of the source's chosen option: the factor its choice resampled the shot
    images by (1 when it resampled nothing), and the option as ``predict`` takes it."""
    zs = [z for z in (src.get("shot_zoom") or {}).values() if z]
    f = float(np.mean([np.mean(z) for z in zs])) if zs else 1.0
    return (f if abs(f - 1.0) > 1e-6 else 1.0), src["choice_value"]


def benchmark(args, cache, log=print) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    folder = dataset_folder(Path(args.dataset), data, log=log)
    shots, tests = rd.SPLITS[SET]
    recs = shot_records(folder)
    missing = [i for i in shots if i not in recs]
    if missing:
        raise SystemExit(f"{folder}: shot images {missing} are not in its train split")
    if args.heldout not in recs:
        raise SystemExit(f"--heldout {args.heldout} is not a shot image ({', '.join(shots)})")
    pool = [i for i in shots if i != args.heldout][: args.pool or None]
    test_ids = sorted(tests)[: args.n_test or None]
    ckpt = dict(rd.checkpoints_for(2)).get(args.checkpoint, args.checkpoint)
    sha = rd.checkpoint_sha(ckpt)
    common = {"set": SET, "folder": str(folder), "data": str(data), "quick": args.quick, "n_test": args.n_test,
              "threads": args.threads, "device": args.device, "run": not args.cached_only, "test": True}  # fmt: skip
    rows, notes = {}, []
    for label, method, path in (("skeleton", "skeleton", None), (args.checkpoint, "model", ckpt)):
        r = rd.eval_unit({**common, "label": label, "method": method, "ckpt": path}, cache.get, cache.put, log=log)
        if r is None:
            notes.append(f"{label}: not in the cache (run without --cached-only)")
        else:
            rows[label] = r
    src = rows.get(args.checkpoint)
    if src is None:
        return {"rows": rows, "runs": [], "missing": [], "notes": notes, "selections": {}}
    adapt_zoom, zoom_value = source_zoom(src)
    propose_zoom = adapt_zoom if adapt_zoom != 1.0 else 1.0

    # the selections
    selections: dict[tuple[str, int], list[dict]] = {}
    key = rd.make_key(kind="patch-selection-proposals", ckpt=sha, pool=pool, gt=[recs[i]["gt"] for i in pool],
                      K=args.k, size=args.patch_size, zoom=propose_zoom, version=1)  # fmt: skip
    unc = cache.get(key)
    if unc is None and not args.cached_only:
        from napari_vesselgraph.model.predictor import make_predictor

        log(f"uncertainty of the {len(pool)} pool images ({args.checkpoint}, zoom {propose_zoom})")
        t = time.perf_counter()
        pred = make_predictor(ckpt, device=args.device)
        try:
            boxes = choose_uncertain(recs, pool, pred, args.k, args.patch_size, zoom=propose_zoom, log=log)
        finally:
            pred.close()
        unc = {"boxes": boxes, "seconds": time.perf_counter() - t}
        cache.put(key, unc)
    for seed in args.seeds:
        if unc is not None:
            selections[("uncertainty", seed)] = unc["boxes"]
        selections[("random", seed)] = choose_random(recs, pool, args.k, args.patch_size, seed)

    # the adapted models are predicted at the zoom the source was predicted at on each test image
    test_zoom = {i: (p.get("zoom_factor") or 1.0) for i, p in zip(src.get("test_ids") or [], src["per_image"] or [])}
    base = {"K": args.k, "method": args.method, "steps": args.steps, "ckpt": ckpt, "ckpt_sha": sha,
            "heldout": args.heldout, "heldout_gt": recs[args.heldout]["gt"], "test_ids": test_ids,
            "adapt_zoom": adapt_zoom, "zoom_value": zoom_value, "patch_size": args.patch_size,
            "test_zoom": test_zoom}  # fmt: skip
    extra = {"work": str(Path(args.work)), "data": str(data), "folder": str(folder), "threads": args.threads,
             "device": args.device, "verbose": args.verbose}  # fmt: skip
    runs, todo, missing = [], [], []
    for (sel, seed), boxes in sorted(selections.items(), key=lambda kv: (kv[0][1], SELECTIONS.index(kv[0][0]))):
        job = {**base, "selection": sel, "seed": seed, "boxes": boxes}
        adapted = cache.get(job_key(job))
        if adapted is not None:
            adapted = {k: adapted[k] for k in ("train_s", "provenance", "checkpoint")}
        per = cache.get(eval_key(job, adapted)) if adapted is not None else None
        if per is not None:
            runs.append({**job, **adapted, "per_image": per})
        elif args.cached_only:
            missing.append(job)
        else:
            todo.append({**job, **extra, "adapted": adapted})
    if unc is None:
        missing += [{"selection": "uncertainty", "seed": s} for s in args.seeds]
    if todo:
        log(f"{len(todo)} run(s) to adapt or evaluate ({args.method}, {args.steps} steps, K={args.k}), {len(runs)} "
            "from the cache")  # fmt: skip
    for i, res in rd.run_pool(run_job, todo, args.jobs):
        job = {k: v for k, v in todo[i].items() if k not in extra and k != "adapted"}
        cache.put(job_key(job), res["adapted"])
        cache.put(eval_key(job, res["adapted"]), res["per_image"])
        runs.append({**job, **res["adapted"], "per_image": res["per_image"]})
        m = rd.mean_of(res["per_image"])
        log(f"  {job['selection']} seed {job['seed']}: LQ {m['length_quality']:.3f} junction F1 {m['junction_f1']:.3f} "
            f"SMD {m['smd']:.1f} (adapted in {res['adapted']['train_s']:.0f}s)")  # fmt: skip
    return {"rows": rows, "runs": runs, "missing": missing, "notes": notes, "selections": selections,
            "pool": pool, "test_ids": test_ids, "uncertainty_s": (unc or {}).get("seconds"),
            "adapt_zoom": adapt_zoom}  # fmt: skip


# ----------------------------------------------------------------------------- report
def _cell(mean: dict, std: dict | None, k: str) -> str:
    if k not in mean:
        return "-"
    return f"{mean[k]:.3f}" + (f" ± {std[k]:.3f}" if std is not None and k in std else "")


def table(res: dict, source: str) -> list[str]:
    """The rows: skeleton and source (one run, ± over test images), each selection (± over seeds)."""
    head = ["method", "patches", "runs", *[NAMES[k] for k in KEYS], f"Δ LQ vs {source}", "kept source",
            "held-out: source / best adapted", "adapt s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    src_lq = None
    if source in res["rows"] and res["rows"][source]["per_image"]:
        src_lq = rd.mean_of(res["rows"][source]["per_image"])["length_quality"]
    for label in ("skeleton", source):
        r = res["rows"].get(label)
        if r is None or not r["per_image"]:
            continue
        per = r["per_image"]
        mean = rd.mean_of(per)
        std = {k: float(np.std([p[k] for p in per if p.get(k) is not None])) for k in mean}
        d = "-" if label == source or src_lq is None else f"{mean['length_quality'] - src_lq:+.3f}"
        lines.append("| " + " | ".join([label, f"- ({r['choice']})", "1", *[_cell(mean, std, k) for k in KEYS], d, "-",
                                        "-", "-"]) + " |")  # fmt: skip
    for sel in SELECTIONS:
        runs = [a for a in res["runs"] if a["selection"] == sel]
        if not runs:
            continue
        means = [rd.mean_of(a["per_image"]) for a in runs]
        mean = {k: float(np.mean([m[k] for m in means])) for k in means[0]}
        std = {k: float(np.std([m[k] for m in means])) for k in means[0]}
        d = "-" if src_lq is None else f"{mean['length_quality'] - src_lq:+.3f}"
        lab = f"{runs[0]['method']} ← {source}"
        pat = f"{runs[0]['K']} × {runs[0]['patch_size']} px, {sel}"
        seeds = "/".join(str(a["seed"]) for a in sorted(runs, key=lambda a: a["seed"]))
        kept = sum(bool(a["provenance"].get("source_weights")) for a in runs)
        bef = [(a["provenance"].get("before") or {}).get("score") for a in runs]
        best = [a["provenance"].get("best_adapted") for a in runs]
        held = "-"
        if all(v is not None for v in bef + best):
            held = f"{np.mean(bef):.3f} / {np.mean(best):.3f} ± {np.std(best):.3f}"
        lines.append("| " + " | ".join([lab, pat, f"{len(runs)} (seeds {seeds})", *[_cell(mean, std, k) for k in KEYS],
                                        d, f"{kept} of {len(runs)}", held,
                                        f"{np.mean([a['train_s'] for a in runs]):.0f}"]) + " |")  # fmt: skip
    return lines


def paired(res: dict) -> list[str]:
    """Uncertainty minus random, seed by seed (same training seed): on the test split, and the held-out score of
    the best adapted step; a line when every run kept the source weights."""
    by = {(a["selection"], a["seed"]): rd.mean_of(a["per_image"]) for a in res["runs"]}
    seeds = sorted({s for sel, s in by if (("uncertainty", s) in by and ("random", s) in by)})
    if not seeds:
        return []
    lines = []
    if res["runs"] and all(a["provenance"].get("source_weights") for a in res["runs"]):
        lines.append("- Every adaptation run kept the source weights (no adapted step beat the source on the held-out "
                     "image): the test rows are the source with thresholds chosen on the held-out image, the same "
                     "whichever patches were annotated.")  # fmt: skip
    best = {(a["selection"], a["seed"]): a["provenance"].get("best_adapted") for a in res["runs"]}
    if all(best.get((sel, s)) is not None for s in seeds for sel in SELECTIONS):
        d = [best[("uncertainty", s)] - best[("random", s)] for s in seeds]
        lines.append(f"- Held-out score of the best adapted step, uncertainty minus random, paired by seed: "
                     f"{np.mean(d):+.3f} ({', '.join(f'{x:+.3f}' for x in d)}).")  # fmt: skip
    out = []
    for k in ("length_quality", "junction_f1", "smd"):
        d = [by[("uncertainty", s)][k] - by[("random", s)][k] for s in seeds]
        better = sum((x < 0) if k == "smd" else (x > 0) for x in d)
        out.append(f"{NAMES[k]} {np.mean(d):+.3f} ({', '.join(f'{x:+.3f}' for x in d)}; uncertainty better in "
                   f"{better} of {len(d)})")  # fmt: skip
    return [f"- Uncertainty minus random on the test split, paired by seed ({', '.join(map(str, seeds))}): "
            + "; ".join(out) + ".", *lines]  # fmt: skip


def section(res: dict, args, cmd: str, wall_s: float, computed: dict | None = None) -> str:
    """The markdown section. ``computed``: the run that computed the cached rows (``{"command", "wall_s"}``),
    named when this report only read the cache."""
    src = args.checkpoint
    ran = f"- Command: `{cmd}`; wall time {wall_s / 60:.1f} min"
    if computed and computed.get("command") != cmd:
        ran += (f" (a report from the cache; the rows were computed by `{computed['command']}` in "
                f"{computed['wall_s'] / 60:.1f} min wall)")  # fmt: skip
    lines = [
        "## Which patches to annotate: uncertainty-chosen against random patches (DRIVE)",
        "",
        ran + ".",
        (
            f"- Date: {time.strftime('%Y-%m-%d')}; machine: {os.cpu_count()} CPU cores, {cpu_name()} (shared); "
            f"{args.threads} torch thread(s), {args.jobs} run(s) at once, under `nice`; device {args.device}."
        ),
        (
            "- Data: DRIVE (Staal et al. 2004) from `../shared/realdata`, imported by `vesselgraph import masks` (graphs: "
            f"centre lines of the manual masks). Pool: shot images {', '.join(res.get('pool') or [])}; held out (every "
            f"run, whole image): shot image {args.heldout}; reported: test images "
            f"{', '.join(res.get('test_ids') or [])}, each predicted whole."
        ),
        (
            f"- Patches: K = {args.k} of {args.patch_size} × {args.patch_size} px per run, their graphs cut from the mask "
            "graphs. `uncertainty`: `annotations.propose_patches`' ranking over the pool (node and edge confidences "
            "within 0.2 of the thresholds, disagreement between windows overlapping by half, each in units of its mean "
            "box over the pool), the same boxes for every seed; `random`: `annotations.random_patches` (an image drawn "
            "with the seed, then a box; same rules: no overlap, not flat, at least half inside the field of view)."
        ),
        (
            f"- Adaptation: `adapt` method `{args.method}`, {args.steps} steps from `{src}` (training seed = selection "
            "seed), the held-out image picks the step and thresholds; then every test image predicted whole, at the zoom "
            "the source was predicted at on it (an adapted checkpoint records a scale reference measured on its own "
            "patches, which would change `predict`'s automatic zoom and with it the figures). Metrics as in "
            "the real-data section: length quality (LQ), completeness, correctness at 3 px, junction F1 at 6 px, node/edge "
            "F1 at 3 px, SMD in px (400 samples). Skeleton and source rows: settings and zoom chosen on the shot split "
            "(`real_data.eval_unit`), ± over the test images; adaptation rows: mean over the test images per run, ± over "
            "the seeds. `kept source`: runs where no adapted step beat the source on the held-out image, so `adapt` "
            "kept the source weights (with thresholds chosen there); such a run does not depend on the patches. "
            "`held-out`: the held-out image's score ((LQ + junction F1) / 2, adapt's `select_by graph`) of the source "
            "and of the best adapted step, mean over the seeds: what the patches taught, whichever weights were kept."
        ),
        (
            f"- `{src}` was trained with real images besides synthetic ones (runs/data/drive-shots, the DRIVE shot split), "
            "so it has seen these shot images: its uncertainty there is lower than on a new domain, and what K patches "
            "can add is small."
        ),
        "",
    ]
    lines += table(res, src)
    lines.append("")
    lines += paired(res)
    if res.get("uncertainty_s") is not None:
        lines.append(f"- Ranking the {len(res.get('pool') or [])} pool images by uncertainty took "
                     f"{res['uncertainty_s']:.0f} s (one model pass per image, windows overlapping by half).")  # fmt: skip
    for n in res.get("notes") or []:
        lines.append(f"- {n}")
    if res["missing"]:
        miss = sorted({(j["selection"], j["seed"]) for j in res["missing"]})
        lines.append(f"- Not run yet: {', '.join(f'{s} seed {k}' for s, k in miss)}.")
    lines += ["", "<details><summary>Chosen patches and held-out scores of each run</summary>", ""]
    for a in sorted(res["runs"], key=lambda a: (a["selection"], a["seed"])):
        p = a["provenance"]
        bef, aft = p.get("before") or {}, p.get("after") or {}
        ba = ""
        if bef.get("score") is not None and aft.get("score") is not None:
            ba = f"; held-out score {bef['score']:.3f} → {aft['score']:.3f}"
            if p.get("best_adapted") is not None:
                ba += f" (best adapted step {p['best_adapted']:.3f}"
                ba += ", so the source weights were kept)" if p.get("source_weights") else ")"
        boxes = ", ".join(f"{b['id']}@{tuple(b['origin'])}" + (f" ({b['score']:.2f})" if b.get("score") else "")
                          for b in a["boxes"])  # fmt: skip
        lines.append(f"- {a['selection']} seed {a['seed']}: {boxes}{ba}; adapted in {a['train_s']:.0f} s")
    lines += ["", "</details>"]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--data", default=str(rd.DATA), help="folder of the real data sets (default ../shared/realdata)")
    ap.add_argument("--dataset", default=str(DATASET), help="the DRIVE dataset folder (imported there if missing)")
    ap.add_argument("--work", default=str(WORK), help="target folders and adapted checkpoints")
    ap.add_argument("--checkpoint", default="vessel2d-random", help="source checkpoint (bundled name or path)")
    ap.add_argument("--k", type=int, default=5, help="patches per run (default 5)")
    ap.add_argument("--patch-size", type=int, default=128)
    ap.add_argument("--heldout", default="30", help="the shot image held out in every run (default 30)")
    ap.add_argument("--pool", type=int, default=None, help="only the first N pool images")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default 0 1 2")
    ap.add_argument("--method", default="finetune", choices=("finetune", "contrastive", "adversarial"))
    ap.add_argument("--steps", type=int, default=None, help="adaptation steps (default 200)")
    ap.add_argument("--n-test", type=int, default=None, help="only the first N test images")
    ap.add_argument("--quick", action="store_true", help="3 pool images, seed 0, 20 steps, 2 test images")
    ap.add_argument("--cache", default=None, help="JSON-lines file of finished proposals, runs and evaluations")
    ap.add_argument("--cached-only", action="store_true", help="run nothing: report what the cache has")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    ap.add_argument("--section", default=None, help="default patch-selection (patch-selection-quick with --quick)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the adaptation logs")
    a = ap.parse_args(argv)
    q = a.quick
    for k, v in {"seeds": [0] if q else [0, 1, 2], "steps": 20 if q else 200, "n_test": 2 if q else None,
                 "pool": 3 if q else None}.items():  # fmt: skip
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.section is None:
        a.section = "patch-selection-quick" if q else "patch-selection"
    return a


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    why = rd.available(SET, Path(a.data))
    if why and not (Path(a.dataset) / "manifest.json").is_file():
        print(f"patch_selection: skipped, {why}")
        return 0
    t0 = time.perf_counter()
    cache = rd.Cache(a.cache)
    res = benchmark(a, cache)
    wall = time.perf_counter() - t0
    cmd = ("python benchmarks/patch_selection.py " + " ".join(argv)).strip()
    run_key = rd.make_key(kind="patch-selection-run", section=a.section)
    if not a.cached_only:
        cache.put(run_key, {"command": cmd, "wall_s": wall, "date": time.strftime("%Y-%m-%d")})
    text = section(res, a, cmd, wall, computed=cache.get(run_key))
    print()
    print(text)
    print(f"wall time {wall / 60:.1f} min")
    if a.write:
        print(f"written {write_section(a.section, text)} (section {a.section})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
