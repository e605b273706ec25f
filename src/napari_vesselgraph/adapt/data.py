"""Adaptation data: labelled target samples (K shots + held-out), unlabelled target images, source patches.

Target samples come from a dataset folder (``synth.write_dataset`` layout; the annotation store writes the
same) or from a synthetic domain:

- folder: the pool is the folder's ``train`` split, sorted by id. A generator seeded with ``shot_seed``
  shuffles it; the first ``n_heldout`` samples are held out (``val_fraction`` of the pool, at least one when
  the pool has two or more samples), the next ``shots`` are the K shots (all the rest when ``shots`` is None).
- synthetic domain: the K shots are train-split seeds drawn without replacement from ``[0, SHOT_POOL)`` by a
  generator seeded with ``shot_seed``; the held-out samples are the val-split seeds ``20_000_000 + i``
  (``i < n_heldout``, ``n_heldout = ceil(val_fraction / (1 - val_fraction) * K)``, so that they are
  ``val_fraction`` of all labelled samples). Test seeds (``10_000_000 +``) are never used. Images have the
  domain's default shape.

Every image is normalised whole with the source checkpoint's input recipe (``model.preprocess``: an RGB
target image becomes grey by luminance for a one-channel model), exactly as :func:`inference.predict` does,
so an adapted checkpoint runs through the normal predict path.

Before that, 2D target samples are brought to the scale the model works at (:func:`apply_zoom`, the config's
``zoom``): a model that ``predict`` runs on a photo shrunk by 0.5 is adapted on the shots shrunk by 0.5 (their
graphs scaled and re-spaced like the training graphs), and judged on the held-out samples at that scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from .config import AdaptConfig

SHOT_POOL = 100_000  # synthetic K shots are drawn from train seeds [0, SHOT_POOL)
UNLABELLED_IMAGES = 32  # synthetic target images used (without labels) by translation
SOURCE_POOL = 16  # source images kept in memory (synthetic source: refreshed as in training)


@dataclass
class TargetSample:
    id: str
    seed: int | None
    image: np.ndarray
    graph: Any  # VesselGraph (None for unlabelled images)


@dataclass
class TargetData:
    name: str  # folder path or domain name (recorded as ``target``)
    domain: str | None  # the domain the manifest names, or the synthetic domain
    shots: list[TargetSample] = field(default_factory=list)
    heldout: list[TargetSample] = field(default_factory=list)
    unlabelled: list[TargetSample] = field(default_factory=list)  # images only (translation)
    synthetic: bool = False
    zoom: list = field(default_factory=list)  # per sample (id, factor) when the samples were resampled
    scale_reference: dict | None = None  # what the adapted checkpoint records when ``zoom`` is a number

    @property
    def zoomed(self) -> bool:
        """Whether the samples are already at the model's scale (evaluate them with ``zoom=1``)."""
        return bool(self.zoom)

    def ids(self, samples: list[TargetSample]) -> list:
        """Seeds of synthetic samples, ids of folder samples."""
        return [s.seed if self.synthetic else s.id for s in samples]


def n_heldout_for(pool: int, val_fraction: float) -> int:
    """Held-out count of a folder pool: ``round(val_fraction * pool)``, at least 1 (pool >= 2), at most pool - 1."""
    if val_fraction <= 0 or pool < 2:
        return 0
    return int(min(pool - 1, max(1, round(val_fraction * pool))))


def choose_source(config: dict, say) -> dict:
    """``config`` (AdaptConfig keys) with its source ``checkpoint`` filled in when it names a ``target`` folder and no
    checkpoint: the installed checkpoint that suits the folder's first training image, as ``predict`` chooses
    (:func:`napari_vesselgraph.inference.predict.suited_checkpoint`), a Relationformer unless the method is
    ``calibrate`` (the one method a segmentation checkpoint takes). ``say(line)`` is told the choice and each
    mismatch. Unchanged (the config's default applies) when a checkpoint is given, the folder cannot be read here
    (the run reports that itself) or nothing is installed."""
    if config.get("checkpoint") or not config.get("target"):
        return config
    from ..inference.predict import suited_checkpoint
    from ..synth import read_dataset

    target = config["target"]
    try:
        recs = read_dataset(target, split="train", load=False) or read_dataset(target, load=False)
    except (OSError, ValueError, VesselGraphError):
        return config
    if not recs:
        return config
    tiled = (config.get("method") or "finetune") != "calibrate"
    ckpt, choice = suited_checkpoint(recs[0].image_path, None, tiled=tiled, warn=False)
    if ckpt is None:
        return config
    say(f"no checkpoint given; using '{choice['checkpoint']}' for the target images")
    for line in choice["warnings"]:
        say(f"warning: {line}")
    return {**config, "checkpoint": ckpt}


def load_target(cfg: AdaptConfig, ndim: int, log=print, meta: dict | None = None) -> TargetData:
    """The K shots, held-out samples and (translation) unlabelled images of the target, at the model's scale
    (:func:`apply_zoom`; ``meta``: the source checkpoint's metadata)."""
    data = _from_folder(cfg, ndim) if cfg.target is not None else _from_domain(cfg, ndim)
    if ndim == 2 and not data.synthetic:
        apply_zoom(data, cfg.zoom, meta or {}, log=log)
    return data


