"""A checkpoint's metadata as one typed, validated object: :class:`CheckpointMeta`.

The metadata is the JSON object a checkpoint carries in its safetensors header (and in its ``.json`` sidecar).
This module is the one place that reads what the rest of the package needs from it: the dimensionality,
channels and patch size of the model (:func:`_dims`: the architecture config first, then the top-level keys,
then the input normalisation), the thresholds, the adaptation, and the checks that a file describes a model this
package can build (:meth:`CheckpointMeta.from_dict`).

Keys it does not know (``suits``, ``scale_reference``, ``description``, ``command``, ``seed``, ``created``,
``training``, ``validation``, ``adaptation``, ...) are kept as they are in :attr:`CheckpointMeta.extra` and
written back by :meth:`CheckpointMeta.to_dict`, so reading and writing a checkpoint's metadata loses nothing.

Versions: ``format_version`` is the layout of this object (:data:`FORMAT_VERSION`); a file from a newer layout
is refused with a one-line error (update the package), a file without one is not a checkpoint of this package.
Older layouts, when there are any, are upgraded in :meth:`CheckpointMeta.from_dict`.

No torch, no numpy: listing checkpoints reads only their headers and this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import VesselGraphError

FORMAT_VERSION = 1
ARCHITECTURE = "relationformer"
#: the largest image (region) a segmentation checkpoint (``kind: segmentation``, :mod:`..model.segment`) predicts:
#: it reads the image whole and holds about 6 float32 copies of it at once
SEGMENTATION_MAX_VOXELS = 256_000_000
#: ``kind`` of a segmentation checkpoint's metadata (a Relationformer's has none)
SEGMENTATION_KIND = "segmentation"


def is_segmentation(meta) -> bool:
    """Whether checkpoint metadata ``meta`` describes a segmentation checkpoint (:mod:`..model.segment`)."""
    return isinstance(meta, dict) and meta.get("kind") == SEGMENTATION_KIND

#: keys with a field of their own (everything else goes to ``extra``)
_TYPED = (
    "format_version", "architecture", "model", "ndim", "channels", "patch_size", "input", "name", "domain",
    "thresholds", "postprocess", "translator",
)  # fmt: skip


def _int_or_none(value) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _dims(meta: dict) -> tuple[int | None, int | None, tuple[int, ...] | None]:
    """``(ndim, channels, patch_size)`` of a checkpoint's metadata, ``None`` where it does not say (never
    raises): the architecture config (``model``) first, then the top-level keys, then the input normalisation
    (``input``). The one place that reads them."""
    model, inp = _dict(meta.get("model")), _dict(meta.get("input"))
    ndim = next(
        (n for n in map(_int_or_none, (model.get("ndim"), meta.get("ndim"), inp.get("ndim"))) if n is not None), None
    )
    channels = next(
        (
            c
            for c in map(_int_or_none, (model.get("in_channels"), meta.get("channels"), inp.get("channels")))
            if c is not None
        ),
        None,
    )
    patch = model.get("patch_size", meta.get("patch_size"))
    if patch is not None and not isinstance(patch, (list, tuple)):
        patch = [patch] * (ndim or 1)  # one size for every axis
    if isinstance(patch, (list, tuple)) and patch:
        sizes = [_int_or_none(p) for p in patch]
        patch = tuple(sizes) if all(s is not None for s in sizes) else None
    else:
        patch = None
    return ndim, channels, patch


@dataclass
class CheckpointMeta:
    """The metadata of one checkpoint.

    Typed fields: ``format_version``, ``architecture``, ``model`` (the architecture config,
    :meth:`napari_vesselgraph.model.config.ModelConfig.to_dict`), ``ndim``, ``channels``, ``patch_size`` (read
    by :func:`_dims`), ``input`` (the normalisation recipe), ``name``, ``domain``, ``thresholds`` (``node``,
    ``edge`` and notes), ``postprocess`` (clean-up settings), ``translator`` (the translator architecture of a
    translation-adapted checkpoint); every other key in ``extra``, unchanged.
    """

    format_version: int | None = FORMAT_VERSION
    architecture: str = ARCHITECTURE
    model: dict = field(default_factory=dict)
    ndim: int | None = None
    channels: int | None = None
    patch_size: tuple[int, ...] | None = None
    input: dict = field(default_factory=dict)
    name: str | None = None
    domain: str | None = None
    thresholds: dict | None = None
    postprocess: dict | None = None
    translator: dict | None = None
    extra: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, meta: dict, where: str = "checkpoint", strict: bool = True) -> CheckpointMeta:
        """The metadata ``meta`` (a checkpoint's JSON object). With ``strict`` (default) it is checked: a
        one-line :class:`VesselGraphError` starting with ``where`` when it cannot describe a model this package
        can build (no or a newer ``format_version``, another architecture, no architecture config, top-level
        ``ndim``/``channels``/``patch_size`` or the input normalisation disagreeing with the architecture, bad
        thresholds, a translation without its translator). Without ``strict`` it never raises: what cannot be
        read is ``None`` (for listing and describing files that may be broken)."""
        if not isinstance(meta, dict):
            if strict:
                raise VesselGraphError(f"{where}: checkpoint metadata is not a JSON object")
            meta = {}
        if strict:
            try:
                cls._check(meta, where)
            except VesselGraphError:
                raise
            except (TypeError, ValueError, AttributeError) as e:  # e.g. "ndim": "two" in a hand-made file
                raise VesselGraphError(f"{where}: invalid checkpoint metadata ({e})") from None
        ndim, channels, patch = _dims(meta)
        thresholds = meta.get("thresholds")
        return cls(
            format_version=meta.get("format_version"),
            architecture=str(meta.get("architecture", ARCHITECTURE)),
            model=dict(_dict(meta.get("model"))),
            ndim=ndim,
            channels=channels,
            patch_size=patch,
            input=dict(_dict(meta.get("input"))),
            name=None if meta.get("name") is None else str(meta["name"]),
            domain=None if meta.get("domain") is None else str(meta["domain"]),
            thresholds=dict(thresholds) if isinstance(thresholds, dict) else None,
            postprocess=dict(meta["postprocess"]) if isinstance(meta.get("postprocess"), dict) else None,
            translator=dict(meta["translator"]) if isinstance(meta.get("translator"), dict) else None,
            extra={k: v for k, v in meta.items() if k not in _TYPED},
        )

    @classmethod
    def peek(cls, meta) -> CheckpointMeta:
        """:meth:`from_dict` without the checks (never raises)."""
        return cls.from_dict(meta if isinstance(meta, dict) else {}, strict=False)

    @staticmethod
    def _check(meta: dict, where: str) -> None:
        version = meta.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise VesselGraphError(f"{where}: metadata has no format_version")
        if version > FORMAT_VERSION:
            raise VesselGraphError(
                f"{where}: checkpoint format {version} is newer than this napari-vesselgraph supports "
                f"({FORMAT_VERSION}); update the package"
            )
        if meta.get("architecture", ARCHITECTURE) != ARCHITECTURE:
            raise VesselGraphError(f"{where}: unknown architecture {meta.get('architecture')!r}")
        cfg = meta.get("model")
        if not isinstance(cfg, dict):
            raise VesselGraphError(f"{where}: metadata has no architecture config ('model')")
        for key, ck in (("ndim", "ndim"), ("channels", "in_channels")):
            if meta.get(key) is not None and cfg.get(ck) is not None and int(meta[key]) != int(cfg[ck]):
                raise VesselGraphError(f"{where}: metadata says {key}={meta[key]} but the architecture has {cfg[ck]}")
        if (
            meta.get("patch_size") is not None
            and cfg.get("patch_size") is not None
            and [int(x) for x in meta["patch_size"]] != [int(x) for x in cfg["patch_size"]]
        ):
            raise VesselGraphError(
                f"{where}: metadata patch_size {meta['patch_size']} differs from the architecture's {cfg['patch_size']}"
            )
        inp = _dict(meta.get("input"))
        for key in ("ndim", "channels"):
            if inp.get(key) is not None and meta.get(key) is not None and int(inp[key]) != int(meta[key]):
                raise VesselGraphError(
                    f"{where}: input normalisation is for {key}={inp[key]} but the model has {meta[key]}"
                )
        th = meta.get("thresholds")
        if th is not None:
            if not isinstance(th, dict):
                raise VesselGraphError(f"{where}: thresholds must be an object with 'node' and 'edge', got {th!r}")
            for key in ("node", "edge"):
                v = th.get(key)
                if v is not None and (isinstance(v, bool) or not 0.0 <= float(v) <= 1.0):
                    raise VesselGraphError(f"{where}: the recorded {key} threshold must be in [0, 1], got {v!r}")
        cand = meta.get("candidates")
        if cand is not None:
            if not isinstance(cand, dict):
                raise VesselGraphError(f"{where}: candidates must be an object (node_floor, pair_radius), got {cand!r}")
            v = cand.get("node_floor")
            if v is not None and (isinstance(v, bool) or not 0.0 <= float(v) <= 1.0):
                raise VesselGraphError(f"{where}: candidates.node_floor must be in [0, 1], got {v!r}")
            v = cand.get("pair_radius")
            if v is not None and (isinstance(v, bool) or not float(v) > 0.0):
                raise VesselGraphError(f"{where}: candidates.pair_radius must be a positive number (px), got {v!r}")
        if meta.get("postprocess") is not None and not isinstance(meta["postprocess"], dict):
            raise VesselGraphError(f"{where}: postprocess must be an object of clean-up settings")
        ad = meta.get("adaptation")
        translation = (isinstance(ad, dict) and ad.get("method") == "translation") or meta.get("translator")
        if translation and not isinstance(meta.get("translator"), dict):
            raise VesselGraphError(f"{where}: a translation-adapted checkpoint without its translator config")

    @classmethod
    def for_model(cls, cfg) -> CheckpointMeta:
        """The metadata of a new checkpoint of a model of config ``cfg`` (a ``ModelConfig``): architecture,
        dimensionality, channels, patch size and the default input normalisation, all from ``cfg``."""
        base = {
            "format_version": FORMAT_VERSION,
            "architecture": ARCHITECTURE,
            "model": cfg.to_dict(),
            "ndim": cfg.ndim,
            "channels": cfg.in_channels,
            "patch_size": list(cfg.patch_size),
            "input": {"ndim": cfg.ndim, "channels": cfg.in_channels, "method": "percentile", "low": 1.0, "high": 99.5},
            "domain": None,
            "adaptation": {"method": "none"},
        }
        return cls.peek(base)

    # ---------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        """The JSON object to store: the typed fields (optional ones only when set), then ``extra``."""
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "architecture": self.architecture,
            "model": dict(self.model),
            "ndim": self.ndim,
            "channels": self.channels,
            "patch_size": None if self.patch_size is None else list(self.patch_size),
            "input": dict(self.input),
            "domain": self.domain,
        }
        for key in ("name", "thresholds", "postprocess", "translator"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out

    # ---------------------------------------------------------------- what the rest of the package asks
    @property
    def input_meta(self) -> dict:
        """The input normalisation recipe with ``ndim`` and ``channels`` filled in."""
        inp = dict(self.input)
        if self.ndim is not None:
            inp.setdefault("ndim", self.ndim)
        if self.channels is not None:
            inp.setdefault("channels", self.channels)
        return inp

    @property
    def node_threshold(self) -> float:
        """The node threshold chosen at training time (0.5 when none is recorded)."""
        return float(checkpoint_thresholds({"thresholds": self.thresholds})[0])

    @property
    def edge_threshold(self) -> float:
        """The edge threshold chosen at training time (0.5 when none is recorded)."""
        return float(checkpoint_thresholds({"thresholds": self.thresholds})[1])

    @property
    def adaptation(self) -> dict:
        """``{"method": ..., ...}`` (``{"method": "none"}`` when it carries none)."""
        ad = self.extra.get("adaptation")
        if isinstance(ad, dict):
            return {"method": "none", **ad}
        return {"method": str(ad or "none")}

    @property
    def adaptation_method(self) -> str:
        return str(self.adaptation.get("method", "none"))

    @property
    def adaptation_target(self) -> str | None:
        ad = self.adaptation
        return ad.get("target") or ad.get("target_domain") or None

    @property
    def validation(self) -> dict:
        val = self.extra.get("validation")
        return val if isinstance(val, dict) else {}

    def describe(self) -> list[str]:
        """Short facts about the checkpoint, for a line or a tooltip: domain, dimensionality, adaptation, patch
        size, validation scores."""
        parts = [f"domain: {self.domain or 'unknown'}", f"{self.ndim}D" if self.ndim else "dimensionality unknown"]
        if is_segmentation(self.extra):
            parts.append("segmentation (U-Net mask → centre-line graph)")
        target = self.adaptation_target
        parts.append(f"adaptation: {self.adaptation_method}{f' → {target}' if target else ''}")
        loo = leave_one_out_summary(self.adaptation)
        if loo:
            parts.append(loo)
        if self.patch_size:
            parts.append("patch " + "×".join(str(int(p)) for p in self.patch_size))
        for key in ("edge_f1", "node_f1", "smd", "dice"):
            v = self.validation.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                parts.append(f"{key} {v:.3g}")
        return parts


# ------------------------------------------------------------------ lenient readers (entries may be broken)
def leave_one_out_summary(adaptation: dict) -> str | None:
    """What a calibrate run's leave-one-out check found (``adaptation["leave_one_out"]``), in a few words:
    ``"calibration carries over from shot to shot (0.637 vs 0.577 with the source's settings, 10 shots left out in
    turn)"``; ``None`` when it records none or it cannot be read."""
    rows = _dict(adaptation).get("leave_one_out")
    if not isinstance(rows, list) or not rows:
        return None
    try:
        loo = sum(float(r["score"]) for r in rows) / len(rows)
        own = sum(float(r["own_score"]) for r in rows) / len(rows)
    except (TypeError, KeyError, ValueError):
        return None
    verdict = "carries over from shot to shot" if loo > own + 1e-9 else "does not carry over from shot to shot"
    return (f"calibration {verdict} ({loo:.3f} vs {own:.3f} with the source's settings, {len(rows)} shots left "
            "out in turn)")


