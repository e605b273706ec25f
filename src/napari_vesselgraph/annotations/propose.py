"""Which patches to annotate next: boxes ranked by the model's uncertainty, and a random baseline.

:func:`propose_patches` runs the model over the image in windows that overlap by half (``overlap``), so every
pixel away from the image border is seen by about ``2 ** ndim`` windows, and collects three kinds of evidence,
each a weighted point in the image:

* **near-threshold nodes**: every node candidate counts ``max(0, 1 - |c - t| / band)``, where ``c`` is its
  confidence and ``t`` the checkpoint's node threshold (:func:`napari_vesselgraph.checkpoints.meta.checkpoint_thresholds`):
  1 on the threshold, 0 from ``band`` away;
* **near-threshold edges**: the same for edge candidates (at their midpoint, against the edge threshold), counted
  when both of their nodes are kept (confidence at least ``t``: the edges whose fate the edge threshold decides);
* **disagreement between overlapping windows**: a node kept by one window (``c >= t``) counts the share of the
  other windows that see the same place and keep no node within ``match_radius`` px there.

A window ignores what lies within ``margin`` px of its own border (unless that border is the image's), where
the model sees too little context, and each point's weight is divided by the number of windows that see it, so the
figures are per view: "about 4 nodes near the threshold" means 4 nodes, not 4 per window. Each kind is summed over
a box and divided by its mean over all the candidate boxes of the image (edge candidates are far more numerous than
nodes; this way each kind weighs alike), and a box's score is ``near_nodes + near_edges + disagreement_weight *
disagreement`` in these units (1: an average box for each kind gives 3). The boxes of ``patch_size``
are laid on a grid with a step of a quarter box; the best ones are taken greedily so that no two proposals, and no
proposal and an ``exclude`` box (patches already annotated), overlap. Boxes without evidence (empty background), on
a flat image, or mostly outside ``mask`` (e.g. a fundus photo's field of view) are skipped.

:func:`random_patches` is the baseline with the same interface: boxes at uniformly random positions, with the
same non-overlap, flatness and mask rules.

Boxes are in the image's pixels (napari axis order), as :class:`~napari_vesselgraph.annotations.AnnotationStore`
stores patches: ``origin`` (the corner) and ``size``; :attr:`Proposal.box` gives the slices
(:func:`~napari_vesselgraph.annotations.store.patch_box`). No napari or Qt here; torch only through the predictor.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from .store import patch_box

#: confidences within this distance of a threshold count as uncertain (weight falls linearly to 0 at ``band``)
DEFAULT_BAND = 0.2
#: windows of the proposal pass overlap by this share (0.5: every pixel is seen by about 2**ndim windows)
DEFAULT_OVERLAP = 0.5
#: a box with more than this share of its pixels outside ``mask`` is skipped
MIN_MASK_SHARE = 0.5
#: a box whose grey values vary less than this share of the image's 1-99 % range is flat (background)
FLAT_SHARE = 0.02


@dataclass
class Proposal:
    """One proposed patch: ``origin`` (corner, pixels, napari axis order), ``size``, ``score`` (higher: more
    uncertain; ``nan`` for random boxes), ``why`` (one line) and the figures behind the score (``details``)."""

    origin: tuple[int, ...]
    size: tuple[int, ...]
    score: float
    why: str
    details: dict = field(default_factory=dict)

    @property
    def box(self) -> tuple[slice, ...]:
        """The slices of the box in the image."""
        return patch_box(self.origin, self.size)

    @property
    def center(self) -> tuple[float, ...]:
        return tuple(o + (s - 1) / 2.0 for o, s in zip(self.origin, self.size))

    def to_dict(self) -> dict:
        return {"origin": list(self.origin), "size": list(self.size), "score": _num(self.score), "why": self.why,
                **{k: _num(v) for k, v in self.details.items()}}  # fmt: skip


def _num(v):
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


# ------------------------------------------------------------------ boxes
def as_boxes(exclude, ndim: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``[(origin, size)]`` from what ``exclude`` may be: an :class:`~.store.AnnotationStore` (its patches), a list
    of manifest entries / :class:`Proposal` s / ``(origin, size)`` pairs / tuples of slices, or None."""
    if exclude is None:
        return []
    if hasattr(exclude, "patches") and callable(exclude.patches):
        exclude = exclude.patches()
    out = []
    for e in exclude:
        if isinstance(e, Proposal):
            o, s = e.origin, e.size
        elif isinstance(e, dict):
            if e.get("origin") is None or e.get("size") is None:
                continue  # a dataset sample without a place in the image
            o, s = e["origin"], e["size"]
        elif isinstance(e, tuple) and e and all(isinstance(x, slice) for x in e):
            o = [int(x.start or 0) for x in e]
            s = [int(x.stop) - int(x.start or 0) for x in e]
        else:
            o, s = e
        o = [round(float(v)) for v in np.ravel(o)][-ndim:]
        s = [round(float(v)) for v in np.ravel(s)][-ndim:]
        if len(o) != ndim or len(s) != ndim:
            raise VesselGraphError(f"a box to exclude needs {ndim} origin and size values, got {o} and {s}")
        out.append((tuple(o), tuple(s)))
    return out


