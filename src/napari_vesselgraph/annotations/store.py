"""An on-disk store of annotated target patches, saved on every change.

A store is a project folder that is also a dataset folder (see :mod:`napari_vesselgraph.synth.dataset`):
``synth.read_dataset(folder)``, ``vesselgraph adapt --target DIR`` and ``vesselgraph evaluate --dataset DIR``
read it as they read any dataset. It adds a few keys of its own to ``manifest.json``::

    {
      "format": "napari-vesselgraph-dataset", "version": 1,
      "kind": "annotations",                  # what made the folder
      "domain": null,                         # a label for the target domain (optional)
      "ndim": 2, "channels": 3, "scale": [1.0, 1.0],
      "source_image": "retina",               # path or napari layer name of the annotated image
      "source_shape": [1411, 1411],           # its spatial shape (pixels), when known
      "patch_size": [64, 64],                 # the size new patches get by default
      "created": "2026-11-25T10:00:00+00:00", "modified": "...",
      "next_id": 3,                           # ids are never reused, even after a deletion
      "samples": [
        {"id": "patch_0001", "image": "images/patch_0001.tif", "graph": "graphs/patch_0001.json",
         "split": "train", "seed": null,
         "origin": [512, 640],                # patch corner in the source image (pixels, napari axis order)
         "size": [64, 64],                    # patch size (pixels)
         "status": "draft",                   # "draft" or "done", set by the user
         "created": "...", "modified": "..."},
        ...
      ]
    }

Graphs are stored in patch-local pixels (node ``p`` of a patch lies at ``p + origin`` in the source image), as
in every dataset. :meth:`AnnotationStore.to_image` and :meth:`AnnotationStore.from_image` convert.

Crash safety: every file is written with :func:`napari_vesselgraph.io.atomic_write` (a temporary file in the
same folder, fsynced, then renamed over the old one), and a patch's image and graph are written *before* the
manifest that lists them; a deleted patch leaves the manifest first and its files afterwards. So whenever the
process dies, the manifest on disk is a valid one that names only complete files, and at most the change in
progress is lost. The store has no napari or Qt imports.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph

KIND = "annotations"
STATUSES = ("draft", "done")
MANIFEST = "manifest.json"
ID_PREFIX = "patch_"


def now() -> str:
    """The current time as an ISO 8601 string in UTC (seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _spatial_tuple(values, ndim: int, what: str, cast=float) -> tuple:
    if np.ndim(values) == 0:
        values = [values] * ndim
    out = tuple(cast(v) for v in np.ravel(values))
    if len(out) != ndim:
        raise VesselGraphError(f"{what} needs {ndim} values (one per spatial axis), got {len(out)}")
    return out


class AnnotationStore:
    """A folder of annotated patches: ``images/<id>.tif``, ``graphs/<id>.json`` and ``manifest.json``.

    Use :meth:`create` for a new folder, :meth:`open` for an existing one (or :meth:`open_or_create`).
    Every method that changes something writes it to disk before it returns. The methods are safe to call
    from several threads of one process (a lock serialises the writes), e.g. the napari GUI thread that
    autosaves while a fine-tuning worker reads the folder.
    """

    def __init__(self, folder, manifest: dict):
        self.folder = Path(folder)
        self._m = manifest
        self._lock = threading.RLock()

    # ------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        folder,
        scale: Sequence[float] | None = None,
        ndim: int = 2,
        channels: int = 1,
        source_image: str | None = None,
        domain: str | None = None,
        patch_size: Sequence[int] | int | None = None,
        source_shape: Sequence[int] | None = None,
    ) -> AnnotationStore:
        """Make a new store in ``folder`` (created if needed; it must not hold a manifest already)."""
        folder = Path(folder)
        if (folder / MANIFEST).exists():
            raise VesselGraphError(f"{folder} already holds a manifest.json; open it instead of creating a store")
        if folder.exists() and not folder.is_dir():
            raise VesselGraphError(f"{folder} exists and is not a folder")
        ndim = int(ndim)
        if ndim not in (2, 3):
            raise VesselGraphError(f"an annotation store holds 2D or 3D patches, not {ndim}D")
        channels = int(channels)
        if channels not in (1, 3):
            raise VesselGraphError(f"patches have 1 (grey) or 3 (RGB) channels, not {channels}")
        scale = (1.0,) * ndim if scale is None else _spatial_tuple(scale, ndim, "scale")
        if not all(np.isfinite(s) and s > 0 for s in scale):
            raise VesselGraphError(f"scale must be positive numbers, got {scale}")
        stamp = now()
        m: dict[str, Any] = {
            "format": "napari-vesselgraph-dataset",
            "version": 1,
            "kind": KIND,
            "domain": domain,
            "ndim": ndim,
            "channels": channels,
            "scale": [float(s) for s in scale],
            "source_image": None if source_image is None else str(source_image),
            "source_shape": None if source_shape is None else [int(n) for n in source_shape][-ndim:],
            "patch_size": None if patch_size is None else list(_spatial_tuple(patch_size, ndim, "patch size", int)),
            "created": stamp,
            "modified": stamp,
            "next_id": 1,
            "samples": [],
        }
        for sub in ("images", "graphs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        store = cls(folder, m)
        store._write_manifest()
        return store

    @classmethod
    def open(cls, folder) -> AnnotationStore:
        """Open an existing store (or any dataset folder, whose samples then have no ``origin``)."""
        from ..synth.dataset import _load_manifest

        folder = Path(folder)
        m = _load_manifest(folder)  # checks format, version, ndim, samples
        if m.get("kind") not in (None, KIND):
            raise VesselGraphError(f"{folder} is a {m.get('kind')!r} folder, not an annotation store")
        m.setdefault("kind", KIND)
        m.setdefault("source_image", None)
        m.setdefault("patch_size", None)
        ids = [s["id"] for s in m["samples"]]
        m["next_id"] = max(int(m.get("next_id") or 1), _next_number(ids))
        for s in m["samples"]:  # every file the store will read, write or delete lies inside the folder
            for key in ("image", "graph"):
                _inside(folder, s[key], key, s["id"])
        for sub in ("images", "graphs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return cls(folder, m)

    @classmethod
    def open_or_create(cls, folder, **create_kwargs) -> AnnotationStore:
        """:meth:`open` when ``folder`` holds a manifest, else :meth:`create` with ``create_kwargs``."""
        if (Path(folder) / MANIFEST).exists():
            return cls.open(folder)
        return cls.create(folder, **create_kwargs)

    @staticmethod
    def exists(folder) -> bool:
        return (Path(folder) / MANIFEST).is_file()

    # ------------------------------------------------------------ properties
    @property
    def manifest(self) -> dict:
        """A copy of the manifest as it is on disk."""
        with self._lock:
            return copy.deepcopy(self._m)

    @property
    def ndim(self) -> int:
        return int(self._m["ndim"])

    @property
    def channels(self) -> int:
        return int(self._m.get("channels", 1))

    @property
    def scale(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self._m["scale"])

    @property
    def source_image(self) -> str | None:
        return self._m.get("source_image")

    @property
    def domain(self) -> str | None:
        return self._m.get("domain")

    @property
    def patch_size(self) -> tuple[int, ...] | None:
        p = self._m.get("patch_size")
        return None if p is None else tuple(int(v) for v in p)

    def set_patch_size(self, size) -> None:
        with self._lock:
            self._m["patch_size"] = list(_spatial_tuple(size, self.ndim, "patch size", int))
            self._write_manifest()

    def set_source(self, source_image: str | None = None, source_shape=None) -> None:
        with self._lock:
            if source_image is not None:
                self._m["source_image"] = str(source_image)
            if source_shape is not None:
                self._m["source_shape"] = [int(n) for n in source_shape][-self.ndim :]
            self._write_manifest()

    def __len__(self) -> int:
        return len(self._m["samples"])

    def __contains__(self, pid: str) -> bool:
        return any(s["id"] == pid for s in self._m["samples"])

    def __repr__(self) -> str:
        return f"AnnotationStore({str(self.folder)!r}, {len(self)} patches, {self.ndim}D)"

    def patches(self) -> list[dict]:
        """The manifest entries of the patches (copies), in the order they were added."""
        with self._lock:
            return copy.deepcopy(self._m["samples"])

    def ids(self) -> list[str]:
        return [s["id"] for s in self._m["samples"]]

    def get(self, pid: str) -> dict:
        """The manifest entry of one patch (a copy)."""
        with self._lock:
            return copy.deepcopy(self._entry(pid))

    def origin(self, pid: str) -> tuple[int, ...]:
        o = self._entry(pid).get("origin")
        return tuple(int(v) for v in o) if o is not None else (0,) * self.ndim

    def size(self, pid: str) -> tuple[int, ...]:
        e = self._entry(pid)
        if e.get("size") is not None:
            return tuple(int(v) for v in e["size"])
        img = self.load_image(pid)
        return tuple(int(n) for n in img.shape[: self.ndim])

    # ------------------------------------------------------------ changes
    def add_patch(
        self,
        image: np.ndarray,
        origin: Sequence[int],
        graph: VesselGraph | None = None,
        status: str = "draft",
        split: str = "train",
    ) -> str:
        """Store a new patch: its pixels, its corner in the source image and its graph (patch-local pixels;
        ``None``: an empty graph). Returns the new patch id."""
        image = np.asarray(image)
        d = self.ndim
        rgb = self.channels > 1
        if rgb and image.ndim == d + 1 and image.shape[-1] == 4:
            image = image[..., :3]
        if image.ndim != d + (1 if rgb else 0) or (rgb and image.shape[-1] != self.channels):
            want = ("(Z, Y, X" if d == 3 else "(Y, X") + (f", {self.channels})" if rgb else ")")
            raise VesselGraphError(f"a patch of this store must have shape {want}, got {image.shape}")
        size = tuple(int(n) for n in image.shape[:d])
        if min(size) < 1:
            raise VesselGraphError(f"a patch must not be empty (shape {image.shape})")
        origin = _spatial_tuple(origin, d, "patch origin", lambda v: round(float(v)))
        if status not in STATUSES:
            raise VesselGraphError(f"status must be one of {STATUSES}, got {status!r}")
        self._check_split(split)
        graph = VesselGraph.empty(d, scale=self.scale) if graph is None else graph
        graph = self._clean_graph(graph, size)
        with self._lock:
            pid = f"{ID_PREFIX}{int(self._m['next_id']):04d}"
            while pid in self:  # pragma: no cover - only for hand-edited manifests
                self._m["next_id"] += 1
                pid = f"{ID_PREFIX}{int(self._m['next_id']):04d}"
            entry = {
                "id": pid,
                "image": f"images/{pid}.tif",
                "graph": f"graphs/{pid}.json",
                "split": split,
                "seed": None,
                "origin": list(origin),
                "size": list(size),
                "status": status,
                "created": now(),
            }
            entry["modified"] = entry["created"]
            self._write_image(entry, image)
            self._write_graph(entry, graph)
            new = copy.deepcopy(self._m)
            new["samples"].append(entry)
            new["next_id"] = int(self._m["next_id"]) + 1
            self._commit(new)
            return pid

    def update_graph(self, pid: str, graph: VesselGraph, status: str | None = None) -> VesselGraph:
        """Replace the graph of a patch (patch-local pixels). Returns the graph as stored (see
        :meth:`clean_graph`)."""
        with self._lock:
            entry = self._entry(pid)
            size = tuple(int(v) for v in entry["size"]) if entry.get("size") else self.size(pid)
            graph = self._clean_graph(graph, size)
            if status is not None and status not in STATUSES:
                raise VesselGraphError(f"status must be one of {STATUSES}, got {status!r}")
            self._write_graph(entry, graph)
            new = copy.deepcopy(self._m)
            e = _find(new, pid)
            e["modified"] = now()
            if status is not None:
                e["status"] = status
            self._commit(new)
            return graph

    def set_status(self, pid: str, status: str) -> None:
        if status not in STATUSES:
            raise VesselGraphError(f"status must be one of {STATUSES}, got {status!r}")
        self._set_fields(pid, status=status)

    def set_split(self, pid: str, split: str) -> None:
        self._check_split(split)
        self._set_fields(pid, split=split)

    def assign_splits(self, val_fraction: float, seed: int = 0) -> dict[str, list[str]]:
        """Hold out a share of the patches for validation: ``round(n * val_fraction)`` patches (at least one when
        the share is above zero and there are two patches or more; never all of them) get ``split = "val"``, the
        others ``"train"``. The choice depends only on the ids and ``seed``, so it is the same every time.
        Returns ``{"train": [ids], "val": [ids]}``.

        Not needed for adaptation: ``adapt`` (and the Fine-tune widget) read the ``train`` split and hold out
        their own ``val_fraction`` of it, so patches moved to ``val`` here are not used there at all. Use it to
        keep a fixed validation set for ``vesselgraph evaluate --dataset DIR --split val``."""
        val_fraction = float(val_fraction)
        if not 0.0 <= val_fraction < 1.0:
            raise VesselGraphError(f"the held-out share must be at least 0 and below 1, got {val_fraction}")
        with self._lock:
            ids = self.ids()
            n = len(ids)
            k = round(n * val_fraction)
            if val_fraction > 0 and n >= 2:
                k = max(k, 1)
            k = min(k, max(n - 1, 0))
            order = sorted(ids, key=lambda i: zlib.crc32(f"{seed}:{i}".encode()))
            val = set(order[:k])
            new = copy.deepcopy(self._m)
            for s in new["samples"]:
                s["split"] = "val" if s["id"] in val else "train"
            self._commit(new)
            return {"train": [i for i in ids if i not in val], "val": [i for i in ids if i in val]}

    def delete_patch(self, pid: str) -> None:
        """Remove a patch: first from the manifest, then its files."""
        with self._lock:
            entry = copy.deepcopy(self._entry(pid))
            for key in ("image", "graph"):  # a path leading outside is refused before anything changes
                self._path(entry, key)
            new = copy.deepcopy(self._m)
            new["samples"] = [s for s in new["samples"] if s["id"] != pid]
            self._commit(new)
            for key in ("image", "graph"):
                try:
                    os.unlink(self._path(entry, key))  # checked again just before the unlink
                except (OSError, VesselGraphError):
                    pass

    # ------------------------------------------------------------ reading
    def load(self, pid: str) -> tuple[np.ndarray, VesselGraph]:
        """``(image, graph)`` of a patch: the image as stored (its own dtype), the graph in patch-local pixels."""
        return self.load_image(pid), self.load_graph(pid)

    def load_image(self, pid: str) -> np.ndarray:
        from ..io import load_image

        entry = self._entry(pid)
        img, _ = load_image(self._path(entry, "image"))
        img = np.asarray(img)
        if self.channels == 1 and img.ndim == self.ndim + 1 and img.shape[-1] == 1:
            img = img[..., 0]
        return img

    def load_graph(self, pid: str) -> VesselGraph:
        from ..io import read_graph

        entry = self._entry(pid)
        g = read_graph(self._path(entry, "graph"))
        if g.ndim != self.ndim:  # an empty graph written as 2D in a 3D store
            g = VesselGraph(np.zeros((0, self.ndim)), scale=self.scale, metadata=g.metadata)
        g.scale = self.scale
        return g

    def to_image(self, pid: str, graph: VesselGraph) -> VesselGraph:
        """A patch-local graph moved to the source image's pixels (``+ origin``)."""
        g = graph.copy()
        if g.n_nodes:
            g.nodes = g.nodes + np.asarray(self.origin(pid), dtype=float)
        return g

    def from_image(self, pid: str, graph: VesselGraph) -> VesselGraph:
        """A graph in the source image's pixels moved to the patch (``- origin``)."""
        g = graph.copy()
        if g.n_nodes:
            g.nodes = g.nodes - np.asarray(self.origin(pid), dtype=float)
        return g

    # ------------------------------------------------------------ graph hygiene
    def clean_graph(self, graph: VesselGraph, size: Sequence[int]) -> VesselGraph:
        return self._clean_graph(graph, size)

    def _clean_graph(self, graph: VesselGraph, size) -> VesselGraph:
        """What is stored: nodes clipped into the patch (a node dragged past the border lands on it), the store's
        scale, no self loops or repeated edges, and a finite ``radius`` for every node when the graph has one
        (a node the user added gets the median radius of the others)."""
        if not isinstance(graph, VesselGraph):
            raise VesselGraphError(f"expected a VesselGraph, got {type(graph).__name__}")
        d = self.ndim
        if graph.n_nodes and graph.ndim != d:
            raise VesselGraphError(f"the graph is {graph.ndim}D but the store is {d}D")
        g = graph.copy()
        if not g.n_nodes:
            g = VesselGraph(np.zeros((0, d)), metadata=dict(graph.metadata))
        hi = np.asarray(size, dtype=float) - 1.0
        if g.n_nodes:
            g.nodes = np.clip(g.nodes, 0.0, hi)
        r = g.node_attrs.get("radius")
        if r is not None:
            r = np.asarray(r)
            if r.dtype.kind not in "fiu":
                r = np.array([_to_float(v) for v in r], dtype=float)
            r = r.astype(float)
            ok = np.isfinite(r) & (r > 0)
            if ok.any():
                r[~ok] = float(np.median(r[ok]))
                g.node_attrs["radius"] = r
            else:
                del g.node_attrs["radius"]
        g.scale = self.scale
        g = g.canonical()
        g.metadata = {k: v for k, v in g.metadata.items() if k not in ("patch_origin", "patch_size")}
        return g

    # ------------------------------------------------------------ internals
    def _entry(self, pid: str) -> dict:
        for s in self._m["samples"]:
            if s["id"] == pid:
                return s
        raise VesselGraphError(f"no patch {pid!r} in {self.folder}")

    def _set_fields(self, pid: str, **fields) -> None:
        with self._lock:
            self._entry(pid)
            new = copy.deepcopy(self._m)
            e = _find(new, pid)
            e.update(fields)
            e["modified"] = now()
            self._commit(new)

    def _path(self, entry: dict, key: str) -> Path:
        """The file ``entry[key]`` of a patch, checked (again, just before use) to lie inside the folder."""
        return _inside(self.folder, entry[key], key, entry.get("id"))

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in ("train", "val", "test"):
            raise VesselGraphError(f"split must be train, val or test, got {split!r}")

    def _write_image(self, entry: dict, image: np.ndarray) -> None:
        from ..io import save_tiff

        save_tiff(self._path(entry, "image"), image, scale=self.scale, rgb=self.channels > 1)

    def _write_graph(self, entry: dict, graph: VesselGraph) -> None:
        from ..io import write_graph

        write_graph(graph, self._path(entry, "graph"))

    def _commit(self, new_manifest: dict) -> None:
        """Write ``new_manifest`` and adopt it only once it is on disk."""
        new_manifest["modified"] = now()
        self._write_manifest(new_manifest)
        self._m = new_manifest

    def _write_manifest(self, manifest: dict | None = None) -> None:
        from ..io import atomic_write

        m = self._m if manifest is None else manifest
        text = json.dumps(m, indent=1)
        with atomic_write(self.folder / MANIFEST, "w", encoding="utf8") as f:
            f.write(text)


def _find(manifest: dict, pid: str) -> dict:
    for s in manifest["samples"]:
        if s["id"] == pid:
            return s
    raise VesselGraphError(f"no patch {pid!r}")  # pragma: no cover


def _inside(folder: Path, rel, what: str, pid) -> Path:
    """``folder / rel`` when ``rel`` is a relative path that stays inside ``folder``, links followed; otherwise
    a one-line :class:`VesselGraphError`. A hand-edited (or hostile) manifest must not make the store read,
    write or delete files elsewhere."""
    where = f"{Path(folder) / MANIFEST}: patch {pid!r}: {what} path {rel!r}"
    hint = "paths must be relative and lie inside the folder"
    if not isinstance(rel, str) or not rel.strip():
        raise VesselGraphError(f"{where} is not a file name inside the project folder ({hint})")
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise VesselGraphError(f"{where} points outside the project folder ({hint})")
    full = Path(folder) / p
    root = Path(folder).resolve()
    real = full.resolve()  # follows links, also of folders on the way (images/, graphs/)
    if root not in real.parents:
        raise VesselGraphError(f"{where} leads outside the project folder through a link (to {real}; {hint})")
    return full


def _next_number(ids) -> int:
    best = 0
    for i in ids:
        s = str(i)
        if s.startswith(ID_PREFIX) and s[len(ID_PREFIX) :].isdigit():
            best = max(best, int(s[len(ID_PREFIX) :]))
    return best + 1


def _to_float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def patch_box(origin: Sequence[int], size: Sequence[int]) -> tuple[slice, ...]:
    """The slices of a patch in its source image."""
    return tuple(slice(int(o), int(o) + int(s)) for o, s in zip(origin, size))


def snap_origin(center, size: Sequence[int], shape: Sequence[int] | None = None) -> tuple[int, ...]:
    """The corner of a patch of ``size`` centred (as nearly as whole pixels allow) on ``center``; with the image
    ``shape`` it is moved inside the image (a patch larger than the image starts at 0)."""
    c = np.asarray(center, dtype=float)
    s = np.asarray(size, dtype=float)
    o = np.floor(c - (s - 1) / 2.0 + 0.5).astype(int)
    if shape is not None:
        shp = np.asarray(shape, dtype=int)[-len(o) :]
        o = np.clip(o, 0, np.maximum(shp - s.astype(int), 0))
    return tuple(int(v) for v in o)


def cut_patch(image, origin: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``image[origin : origin + size]`` (numpy, dask or zarr; extra trailing axes, e.g. colour, kept); parts
    outside the image are zero."""
    d = len(origin)
    shape = tuple(int(n) for n in image.shape[:d])
    out = None
    src, dst = [], []
    for o, s, n in zip(origin, size, shape):
        a, b = max(int(o), 0), min(int(o) + int(s), n)
        if a >= b:
            src = None
            break
        src.append(slice(a, b))
        dst.append(slice(a - int(o), b - int(o)))
    if src is not None:
        part = np.asarray(image[tuple(src)])
        out = np.zeros(tuple(int(s) for s in size) + part.shape[d:], part.dtype)
        out[tuple(dst)] = part
        return out
    return np.zeros(tuple(int(s) for s in size) + tuple(image.shape[d:]), np.dtype(image.dtype))


def initial_graph(graph: VesselGraph | None, origin: Sequence[int], size: Sequence[int]) -> VesselGraph:
    """The part of ``graph`` (source-image pixels) inside the patch, in patch-local pixels; edges that cross the
    border end in a node on the border, as in training patches (:func:`napari_vesselgraph.synth.crop_graph`).
    Only the ``radius`` node attribute is kept (a prediction's confidences are not annotations)."""
    d = len(origin)
    if graph is None or graph.n_nodes == 0:
        return VesselGraph.empty(d)
    from ..synth.patches import crop_graph

    keep = {k: v for k, v in graph.node_attrs.items() if k == "radius"}
    g = VesselGraph(graph.nodes, graph.edges, keep, {}, graph.scale, {})
    return crop_graph(g, origin, size)