def checkpoint_ndim(meta: dict) -> int | None:
    """The dimensionality (2 or 3) a checkpoint's metadata records, or None."""
    return _dims(meta if isinstance(meta, dict) else {})[0]


def checkpoint_patch_size(meta: dict) -> tuple[int, ...] | None:
    """The patch size a checkpoint's metadata records, or None."""
    return _dims(meta if isinstance(meta, dict) else {})[2]


def checkpoint_thresholds(meta: dict) -> tuple[Any, Any]:
    """``(node, edge)``: the thresholds a checkpoint's metadata records (as recorded: checked by the caller),
    0.5 where it records none."""
    th = _dict(_dict(meta).get("thresholds"))
    return th.get("node", 0.5), th.get("edge", 0.5)


def checkpoint_candidates(meta: dict) -> dict[str, Any]:
    """What a checkpoint records about the candidates its patch predictor keeps (``meta["candidates"]``):
    ``node_floor`` (node candidates scoring below it are dropped before the relation head) and ``pair_radius``
    (only node pairs at most this far apart, in patch pixels, are scored as edges); ``None`` where it records
    none (the predictor's defaults then apply). Lenient: values that cannot be read are ``None``."""
    cand = _dict(_dict(meta).get("candidates"))
    out: dict[str, Any] = {}
    for key in ("node_floor", "pair_radius"):
        v = cand.get(key)
        try:
            out[key] = None if v is None or isinstance(v, bool) else float(v)
        except (TypeError, ValueError):
            out[key] = None
    return out


__all__ = [
    "FORMAT_VERSION",
    "CheckpointMeta",
    "checkpoint_candidates",
    "checkpoint_ndim",
    "checkpoint_patch_size",
    "checkpoint_thresholds",
]