def _overlaps(origin, size, boxes) -> bool:
    o, s = np.asarray(origin), np.asarray(size)
    return any(np.all(o < np.asarray(bo) + np.asarray(bs)) and np.all(np.asarray(bo) < o + s) for bo, bs in boxes)


def _size_tuple(patch_size, ndim: int) -> tuple[int, ...]:
    size = [int(v) for v in np.ravel(patch_size)] if np.ndim(patch_size) else [int(patch_size)] * ndim
    if len(size) == 1:
        size = size * ndim
    if len(size) != ndim or min(size) < 1:
        raise VesselGraphError(f"patch size must be one positive number or one per spatial axis, got {patch_size}")
    return tuple(size)


def box_origins(shape: Sequence[int], size: Sequence[int], step=None) -> list[list[int]]:
    """Per axis, the corners of the candidate boxes: every ``step`` (one number or one per axis; default a quarter
    box) from 0, and the last box flush with the image's end; one box at 0 where the image is smaller than the box."""
    steps = [None] * len(shape) if step is None else list(_size_tuple(step, len(shape)))
    out = []
    for n, s, st in zip(shape, size, steps):
        st = max(1, int(st) if st is not None else s // 4)
        if n <= s:
            out.append([0])
            continue
        o = list(range(0, n - s + 1, st))
        if o[-1] != n - s:
            o.append(n - s)
        out.append(o)
    return out


def box_sums(points: np.ndarray, weights: np.ndarray, origins: list[list[int]], size: Sequence[int]) -> np.ndarray:
    """The sum of ``weights`` of the ``points`` (pixel coordinates) inside each box of the grid ``origins`` x
    ``size``: an array of shape ``(len(origins[0]), len(origins[1]), ...)``. A point belongs to the pixel it
    rounds to; exact, through a histogram on the boxes' own borders and a summed-area table."""
    d = len(origins)
    edges, lo_idx, hi_idx = [], [], []
    for ax in range(d):
        o = np.asarray(origins[ax], float)
        b = np.unique(np.concatenate([o, o + size[ax]])) - 0.5
        edges.append(b)
        lo_idx.append(np.searchsorted(b, o - 0.5))
        hi_idx.append(np.searchsorted(b, o + size[ax] - 0.5))
    points = np.asarray(points, float).reshape(-1, d)
    weights = np.asarray(weights, float).reshape(-1)
    if len(points):
        hist, _ = np.histogramdd(points, bins=edges, weights=weights)
    else:
        hist = np.zeros([len(e) - 1 for e in edges])
    # a point exactly on the last edge falls into the last bin in histogramdd; it lies outside every box anyway
    table = hist
    for ax in range(d):
        table = np.cumsum(table, axis=ax)
    table = np.pad(table, [(1, 0)] * d)
    grids = np.meshgrid(*[np.arange(len(o)) for o in origins], indexing="ij")
    total = np.zeros(grids[0].shape)
    for corner in itertools.product((0, 1), repeat=d):
        idx = tuple((hi_idx[ax] if c else lo_idx[ax])[grids[ax]] for ax, c in enumerate(corner))
        total += (-1) ** (d - sum(corner)) * table[idx]
    return total


# ------------------------------------------------------------------ the image
class _Image:
    """The spatial image behind ``image`` (array, lazy array, path): its layout, grey values of a box, the mask."""

    def __init__(self, image, channel=None, model_ndim=None, mask=None):
        from ..inference.plan import as_array, image_layout, open_image
        from ..inference.reader import ImageSource

        image, self.path, self.file_scale = open_image(image)
        self.arr = as_array(image)
        self.full_shape = tuple(int(n) for n in self.arr.shape)
        snd, has_ch, sel = image_layout(self.full_shape, model_ndim, channel)
        self.ndim, self.has_channels = snd, has_ch
        self.channel = int(channel) if sel else None
        self.source = ImageSource(self.arr, snd, has_ch, self.channel)
        self.shape = self.source.shape
        self._range = None
        self.mask = None
        if mask is not None:
            m = np.asarray(mask)
            if m.ndim == snd + 1 and m.shape[-1] in (1, 3, 4):
                m = m[..., 0]
            if tuple(m.shape) != tuple(self.shape):
                raise VesselGraphError(f"the mask has shape {m.shape}, the image {self.shape}")
            self.mask = m > 0

    def grey(self, origin, size) -> np.ndarray:
        box = tuple((max(0, int(o)), min(n, int(o) + int(s))) for o, s, n in zip(origin, size, self.shape))
        v = np.asarray(self.source.read(box), dtype=np.float32)
        if v.ndim > self.ndim:
            v = v.mean(axis=-1)
        return v

    def value_range(self) -> float:
        if self._range is None:
            from ..inference.reader import _strided_sample

            v = np.asarray(_strided_sample(self.source), dtype=np.float32)
            if v.ndim > self.ndim:
                v = v.mean(axis=-1)
            lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 0.0)
            self._range = float(hi - lo)
        return self._range

    def usable(
        self, origin, size, min_mask_share: float = MIN_MASK_SHARE, flat_share: float = FLAT_SHARE
    ) -> str | None:
        """None when the box may be proposed, else why not (flat image, outside the mask)."""
        if self.mask is not None:
            sl = patch_box([max(0, o) for o in origin], size)
            share = float(self.mask[sl].sum()) / float(np.prod(size))
            if share < min_mask_share:
                return f"{share:.0%} inside the mask"
        v = self.grey(origin, size)
        rng = self.value_range()
        if v.size == 0 or float(np.percentile(v, 99) - np.percentile(v, 1)) <= flat_share * max(rng, 1e-12):
            return "flat image (background)"
        return None


