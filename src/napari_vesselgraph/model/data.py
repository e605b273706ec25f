"""Training data of the Relationformer: normalised images in memory, cut into random (augmented) patches.

Shared by training (:mod:`.train`) and adaptation (:mod:`napari_vesselgraph.adapt.data`):

- :class:`PatchSampler`: a pool of normalised images (synthetic, drawn on the fly and refreshed, or the
  samples of a dataset folder) and random patches of them with their graphs (border nodes inserted by
  ``synth.crop_patch``), flipped / transposed.
- :class:`MixedSampler`: patches of a main sampler, each replaced with probability ``p`` by one of another
  (imported real data mixed into synthetic training).
- :func:`validation_set`: fixed validation patches of held-out images.
- :func:`read_folder` / :func:`read_splits`: ``(image, graph)`` samples of dataset folders by split.

Seeds: training images use seeds drawn from ``[0, TRAIN_SEED_MAX)``; validation images ``VAL_SEED_BASE + k``;
test seeds (``TEST_SEED_BASE`` and up) are never touched here.

The samplers read their settings from any object with the attributes of :class:`SamplerSettings` (a
``TrainConfig`` has them all), so this module does not depend on the training module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from .preprocess import normalize_image

TRAIN_SEED_MAX = 9_000_000
VAL_SEED_BASE = 9_000_000
TEST_SEED_BASE = 10_000_000


@dataclass
class SamplerSettings:
    """What :class:`PatchSampler` and :func:`validation_set` read (``TrainConfig`` has the same fields)."""

    domain: str = "vessel2d-fluo"  # synthetic domain (unused when the sampler is given samples)
    image_shape: list | None = None  # synthetic image shape (None: the domain's default)
    pool_size: int = 48  # synthetic images kept in memory
    refresh_every: int = 2  # replace one pool image every this many batches (synthetic only)
    empty_patch_p: float = 0.5  # keep a patch without nodes with this probability (else draw again)
    augment: bool = True
    val_images: int = 6
    val_patches: int = 48
    workers: int = 0  # > 0: synthesise images and cut their patches in this many background processes (synthetic)
    worker_patches: int = 32  # patches cut from each image a background worker makes


# ------------------------------------------------------------------ images and patches
def make_synthetic(domain: str, seed: int, shape=None):
    """``synth.make_sample(domain, seed[, shape])``: an ``(image, graph)`` pair."""
    from .. import synth

    if shape is None:
        return synth.make_sample(domain, seed)
    return synth.make_sample(domain, seed, shape=tuple(shape))


def draw_patch(images, size, empty_patch_p: float, augment: bool, rng: np.random.Generator):
    """A random (augmented) patch ``(patch, graph)`` of one of ``images`` (a list of normalised ``(image,
    graph)``); a patch without nodes is kept with probability ``empty_patch_p``, else drawn again (20 tries)."""
    for _ in range(20):
        img, g = images[int(rng.integers(len(images)))]
        spatial = img.shape[1:]
        if any(s < p for s, p in zip(spatial, size)):
            raise VesselGraphError(f"training image {spatial} smaller than the patch size {size}")
        origin = tuple(int(rng.integers(0, s - p + 1)) for s, p in zip(spatial, size))
        pimg, pg = cut_patch(img, g, origin, size)
        if pg.n_nodes or rng.random() < empty_patch_p:
            break
    nodes = pg.nodes
    if augment:
        pimg, nodes = _augment(pimg, nodes, rng)
    return pimg, with_nodes(pg, nodes)


def synthesize_patches(domain: str, seed: int, shape, in_meta: dict, size, n: int, empty_patch_p: float, augment: bool):
    """``n`` random patches ``(patch, graph)`` of the synthetic image of ``seed`` (normalised, padded to the patch,
    cut and augmented with a generator seeded by ``seed``): the work of one background worker."""
    img, g = make_synthetic(domain, seed, shape)
    images = [(pad_to_patch(normalize_image(img, in_meta), size), g)]
    rng = np.random.default_rng(seed)
    return [draw_patch(images, size, empty_patch_p, augment, rng) for _ in range(int(n))]


def with_nodes(g, nodes):
    """``g`` with its node positions replaced (edges and attributes kept)."""
    from ..graph import VesselGraph

    return VesselGraph(nodes, g.edges, g.node_attrs, g.edge_attrs, g.scale, g.metadata)


def cut_patch(norm_image: np.ndarray, graph, origin, size):
    """Crop a normalised ``(C, *S)`` image and its graph (border nodes inserted by ``synth.crop_patch``)."""
    from .. import synth

    sl = tuple(slice(o, o + p) for o, p in zip(origin, size))
    patch = np.ascontiguousarray(norm_image[(slice(None),) + sl])
    crop = getattr(synth, "crop_patch", None)
    if crop is not None:
        _, pg = crop(norm_image[0], graph, tuple(origin), tuple(size))
    else:
        from .targets import crop_graph

        pg = crop_graph(graph, origin, size)
    return patch, pg


def pad_to_patch(norm_image: np.ndarray, patch_size) -> np.ndarray:
    """A normalised ``(C, *S)`` image padded at the far end of each axis shorter than the patch (with the
    image's median, i.e. its background), so that shallow stacks (15 slices against 32-voxel patches) can be
    cut into patches; the graph's coordinates are unchanged."""
    pads = [(0, max(0, int(p) - s)) for s, p in zip(norm_image.shape[1:], patch_size)]
    if any(b for _, b in pads):
        norm_image = np.pad(norm_image, [(0, 0)] + pads, mode="constant", constant_values=float(np.median(norm_image)))
    return norm_image


def _augment(pimg, nodes, rng):
    from .targets import augment

    return augment(pimg, nodes, rng)


class PatchSampler:
    """Random training patches from a pool of normalised images (synthetic on the fly, or ``samples``).

    ``cfg``: a :class:`SamplerSettings` (or a ``TrainConfig``); ``mcfg``: the model config (patch size);
    ``in_meta``: the input normalisation (``preprocess.input_meta``); ``rng`` draws seeds, patches and
    augmentations; ``samples``: a list of ``(image, graph)`` to draw from instead of synthesising.
    """

    def __init__(self, cfg, mcfg, in_meta: dict, rng: np.random.Generator, samples=None):
        self.cfg, self.mcfg, self.in_meta, self.rng = cfg, mcfg, in_meta, rng
        self.fixed = samples  # list of (image, graph) when training from a folder
        self.pool: list[tuple[np.ndarray, Any]] = []
        self.used_seeds: list[int] = []
        self.workers = int(getattr(cfg, "workers", 0) or 0) if samples is None else 0
        self._executor = None
        self._pending: list = []
        n = cfg.pool_size if samples is None else len(samples)
        if self.workers > 0:
            if int(getattr(cfg, "worker_patches", 32)) < 1:
                raise VesselGraphError(f"worker_patches must be at least 1, got {cfg.worker_patches}")
            self._start_workers()
            self.pool = [f.result() for f in [self._submit() for _ in range(n)]]
            for _ in range(2 * self.workers):  # keep every worker busy between refreshes
                self._pending.append(self._submit())
        else:
            for k in range(n):
                self.pool.append(self._new_image(k))
        self.calls = 0

    def _new_image(self, k: int):
        if self.fixed is not None:
            img, g = self.fixed[k % len(self.fixed)]
        else:
            seed = int(self.rng.integers(0, TRAIN_SEED_MAX))
            self.used_seeds.append(seed)
            img, g = make_synthetic(self.cfg.domain, seed, self.cfg.image_shape)
        return pad_to_patch(normalize_image(img, self.in_meta), self.mcfg.patch_size), g

    # -- background synthesis (``workers`` > 0): seeds are drawn here; other processes make each image and cut
    # -- ``worker_patches`` patches of it (a block); the pool holds ``pool_size`` blocks and takes each block as
    # -- it is finished, so the order (not the set of seeds) depends on timing
    def _start_workers(self) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the training process may hold CUDA or many torch threads
        self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"))

    def _submit(self):
        seed = int(self.rng.integers(0, TRAIN_SEED_MAX))
        self.used_seeds.append(seed)
        return self._executor.submit(
            synthesize_patches,
            self.cfg.domain,
            seed,
            self.cfg.image_shape,
            self.in_meta,
            tuple(self.mcfg.patch_size),
            int(getattr(self.cfg, "worker_patches", 32)),
            self.cfg.empty_patch_p,
            self.cfg.augment,
        )

    def refresh(self) -> None:
        if self.fixed is not None:
            return
        if self._executor is None:
            k = int(self.rng.integers(len(self.pool)))
            self.pool[k] = self._new_image(k)
            return
        done = [f for f in self._pending if f.done()]
        for f in done:  # every finished block replaces a random pool block; nothing waits
            self._pending.remove(f)
            self.pool[int(self.rng.integers(len(self.pool)))] = f.result()
            self._pending.append(self._submit())

    def close(self) -> None:
        """Stop the background workers (a no-op without them)."""
        if self._executor is not None:
            for f in self._pending:
                f.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._pending = None, []

    def patch(self):
        if self._executor is not None:  # the pool holds blocks of patches cut by the workers
            block = self.pool[int(self.rng.integers(len(self.pool)))]
            return block[int(self.rng.integers(len(block)))]
        return draw_patch(self.pool, self.mcfg.patch_size, self.cfg.empty_patch_p, self.cfg.augment, self.rng)

    def batch(self, n: int):
        self.calls += 1
        if self.cfg.refresh_every and self.calls % self.cfg.refresh_every == 0:
            self.refresh()
        return [self.patch() for _ in range(n)]


class MixedSampler:
    """Patches from a main sampler, each replaced with probability ``p`` by one from an ``extra`` sampler."""

    def __init__(self, main: PatchSampler, extra: PatchSampler, p: float, rng: np.random.Generator):
        self.main, self.extra, self.p, self.rng = main, extra, float(p), rng

    def close(self) -> None:
        self.main.close()
        self.extra.close()

    @property
    def used_seeds(self):
        return self.main.used_seeds

    def patch(self):
        return self.extra.patch() if self.rng.random() < self.p else self.main.patch()

    def batch(self, n: int):
        self.main.calls += 1
        if self.main.cfg.refresh_every and self.main.calls % self.main.cfg.refresh_every == 0:
            self.main.refresh()
        return [self.patch() for _ in range(n)]


def validation_set(cfg, mcfg, in_meta: dict, samples=None):
    """Fixed validation patches (``cfg.val_patches``) from held-out images: ``samples`` or the synthetic
    images of seeds ``VAL_SEED_BASE + k`` (``k < cfg.val_images``)."""
    rng = np.random.default_rng(VAL_SEED_BASE)
    out = []
    if samples is None:
        images = [make_synthetic(cfg.domain, VAL_SEED_BASE + k, cfg.image_shape) for k in range(cfg.val_images)]
    else:
        images = samples
    images = [(pad_to_patch(normalize_image(i, in_meta), mcfg.patch_size), g) for i, g in images]
    per = max(1, math.ceil(cfg.val_patches / max(1, len(images))))
    for img, g in images:
        spatial = img.shape[1:]
        for _ in range(per):
            for _ in range(20):
                origin = tuple(int(rng.integers(0, s - p + 1)) for s, p in zip(spatial, mcfg.patch_size))
                p, pg = cut_patch(img, g, origin, mcfg.patch_size)
                if pg.n_nodes:
                    break
            out.append((p, pg))
    return out[: cfg.val_patches]


# ------------------------------------------------------------------ dataset folders
#: node spacing (px) of graphs resampled by ``read_splits(..., zoom=)`` (as ``adapt`` re-spaces zoomed shots)
ZOOM_SPACING = 10.0


def read_splits(folders, zoom: float = 1.0) -> tuple[list, list]:
    """``(train, val)`` lists of ``(image, graph)`` of one or more dataset folders (``synth.read_dataset``);
    other splits (test) are left out. A folder may hold only one of the two.

    ``zoom`` != 1: every image is resampled by it (:func:`inference.autozoom.zoom_image`, as ``predict --zoom``
    resamples) and its graph scaled and re-spaced ``ZOOM_SPACING`` px apart, e.g. 30 cm satellite tiles brought
    to the road widths a model was trained on."""
    from .. import synth
    from ..errors import VesselGraphError

    zoom = float(zoom)
    if not (np.isfinite(zoom) and zoom > 0):
        raise VesselGraphError(f"zoom of the extra data must be a positive number, got {zoom!r}")

    def sample(r):
        if zoom == 1.0:
            return r["image"], r["graph"]
        from ..inference.autozoom import zoom_graph, zoom_image

        ndim = r["graph"].ndim
        img, real = zoom_image(r["image"], zoom, ndim)
        return img, zoom_graph(r["graph"], real, spacing=ZOOM_SPACING)

    train, val = [], []
    for folder in [folders] if isinstance(folders, (str, bytes)) or hasattr(folders, "__fspath__") else folders:
        for r in synth.read_dataset(folder):
            if r["split"] == "train":
                train.append(sample(r))
            elif r["split"] in ("val", "validation"):
                val.append(sample(r))
    return train, val


def read_folder(folder: str):
    """``(train_samples, val_samples, domain)`` of a dataset folder: lists of ``(image, graph)``; without a
    val split, the first tenth of the training samples (at least one) is held out for validation. ``domain``
    is the folder's one domain, else None."""
    from .. import synth

    records = synth.read_dataset(folder)
    train, val = [], []
    for r in records:
        split = r["split"] if not isinstance(r, (tuple, list)) else "train"
        sample = (r[0], r[1]) if isinstance(r, (tuple, list)) else (r["image"], r["graph"])
        if split in ("val", "validation"):
            val.append(sample)
        elif split == "train":
            train.append(sample)
    if not train:
        raise VesselGraphError(f"{folder}: no training samples found")
    if not val:
        k = max(1, len(train) // 10)
        train, val = train[k:] or train, train[:k]
    domains = {getattr(r, "domain", None) for r in records} - {None}
    return train, val, (domains.pop() if len(domains) == 1 else None)


def node_count_stats(sampler, mcfg, n: int = 400) -> dict:
    """Nodes per patch and per query cell of ``n`` sampled patches: checks that ``n_queries`` covers the data."""
    counts, per_cell = [], []
    cell = np.asarray(mcfg.patch_size) / np.asarray(mcfg.query_grid)
    for _ in range(n):
        _, g = sampler.patch()
        counts.append(g.n_nodes)
        if g.n_nodes:
            c = np.clip(np.floor(g.nodes / cell).astype(int), 0, np.asarray(mcfg.query_grid) - 1)
            per_cell.append(int(np.unique(c, axis=0, return_counts=True)[1].max()))
    counts = np.asarray(counts)
    return {
        "nodes_p50": float(np.percentile(counts, 50)),
        "nodes_p99": float(np.percentile(counts, 99)),
        "nodes_max": int(counts.max()),
        "max_nodes_per_cell_p99": float(np.percentile(per_cell, 99)) if per_cell else 0.0,
        "n_queries": mcfg.n_queries,
    }
