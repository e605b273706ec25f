"""Real images with ground truth: the classical skeleton, every fitting bundled checkpoint and every adaptation
method, on fixed splits of four public data sets.

The data live in ``../shared/realdata`` (``--data``; its README.md names the sources): never bundled, never
copied into the repository, never tuned on their test split. The splits are fixed and never change:

| set | shot split (choices, adaptation shots + held-out) | test split (reported) |
|---|---|---|
| ``drive`` DRIVE fundus photos | images 21-30 | images 31-40 |
| ``vesselnn`` two-photon stacks | burgess2014_bbbDisruption, burgess2014_tgMouse, poon2015_BBB_Leakage | burgess2014_lowerRes_hiSNR, poon2015_plaqueVessels, santos2015_lowContrastVessels |
| ``diadem`` DIADEM OP confocal neurons | OP_1, OP_2 | OP_3, OP_4, OP_5 |
| ``spacenet`` SpaceNet Las Vegas road chip | 325 px tiles of the left half (x < 650) | the right half, whole |

Each set is converted once by the product's importers (``napari_vesselgraph.importers``) into a dataset folder
``<work>/data/<set>`` (default work folder ``runs/realdata``, git-ignored), with ``split`` ``train`` for the
shot split and ``test`` for the test split; it is rebuilt when the importers' code changes. Ground truth: DRIVE
and vesselNN the centre-line graphs of the manual masks (``import_masks``, DRIVE with its field-of-view masks,
vesselNN with its voxel size from ``metadata/*``), DIADEM the SWC traces (``import_swc``, z step 1),
SpaceNet the GeoJSON centre lines (``import_geojson``).

Methods, all measured in one run per set:

- ``skeleton``: the classical baseline (``inference.predict(method="skeleton")``); its settings (the defaults or
  one of ``baseline.presets`` x polarity auto/dark/bright in 2D) are chosen on the shot split;
- every bundled checkpoint with the set's number of spatial axes, source-only (2D RGB and grey models both
  fit the 2D sets); in 2D its zoom (automatic, 0.5, 0.25) is chosen on the shot split;
- ``contrastive`` / ``finetune`` / ``adversarial`` (``adapt.adapt``) from the source checkpoint (the bundled
  one best on the shot split, or ``--source``), with K labelled shot images and ``val_fraction`` 0.2 of the
  shot split held out (at least one image) to pick the step and the thresholds (never the test split); K = 1 and
  5 (``--shots``), seeds 0 1 2 (training seed = shot seed). Where the shot split is too small for K (vesselNN: 3
  images, DIADEM: 2) K is all the images left after the held-out one, and the table says so;
- ``translation``: a CycleGAN translator trained on the shot images that are not held out, without labels.
- ``calibrate``: no training: the source's node/edge thresholds and clean-up ``min_support`` chosen on the K shots
  (``adapt --method calibrate``), the held-out images measured before and after.

An adapted model sees the images at the scale at which its source is evaluated: when the source's chosen zoom
resamples the shot images, the adaptation reads a resampled copy of the shot split (``<work>/data/<set>@...``),
made exactly as ``predict(zoom=...)`` resamples, and the test images are predicted with the same zoom.

Choices are made by length quality on the shot split (at the set's matching radius). Metrics
(``metrics.evaluate``, every test image predicted whole): SMD with 400 even samples in pixels (raw, not
normalised by the image size as in the synthetic tables), node and edge F1 and junction F1 (branch points,
``metrics.junctions``) at the set's matching radius (junctions at twice it), length completeness / correctness /
quality at 3 px (the road-extraction convention), for SpaceNet also at its matching radius. Radii: 3 px, SpaceNet
12 px (its 30 cm roads are ~25 px wide). vesselNN is measured in voxels like the others (one test stack has no
known voxel size); SMD also in micrometres for the stacks whose voxel size is known.

    python benchmarks/real_data.py --quick                    # small honest version (2 test images, K=1, seed 0)
    python benchmarks/real_data.py --methods skeleton models --cache runs/realdata/cache.jsonl --write
    python benchmarks/real_data.py --sets drive --methods contrastive finetune --seeds 0 --cache runs/realdata/cache.jsonl
    python benchmarks/real_data.py --cache runs/realdata/cache.jsonl --cached-only --write   # report what is done

``--cache FILE`` (JSON lines) keeps every finished image evaluation and every finished adaptation run, keyed
by the settings, the checkpoint's file hash and the ground truth, so the grid runs in pieces (one set, one
method, one seed at a time) and one command reports it all. Changes to the adaptation or inference code are not
detected: start a new file after changing them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _report import cpu_name, write_section

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT.parent / "shared" / "realdata"
WORK = ROOT / "runs" / "realdata"
SETS = ("drive", "vesselnn", "diadem", "spacenet")
FOLDERS = {"drive": "drive-train", "vesselnn": "vesselnn", "diadem": "diadem-op", "spacenet": "spacenet-vegas"}
#: (shot split, test split) of every set: fixed, never changed
SPLITS = {
    "drive": ([str(i) for i in range(21, 31)], [str(i) for i in range(31, 41)]),
    "vesselnn": (
        ["burgess2014_bbbDisruption", "burgess2014_tgMouse", "poon2015_BBB_Leakage"],
        ["burgess2014_lowerRes_hiSNR", "poon2015_plaqueVessels", "santos2015_lowContrastVessels"],
    ),
    "diadem": (["OP_1", "OP_2"], ["OP_3", "OP_4", "OP_5"]),
    "spacenet": (["left"], ["right"]),
}
SPACENET_TILE = 325  # shot tiles of the left half (1300 x 650): 4 x 2 tiles
RADIUS = {"drive": 3.0, "vesselnn": 3.0, "diadem": 3.0, "spacenet": 12.0}  # matching radius, px
LENGTH_TOL = 3.0  # length completeness / correctness / quality tolerance, px (all sets)
SMD_POINTS = 400
VAL_FRACTION = 0.2  # share of the shot split held out by adapt (at least one image)
ZOOMS_2D = (("zoom auto", None), ("zoom 0.5", 0.5), ("zoom 0.25", 0.25))
#: 3D: native, ``predict(zoom="isotropic")`` and cubic voxels at twice the finest pixel size
#: (``inference.autozoom.isotropic_zoom(voxel, 0.5)``); ``["isotropic", f]`` values are resolved per image
ZOOMS_3D = (("native", 1.0), ("isotropic", ["isotropic", 1.0]), ("isotropic x0.5", ["isotropic", 0.5]))


def resolve_zoom(zoom, voxel):
    """A zoom option for one image: ``["isotropic", f]`` becomes that image's per-axis factors (none known:
    ``f`` on every axis); anything else is passed to ``predict`` as it is."""
    if isinstance(zoom, (list, tuple)) and len(zoom) == 2 and zoom[0] == "isotropic":
        from napari_vesselgraph.inference.autozoom import isotropic_zoom

        return isotropic_zoom(voxel, float(zoom[1]))
    return zoom
POLARITIES_2D = ("auto", "dark", "bright")
SHOT_METHODS = ("contrastive", "finetune", "adversarial", "calibrate")
ADAPT_METHODS = (*SHOT_METHODS, "translation")
KEYS = ("smd", "smd_um", "node_f1", "edge_f1", "junction_f1", "length_completeness", "length_correctness",
        "length_quality", "length_quality_wide")  # fmt: skip
NAMES = {"smd": "SMD px", "smd_um": "SMD µm", "node_f1": "node F1", "edge_f1": "edge F1", "junction_f1": "junction F1",
         "length_completeness": "completeness", "length_correctness": "correctness",
         "length_quality": "LQ 3 px", "length_quality_wide": "LQ 12 px"}  # fmt: skip


def quiet(_s):
    pass


# ----------------------------------------------------------------------------- the data sets (via the importers)
def available(name: str, data: Path) -> str | None:
    """None when the set's folder exists, else why it is skipped (one line)."""
    if not (data / FOLDERS[name]).is_dir():
        return f"{name}: skipped, {data / FOLDERS[name]} not found (the real data lives in ../shared/realdata)"
    return None


