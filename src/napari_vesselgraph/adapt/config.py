"""``AdaptConfig``: every option of one adaptation run (plain data, no torch import)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import VesselGraphError

#: adaptation methods; the first three share one training loop (:mod:`.loop`), translation has its own,
#: calibrate trains nothing (:mod:`.calibrate`: thresholds and clean-up chosen on the shots)
METHODS = ("contrastive", "finetune", "adversarial", "translation", "calibrate")
#: the methods that train weights
TRAINING_METHODS = METHODS[:4]
TRANSLATOR_KEYS = {"arch", "residual", "features", "blocks", "invert"}  # what AdaptConfig.translator may change

#: which parameters train (see :func:`napari_vesselgraph.adapt.loop.select_trainable`)
TRAIN_LAYERS = ("all", "decoder+heads", "heads")

#: held-out selection scores (see ``AdaptConfig.select_by``)
SELECT_BY = ("auto", "f1", "graph")


@dataclass
class AdaptConfig:
    """Options of :func:`napari_vesselgraph.adapt.adapt`.

    - ``target``: a dataset folder (``synth.write_dataset`` layout) **or** ``target_domain``: a synthetic
      domain name (its train split gives the K shots, its val split the held-out samples).
    - ``shots``: K labelled target samples (``None``: all train-split samples of the folder); ignored by
      ``translation``, which uses the target images without their labels.
    - ``val_fraction``: share of the labelled target samples held out for the before/after metrics, model
      selection and thresholds (at least one when there are two or more samples; 0: none).
    - ``temperature``/``align_weight``: SupCon temperature; weight of the contrastive or adversarial term.
    - ``train_layers``: ``"all"``, ``"decoder+heads"`` (backbone and encoder frozen) or ``"heads"``.
    - ``zoom``: the scale the target images are adapted (and later predicted) at. ``"auto"``: each 2D image is
      shrunk as ``predict``'s automatic zoom would shrink it (from the source checkpoint's scale reference;
      nothing without one); a number: every target image is resampled by it (e.g. 0.25 for 30 cm satellite
      tiles), and the adapted checkpoint records the scale reference that makes ``predict`` choose about that
      zoom on such images; ``1``: the images as they are.
    - ``select_by``: the held-out score that picks the step and the thresholds. ``"f1"``: (node F1 + edge F1)
      / 2; ``"graph"``: (length quality + junction F1) / 2, which does not depend on how densely the true
      graphs' nodes lie (real annotations: skeletonised masks, traces); ``"auto"``: ``graph`` for a target
      folder, ``f1`` for a synthetic target domain.
    - ``translator``: ``translation`` only: changes to the translator's architecture (keys ``arch``, ``residual``,
      ``features``, ``blocks``; ``adapt.translate.DEFAULT_TRANSLATOR`` for the rest) and ``invert`` (start from the
      inverted image; left out: chosen from the polarities of the source checkpoint and the target images).
    """

    method: str = "finetune"  # contrastive and adversarial tie with it on real data and take longer (docs/user-guide.md)
    checkpoint: str = "vessel2d-fluo"
    target: str | None = None
    target_domain: str | None = None
    source: str | None = None
    shots: int | None = None
    shot_seed: int = 0
    val_fraction: float = 0.2
    steps: int = 300
    lr: float = 1e-3  # peak AdamW rate; 2e-4 was too slow to adapt in 300 steps (vessel2d-fluo -> fundus, K=5)
    batch_size: int = 8
    temperature: float = 0.1
    align_weight: float = 0.5
    train_layers: str = "all"
    seed: int = 0
    out: str | None = None
    device: str = "auto"
    threads: int = 1
    max_minutes: float | None = None
    # additions beyond the widget contract (all optional)
    val_every: int | None = None  # None: steps // 3 (at least 25)
    zoom: float | str = "auto"  # see the class docstring
    select_by: str = "auto"  # see the class docstring
    command: str | None = None  # recorded in the checkpoint metadata (the CLI fills it in)
    translator: dict | None = None  # see the class docstring

    @classmethod
    def from_dict(cls, d: dict) -> AdaptConfig:
        if not isinstance(d, dict):
            raise VesselGraphError(f"an adaptation config must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise VesselGraphError(f"unknown adaptation config keys: {sorted(bad)} (known: {sorted(known)})")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> AdaptConfig:
        """Check every value; raises :class:`VesselGraphError` with a readable message."""
        if self.method not in METHODS:
            raise VesselGraphError(f"unknown adaptation method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.train_layers not in TRAIN_LAYERS:
            raise VesselGraphError(f"train_layers must be one of {', '.join(TRAIN_LAYERS)}, got {self.train_layers!r}")
        if not self.checkpoint:
            raise VesselGraphError("no source checkpoint given")
        if (self.target is None) == (self.target_domain is None):
            raise VesselGraphError(
                "give exactly one of target (a dataset folder) and target_domain (a synthetic domain)"
            )
        if self.target_domain is not None:
            from ..synth import DOMAINS

            if self.target_domain not in DOMAINS:
                raise VesselGraphError(
                    f"unknown target domain {self.target_domain!r}; choose one of {', '.join(DOMAINS)}"
                )
        _int(self, "steps", 1)
        _int(self, "batch_size", 1)
        _int(self, "threads", 0)
        _int(self, "seed", 0)
        _int(self, "shot_seed", 0)
        if self.shots is not None:
            _int(self, "shots", 1)
        if self.val_every is not None:
            _int(self, "val_every", 1)
        for name, lo, lo_open in (("lr", 0.0, True), ("temperature", 0.0, True), ("align_weight", 0.0, False)):
            v = _float(self, name)
            if v < lo or (lo_open and v == lo):
                raise VesselGraphError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v}")
        vf = _float(self, "val_fraction")
        if not 0.0 <= vf < 1.0:
            raise VesselGraphError(f"val_fraction must be in [0, 1), got {vf}")
        if self.select_by not in SELECT_BY:
            raise VesselGraphError(f"select_by must be one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        if isinstance(self.zoom, str) and self.zoom.strip().lower() == "auto":
            self.zoom = "auto"
        else:
            try:
                z = _float(self, "zoom")
            except VesselGraphError:
                z = float("nan")
            if not 0.0 < z <= 8.0:
                raise VesselGraphError(f"zoom must be 'auto' or a factor in (0, 8], got {self.zoom!r}")
        if self.translator is not None:
            if not isinstance(self.translator, dict):
                raise VesselGraphError(f"translator must be an object, got {type(self.translator).__name__}")
            bad = set(self.translator) - TRANSLATOR_KEYS
            if bad:
                raise VesselGraphError(
                    f"unknown translator keys: {sorted(bad)} (known: {', '.join(sorted(TRANSLATOR_KEYS))})"
                )
        if self.max_minutes is not None and _float(self, "max_minutes") <= 0:
            raise VesselGraphError(f"max_minutes must be positive, got {self.max_minutes}")
        return self

    @property
    def selection(self) -> str:
        """``select_by`` with ``auto`` resolved: ``graph`` for a target folder, ``f1`` for a synthetic domain."""
        if self.select_by != "auto":
            return self.select_by
        return "graph" if self.target is not None else "f1"

    @property
    def eval_every(self) -> int:
        return int(self.val_every) if self.val_every else max(25, self.steps // 3)


def _int(cfg, name: str, lo: int) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise VesselGraphError(f"{name} must be an integer, got {v!r}")
    if int(v) < lo:
        raise VesselGraphError(f"{name} must be at least {lo}, got {v}")
    setattr(cfg, name, int(v))


def _float(cfg, name: str) -> float:
    v = getattr(cfg, name)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise VesselGraphError(f"{name} must be a number, got {v!r}") from None
    if isinstance(v, bool) or not math.isfinite(f):
        raise VesselGraphError(f"{name} must be a finite number, got {v!r}")
    setattr(cfg, name, f)
    return f