def apply_zoom(data: TargetData, zoom, meta: dict, log=print) -> None:
    """Resample every 2D sample of ``data`` in place to the scale the model works at.

    ``zoom="auto"``: each image by :func:`inference.autozoom.estimate_zoom` against the checkpoint's
    ``scale_reference`` (as ``predict`` does; nothing without a reference); a number: every image by it, and
    ``data.scale_reference`` becomes the median structure radius of the full-size images times the factor, so
    that the adapted checkpoint makes ``predict``'s automatic zoom pick about that factor on images like these.
    Graphs are scaled and re-spaced ``spacing`` px apart (the checkpoint's clean-up setting, else 10).
    """
    from ..inference.autozoom import estimate_zoom, structure_radius, zoom_graph, zoom_image

    ref = ((meta.get("scale_reference") or {}).get("radius_p90")) if isinstance(meta, dict) else None
    if (zoom == "auto" and not ref) or (zoom != "auto" and float(zoom) == 1.0):
        return
    spacing = float(((meta.get("postprocess") or {}).get("spacing")) or 10.0)
    groups = (data.shots, data.heldout, data.unlabelled)
    factors = {}
    for group in groups:
        for s in group:
            z = float(zoom) if zoom != "auto" else estimate_zoom(np.asarray(s.image), float(ref))
            factors[s.id] = z
    if all(abs(z - 1.0) < 1e-9 for z in factors.values()) and zoom == "auto":
        return
    radii = []
    if zoom != "auto":  # measured at full size: predict measures a new image at full size too
        for s in data.shots + data.heldout + data.unlabelled:
            r = structure_radius(np.asarray(s.image, np.float32))
            if r is not None:
                radii.append(r)
    for group in groups:
        for i, s in enumerate(group):
            z = factors[s.id]
            if abs(z - 1.0) < 1e-9:
                continue
            img, real = zoom_image(s.image, z, 2)
            g = None if s.graph is None else zoom_graph(s.graph, real, spacing)
            group[i] = TargetSample(s.id, s.seed, img, g)
    data.zoom = [[str(k), round(v, 4)] for k, v in factors.items()]
    log(f"target images resampled to the model's scale: zoom {_zoom_summary(factors.values())}")
    if radii:
        data.scale_reference = {
            "radius_p90": round(float(np.median(radii)) * float(zoom), 3),
            "how": "napari_vesselgraph.inference.autozoom.structure_radius",
            "source": f"median structure radius of the full-size target images x zoom {float(zoom)} (adapt): "
            "predict's automatic zoom shrinks images like them by about that factor",
        }


def _zoom_summary(values) -> str:
    v = sorted(float(x) for x in values)
    return f"{v[0]:.3f}" if v[0] == v[-1] else f"{v[0]:.3f}-{v[-1]:.3f}"


def _check_ndim(graph_or_image_ndim: int, ndim: int, where: str) -> None:
    if graph_or_image_ndim != ndim:
        raise VesselGraphError(f"{where} is {graph_or_image_ndim}D but the source checkpoint is {ndim}D")


def _from_folder(cfg: AdaptConfig, ndim: int) -> TargetData:
    from ..synth import dataset_info, read_dataset

    folder = Path(cfg.target).expanduser()
    info = dataset_info(folder)  # clear errors for a missing folder / manifest
    _check_ndim(int(info["ndim"]), ndim, f"target dataset {folder}")
    records = sorted(read_dataset(folder, split="train"), key=lambda r: r.id)
    if not records:
        raise VesselGraphError(f"target dataset {folder} has no train-split samples")
    rng = np.random.default_rng(cfg.shot_seed)
    order = [records[i] for i in rng.permutation(len(records))]
    n_hold = n_heldout_for(len(order), cfg.val_fraction)
    held, rest = order[:n_hold], order[n_hold:]
    data = TargetData(str(folder), info.get("domain"))
    to = lambda r: TargetSample(r.id, r.seed, r.image, r.graph)
    data.heldout = [to(r) for r in held]
    if cfg.method == "translation":
        data.unlabelled = [TargetSample(r.id, r.seed, r.image, None) for r in rest]
        return data
    k = len(rest) if cfg.shots is None else cfg.shots
    if k > len(rest):
        raise VesselGraphError(
            f"target dataset {folder}: {k} shots asked for but only {len(rest)} train-split sample(s) are left "
            f"after holding out {n_hold} (val_fraction={cfg.val_fraction}); annotate more or lower shots"
        )
    data.shots = [to(r) for r in rest[:k]]
    return data