# ------------------------------------------------------------------ evidence from the model
@dataclass
class Evidence:
    """Weighted points (image pixels) of each kind of uncertainty, from :func:`window_evidence`."""

    near_nodes: tuple[np.ndarray, np.ndarray]
    near_edges: tuple[np.ndarray, np.ndarray]
    disagreement: tuple[np.ndarray, np.ndarray]
    confident: tuple[np.ndarray, np.ndarray]
    node_threshold: float
    edge_threshold: float
    n_windows: int
    zoom: tuple[float, ...] | None
    seconds: float


def _weights(c: np.ndarray, t: float, band: float) -> np.ndarray:
    return np.clip(1.0 - np.abs(np.asarray(c, float) - t) / band, 0.0, 1.0)


def window_evidence(
    image,
    predictor,
    channel=None,
    band: float = DEFAULT_BAND,
    overlap: float = DEFAULT_OVERLAP,
    margin: float | None = None,
    match_radius: float | None = None,
    zoom=None,
    batch_size: int = 8,
    progress: Callable[[int, int, dict], Any] | None = None,
    cancel=None,
    _img: _Image | None = None,
) -> Evidence:
    """Run ``predictor`` over ``image`` in windows overlapping by ``overlap`` and collect the evidence of
    uncertainty (see the module docstring), in the pixels of ``image``. ``zoom``: ``None``/``"auto"`` as
    :func:`napari_vesselgraph.inference.predict` (shrink 2D images whose structures are wider than the checkpoint
    knows), a factor, or 1."""
    from ..inference.plan import PredictionPlan, PredictOptions, check_cancel, tile_batches
    from ..inference.reader import PatchReader

    t0 = time.perf_counter()
    band = float(band)
    if not 0.0 < band <= 1.0:
        raise VesselGraphError(f"band must be in (0, 1], got {band}")
    img = _img or _Image(image, channel, int(predictor.ndim))
    arr, ch, factors = img.arr, img.channel, None
    z = _resolve_zoom(zoom, img, predictor)
    if z is not None:
        from ..inference.autozoom import zoom_image

        arr, factors = zoom_image(np.asarray(img.source.read()), z, img.ndim)
        ch = None
    shape = tuple(int(n) for n in arr.shape)
    options = PredictOptions.from_call(None, None, overlap, batch_size)
    plan = PredictionPlan.build(arr, shape, predictor, None, None, None, ch, options)
    nt, et = float(plan.node_threshold), float(plan.edge_threshold)
    reader = PatchReader(plan.source, predictor, mode=options.normalize, pad_mode=options.pad_mode)
    grid, patch = plan.grid, np.asarray(plan.patch, float)
    space = np.asarray(plan.source.shape, float)
    margin = float(max(2.0, 0.05 * patch.max())) if margin is None else float(margin)
    radius = float(max(3.0, 0.06 * patch.max())) if match_radius is None else float(match_radius)

    starts = np.asarray(grid.starts, float).reshape(len(grid), -1)
    lo = np.where(starts > 0, starts + margin, -np.inf)
    hi = np.where(starts + patch < space, starts + patch - margin, np.inf)
    lo = np.maximum(lo, -0.5)  # and inside the image
    hi = np.minimum(hi, space - 0.5)

    nodes, conf, wid = [], [], []
    mids, econf, ends = [], [], []
    n, done = len(grid), 0
    ran = np.zeros(n, bool)  # windows the model saw (constant ones are skipped, as predict skips them)
    if progress is not None:
        progress(0, n, {"stage": "propose"})
    for tile in plan.tiles:
        check_cancel(cancel)
        data = reader.read_box(tile.box)
        for idx, kept, batch in tile_batches(reader, data, tile, grid.starts, plan.patch, batch_size, True):
            check_cancel(cancel)
            if batch is not None:
                ran[kept] = True
                for i, res in zip(kept, predictor.predict_batch(batch)):
                    p = np.asarray(res["nodes"], float).reshape(-1, len(patch)) + starts[i]
                    c = np.asarray(res["node_score"], float).reshape(-1)
                    inside = np.all((p >= lo[i]) & (p < hi[i]), axis=1)
                    nodes.append(p[inside])
                    conf.append(c[inside])
                    wid.append(np.full(int(inside.sum()), i))
                    e = np.asarray(res["edges"], np.int64).reshape(-1, 2)
                    if len(e):
                        m = (p[e[:, 0]] + p[e[:, 1]]) / 2.0
                        keep = np.all((m >= lo[i]) & (m < hi[i]), axis=1)
                        mids.append(m[keep])
                        econf.append(np.asarray(res["edge_score"], float).reshape(-1)[keep])
                        ends.append(np.minimum(c[e[keep, 0]], c[e[keep, 1]]))
            done += len(idx)
            if progress is not None:
                progress(done, n, {"stage": "propose"})
    d = len(patch)
    cat = lambda xs, k=None: np.concatenate(xs) if xs else np.zeros((0, k) if k else 0)
    P, C, W = cat(nodes, d), cat(conf), cat(wid).astype(np.int64)
    M, EC, EN = cat(mids, d), cat(econf), cat(ends)

    def views(pts):  # how many windows see each point (away from their borders)
        if not len(pts):
            return np.zeros(0)
        cnt = np.ones(len(pts))
        for ax, st in enumerate(grid.axis_starts):
            st = np.asarray(st, float)
            a_lo = np.where(st > 0, st + margin, -np.inf)
            a_hi = np.where(st + patch[ax] < space[ax], st + patch[ax] - margin, np.inf)
            x = pts[:, ax][:, None]
            cnt *= np.maximum(((x >= a_lo[None]) & (x < a_hi[None])).sum(axis=1), 1)
        return cnt

    vn, vm = views(P), views(M)
    w_nodes = _weights(C, nt, band) / np.maximum(vn, 1)
    w_edges = _weights(EC, et, band) * (EN >= nt) / np.maximum(vm, 1)
    kept = C >= nt
    w_conf = kept / np.maximum(vn, 1)
    w_dis = _disagreement(P[kept], W[kept], lo, hi, radius, ran) / np.maximum(vn[kept], 1)

    def back(pts):  # zoomed pixels -> the image's pixels
        return pts if factors is None else (pts + 0.5) / np.asarray(factors, float) - 0.5

    sel = lambda pts, w: (back(pts[w > 0]), w[w > 0])
    return Evidence(
        near_nodes=sel(P, w_nodes), near_edges=sel(M, w_edges), disagreement=sel(P[kept], w_dis),
        confident=sel(P, w_conf), node_threshold=nt, edge_threshold=et, n_windows=n,
        zoom=None if factors is None else tuple(float(f) for f in factors), seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _disagreement(P: np.ndarray, W: np.ndarray, lo: np.ndarray, hi: np.ndarray, radius: float, ran=None) -> np.ndarray:
    """Per kept node (position ``P``, window ``W``): the share of the *other* windows seeing its place that keep
    no node within ``radius`` of it (0 where no other window sees it). Windows not in ``ran`` (constant windows
    the model did not run on) see nothing."""
    from scipy.spatial import cKDTree

    out = np.zeros(len(P))
    if not len(P):
        return out
    missing = np.zeros(len(P))
    seen = np.zeros(len(P))
    order = np.argsort(W, kind="stable")
    bounds = np.searchsorted(W[order], np.arange(len(lo) + 1))
    for j in range(len(lo)):
        if ran is not None and not ran[j]:
            continue
        # the place must lie inside window j's view by the matching radius, so that j's node there is in its view
        others = np.all((P >= lo[j] + radius) & (P < hi[j] - radius), axis=1) & (W != j)
        if not others.any():
            continue
        own = order[bounds[j] : bounds[j + 1]]
        seen[others] += 1
        if not len(own):
            missing[others] += 1
            continue
        dist, _ = cKDTree(P[own]).query(P[others], k=1, distance_upper_bound=radius)
        missing[np.flatnonzero(others)[~np.isfinite(dist)]] += 1
    ok = seen > 0
    out[ok] = missing[ok] / seen[ok]
    return out


def _resolve_zoom(zoom, img: _Image, predictor) -> tuple[float, ...] | float | None:
    """The zoom to run at (``None``: the image as it is), as ``predict`` chooses it."""
    if zoom is None or (isinstance(zoom, str) and zoom.strip().lower() == "auto"):
        ref = ((getattr(predictor, "meta", None) or {}).get("scale_reference") or {}).get("radius_p90")
        if not ref or img.ndim != 2:
            return None
        from ..inference.autozoom import estimate_zoom

        z = estimate_zoom(img.source, float(ref))
        return None if z >= 1.0 else z
    try:
        z = np.broadcast_to(np.asarray(zoom, dtype=float), (img.ndim,))
    except (TypeError, ValueError):
        raise VesselGraphError(f"zoom must be 'auto', a factor or one per spatial axis, got {zoom!r}") from None
    if not np.all(np.isfinite(z)) or np.any(z <= 0) or np.any(z > 8):
        raise VesselGraphError(f"zoom must be a positive factor (at most 8), got {zoom!r}")
    return None if np.allclose(z, 1.0) else tuple(float(v) for v in z)


# ------------------------------------------------------------------ ranking
KINDS = ("near_nodes", "near_edges", "disagreement", "confident")


def box_parts(evidence: Evidence, shape: Sequence[int], patch_size, step=None) -> tuple[list[list[int]], dict]:
    """``(origins, {kind: per-box sums})`` of the candidate boxes of ``patch_size`` (:func:`box_origins`) for each
    kind of :data:`KINDS`."""
    size = _size_tuple(patch_size, len(shape))
    origins = box_origins(shape, size, step)
    return origins, {k: box_sums(*getattr(evidence, k), origins, size) for k in KINDS}


def mean_units(parts_list: Sequence[dict]) -> dict[str, float]:
    """The unit of each kind: its mean over the candidate boxes of one or more images (1 where it is 0)."""
    out = {}
    for k in KINDS:
        vals = np.concatenate([np.ravel(p[k]) for p in parts_list]) if parts_list else np.zeros(0)
        m = float(vals.mean()) if vals.size else 0.0
        out[k] = m if m > 0 else 1.0
    return out


def rank_boxes(
    evidence: Evidence,
    shape: Sequence[int],
    patch_size,
    n: int = 5,
    exclude=None,
    disagreement_weight: float = 1.0,
    step=None,
    usable: Callable[[tuple, tuple], str | None] | None = None,
    band: float = DEFAULT_BAND,
    units: dict | None = None,
) -> list[Proposal]:
    """The ``n`` best boxes of ``patch_size`` for ``evidence`` (greedy, no overlaps; see the module docstring).
    ``usable(origin, size)``: None to accept a box, else why it is skipped (flat image, outside the mask).
    ``units``: the unit of each kind (default: :func:`mean_units` of this image; give the units of several
    images, e.g. ``mean_units([parts_a, parts_b])``, to compare their scores)."""
    d = len(shape)
    size = _size_tuple(patch_size, d)
    origins, parts = box_parts(evidence, shape, size, step)
    unit = mean_units([parts]) if units is None else {**mean_units([parts]), **units}
    score = (parts["near_nodes"] / unit["near_nodes"] + parts["near_edges"] / unit["near_edges"]
             + float(disagreement_weight) * parts["disagreement"] / unit["disagreement"])  # fmt: skip
    taken = as_boxes(exclude, d)
    flat = np.argsort(-score, axis=None, kind="stable")
    out: list[Proposal] = []
    for k in flat:
        if len(out) >= int(n):
            break
        s = float(score.flat[k])
        if s <= 1e-9:
            break  # no evidence left: background
        ij = np.unravel_index(k, score.shape)
        origin = tuple(int(origins[ax][ij[ax]]) for ax in range(d))
        if _overlaps(origin, size, taken):
            continue
        if usable is not None and usable(origin, size):
            continue
        det = {k2: float(v[ij]) for k2, v in parts.items()}
        why = (f"{det['near_nodes']:.1f} nodes and {det['near_edges']:.1f} edges within {band:g} of the thresholds "
               f"({evidence.node_threshold:.2f}/{evidence.edge_threshold:.2f}); {det['disagreement']:.1f} nodes the "
               f"overlapping windows disagree on; {det['confident']:.0f} nodes kept")  # fmt: skip
        out.append(Proposal(origin, size, s, why, {"rank": len(out) + 1, **det}))
        taken.append((origin, size))
    return out


# ------------------------------------------------------------------ the two calls
def propose_patches(
    image,
    checkpoint=None,
    patch_size=None,
    n: int = 5,
    exclude=None,
    *,
    predictor=None,
    mask=None,
    channel: int | None = None,
    band: float = DEFAULT_BAND,
    overlap: float = DEFAULT_OVERLAP,
    disagreement_weight: float = 1.0,
    match_radius: float | None = None,
    margin: float | None = None,
    zoom=None,
    step=None,
    device="auto",
    batch_size: int = 8,
    progress: Callable[[int, int, dict], Any] | None = None,
    cancel=None,
) -> list[Proposal]:
    """The ``n`` patches of ``image`` the model is least sure about, best first (see the module docstring).

    ``image``: numpy / dask / zarr array or a path, ``(Y, X)``, ``(Y, X, C)`` or ``(Z, Y, X)``; ``checkpoint``: a
    name or path (``None``: the installed Relationformer that suits the image best), or ``predictor`` (a loaded
    one, reused);
    ``patch_size``: the side of a proposed patch (one number or one per axis; ``None``: twice the model's window);
    ``exclude``: boxes not to overlap (an :class:`~.store.AnnotationStore`, its ``patches()``, ``(origin, size)``
    pairs or slices); ``mask``: pixels that may be annotated (e.g. a field of view), same spatial shape; ``zoom``:
    as :func:`napari_vesselgraph.inference.predict`. ``progress(done, total, info)`` counts windows;
    ``cancel.is_set()`` is checked between batches. Returns fewer than ``n`` proposals when the image holds fewer
    uncertain places (never a box without evidence)."""
    own = predictor is None
    if own:
        from ..inference.plan import as_array, default_checkpoint, open_image
        from ..inference.predict import suited_checkpoint
        from ..model.predictor import make_predictor

        if checkpoint is None:  # the Relationformer that suits the image (its window confidences rank the patches)
            checkpoint, _ = suited_checkpoint(image, channel, tiled=True)
        if checkpoint is None:  # none installed suits: the bundled default of the image's dimensionality
            arr0, _, _ = open_image(image)
            checkpoint = default_checkpoint(tuple(int(v) for v in as_array(arr0).shape), channel)
        predictor = make_predictor(checkpoint, device=device)
    from ..model.segment import Segmenter

    if isinstance(predictor, Segmenter):
        if own:
            predictor.close()
        raise VesselGraphError(
            "a segmentation checkpoint has no node and edge confidences to rank patches by: propose with a "
            "Relationformer checkpoint (e.g. vessel3d-lightsheet for a stack), or take random patches"
        )
    try:
        img = _Image(image, channel, int(predictor.ndim), mask)
        if patch_size is None:
            patch_size = tuple(2 * int(p) for p in predictor.patch_size)
        ev = window_evidence(image, predictor, channel=channel, band=band, overlap=overlap, margin=margin,
                             match_radius=match_radius, zoom=zoom, batch_size=batch_size, progress=progress,
                             cancel=cancel, _img=img)  # fmt: skip
    finally:
        if own and hasattr(predictor, "close"):
            predictor.close()
    return rank_boxes(ev, img.shape, patch_size, n=n, exclude=exclude, disagreement_weight=disagreement_weight,
                      step=step, usable=img.usable, band=band)  # fmt: skip


def random_patches(
    image,
    patch_size,
    n: int = 5,
    exclude=None,
    seed: int = 0,
    *,
    mask=None,
    channel: int | None = None,
    max_tries: int = 200,
) -> list[Proposal]:
    """``n`` boxes of ``patch_size`` at uniformly random positions (generator seeded with ``seed``), with the
    rules of :func:`propose_patches`: no overlap with each other or ``exclude``, not flat, mostly inside ``mask``.
    ``score`` is ``nan``; fewer than ``n`` when ``max_tries * n`` draws do not find them."""
    img = _Image(image, channel, None, mask)
    d = img.ndim
    size = _size_tuple(patch_size, d)
    rng = np.random.default_rng(int(seed))
    taken = as_boxes(exclude, d)
    out: list[Proposal] = []
    tries = 0
    while len(out) < int(n) and tries < int(max_tries) * max(int(n), 1):
        tries += 1
        origin = tuple(int(rng.integers(0, max(sh - s, 0) + 1)) for sh, s in zip(img.shape, size))
        if _overlaps(origin, size, taken) or img.usable(origin, size):
            continue
        out.append(Proposal(origin, size, float("nan"), f"random (seed {seed})", {"rank": len(out) + 1}))
        taken.append((origin, size))
    return out


__all__ = ["KINDS", "Evidence", "Proposal", "as_boxes", "box_origins", "box_parts", "box_sums", "mean_units",
           "propose_patches", "random_patches", "rank_boxes", "window_evidence"]  # fmt: skip
