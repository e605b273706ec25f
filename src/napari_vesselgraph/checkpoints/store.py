"""Checkpoint files: safetensors weights + JSON metadata, written atomically, never unpickled.

A checkpoint ``X.safetensors`` carries its metadata twice: inside the safetensors header (``__metadata__``,
key ``napari_vesselgraph``, a JSON string: the copy that is trusted) and in a sidecar ``X.json`` for people.

Reading the metadata needs no torch (the safetensors header is parsed here), so listing checkpoints is cheap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

from ..errors import VesselGraphError
from ..graph.core import _json_default
from ..settings import user_home
from .meta import FORMAT_VERSION, CheckpointMeta, is_segmentation

META_KEY = "napari_vesselgraph"
SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
MAX_HEADER = 100 * 1024 * 1024
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


# ------------------------------------------------------------------ raw files
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from ..io import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(data)


def to_json(obj) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _refuse_pickle(path: Path, head: bytes) -> None:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise VesselGraphError(
            f"{path}: this looks like a pickle / torch.save file, which is never loaded (it can run arbitrary "
            f"code). Only {SUFFIX} checkpoints are supported."
        )


def read_header(path: str | Path) -> dict[str, Any]:
    """Parse and check a safetensors header without loading any tensor (and without torch).

    Raises :class:`VesselGraphError` for pickle files, files that are not safetensors, and truncated files.
    """
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise VesselGraphError(
            f"{path}: refusing to load a '{path.suffix}' file — PyTorch pickle checkpoints can run arbitrary code. "
            f"Only {SUFFIX} checkpoints are supported."
        )
    if not path.is_file():
        raise VesselGraphError(f"{path}: checkpoint file not found")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise VesselGraphError(f"{path}: not a valid safetensors checkpoint (file is only {size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > MAX_HEADER or n > size - 8:
            _refuse_pickle(path, head)
            raise VesselGraphError(
                f"{path}: not a valid safetensors checkpoint (bad header length {n} for a {size}-byte file; "
                "the file may be truncated or of another kind)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        _refuse_pickle(path, head)
        raise VesselGraphError(f"{path}: not a valid safetensors checkpoint (unreadable header)") from None
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            a, b = info["data_offsets"]
            count = 1
            for s in info["shape"]:
                count *= int(s)
            if info["dtype"] in DTYPE_SIZES and b - a != count * DTYPE_SIZES[info["dtype"]]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise VesselGraphError(f"{path}: corrupt safetensors header (tensor {name!r})") from None
        end = max(end, int(b))
    if 8 + n + end != size:
        what = "truncated" if 8 + n + end > size else "has trailing bytes"
        raise VesselGraphError(
            f"{path}: corrupt checkpoint — the file {what} ({size} bytes, the header describes {8 + n + end}); "
            "download or copy it again"
        )
    return header


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checkpoint's metadata (from inside the safetensors file; no torch needed)."""
    return _metadata(path, read_header(path))