def _from_domain(cfg: AdaptConfig, ndim: int) -> TargetData:
    from .. import synth

    dom = cfg.target_domain
    spec = synth.get_domain(dom)
    _check_ndim(spec.ndim, ndim, f"target domain {dom!r}")
    rng = np.random.default_rng(cfg.shot_seed)
    data = TargetData(dom, dom, synthetic=True)
    if cfg.method == "translation":
        k = UNLABELLED_IMAGES
    else:
        if cfg.shots is None:
            raise VesselGraphError("give shots (K) with a synthetic target_domain")
        k = cfg.shots
    seeds = sorted(int(s) for s in rng.choice(SHOT_POOL, size=k, replace=False))
    vf = cfg.val_fraction
    labelled = cfg.shots or (5 if cfg.method == "translation" else k)  # translation: held out as for K = 5
    n_hold = 0 if vf <= 0 else max(1, math.ceil(round(vf / (1.0 - vf) * labelled, 9)))
    for s in seeds:
        img, g = synth.make_sample(dom, s)
        sample = TargetSample(f"train_{s:08d}", s, img, g if cfg.method != "translation" else None)
        (data.unlabelled if cfg.method == "translation" else data.shots).append(sample)
    for s in synth.split_seeds("val", 0, n_hold):
        img, g = synth.make_sample(dom, s)
        data.heldout.append(TargetSample(f"val_{s:08d}", s, img, g))
    return data


# ------------------------------------------------------------------ patches
def prepare(image, in_meta: dict, patch_size) -> np.ndarray:
    """Normalise a whole image with the checkpoint's recipe; pad (with its median) up to the patch size."""
    from ..model.data import pad_to_patch
    from ..model.preprocess import normalize_image

    x = pad_to_patch(normalize_image(image, in_meta), patch_size)
    return np.ascontiguousarray(x, dtype=np.float32)


class TargetSampler:
    """Random augmented patches (and their graphs) of a few prepared target samples."""

    def __init__(
        self,
        samples: list[TargetSample],
        in_meta: dict,
        patch_size,
        rng: np.random.Generator,
        augment: bool = True,
        empty_p: float = 0.3,
    ):
        if not samples:
            raise VesselGraphError("no target samples to draw patches from")
        self.items = [(prepare(s.image, in_meta, patch_size), s.graph) for s in samples]
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rng, self.augment, self.empty_p = rng, augment, empty_p

    def patch(self):
        from ..model.data import cut_patch, with_nodes
        from ..model.targets import augment

        for _ in range(20):
            img, g = self.items[int(self.rng.integers(len(self.items)))]
            origin = tuple(int(self.rng.integers(0, s - p + 1)) for s, p in zip(img.shape[1:], self.patch_size))
            if g is None:
                sl = (slice(None),) + tuple(slice(o, o + p) for o, p in zip(origin, self.patch_size))
                return self._aug_image(np.ascontiguousarray(img[sl])), None
            pimg, pg = cut_patch(img, g, origin, self.patch_size)
            if pg.n_nodes or self.rng.random() < self.empty_p:
                break
        if self.augment:
            pimg, nodes = augment(pimg, pg.nodes, self.rng)
            pg = with_nodes(pg, nodes)
        return pimg, pg

    def _aug_image(self, pimg: np.ndarray) -> np.ndarray:
        if not self.augment:
            return pimg
        from ..model.targets import augment

        return augment(pimg, np.zeros((0, len(self.patch_size))), self.rng)[0]

    def batch(self, n: int):
        return [self.patch() for _ in range(n)]


def source_sampler(cfg: AdaptConfig, meta: dict, mcfg, in_meta: dict, rng: np.random.Generator):
    """``(PatchSampler over the source data, source name)``: the checkpoint's training domain (synthetic, its
    training image shape) unless ``cfg.source`` names another domain or a dataset folder."""
    from .. import synth
    from ..model.data import PatchSampler, SamplerSettings, read_folder

    tcfg = (meta.get("training") or {}).get("config") or {}
    source = cfg.source or meta.get("domain")
    samples = None
    if source and Path(str(source)).expanduser().is_dir():
        samples, _, _ = read_folder(str(Path(str(source)).expanduser()))
        if samples[0][1].ndim != mcfg.ndim:
            raise VesselGraphError(
                f"source dataset {source} is {samples[0][1].ndim}D but the checkpoint is {mcfg.ndim}D"
            )
        domain = "vessel2d-fluo"  # unused with samples
    elif source in synth.DOMAINS:
        domain = source
        if synth.DOMAINS[source].ndim != mcfg.ndim:
            raise VesselGraphError(
                f"source domain {source!r} is {synth.DOMAINS[source].ndim}D, the checkpoint {mcfg.ndim}D"
            )
    elif meta.get("data") and Path(str(meta["data"])).is_dir() and not cfg.source:
        source = str(meta["data"])
        samples, _, _ = read_folder(source)
        domain = "vessel2d-fluo"
    else:
        raise VesselGraphError(
            f"source {source!r} is neither a synthetic domain ({', '.join(synth.DOMAINS)}) nor a dataset folder; "
            "give source= (a domain name or a dataset folder)"
        )
    shape = tcfg.get("image_shape") if source == tcfg.get("domain") else None
    tc = SamplerSettings(
        domain=domain,
        image_shape=shape,
        pool_size=SOURCE_POOL,
        refresh_every=2,
        empty_patch_p=float(tcfg.get("empty_patch_p", 0.3)),
        augment=True,
    )
    return PatchSampler(tc, mcfg, in_meta, rng, samples), str(source)
