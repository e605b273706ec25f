"""Dataset folders: images and ground-truth graphs on disk, for training and evaluation.

Format (version 1)
------------------
A dataset is a folder::

    my-dataset/
      manifest.json
      images/<id>.tif        one image per sample (TIFF)
      graphs/<id>.json       its ground-truth graph (node-link JSON)

``manifest.json``::

    {
      "format": "napari-vesselgraph-dataset",
      "version": 1,
      "domain": "vessel2d-fluo",          # a synth.DOMAINS name, or any label for your own data (or null)
      "ndim": 2,                           # spatial axes: 2 (Y, X) or 3 (Z, Y, X)
      "channels": 1,                       # 1 (grey) or 3 (RGB, channels last)
      "scale": [1.0, 1.0],                 # pixel size per spatial axis (e.g. µm), napari axis order
      "samples": [
        {"id": "train_00000000", "image": "images/train_00000000.tif",
         "graph": "graphs/train_00000000.json", "split": "train", "seed": 0},
        ...
      ]
    }

``split`` is ``train``, ``val`` or ``test``; ``seed`` is the generator seed of a synthetic sample
(``null`` for real data). Paths are relative to the folder. Synthetic seeds of the three splits
never overlap: ``train`` uses ``seed + i``, ``test`` ``10_000_000 + seed + i`` and ``val``
``20_000_000 + seed + i``, so a test image is never a training image.

Images: grey ``(Y, X)`` or ``(Z, Y, X)``, RGB ``(Y, X, 3)``. Synthetic images are float32 in
[0, 1]; when read, integer images are divided by their type's maximum (uint8 / 255,
uint16 / 65535) and float images outside [0, 1] are rescaled to [0, 1] by their min and max.

Graphs: node-link JSON, as written by ``io.write_graph(graph, "x.json")``::

    {"directed": false, "multigraph": false,
     "graph": {"ndim": 2, "scale_y": 1.0, "scale_x": 1.0, "metadata": "<JSON text>"},
     "nodes": [{"id": 0, "pos_y": 12.5, "pos_x": 3.0, "radius": 2.1}, ...],
     "edges": [{"source": 0, "target": 1}, ...]}

Coordinates are pixels in napari axis order (``pos_z``, ``pos_y``, ``pos_x``); every other key of a
node or edge is an attribute (``radius`` in pixels for synthetic data). ``links`` is accepted in
place of ``edges``. To use your own annotated data, put your images and graphs in such a folder
and write the manifest; :func:`read_dataset` checks the folder and says what is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from ..errors import GraphFileError, VesselGraphError
from ..graph.core import VesselGraph, axis_names
from ..io import atomic_write, load_image, read_graph, save_tiff, write_graph

FORMAT = "napari-vesselgraph-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
#: first seed of each split; a split's seeds are ``base + seed + i`` and ranges never overlap
SPLIT_SEED_BASE = {"train": 0, "test": 10_000_000, "val": 20_000_000}
SPLIT_SEED_RANGE = 10_000_000


@dataclass
class DatasetRecord:
    """One sample of a dataset folder (``record.image`` or ``record["image"]``)."""

    id: str
    split: str
    seed: int | None
    image: np.ndarray | None
    graph: VesselGraph | None
    image_path: Path
    graph_path: Path
    domain: str | None = None

    def __getitem__(self, key: str):
        return getattr(self, key)

    def keys(self):
        return ["id", "split", "seed", "image", "graph", "image_path", "graph_path", "domain"]


# --------------------------------------------------------------------------- graph JSON
def _to_unit_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == bool:
        return img.astype(np.float32)
    if img.dtype.kind in "ui":
        info = np.iinfo(img.dtype)
        if img.dtype.kind == "u":
            return (img.astype(np.float32) / info.max).astype(np.float32)
        img = img.astype(np.float32)
    img = img.astype(np.float32, copy=False)
    lo, hi = float(np.nanmin(img)) if img.size else 0.0, float(np.nanmax(img)) if img.size else 0.0
    if lo < 0 or hi > 1:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


# --------------------------------------------------------------------------- writing
def _parse_split(split, n: int) -> dict[str, int]:
    """``"train"`` -> all n in train; ``{"train": 0.8, "test": 0.2}`` or ``"train:0.8,test:0.2"`` -> counts."""
    if isinstance(split, str) and ("," in split or ":" in split or "=" in split):
        parts = {}
        for item in split.split(","):
            name, _, val = item.replace("=", ":").partition(":")
            try:
                parts[name.strip()] = float(val) if val.strip() else 1.0
            except ValueError:
                raise VesselGraphError(f"cannot read split {split!r}; use e.g. 'train:0.8,val:0.1,test:0.1'") from None
        split = parts
    if isinstance(split, str):
        split = {split: n}
    if not isinstance(split, Mapping) or not split:
        raise VesselGraphError(f"split must be one of {SPLITS} or a mapping of them to counts/fractions")
    for k in split:
        if k not in SPLITS:
            raise VesselGraphError(f"unknown split {k!r}; use {', '.join(SPLITS)}")
    vals = {k: float(v) for k, v in split.items()}
    if any(v < 0 for v in vals.values()):
        raise VesselGraphError("split sizes must not be negative")
    total = sum(vals.values())
    if all(float(v).is_integer() for v in vals.values()) and total == n:
        return {k: int(v) for k, v in vals.items()}
    if total <= 0:
        raise VesselGraphError("split sizes sum to zero")
    # fractions: largest remainder so that the counts add up to n
    raw = {k: n * v / total for k, v in vals.items()}
    counts = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def split_seeds(split: str, seed: int, n: int) -> list[int]:
    """Generator seeds of ``n`` samples of ``split`` starting at ``seed`` (disjoint across splits)."""
    if split not in SPLIT_SEED_BASE:
        raise VesselGraphError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    seed = int(seed)
    if seed < 0 or seed + n > SPLIT_SEED_RANGE:
        raise VesselGraphError(f"seeds must lie in 0..{SPLIT_SEED_RANGE - 1} (got {seed} + {n} samples)")
    base = SPLIT_SEED_BASE[split]
    return [base + seed + i for i in range(n)]


def _load_manifest(directory: Path) -> dict:
    mpath = directory / "manifest.json"
    if not directory.exists():
        raise VesselGraphError(f"dataset folder {directory} does not exist")
    if not directory.is_dir():
        raise VesselGraphError(f"{directory} is not a folder (a dataset is a folder with a manifest.json)")
    if not mpath.exists():
        raise VesselGraphError(
            f"{directory} is not a dataset folder: manifest.json is missing "
            "(see napari_vesselgraph.synth.dataset for the format)"
        )
    try:
        m = json.loads(mpath.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GraphFileError(mpath, f"not valid JSON ({err})") from None
    if not isinstance(m, dict):
        raise GraphFileError(mpath, "the manifest must be a JSON object")
    fmt = m.get("format", FORMAT)
    if fmt != FORMAT:
        raise GraphFileError(mpath, f"unknown format {fmt!r} (expected {FORMAT!r})")
    version = m.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GraphFileError(mpath, f"format version {version!r} is newer than this reader ({FORMAT_VERSION})")
    if m.get("ndim") not in (2, 3):
        raise GraphFileError(mpath, f"'ndim' must be 2 or 3, got {m.get('ndim')!r}")
    ch = m.setdefault("channels", 1)
    if not isinstance(ch, int) or ch < 1:
        raise GraphFileError(mpath, f"'channels' must be a positive integer, got {ch!r}")
    scale = m.setdefault("scale", [1.0] * m["ndim"])
    if not isinstance(scale, list) or len(scale) != m["ndim"]:
        raise GraphFileError(mpath, f"'scale' must list {m['ndim']} numbers, got {scale!r}")
    samples = m.setdefault("samples", [])
    if not isinstance(samples, list):
        raise GraphFileError(mpath, "'samples' must be a list")
    seen = set()
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise GraphFileError(mpath, f"sample #{i} must be an object")
        missing = [k for k in ("id", "image", "graph") if k not in s]
        if missing:
            raise GraphFileError(mpath, f"sample #{i} lacks {', '.join(missing)}")
        if s["id"] in seen:
            raise GraphFileError(mpath, f"sample id {s['id']!r} appears twice")
        seen.add(s["id"])
        s.setdefault("split", "train")
        if s["split"] not in SPLITS:
            raise GraphFileError(
                mpath, f"sample {s['id']!r} has unknown split {s['split']!r} (use {', '.join(SPLITS)})"
            )
        s.setdefault("seed", None)
    return m


def write_dataset(
    directory,
    domain: str,
    n: int,
    seed: int = 0,
    split="train",
    shape=None,
    progress=None,
    cancel=None,
) -> Path:
    """Write ``n`` synthetic samples of ``domain`` into a dataset folder (created or extended).

    ``split``: ``"train"``/``"val"``/``"test"``, or fractions/counts such as
    ``{"train": 0.8, "val": 0.1, "test": 0.1}`` or ``"train:0.8,val:0.1,test:0.1"``.
    Sample seeds come from :func:`split_seeds`. An existing folder must hold the same domain;
    samples with the same id are replaced. Returns the folder path.
    """
    from ..errors import Cancelled
    from .domains import domain_info, get_domain, make_sample

    spec = get_domain(domain)
    directory = Path(directory)
    n = int(n)
    if n < 0:
        raise VesselGraphError("the number of samples must not be negative")
    counts = _parse_split(split, n)
    if (directory / "manifest.json").exists():
        manifest = _load_manifest(directory)
        if manifest.get("domain") != spec.name or manifest["ndim"] != spec.ndim:
            raise VesselGraphError(
                f"{directory} already holds a {manifest['ndim']}D dataset of domain {manifest.get('domain')!r}; "
                f"write {spec.name!r} samples to another folder"
            )
    else:
        if directory.exists() and not directory.is_dir():
            raise VesselGraphError(f"{directory} exists and is not a folder")
        info = domain_info(spec)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "domain": spec.name,
            "ndim": spec.ndim,
            "channels": spec.channels,
            "scale": list(spec.scale),
            "description": info["description"],
            "samples": [],
        }
    by_id = {s["id"]: s for s in manifest["samples"]}
    jobs = [(sp, s) for sp, c in counts.items() for s in split_seeds(sp, seed, c)]
    for sub in ("images", "graphs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    for done, (sp, s) in enumerate(jobs):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        image, graph = make_sample(spec.name, s, shape)
        sid = f"{sp}_{s:08d}"
        rec = {"id": sid, "image": f"images/{sid}.tif", "graph": f"graphs/{sid}.json", "split": sp, "seed": s}
        save_tiff(directory / rec["image"], image, scale=graph.scale, rgb=spec.channels == 3)
        write_graph(graph, directory / rec["graph"])
        by_id[sid] = rec
        if progress is not None:
            progress(done + 1, len(jobs), {"id": sid, "split": sp})
    manifest["samples"] = list(by_id.values())
    with atomic_write(directory / "manifest.json", "w", encoding="utf8") as f:
        json.dump(manifest, f, indent=1)
    return directory


# --------------------------------------------------------------------------- reading
def _resolve(directory: Path, rel: str, what: str, sid) -> Path:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise GraphFileError(
            directory / "manifest.json", f"sample {sid!r}: {what} path {rel!r} must lie inside the folder"
        )
    return directory / p


def _load_record(directory: Path, m: dict, s: dict, load: bool) -> DatasetRecord:
    ipath = _resolve(directory, s["image"], "image", s["id"])
    gpath = _resolve(directory, s["graph"], "graph", s["id"])
    rec = DatasetRecord(str(s["id"]), s["split"], s.get("seed"), None, None, ipath, gpath, m.get("domain"))
    if not load:
        return rec
    ndim, ch = m["ndim"], m["channels"]
    if not ipath.exists():
        raise GraphFileError(ipath, "image file not found")
    img, _ = load_image(ipath)
    img = np.asarray(img)
    if ch == 1 and img.ndim == ndim + 1 and img.shape[-1] == 1:
        img = img[..., 0]
    expected = ("Z, Y, X" if ndim == 3 else "Y, X") + (f", {ch}" if ch > 1 else "")
    if img.ndim != ndim + (ch > 1) or (ch > 1 and img.shape[-1] != ch):
        raise GraphFileError(
            ipath,
            f"image has shape {img.shape}, but the manifest says {ndim}D with {ch} channel(s) (expected ({expected}))",
        )
    graph = read_graph(gpath)
    if graph.ndim != ndim:
        raise GraphFileError(gpath, f"graph is {graph.ndim}D but the dataset is {ndim}D")
    spatial = np.asarray(img.shape[:ndim], float)
    if graph.n_nodes:
        bad = np.any((graph.nodes < -0.5) | (graph.nodes > spatial - 0.5), 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GraphFileError(
                gpath,
                f"{int(bad.sum())} node(s) lie outside the image of shape {tuple(img.shape[:ndim])} "
                f"(first: node {i} at {graph.nodes[i].round(2).tolist()}); coordinates must be pixels in "
                f"({', '.join(axis_names(ndim))}) order",
            )
    if tuple(graph.scale) == (1.0,) * ndim and any(float(x) != 1.0 for x in m["scale"]):
        graph.scale = tuple(float(x) for x in m["scale"])
    rec.image = _to_unit_float(img)
    rec.graph = graph
    return rec


def iter_dataset(directory, split: str | None = None, load: bool = True) -> Iterator[DatasetRecord]:
    """Yield the records of a dataset folder one by one (images loaded lazily, one at a time)."""
    directory = Path(directory)
    m = _load_manifest(directory)
    for s in m["samples"]:
        if split is None or s["split"] == split:
            yield _load_record(directory, m, s, load)


def read_dataset(directory, split: str | None = None, load: bool = True) -> list[DatasetRecord]:
    """All records of a dataset folder (optionally one split), after checking that every file exists.

    Raises :class:`VesselGraphError` (or :class:`GraphFileError` naming the file) with a clear
    message for a missing folder or manifest, missing files, wrong dimensionality, unreadable
    graphs, or nodes outside their image.
    """
    directory = Path(directory)
    m = _load_manifest(directory)
    samples = [s for s in m["samples"] if split is None or s["split"] == split]
    missing = []
    for s in samples:
        for key in ("image", "graph"):
            p = _resolve(directory, s[key], key, s["id"])
            if not p.is_file():
                missing.append(s[key])
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise VesselGraphError(
            f"dataset {directory}: {len(missing)} file(s) listed in manifest.json are missing: "
            f"{', '.join(missing[:5])}{more}"
        )
    return [_load_record(directory, m, s, load) for s in samples]


def dataset_info(directory) -> dict:
    """The manifest (without samples) and the number of samples per split."""
    m = _load_manifest(Path(directory))
    counts = {sp: sum(1 for s in m["samples"] if s["split"] == sp) for sp in SPLITS}
    return {**{k: v for k, v in m.items() if k != "samples"}, "counts": counts}