def _metadata(path, header: dict) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise VesselGraphError(f"{path}: a safetensors file without napari-vesselgraph metadata (not a checkpoint)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise VesselGraphError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise VesselGraphError(f"{path}: checkpoint metadata is not a JSON object")
    return meta


def save_tensors(path: str | Path, tensors: dict, meta: dict[str, Any], sidecar: bool = True) -> Path:
    """Write ``tensors`` + ``meta`` as a safetensors file atomically (and a ``.json`` sidecar)."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    text = to_json(meta)
    data = save(tensors, metadata={META_KEY: text})
    try:
        _atomic_write_bytes(path, data)
    except OSError as e:  # a full disk or a folder gone at the end of a long run: keep the weights somewhere
        rescued = _rescue(path, data)
        where = (
            f"the weights were saved to {rescued} instead"
            if rescued
            else "they could not be saved anywhere else either"
        )
        raise VesselGraphError(f"cannot write checkpoint {path} ({e.strerror or e}); {where}") from None
    if sidecar:
        side = path.with_suffix(".json")
        try:
            _atomic_write_bytes(side, (json.dumps(json.loads(text), indent=2) + "\n").encode())
        except OSError as e:
            raise VesselGraphError(
                f"wrote checkpoint {path} (complete, it carries its metadata) but not its sidecar {side.name} "
                f"({e.strerror or e})"
            ) from None
    return path


def rescue_dir() -> Path:
    """Where weights go when their own file cannot be written: ``$NAPARI_VESSELGRAPH_HOME/rescued``."""
    return user_home() / "rescued"


def _rescue(path: Path, data: bytes) -> Path | None:
    """Write ``data`` under :func:`rescue_dir` (else the temporary folder); the new path, or None."""
    import tempfile

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{Path(path).stem[:100]}-{stamp}-{os.getpid()}{SUFFIX}"
    for folder in (rescue_dir(), Path(tempfile.gettempdir()) / "napari-vesselgraph-rescued"):
        try:
            _atomic_write_bytes(folder / name, data)
            return folder / name
        except OSError:
            continue
    return None


def load_tensors(path: str | Path, device="cpu") -> tuple[dict, dict[str, Any]]:
    """Read a file written by :func:`save_tensors` (checked first; never unpickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise VesselGraphError(f"{path}: cannot read checkpoint tensors ({e})") from None
    return tensors, meta


# ------------------------------------------------------------------ model checkpoints
def _package_version() -> str:
    from .. import __version__

    return __version__


def save_checkpoint(path: str | Path, model, meta: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (a Relationformer) with its metadata; fills in architecture and provenance fields."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        path = (
            path.with_name(path.name + SUFFIX)
            if path.suffix.lower() not in PICKLE_SUFFIXES
            else path.with_suffix(SUFFIX)
        )
    cfg = model.cfg
    m: dict[str, Any] = CheckpointMeta.for_model(cfg).to_dict()  # ndim, channels, patch size: from cfg
    m.update({
        "command": " ".join(sys.argv),
        "seed": None,
        "validation": {},
        "package_version": _package_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    })  # fmt: skip
    m.update(meta or {})  # as given: load_checkpoint checks it
    m["format_version"] = FORMAT_VERSION
    m["model"] = cfg.to_dict()
    tensors = {k: v for k, v in model.state_dict().items()}
    return save_tensors(path, tensors, m)


def check_metadata(meta: dict[str, Any], where: str = "checkpoint") -> CheckpointMeta:
    """Raise a clear error when the metadata cannot describe a model this package can build; returns it as a
    :class:`~napari_vesselgraph.checkpoints.meta.CheckpointMeta` (:meth:`CheckpointMeta.from_dict`)."""
    return CheckpointMeta.from_dict(meta, where)


def load_checkpoint(name_or_path, device="cpu"):
    """Load a checkpoint by bundled/user name or path. Returns ``(model, meta)``; the model is in eval mode."""
    import torch

    from ..model.config import ModelConfig
    from ..model.network import Relationformer

    path = resolve(name_or_path)
    # Everything in the file is untrusted: the metadata is checked, the architecture it describes is bounded
    # (ModelConfig) and built on the "meta" device (no memory), and the tensor names and shapes in the header are
    # compared with it before a single tensor is read or the real model is allocated.
    header = read_header(path)
    meta = _metadata(path, header)
    if is_segmentation(meta):
        raise VesselGraphError(
            f"{path}: a segmentation checkpoint (a U-Net, not a Relationformer); it predicts through predict() / "
            "`vesselgraph predict`, and cannot be adapted or run window by window"
        )
    info = CheckpointMeta.from_dict(meta, str(path))
    try:
        cfg = ModelConfig.from_dict(info.model)
    except (TypeError, VesselGraphError) as e:
        raise VesselGraphError(f"{path}: invalid architecture config: {e}") from None
    translator = info.translator
    if translator is not None:
        from ..model.translator import attach_translator, build_translator

        if (
            translator.get("ndim", cfg.ndim) != cfg.ndim
            or translator.get("channels", cfg.in_channels) != cfg.in_channels
        ):
            raise VesselGraphError(
                f"{path}: invalid translator config: it is for {translator.get('ndim')}D, "
                f"{translator.get('channels')} channel(s) but the model is {cfg.ndim}D, {cfg.in_channels} channel(s)"
            )

    def build(device=None):
        with torch.device(device) if device is not None else contextlib.nullcontext():
            m = Relationformer(cfg)
            if translator is not None:
                try:
                    attach_translator(m, build_translator(translator))  # runs on every patch before the model
                except VesselGraphError as e:
                    raise VesselGraphError(f"{path}: {e}") from None
        return m

    expected = {k: tuple(v.shape) for k, v in build("meta").state_dict().items()}
    in_file = {k: tuple(int(n) for n in info["shape"]) for k, info in header.items() if k != "__metadata__"}
    _check_shapes(path, in_file, expected)
    tensors, _ = load_tensors(path, device="cpu")
    model = build()
    own = model.state_dict()
    _check_shapes(path, {k: tuple(v.shape) for k, v in tensors.items()}, {k: tuple(v.shape) for k, v in own.items()})
    for k, v in tensors.items():
        if v.dtype != own[k].dtype and v.is_floating_point():
            tensors[k] = v.to(own[k].dtype)
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise VesselGraphError(f"{path}: weight {k!r} contains NaN or infinite values")
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    meta["path"] = str(path)
    return model, meta


def _check_shapes(path, tensors: dict[str, tuple], own: dict[str, tuple]) -> None:
    """One line naming what differs between the tensors of a file and those the architecture needs."""
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    bad = [f"{k}: file {tensors[k]} vs model {own[k]}" for k in own if k in tensors and tensors[k] != own[k]]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing weights {missing[:5]}{'…' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected weights {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
        if bad:
            parts.append(f"shape mismatch {bad[:3]}{'…' if len(bad) > 3 else ''}")
        raise VesselGraphError(f"{path}: weights do not match the architecture in its metadata: " + "; ".join(parts))


# ------------------------------------------------------------------ registry
DEFAULT_CHECKPOINT = "vessel2d-fluo"


def bundled_dir() -> Path:
    return Path(__file__).resolve().parent / "bundled"


def user_dir() -> Path:
    """Folder for the user's own checkpoints: ``$NAPARI_VESSELGRAPH_HOME/checkpoints`` or
    ``~/.napari-vesselgraph/checkpoints``."""
    return user_home() / "checkpoints"


def _list_dir(folder: Path, source: str) -> list[dict]:
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob(f"*{SUFFIX}")):
        entry: dict[str, Any] = {"name": p.stem, "path": str(p), "source": source}
        try:
            entry["meta"] = read_metadata(p)
        except VesselGraphError as e:
            entry["meta"] = {}
            entry["error"] = str(e)
        entry["adaptation"] = CheckpointMeta.peek(entry["meta"]).adaptation_method
        out.append(entry)
    return out


def list_bundled() -> list[dict]:
    """Checkpoints shipped with the package: ``[{"name", "path", "source", "meta"}]``."""
    return _list_dir(bundled_dir(), "bundled")


def list_user() -> list[dict]:
    return _list_dir(user_dir(), "user")


def list_checkpoints() -> list[dict]:
    """Bundled then user checkpoints (a user checkpoint with a bundled name is listed too, and wins in resolve)."""
    return list_bundled() + list_user()


def resolve(name_or_path=None) -> Path:
    """A path for a checkpoint name (user folder first, then bundled) or an existing path.

    ``None`` means the default bundled model.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CHECKPOINT
    p = Path(str(name_or_path)).expanduser()
    if p.suffix.lower() in PICKLE_SUFFIXES:
        read_header(p)  # raises the pickle refusal
    if p.is_file():
        return p
    if p.is_dir():
        raise VesselGraphError(f"{p}: is a folder, not a checkpoint file")
    name = str(name_or_path)
    if os.sep not in name and "/" not in name:
        stem = name.removesuffix(SUFFIX)
        for folder in (user_dir(), bundled_dir()):
            cand = folder / f"{stem}{SUFFIX}"
            if cand.is_file():
                return cand
    names = sorted({e["name"] for e in list_checkpoints()})
    raise VesselGraphError(
        f"no checkpoint {name_or_path!r}: not a file, and not one of the known names {names or '(none installed)'}"
    )
