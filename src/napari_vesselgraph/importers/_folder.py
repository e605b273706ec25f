"""Writing imported samples into a dataset folder (the format of :mod:`napari_vesselgraph.synth.dataset`).

Every file goes through an atomic write (``save_tiff`` and ``write_graph`` replace their file in one
rename), sample files before the manifest that lists them, so the folder on disk is a valid dataset
whenever its manifest exists. An existing dataset folder is extended (samples with the same id are
replaced); an existing folder that holds other files but no manifest is refused.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import numpy as np

from ..errors import VesselGraphError

__all__ = ["DatasetFolder", "check_writable", "safe_id", "storable_image"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(text) -> str:
    """A sample id usable as a file name (characters other than letters, digits, ``. _ -`` become ``_``)."""
    s = _SAFE.sub("_", str(text)).strip("._")
    if not s:
        raise VesselGraphError(f"cannot make a sample id from {text!r}")
    return s


def check_writable(out, create: bool = True) -> Path:
    """Create ``out`` (and its parents) if needed and check that a file can be written in it.

    ``create=False`` only checks (the folder, or its nearest existing parent, must be writable), so a
    command can refuse an unusable output before reading any input, without leaving a folder behind.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VesselGraphError(f"output {out} exists and is not a folder")
    if out.is_dir() and not (out / "manifest.json").exists() and any(out.iterdir()):
        raise VesselGraphError(
            f"output folder {out} is not empty and is not a dataset folder (no manifest.json); "
            "give an empty or new folder, or an existing dataset folder to extend"
        )
    if not create:
        parent = out
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise VesselGraphError(f"cannot write to output folder {out}: {parent} is not a writable folder")
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise VesselGraphError(f"cannot write to output folder {out}: {e.strerror or e}") from None
    return out


def storable_image(image: np.ndarray) -> tuple[np.ndarray, dict]:
    """The image as it goes into the folder, and a note of any intensity change.

    Dataset readers divide integer images by their type's maximum, so a uint16 image that uses fewer
    bits (11- or 12-bit cameras and satellites) would read back nearly black: it is stored as float32
    divided by ``2**bits - 1`` instead. uint8, float and full-range uint16 images are kept as they are.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        return image.astype(np.uint8) * 255, {}
    if image.dtype.kind in "iu" and image.dtype.itemsize >= 2:
        top = int(image.max(initial=0))
        if image.dtype == np.uint16 and top >= 2**15:
            return image, {}
        bits = max(int(top).bit_length(), 8)
        if image.dtype.kind == "i" and int(image.min(initial=0)) < 0:
            lo = float(image.min())
            return ((image - lo) / max(top - lo, 1)).astype(np.float32), {"intensity": f"rescaled from [{lo}, {top}]"}
        div = float(2**bits - 1)
        return (image / div).astype(np.float32), {"intensity": f"{image.dtype} {bits}-bit data divided by {int(div)}"}
    return image, {}


class DatasetFolder:
    """Collects samples into ``out``; :meth:`close` writes the manifest (call it once, at the end)."""

    def __init__(self, out, domain=None, description: str | None = None, source: dict | None = None):
        from ..synth.dataset import FORMAT, FORMAT_VERSION, _load_manifest

        self.out = check_writable(out)
        self.domain = domain
        if (self.out / "manifest.json").exists():
            self.manifest = _load_manifest(self.out)
            self._fixed = True
        else:
            self.manifest = {"format": FORMAT, "version": FORMAT_VERSION, "domain": domain, "ndim": None,
                             "channels": None, "scale": None, "samples": []}
            self._fixed = False
        if description:
            self.manifest.setdefault("description", description)
        if source:
            self.manifest.setdefault("imports", []).append(source)
        self.by_id = {s["id"]: s for s in self.manifest["samples"]}
        self.added: list[str] = []

    def _check_kind(self, ndim: int, channels: int, scale, sid: str) -> None:
        m = self.manifest
        if m["ndim"] is None:
            m["ndim"], m["channels"], m["scale"] = ndim, channels, [float(s) for s in scale]
            return
        if (m["ndim"], m["channels"]) != (ndim, channels):
            raise VesselGraphError(
                f"sample {sid!r} is {ndim}D with {channels} channel(s) but the dataset {self.out} is "
                f"{m['ndim']}D with {m['channels']} channel(s); import it into another folder"
            )
        if self._fixed and self.domain is not None and m.get("domain") not in (None, self.domain):
            raise VesselGraphError(
                f"{self.out} holds domain {m.get('domain')!r}; import domain {self.domain!r} into another folder"
            )

    def add(self, sid: str, image: np.ndarray, graph, split: str, extra_images: dict | None = None,
            extra: dict | None = None) -> dict:
        """Write one sample; ``extra_images`` maps a manifest key (``"mask"``) to a uint8 array."""
        from ..io import save_tiff, write_graph
        from ..synth.dataset import SPLITS

        if split not in SPLITS:
            raise VesselGraphError(f"sample {sid!r}: unknown split {split!r} (use {', '.join(SPLITS)})")
        ndim = graph.ndim
        image = np.asarray(image)
        channels = image.shape[-1] if image.ndim == ndim + 1 else 1
        if image.ndim not in (ndim, ndim + 1) or channels not in (1, 3):
            raise VesselGraphError(f"sample {sid!r}: image of shape {image.shape} does not fit a {ndim}D graph")
        scale = tuple(graph.scale) if graph.scale is not None else (1.0,) * ndim
        self._check_kind(ndim, channels, scale, sid)
        stored, note = storable_image(image)
        rec = {"id": sid, "image": f"images/{sid}.tif", "graph": f"graphs/{sid}.json", "split": split, "seed": None}
        for sub in ("images", "graphs"):
            (self.out / sub).mkdir(exist_ok=True)
        save_tiff(self.out / rec["image"], stored, scale=scale, rgb=channels == 3)
        if note:
            graph.metadata = {**graph.metadata, **note}
        write_graph(graph, self.out / rec["graph"])
        for key, arr in (extra_images or {}).items():
            folder = "masks" if key == "mask" else key
            (self.out / folder).mkdir(exist_ok=True)
            rel = f"{folder}/{sid}.tif"
            save_tiff(self.out / rel, (np.asarray(arr) != 0).astype(np.uint8) * 255, scale=scale, rgb=False)
            rec[key] = rel
        if extra:
            rec.update(extra)
        self.by_id[sid] = rec
        self.added.append(sid)
        return rec

    def close(self) -> Path:
        from ..io import atomic_write

        if not self.added:
            raise VesselGraphError(f"nothing was imported into {self.out}")
        self.manifest["samples"] = list(self.by_id.values())
        with atomic_write(self.out / "manifest.json", "w", encoding="utf8") as f:
            json.dump(self.manifest, f, indent=1)
        return self.out


def relpath_or_abs(p) -> str:
    """A path for the metadata: absolute, as the user's files are outside the dataset folder."""
    return os.path.abspath(os.fspath(p))