def vesselnn_voxels(data: Path) -> dict[str, tuple]:
    """Voxel size (z, y, x) in micrometres of each vesselNN stack whose OME-XML metadata gives it."""
    import re

    out = {}
    meta = data / FOLDERS["vesselnn"] / "metadata"
    for key in [*SPLITS["vesselnn"][0], *SPLITS["vesselnn"][1]]:
        f = meta / f"{key}_metadata.xml.txt"
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        got = {a: re.search(rf'PhysicalSize{a}="([0-9.]+)"', text) for a in "ZYX"}
        if all(got.values()):
            out[key] = tuple(float(got[a].group(1)) for a in "ZYX")
    return out


def _importers_sha() -> str:
    import napari_vesselgraph.importers as imp

    h = hashlib.sha256()
    for f in sorted(Path(imp.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _import_set(name: str, data: Path, out: Path) -> None:
    from napari_vesselgraph.importers import import_geojson, import_masks, import_swc

    shots, tests = SPLITS[name]
    d = data / FOLDERS[name]
    split = {**{i: "train" for i in shots}, **{i: "test" for i in tests}}
    if name == "drive":
        import_masks(d / "images", d / "1st_manual", out, pattern="{id}_training.tif", mask_pattern="{id}_manual1.gif",
                     fov=d / "mask", fov_pattern="{id}_training_mask.gif", split=split, domain="drive",
                     ids=[*shots, *tests])  # fmt: skip
    elif name == "vesselnn":
        vox = vesselnn_voxels(data)
        for key in [*shots, *tests]:
            img = next((d / "images").glob(f"{key}_*.tif"))
            lab = next((d / "labels").glob(f"{key}_*.tif"))
            import_masks(img, lab, out, pattern="{id}_BM4D_denoised.tif", scale=vox.get(key), split=split[key],
                         domain="vesselnn")  # fmt: skip
    elif name == "diadem":
        for key in [*shots, *tests]:
            import_swc(d / f"{key}.tif", d / f"{key}.swc", out, z_step=1.0, split=split[key], domain="diadem",
                       sample_id=key)  # fmt: skip
    elif name == "spacenet":
        tif, gj = d / "road_mask_input.tif", d / "sample_roads_for_masking.geojson"
        import_geojson(tif, gj, out, tile=SPACENET_TILE, region="left", split="train", domain="spacenet")
        import_geojson(tif, gj, out, region="right", split="test", domain="spacenet")


def prepare_set(name: str, data: Path, work: Path, log=print, rebuild: bool = True) -> Path:
    """The set's dataset folder ``<work>/data/<name>`` (imported once; again when the importers change, unless
    ``rebuild`` is False: a report reads the folder the runs used)."""
    out = work / "data" / name
    if not rebuild and (out / "manifest.json").is_file():
        return out
    stamp = work / "data" / f"{name}.stamp.json"
    want = {"importers": _importers_sha(), "splits": SPLITS[name], "tile": SPACENET_TILE, "data": str(data.resolve())}
    if (out / "manifest.json").is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == json.loads(json.dumps(want)):  # tuples read back as lists
                return out
        except json.JSONDecodeError:
            pass
    t0 = time.perf_counter()
    tmp = work / "data" / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    _import_set(name, data, tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    stamp.write_text(json.dumps(want))
    log(f"{name}: imported into {out} in {time.perf_counter() - t0:.1f}s")
    return out


def graph_sha(g) -> str:
    h = hashlib.sha256(np.ascontiguousarray(np.asarray(g.nodes, np.float64)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(g.edges, np.int64)).tobytes())
    return h.hexdigest()[:16]


def load_split(name: str, folder: Path, split: str, data: Path) -> list[dict]:
    """``[{id, image, graph, voxel, gt}]`` of one split (``"train"``: shots, ``"test"``) of a set's folder."""
    from napari_vesselgraph.synth import read_dataset

    vox = vesselnn_voxels(data) if name == "vesselnn" else {}
    recs = sorted(read_dataset(folder, split=split), key=lambda r: r.id)
    return [{"id": r.id, "image": r.image, "graph": r.graph, "voxel": vox.get(r.id), "gt": graph_sha(r.graph)}
            for r in recs]  # fmt: skip


# ----------------------------------------------------------------------------- scoring
def score(pred, gt, name: str, voxel=None) -> dict:
    """The metrics of one predicted graph (pixels; ``smd_um`` where the voxel size is known)."""
    from napari_vesselgraph.graph import VesselGraph
    from napari_vesselgraph.metrics import evaluate, length_metrics, smd

    r = RADIUS[name]
    m = evaluate(pred, gt, radius=r, smd_points=SMD_POINTS, length_tol=LENGTH_TOL,
                 metrics=["prf", "smd", "length", "junctions"])  # fmt: skip
    if r != LENGTH_TOL:
        m["length_quality_wide"] = float(length_metrics(pred, gt, tol=r)["length_quality"])
    if voxel is not None:
        phys = lambda g: VesselGraph(g.nodes, g.edges, scale=tuple(float(v) for v in voxel))
        m["smd_um"] = float(smd(phys(pred), phys(gt), n_points=SMD_POINTS, physical=True))
    return m


def predict_and_score(rec, name, method, predictor=None, zoom=None, params=None) -> dict:
    from napari_vesselgraph.inference import predict

    t = time.perf_counter()
    kw = dict(params or {})
    if method == "model":
        kw.update(predictor=predictor, zoom=resolve_zoom(zoom, rec["voxel"]))
    g = predict(rec["image"], method=method, scale=rec["voxel"], **kw)
    secs = time.perf_counter() - t
    m = score(g, rec["graph"], name, rec["voxel"])
    zf = (g.metadata or {}).get("zoom_factor")
    m.update(seconds=secs, nodes=float(g.n_nodes), zoom_factor=[float(z) for z in zf] if zf else None)
    return m


# ----------------------------------------------------------------------------- cache
class Cache:
    """JSON-lines store ``{"key": ..., "result": ...}``; a half-written last line is skipped (run again)."""

    def __init__(self, path):
        self.path = Path(path) if path else None
        self.rows: dict[str, dict] = {}
        if self.path and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(r, dict) and "key" in r and "result" in r:
                    self.rows[r["key"]] = r["result"]

    def get(self, key: str):
        return self.rows.get(key)

    def put(self, key: str, result: dict) -> None:
        self.rows[key] = result
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"key": key, "result": result}, default=float) + "\n"
            # one O_APPEND write per row: pieces of the grid may run at once on the same file
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":  # after a half-written line, start a new one
                    line = "\n" + line
                os.write(fd, line.encode())
            finally:
                os.close(fd)


def make_key(**fields) -> str:
    return json.dumps(fields, sort_keys=True, default=str)


def checkpoint_sha(path) -> str:
    """Hash of a checkpoint's files (weights + metadata)."""
    p = Path(path)
    h = hashlib.sha256()
    for f in sorted(p.parent.glob(p.stem + ".*")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- methods
def checkpoints_for(ndim: int, candidates: dict | None = None) -> list[tuple[str, str]]:
    """``[(name, path)]``: the bundled checkpoints with ``ndim`` spatial axes (new ones are picked up), then the
    ``candidates`` (``{name: path}``, checkpoints not bundled, e.g. a training run's best.safetensors) that have."""
    from napari_vesselgraph.checkpoints import list_bundled, read_metadata

    def ndim_of(meta) -> int:
        meta = meta or {}
        return int(meta.get("ndim") or (meta.get("model") or {}).get("ndim") or 0)

    bundled = [(e["name"], str(e["path"]), e.get("meta")) for e in list_bundled() if not e.get("error")]
    clash = set(candidates or {}) & {n for n, _, _ in bundled}
    if clash:
        raise SystemExit(f"--candidates: {sorted(clash)} already name bundled checkpoints; choose other names")
    cands = [(n, str(p), read_metadata(p)) for n, p in (candidates or {}).items()]
    return [(n, p) for n, p, meta in bundled + cands if ndim_of(meta) == ndim]


def is_adapted(path) -> bool:
    from napari_vesselgraph.checkpoints import read_metadata

    ad = (read_metadata(path) or {}).get("adaptation") or {}
    return ad.get("method") not in (None, "none")


def extra_training_data(path) -> list[str]:
    from napari_vesselgraph.checkpoints import read_metadata

    meta = read_metadata(path) or {}
    cfg = (meta.get("training") or {}).get("config") or {}
    # a segmentation checkpoint (vesselgraph train-seg) names its dataset folders "train_data"
    return [str(x) for x in (cfg.get("extra_data") or meta.get("train_data") or [])]


def skeleton_options(ndim: int, quick: bool) -> list[tuple[str, dict]]:
    from napari_vesselgraph.baseline.presets import PRESETS

    if quick:
        return [("defaults", {})]
    base = [("defaults", {})] + [(n, dict(p)) for n, p in PRESETS.items() if ("3d" in n) == (ndim == 3)]
    if ndim == 3:
        return base
    return [(f"{n}/{pol}" if pol != "auto" else n, {**p, "polarity": pol}) for n, p in base for pol in POLARITIES_2D]


def model_options(ndim: int, quick: bool) -> list[tuple[str, float | None]]:
    if ndim == 3:  # as the stack is, or resampled to cubic voxels (from its voxel size; none known: as it is)
        return [("native", 1.0)] if quick else list(ZOOMS_3D)
    return list(ZOOMS_2D[:1] if quick else ZOOMS_2D)


# ----------------------------------------------------------------------------- units of work
def eval_unit(u: dict, cache_get, put, log=print) -> dict | None:
    """One (set, skeleton or checkpoint) row: its choice on the shot split, then the test split.

    ``u["run"]`` False: only what the cache has (``None`` when something is missing). ``u["test"]`` False: the
    shot split only (a checkpoint whose test row was not asked for, to choose the adaptation source)."""
    import torch

    torch.set_num_threads(u["threads"])
    name, label, method, ckpt = u["set"], u["label"], u["method"], u["ckpt"]
    folder, data = Path(u["folder"]), Path(u["data"])
    ndim = int(json.loads((folder / "manifest.json").read_text())["ndim"])
    tag = checkpoint_sha(ckpt) if ckpt else "skeleton"
    options = skeleton_options(ndim, u["quick"]) if method == "skeleton" else model_options(ndim, u["quick"])
    if u.get("fixed"):  # one option, not chosen: e.g. the scale the adaptation runs start from
        options = [o for o in options if o[0] == u["fixed"]]
    key_label = u.get("key_label", label)  # the cache keys of the checkpoint's own row
    cached_split: dict[str, list] = {}
    predictor = None

    def rows(split, opt_name, opt):
        nonlocal predictor
        if split not in cached_split:
            cached_split[split] = load_split(name, folder, "train" if split == "shot" else "test", data)
        recs = cached_split[split]
        if split == "test" and u["n_test"]:
            recs = recs[: u["n_test"]]
        out = []
        for rec in recs:
            key = make_key(kind="image", set=name, split=split, id=rec["id"], gt=rec["gt"], label=key_label, ckpt=tag,
                           option=opt_name, params=opt, radius=RADIUS[name], tol=LENGTH_TOL)  # fmt: skip
            r = cache_get(key)
            if r is None:
                if not u["run"]:
                    return None
                if method == "model" and predictor is None:
                    from napari_vesselgraph.model.predictor import make_predictor

                    predictor = make_predictor(ckpt, device=u["device"])
                r = predict_and_score(rec, name, method, predictor=predictor,
                                      zoom=opt if method == "model" else None,
                                      params=opt if method == "skeleton" else None)  # fmt: skip
                put(key, r)
                if split == "test":
                    log(f"  {name} {label} [{opt_name}] {rec['id']}: LQ {r['length_quality']:.3f} SMD "
                        f"{r['smd']:.1f} junction F1 {r['junction_f1']:.3f} ({r['seconds']:.1f}s)")  # fmt: skip
            out.append(r)
        return out

    t0 = time.perf_counter()
    try:
        shot_lq = {}
        for opt_name, opt in options:
            got = rows("shot", opt_name, opt)
            if got is None:
                return None
            lq_key = "length_quality_wide" if "length_quality_wide" in got[0] else "length_quality"
            shot_lq[opt_name] = float(np.mean([r[lq_key] for r in got]))
            if u["run"] and len(options) > 1:
                log(f"  {name} {label} shots {opt_name}: length quality {shot_lq[opt_name]:.3f}")
        chosen = max(options, key=lambda o: shot_lq[o[0]])  # first best on ties
        shot_rows = rows("shot", *chosen)
        result = {"set": name, "label": label, "method": method, "ckpt": ckpt, "ckpt_sha": tag, "choice": chosen[0],
                  "choice_value": chosen[1], "shot_lq": shot_lq,
                  "shot_zoom": {rec["id"]: r.get("zoom_factor") for rec, r in zip(cached_split["shot"], shot_rows)},
                  "per_image": None}  # fmt: skip
        if u["test"]:
            per = rows("test", *chosen)
            if per is None:
                return None
            result["per_image"] = per
            result["test_ids"] = [rec["id"] for rec in cached_split["test"]][: len(per)]
        if u["run"]:
            log(f"{name} {label}: chosen {chosen[0]} (shot length quality {shot_lq[chosen[0]]:.3f}); "
                f"{time.perf_counter() - t0:.0f}s")  # fmt: skip
        return result
    finally:
        if predictor is not None:
            predictor.close()


def _unit_in_worker(u: dict, cache_rows: dict):
    """``eval_unit`` in a worker process: reads the given cache rows, returns the new ones."""
    new: list = []
    res = eval_unit(u, lambda k: cache_rows.get(k) or dict(new).get(k), lambda k, r: new.append((k, r)))
    return res, new


def plan_adapt(name: str, pool: int, args, source: dict, target: Path, test_ids: list[str]) -> list[dict]:
    """The adaptation jobs of one set: (method, K, seed); K capped at what the shot split allows."""
    from napari_vesselgraph.adapt.data import n_heldout_for
    from napari_vesselgraph.model.thresholds import BRIGHTNESS_GRID

    # in the key of the labelled jobs: the min_brightness values their held-out selection tries (since 2026-12-04)
    brightness_key = {"brightness_grid": list(BRIGHTNESS_GRID)}
    n_hold = n_heldout_for(pool, VAL_FRACTION)
    left = pool - n_hold
    zoom, zoom_value = source["choice"], source["choice_value"]
    if isinstance(zoom_value, (list, tuple)):  # adapt takes one factor for the whole set: 3D runs adapt natively
        zoom, zoom_value = "native", 1.0
    base = {"set": name, "source": source["label"], "ckpt": source["ckpt"], "ckpt_sha": source["ckpt_sha"],
            "zoom": zoom, "zoom_value": zoom_value, "target": str(target),
            "resample": "adapt zoom",
            "data_sha": dataset_sha(target), "test_ids": test_ids, "val_fraction": VAL_FRACTION}  # fmt: skip
    jobs = []
    for seed in args.seeds:
        ks = []
        for k in args.shots:
            ke = min(k, left)
            if ke >= 1 and ke not in [x[0] for x in ks]:
                ks.append((ke, k))
        for method in args.adapt_methods:
            if method == "translation":
                from napari_vesselgraph.adapt.translate import DEFAULT_TRANSLATOR

                jobs.append({**base, "method": method, "K": 0, "K_asked": 0, "seed": seed,
                             "steps": args.translation_steps, "unlabelled": left,
                             "translator": {**DEFAULT_TRANSLATOR, **args.translator}})  # fmt: skip (in the cache key)
                continue
            for ke, k in ks:
                asked = [a for a in args.shots if min(a, left) == ke]
                jobs.append({**base, "method": method, "K": ke, "K_asked": asked, "seed": seed, "steps": args.steps,
                             "pool": pool, "held_out": n_hold, **brightness_key})  # fmt: skip
    return jobs


def calibrated_settings(path) -> str:
    """``; node 0.7, edge 0.5, min_support 0.9, min_brightness 0.8``: what a calibrate run chose, read from its
    checkpoint (empty when the file is gone)."""
    if not path or not Path(path).exists():
        return ""
    from napari_vesselgraph.checkpoints import read_metadata

    m = read_metadata(path)
    th, pp = m.get("thresholds") or {}, m.get("postprocess") or {}
    parts = [f"node {th['node']:g}, edge {th['edge']:g}"] if "node" in th and "edge" in th else []
    parts += [f"{k} {pp[k]:g}" for k in ("min_support", "min_brightness") if k in pp]
    return "; chose " + ", ".join(parts) if parts else ""


def translator_label(job: dict) -> str:
    """`` (residual=True)``: a translation run's translator settings that differ from today's defaults."""
    if job.get("method") != "translation" or not job.get("translator"):
        return ""
    from napari_vesselgraph.adapt.translate import DEFAULT_TRANSLATOR

    diff = {k: v for k, v in job["translator"].items() if DEFAULT_TRANSLATOR.get(k) != v}
    return f" ({', '.join(f'{k}={v}' for k, v in sorted(diff.items()))})" if diff else ""


def dataset_sha(folder: Path) -> str:
    """Hash of the train split (images and graphs) a folder gives adapt."""
    m = json.loads((Path(folder) / "manifest.json").read_text())
    h = hashlib.sha256()
    for s in sorted(m["samples"], key=lambda s: s["id"]):
        if s["split"] == "train":
            for k in ("image", "graph"):
                h.update((Path(folder) / s[k]).read_bytes())
    return h.hexdigest()[:16]


def adapt_key(job: dict) -> str:
    return make_key(
        kind="adapt",
        **{
            k: v
            for k, v in job.items()
            if k not in ("target", "ckpt", "threads", "device", "work", "data", "folder", "verbose", "K_asked")
        },
    )


def run_adapt_job(job: dict) -> dict:
    """Adapt (``adapt.adapt``), then predict and score the set's test images with the adapted checkpoint."""
    import torch

    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.checkpoints import read_metadata
    from napari_vesselgraph.model.predictor import make_predictor

    torch.set_num_threads(job["threads"])
    out = (
        Path(job["work"])
        / "adapted"
        / (f"{job['set']}-{job['source']}-{job['method']}-k{job['K']}-s{job['seed']}-{job['steps']}steps.safetensors")
    )
    cfg = {"method": job["method"], "checkpoint": job["ckpt"], "target": job["target"], "seed": job["seed"],
           "shot_seed": job["seed"], "val_fraction": job["val_fraction"], "steps": job["steps"], "out": str(out),
           "device": job["device"], "threads": job["threads"]}  # fmt: skip
    if job["method"] != "translation":
        cfg["shots"] = job["K"]
    else:
        cfg["translator"] = dict(job["translator"])
    # adapted at the scale the test images are predicted at: the zoom chosen for the source on the shots
    # ("auto": per image, as predict does; a factor; 1 in 3D)
    zv = job.get("zoom_value")
    cfg["zoom"] = "auto" if zv is None else float(zv)
    t0 = time.perf_counter()
    path = adapt(cfg, log=print if job.get("verbose") else quiet)
    train_s = time.perf_counter() - t0
    ad = read_metadata(path).get("adaptation") or {}
    recs = [
        r for r in load_split(job["set"], Path(job["folder"]), "test", Path(job["data"])) if r["id"] in job["test_ids"]
    ]
    pred = make_predictor(path, device=job["device"])
    try:
        per = [predict_and_score(r, job["set"], "model", predictor=pred, zoom=job["zoom_value"]) for r in recs]
    finally:
        pred.close()
    prov = {k: ad.get(k) for k in ("shot_ids", "heldout_ids", "unlabelled_ids", "steps_done", "before", "after")}
    return {"per_image": per, "train_s": train_s, "eval_s": float(sum(p["seconds"] for p in per)),
            "provenance": prov, "checkpoint": str(path)}  # fmt: skip


# ----------------------------------------------------------------------------- the benchmark
def run_pool(fn, items, jobs: int):
    """``fn(item)`` for every item, ``jobs`` at a time in worker processes; yields ``(index, result)`` as they end."""
    if jobs <= 1:
        for i, it in enumerate(items):
            yield i, fn(*it) if isinstance(it, tuple) else fn(it)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(fn, *it) if isinstance(it, tuple) else pool.submit(fn, it): i for i, it in enumerate(items)}
        for f in as_completed(futs):
            yield futs[f], f.result()


def benchmark(args, cache: Cache, log=print) -> tuple[dict, list[str]]:
    """Every asked row of every available set: ``({set: {...}}, notes)``."""
    data, work = Path(args.data), Path(args.work)
    results, notes = {}, []
    for name in args.sets:
        why = available(name, data)
        if why:
            log(why)
            notes.append(why)
            continue
        t_set = time.perf_counter()
        folder = prepare_set(name, data, work, log=log, rebuild=not args.cached_only)
        manifest = json.loads((folder / "manifest.json").read_text())
        ndim = int(manifest["ndim"])
        n_shot = sum(s["split"] == "train" for s in manifest["samples"])
        test_ids = sorted(s["id"] for s in manifest["samples"] if s["split"] == "test")[: args.n_test or None]
        log(f"{name}: {n_shot} shot / {len(test_ids)} test images ({folder})")
        cks = checkpoints_for(ndim, args.candidates)
        want_rows = [("skeleton", "skeleton", None)] if "skeleton" in args.row_methods else []
        want_rows += [(n, "model", p) for n, p in cks if "models" in args.row_methods or n in args.row_methods]
        need_source = bool(args.adapt_methods) and args.source.get(name) is None
        units = []
        for label, method, ckpt in want_rows:
            units.append({"label": label, "method": method, "ckpt": ckpt, "test": True})
        if need_source:  # shot-split rows of every checkpoint, to choose the source
            have = {u["label"] for u in units}
            units += [{"label": n, "method": "model", "ckpt": p, "test": False} for n, p in cks if n not in have]
        elif args.adapt_methods and args.source[name] not in {u["label"] for u in units}:
            src = dict(cks).get(args.source[name])
            if src is None:
                raise SystemExit(f"--source {name}={args.source[name]}: no bundled {ndim}D checkpoint of that name")
            units.append({"label": args.source[name], "method": "model", "ckpt": src, "test": False})
        common = {"set": name, "folder": str(folder), "data": str(data), "quick": args.quick, "n_test": args.n_test,
                  "threads": args.threads, "device": args.device, "run": not args.cached_only}  # fmt: skip
        units = [{**common, **u} for u in units]
        rows: dict[str, dict] = {}
        missing: list[str] = []
        if args.jobs <= 1 or args.cached_only:
            for u in units:
                r = eval_unit(u, cache.get, cache.put, log=log)
                (missing.append(u["label"]) if r is None else rows.__setitem__(u["label"], r))
        else:
            for i, (r, new) in run_pool(_unit_in_worker, [(u, cache.rows) for u in units], args.jobs):
                for k, v in new:
                    cache.put(k, v)
                (missing.append(units[i]["label"]) if r is None else rows.__setitem__(units[i]["label"], r))
        # adaptation
        adapt_rows, adapt_missing, source, jobs = [], [], None, []
        if args.adapt_methods:
            cand = [r for r in rows.values() if r["method"] == "model"]
            if args.source.get(name):
                cand = [r for r in cand if r["label"] == args.source[name]]
            else:  # a candidate checkpoint, or a bundled one adapted on a real set (it saw its shots): never the
                # default source
                cand = [r for r in cand if r["label"] not in args.candidates]
                cand = [r for r in cand if not is_adapted(r["ckpt"])] or cand
            if cand:
                source = max(cand, key=lambda r: r["shot_lq"][r["choice"]])
                if isinstance(source["choice_value"], (list, tuple)):  # 3D adaptation starts at native scale: its row
                    u = {**common, "label": f"{source['label']} (native)", "key_label": source["label"],
                         "method": "model", "ckpt": source["ckpt"], "test": True, "fixed": "native"}  # fmt: skip
                    r = eval_unit(u, cache.get, cache.put, log=log)
                    (missing.append(u["label"]) if r is None else rows.__setitem__(u["label"], r))
                # adapt resamples the shots itself (zoom=, the source's zoom chosen on the shots): graphs scaled
                # and re-spaced like the training graphs, as `vesselgraph adapt --zoom` does for a user
                target = folder
                jobs = plan_adapt(name, n_shot, args, source, target, test_ids)
                extra = {"work": str(work), "data": str(data), "folder": str(folder), "threads": args.threads,
                         "device": args.device, "verbose": args.verbose}  # fmt: skip
                todo = []
                for j in jobs:
                    res = cache.get(adapt_key(j))
                    if res is not None:
                        adapt_rows.append({**j, **res})
                    elif args.cached_only:
                        adapt_missing.append(j)
                    else:
                        todo.append({**j, **extra})
                if todo:
                    log(f"{name}: {len(todo)} adaptation run(s) from {source['label']} ({source['choice']}), "
                        f"{len(jobs) - len(todo)} from the cache; {args.jobs} at a time")  # fmt: skip
                for i, res in run_pool(run_adapt_job, todo, args.jobs):
                    j = {k: v for k, v in todo[i].items() if k not in extra}
                    cache.put(adapt_key(j), res)
                    adapt_rows.append({**j, **res})
                    m = mean_of(res["per_image"])
                    log(f"  {name} {j['method']} K={j['K']} seed={j['seed']}: LQ {m['length_quality']:.3f} SMD "
                        f"{m['smd']:.1f} junction F1 {m['junction_f1']:.3f} (adapted in {res['train_s']:.0f}s, "
                        f"tested in {res['eval_s']:.0f}s)")  # fmt: skip
            else:
                missing.append("adaptation source (shot-split rows of the checkpoints)")
        results[name] = {"rows": rows, "missing": missing, "adapt": adapt_rows, "adapt_missing": adapt_missing,
                         "source": source, "n_shot": n_shot, "test_ids": test_ids, "ndim": ndim,
                         "extra_data": {n: extra_training_data(p) for n, p in cks},
                         "seconds": time.perf_counter() - t_set}  # fmt: skip
        log(f"{name}: done in {(time.perf_counter() - t_set) / 60:.1f} min")
    return results, notes


def mean_of(per: list[dict]) -> dict:
    out = {}
    for k in (*KEYS, "seconds"):
        vals = [p[k] for p in per if p.get(k) is not None]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def summary_rows(res: dict) -> list[dict]:
    """Table rows of one set: single runs (± over the test images), adaptation (± over the seeds)."""
    out = []
    for label, r in res["rows"].items():
        if r["per_image"] is None:
            continue
        per = r["per_image"]
        mean = mean_of(per)
        std = {k: float(np.std([p[k] for p in per if p.get(k) is not None])) for k in mean}
        out.append({"method": label, "K": "-", "runs": "1", "choice": r["choice"], "mean": mean, "std": std,
                    "train_s": None, "over": "images"})  # fmt: skip
    groups: dict[tuple, list] = {}
    for a in res["adapt"]:
        groups.setdefault((a["method"], a["K"], translator_label(a)), []).append(a)
    order = {m: i for i, m in enumerate(ADAPT_METHODS)}
    for (method, k, tl), runs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
        means = [mean_of(a["per_image"]) for a in runs]
        mean = {key: float(np.mean([m[key] for m in means])) for key in means[0]}
        std = {key: float(np.std([m[key] for m in means])) for key in means[0]}
        a0 = runs[0]
        if method == "translation":
            kl = f"0 ({a0['unlabelled']} unlabelled)"
        else:
            asked = a0["K_asked"]
            kl = str(k) if asked == [k] else f"{k} (K={'/'.join(map(str, asked))} asked: all {k} left)"
        out.append({"method": f"{method}{tl} ← {a0['source']}", "K": kl, "runs": str(len(runs)), "choice": a0["zoom"],
                    "mean": mean, "std": std, "train_s": float(np.mean([a["train_s"] for a in runs])),
                    "over": "seeds", "seeds": sorted(a["seed"] for a in runs)})  # fmt: skip
    return out


def set_table(name: str, res: dict) -> list[str]:
    keys = [
        k for k in KEYS if (k != "smd_um" or name == "vesselnn") and (k != "length_quality_wide" or name == "spacenet")
    ]
    rows = summary_rows(res)
    skel = next((r for r in rows if r["method"] == "skeleton"), None)
    lq = "length_quality_wide" if "length_quality_wide" in keys else "length_quality"
    head = ["method", "K", "runs", "choice (shots)", *[NAMES[k] for k in keys], f"Δ {NAMES[lq]} vs skeleton",
            "s/image", "adapt s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], r["K"], r["runs"], r["choice"]]
        for k in keys:
            cells.append(f"{r['mean'][k]:.3f} ± {r['std'][k]:.3f}" if k in r["mean"] else "-")
        if skel is not None and r is not skel:
            d = r["mean"][lq] - skel["mean"][lq]
            cells.append(f"{d:+.3f}" + (" (loses)" if d < 0 else ""))
        else:
            cells.append("-")
        cells.append(f"{r['mean']['seconds']:.1f}")
        cells.append("-" if r["train_s"] is None else f"{r['train_s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


TITLE = "Real images: skeleton, bundled checkpoints and adaptation on fixed test splits"


def section(results: dict, notes: list[str], cmd: str, args) -> str:
    lines = [
        f"## {args.title}",
        "",
        f"- Command: `{cmd}`",
        (
            f"- Date: {time.strftime('%Y-%m-%d')}; machine: {os.cpu_count()} CPU cores, {cpu_name()}; "
            f"{args.threads} torch thread(s) per run, {args.jobs} run(s) at once; device {args.device}."
        ),
        (
            "- Data: `../shared/realdata` (DRIVE, Staal et al. 2004; vesselNN, Teikari et al. 2016; DIADEM Olfactory "
            "Projection Fibers; SpaceNet-3 Las Vegas chip from the solaris sample data, imagery CC BY-SA 4.0), converted "
            "by `vesselgraph`'s importers. Fixed splits (shot → test): DRIVE 21–30 → 31–40; vesselNN bbbDisruption, "
            "tgMouse, BBB_Leakage → lowerRes_hiSNR, plaqueVessels, santos2015_lowContrastVessels; DIADEM OP_1–2 → "
            f"OP_3–5; SpaceNet {SPACENET_TILE} px tiles of the left half → the right half (1300 × 650). Every number "
            "below is on the TEST split; every choice (skeleton settings, zoom, adaptation source, the adapted step and "
            "thresholds) was made on the shot split only."
        ),
        (
            "- Metrics: SMD in pixels with 400 even samples (raw, not normalised by the image size as the synthetic "
            "tables are), for vesselNN also in µm on the test stacks with a known voxel size (lowerRes_hiSNR 1.59 µm, "
            "plaqueVessels 2.485 µm in x/y, 5 µm in z; santos has none); node / edge / junction F1 at the set's "
            "matching radius (3 px; SpaceNet 12 px, its roads are ~25 px wide), junctions (degree ≥ 3, close ones "
            "merged) at twice it; length completeness / correctness / quality (LQ) at 3 px as in road extraction "
            "(SpaceNet also at 12 px). vesselNN and DIADEM are measured in voxels. Node and edge F1 depend on how densely "
            "a method places nodes."
        ),
        (
            "- `skeleton` and checkpoint rows: one run, mean ± std over the test images. Adaptation rows (`method ← "
            "source`): mean over the test images per run, then mean ± std over the seeds (training seed = shot seed); "
            f"K labelled shot images, {int(VAL_FRACTION * 100)} % of the shot split (at least one image) held out to "
            "choose the step and thresholds; translation uses the shot images that are not held out, without labels. "
            "`adapt s`: wall time of one adaptation. `Δ LQ vs skeleton` (LQ 12 px for SpaceNet): rows that lose to the skeleton stay in the "
            "table."
        ),
        (
            "- Skeleton settings tried on the shot split: its defaults and every `baseline.presets` entry of the "
            "set's dimension, in 2D each with polarity auto / dark / bright (15), in 3D as they are (3); model zoom "
            "in 2D: automatic (`predict`'s default), 0.5, 0.25; in 3D: native, `isotropic` (`predict(zoom=\"isotropic\")`: "
            "z resampled to cubic voxels from the stack's voxel size) and `isotropic x0.5` (cubic voxels at twice the "
            "x/y pixel size); a stack without a voxel size (vesselNN santos, DIADEM) is read as isotropic. 3D "
            "adaptation runs at native scale whatever the source's choice. SpaceNet's test split is one image, so "
            "its single-run rows have no spread."
        ),
        (
            "- DIADEM traces one neuron per stack while other fibres are visible: correctness and precision-type figures "
            "count those as false detections for every method alike."
        ),
        "",
    ]
    missing_total = []
    for name, res in results.items():
        src = res["source"]
        lines += [f"### {name} (test: {len(res['test_ids'])} images; shot split: {res['n_shot']} images)", ""]
        lines += set_table(name, res)
        lines.append("")
        extra = {n: x for n, x in res["extra_data"].items() if x}
        for n, x in extra.items():
            lines.append(f"- `{n}` was trained with real images besides synthetic ones ({', '.join(x)}); none of a "
                         "test split.")  # fmt: skip
        if src is not None and res["adapt"]:
            lines.append(f"- Adaptation source: `{src['label']}` (best shot-split length quality among the bundled "
                         f"checkpoints), at {src['choice']}"
                         + (f"; the adaptation runs start from it at native scale (row `{src['label']} (native)`)."
                            if isinstance(src["choice_value"], (list, tuple)) else "."))  # fmt: skip
        if res["missing"]:
            lines.append(f"- Not in the cache (not run yet): {', '.join(res['missing'])}.")
        if res["adapt_missing"]:
            miss = sorted({(j["method"], j["K"], j["seed"]) for j in res["adapt_missing"]})
            missing_total += [(name, m) for m in miss]
            lines.append(f"- Adaptation runs not done yet: {len(miss)} ("
                         + ", ".join(f"{m} K={k} seed {s}" for m, k, s in miss) + ").")  # fmt: skip
        lines.append("")
        if res["adapt"]:
            lines += ["<details><summary>" + name + ": shot / held-out images of each adaptation run</summary>", ""]
            for a in sorted(res["adapt"], key=lambda a: (a["method"], a["K"], translator_label(a), a["seed"])):
                p = a["provenance"]
                used = p.get("unlabelled_ids") if a["method"] == "translation" else p.get("shot_ids")
                bef, aft = p.get("before") or {}, p.get("after") or {}
                ba = ""
                if bef.get("score") is not None and aft.get("score") is not None:
                    ba = f"; held-out score {bef['score']:.3f} → {aft['score']:.3f}"
                if aft.get("min_support") is not None:  # chosen on the held-out images (inference.support)
                    ba += f"; min_support {aft['min_support']:g}"
                if aft.get("min_brightness") is not None:
                    ba += f"; min_brightness {aft['min_brightness']:g}"
                elif a["method"] == "calibrate":  # chosen on the shots: recorded in the calibrated checkpoint
                    ba += calibrated_settings(a.get("checkpoint"))
                lines.append(f"- {a['method']}{translator_label(a)} K={a['K']} seed {a['seed']}: "
                             f"{'unlabelled ' if a['method'] == 'translation' else ''}"
                             f"{used}; held out {p.get('heldout_ids')}; "
                             f"{'no training' if a['method'] == 'calibrate' else str(a['steps']) + ' steps'}, adapted in "
                             f"{a['train_s']:.0f} s{ba}")  # fmt: skip
            lines += ["", "</details>", ""]
    for n in notes:
        lines.append(f"- {n}")
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--data", default=str(DATA), help="folder of the real data sets (default ../shared/realdata)")
    ap.add_argument("--work", default=str(WORK), help="dataset folders and adapted checkpoints (default runs/realdata)")
    ap.add_argument("--methods", nargs="+", default=None,
                    help="rows to run: skeleton, models (every fitting bundled checkpoint) or checkpoint names, and "
                    f"adaptation methods {', '.join(ADAPT_METHODS)} (default all)")  # fmt: skip
    ap.add_argument(
        "--source",
        nargs="+",
        default=[],
        metavar="SET=CHECKPOINT",
        help="adaptation source per set (default: the bundled checkpoint best on the shot split)",
    )
    ap.add_argument(
        "--candidates",
        nargs="+",
        default=[],
        metavar="NAME=PATH",
        help="checkpoints not bundled (e.g. runs/x/best.safetensors) measured as rows named NAME beside the bundled "
        "ones (rows of 'models'); a candidate is never chosen as the adaptation source unless --source names it",
    )
    ap.add_argument("--shots", nargs="+", type=int, default=None, help="K values (default 1 5)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="adaptation seeds (default 0 1 2)")
    ap.add_argument("--steps", type=int, default=None, help="adaptation steps (default 300)")
    ap.add_argument("--translation-steps", type=int, default=None, help="default 1000")
    ap.add_argument(
        "--translator",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="translator settings of the translation runs other than the defaults (adapt.translate."
        "DEFAULT_TRANSLATOR), e.g. residual=false (the default before 2026-12-04); rows then say them",
    )
    ap.add_argument("--n-test", type=int, default=None, help="only the first N test images of each set")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="2 test images per set, no choice grid, K=1, seed 0, 20 steps (translation 40)",
    )
    ap.add_argument("--cache", default=None, help="JSON-lines file of finished evaluations and adaptation runs")
    ap.add_argument("--cached-only", action="store_true", help="run nothing: report what the cache has, list the rest")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once in worker processes (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    ap.add_argument("--title", default=TITLE, help="the section's heading (default: %(default)s)")
    ap.add_argument("--section", default=None, help="section key (default real-data; real-data-quick with --quick)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the adaptation logs")
    a = ap.parse_args(argv)
    q = a.quick
    for k, v in {"shots": [1] if q else [1, 5], "seeds": [0] if q else [0, 1, 2], "steps": 20 if q else 300,
                 "translation_steps": 40 if q else 1000, "n_test": 2 if q else None}.items():  # fmt: skip
        if getattr(a, k) is None:
            setattr(a, k, v)
    methods = a.methods or ["skeleton", "models", *ADAPT_METHODS]
    a.adapt_methods = [m for m in ADAPT_METHODS if m in methods]
    a.row_methods = [m for m in methods if m not in ADAPT_METHODS]
    src = {}
    for s in a.source:
        if s.count("=") != 1 or s.split("=")[0] not in SETS:
            ap.error(f"--source is SET=CHECKPOINT with SET in {', '.join(SETS)}, got {s!r}")
        src[s.split("=")[0]] = s.split("=")[1]
    a.source = {n: src.get(n) for n in SETS}
    from napari_vesselgraph.adapt.config import TRANSLATOR_KEYS

    tr = {}
    for t in a.translator:
        key, _, val = t.partition("=")
        if key not in TRANSLATOR_KEYS or not val:
            ap.error(f"--translator is KEY=VALUE with KEY in {', '.join(sorted(TRANSLATOR_KEYS))}, got {t!r}")
        tr[key] = json.loads(val) if val.lower() in ("true", "false") or val.lstrip("-").isdigit() else val
    a.translator = tr
    cand = {}
    for c in a.candidates:
        name, _, path = c.partition("=")
        if not name or not path:
            ap.error(f"--candidates is NAME=PATH, got {c!r}")
        if not Path(path).is_file():
            ap.error(f"--candidates {c}: {path} not found")
        cand[name] = path
    a.candidates = cand
    if a.section is None:
        a.section = "real-data-quick" if q else "real-data"
    return a


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    data = Path(a.data)
    if not data.is_dir():
        print(f"real_data: skipped, {data} not found (the real data lives in ../shared/realdata)")
        return 0
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    results, notes = benchmark(a, Cache(a.cache))
    if not results:
        return 0
    cmd = "python benchmarks/real_data.py " + " ".join(argv)
    text = section(results, notes, cmd.strip(), a)
    print()
    print(text)
    print(f"wall time {(time.perf_counter() - t0) / 60:.1f} min")
    if a.write:
        print(f"written {write_section(a.section, text)} (section {a.section})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
