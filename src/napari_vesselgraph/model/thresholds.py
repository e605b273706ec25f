"""Choosing the node / edge score thresholds a checkpoint records, on the pipeline that will use them.

Inference turns raw candidates into a graph with :func:`inference.postprocess.finish_graph`: thresholds, then
the clean-up (hysteresis linking, de-duplication, shortcut pruning, fragment removal, node re-spacing) with the
settings ``postprocess.settings(None, meta)`` (the defaults, then the checkpoint's ``meta["postprocess"]``).
:func:`select_thresholds` scores every pair of a small grid the same way, so the pair stored in
``meta["thresholds"]`` is the best one for what ``predict`` does with it. It is used by

- training's validation (:func:`model.train.validate`): raw candidates of validation patches
  (``PatchPredictor.predict_batch``), each finished as a graph of its own;
- adaptation's held-out selection (:func:`adapt.loop.evaluate_heldout`): raw graphs of whole held-out samples
  (``predict(..., keep_raw=True)``: sliding window and stitching);
- ``benchmarks/tune_postprocess.py`` (:func:`finished_metrics`, with its own score and a grid over the
  clean-up settings too).

Metrics: :func:`metrics.evaluate` at a matching radius of 3 px; the mean over the samples of each metric's
finite values; ``score = (node_f1 + edge_f1) / 2`` unless a score function is given (:data:`SCORES`:
``graph_score``, length quality and junction F1, for real annotations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: node thresholds x edge thresholds tried by :func:`select_thresholds`
THRESHOLD_GRID: tuple[tuple[float, ...], tuple[float, ...]] = ((0.3, 0.4, 0.5, 0.6, 0.7), (0.3, 0.5, 0.7))
#: values of the clean-up setting ``min_support`` (``inference.support``) tried at the chosen thresholds, when
#: the raw graphs carry the edge column ``support`` (whole-image predictions); 0 (off) first, so it wins ties
SUPPORT_GRID: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.9)
#: values of the clean-up setting ``min_brightness`` (``inference.support``: image-wide brightness) tried after
#: ``min_support``, when the raw graphs carry the edge column ``brightness``; 0 (off) first
BRIGHTNESS_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8)


def cleanup_settings(meta: dict | None = None, params: dict | None = None) -> dict:
    """The clean-up settings inference uses with a checkpoint of metadata ``meta`` (``postprocess.settings``)."""
    from ..inference.postprocess import settings

    return settings(params, meta)


def candidates_to_raw(cand: dict, ndim: int | None = None):
    """One patch's candidates (a ``PatchPredictor.predict_batch`` dict, patch pixels) as a raw graph with the
    columns stitching gives (node ``confidence``, ``radius``, ``inserted``; edge ``confidence``), no threshold
    applied: what :func:`inference.postprocess.finish_graph` takes."""
    from ..graph import VesselGraph

    nodes = np.asarray(cand["nodes"], dtype=float)
    d = nodes.shape[1] if nodes.ndim == 2 and nodes.shape[1] else (ndim or 2)
    nodes = nodes.reshape(-1, d)
    n = len(nodes)
    edges = np.asarray(cand["edges"], dtype=np.int64).reshape(-1, 2)
    return VesselGraph(
        nodes,
        edges,
        node_attrs={
            "confidence": np.asarray(cand["node_score"], float).reshape(n),
            "radius": np.asarray(cand["radius"], float).reshape(n),
            "inserted": np.zeros(n, bool),
        },
        edge_attrs={"confidence": np.asarray(cand["edge_score"], float).reshape(len(edges))},
    )


def score(metrics: dict) -> float:
    """``(node_f1 + edge_f1) / 2`` (a missing one counts 0)."""
    return 0.5 * (metrics.get("node_f1", 0.0) + metrics.get("edge_f1", 0.0))


def graph_score(metrics: dict) -> float:
    """``(length_quality + junction_f1) / 2``: a score that does not depend on how densely the true graph's
    nodes are spaced (traced or skeletonised real annotations), unlike node/edge F1."""
    return 0.5 * (metrics.get("length_quality", 0.0) + metrics.get("junction_f1", 0.0))


#: selection scores by name (``AdaptConfig.select_by``) and the metric groups each needs
SCORES: dict[str, tuple[Callable[[dict], float], tuple[str, ...]]] = {
    "f1": (score, ("prf",)),
    "graph": (graph_score, ("length", "junctions")),
}


def mean_metrics(rows: Sequence[dict]) -> dict:
    """The mean of each metric over the rows, over its finite values (NaN when it has none)."""
    out = {}
    for k in sorted({k for r in rows for k in r}):
        vals = [r[k] for r in rows if k in r and r[k] is not None and np.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def _as_raw(x, gt):
    return candidates_to_raw(x, getattr(gt, "ndim", None)) if isinstance(x, dict) else x


def finished_metrics(
    raws: Sequence,
    gts: Sequence,
    node_threshold: float,
    edge_threshold: float,
    cleanup: dict | None = None,
    *,
    shapes: Sequence | None = None,
    groups: Sequence[str] = ("prf", "smd"),
    radius: float = 3.0,
    smd_points: int | None = 200,
    cache: dict | None = None,
) -> dict:
    """Mean metrics of the graphs ``finish_graph(raw, node_threshold, edge_threshold, **cleanup)`` against
    ``gts`` (``raws``: raw graphs or patch candidate dicts; ``shapes``: the image shape of each, for the SMD
    and APLS; ``cleanup``: the settings, by default :func:`cleanup_settings` ``()``; ``smd_points``: None for
    the default of :func:`metrics.evaluate`). ``cache``: a dict that keeps each sample's metrics by the raw
    graph's identity and the settings, for repeated searches over subsets of the same raw graphs (calibrate's
    leave one out); the raw graphs must stay alive and unchanged while it is used."""
    from ..inference.postprocess import finish_graph
    from ..metrics import evaluate

    cleanup = cleanup_settings() if cleanup is None else cleanup
    shapes = [None] * len(raws) if shapes is None else shapes
    opts = {} if smd_points is None else {"smd_points": smd_points}
    settings = repr((float(node_threshold), float(edge_threshold), sorted(cleanup.items()), list(groups), radius,
                     smd_points))  # fmt: skip
    rows = []
    for raw, gt, shape in zip(raws, gts, shapes):
        key = (id(raw), id(gt), settings)
        if cache is not None and key in cache:
            rows.append(cache[key])
            continue
        g = finish_graph(_as_raw(raw, gt), node_threshold, edge_threshold, **cleanup)
        rows.append(evaluate(g, gt, radius=radius, metrics=list(groups), image_shape=shape, **opts))
        if cache is not None:
            cache[key] = rows[-1]
    return mean_metrics(rows)


def select_thresholds(
    raws: Sequence,
    gts: Sequence,
    grid=THRESHOLD_GRID,
    cleanup: dict | None = None,
    *,
    shapes: Sequence | None = None,
    sweep: bool = True,
    default: tuple[float, float] = (0.5, 0.5),
    groups: Sequence[str] = ("prf", "smd"),
    radius: float = 3.0,
    smd_points: int | None = 200,
    score_fn: Callable[[dict], float] = score,
    score_groups: Sequence[str] = ("prf",),
    support_grid: Sequence[float] = SUPPORT_GRID,
    brightness_grid: Sequence[float] = BRIGHTNESS_GRID,
    cache: dict | None = None,
) -> tuple[float, float, dict]:
    """``(node_threshold, edge_threshold, metrics)``: the grid pair whose finished graphs score best.

    ``raws``: raw graphs (``predict(..., keep_raw=True)``) or patch candidate dicts; ``gts``: their true graphs;
    ``grid``: ``(node thresholds, edge thresholds)``, every pair is tried; ``cleanup``: the clean-up settings
    inference will use (default: :func:`cleanup_settings` ``()``, i.e. ``postprocess.DEFAULTS``; pass
    ``cleanup_settings(meta)`` for a checkpoint). The pairs are scored by ``score_fn`` on the metric groups
    ``score_groups`` only (default: precision / recall; the first best in grid order wins); ``metrics`` holds ``groups`` at the chosen pair, ``score``,
    ``node_threshold`` and ``edge_threshold``. ``sweep=False``: no search, the metrics at ``default``.
    When every raw graph carries the edge column ``support`` (``predict(..., keep_raw=True)``), the clean-up
    setting ``min_support`` is then chosen over ``support_grid`` at the chosen pair (first best wins; ``()``: not
    searched) and returned as ``metrics["min_support"]``; then, with the edge column ``brightness``, the setting
    ``min_brightness`` over ``brightness_grid`` the same way (``metrics["min_brightness"]``). ``cache``: see
    :func:`finished_metrics`.
    """
    cleanup = cleanup_settings() if cleanup is None else dict(cleanup)
    node_grid, edge_grid = grid
    pairs = [tuple(default)] if not sweep else [(nt, et) for nt in node_grid for et in edge_grid]
    if any(isinstance(r, dict) for r in raws):
        cache = None  # converted afresh on every call: their identities do not last
    raws = [_as_raw(r, g) for r, g in zip(raws, gts)]
    kw = {"shapes": shapes, "radius": radius, "smd_points": smd_points, "cache": cache}
    best, best_pair = -np.inf, pairs[0]
    if len(pairs) > 1:
        for nt, et in pairs:
            sc = score_fn(finished_metrics(raws, gts, nt, et, cleanup, groups=list(score_groups), **kw))
            if sc > best + 1e-9:
                best, best_pair = sc, (nt, et)
    from ..graph import VesselGraph

    chosen = {}
    for setting, column, values in (("min_support", "support", support_grid),
                                    ("min_brightness", "brightness", brightness_grid)):  # fmt: skip
        if not (sweep and values and raws and all(isinstance(r, VesselGraph) and column in r.edge_attrs for r in raws)):
            continue
        best = -np.inf
        for v in values:
            sc = score_fn(
                finished_metrics(raws, gts, *best_pair, {**cleanup, setting: float(v)},
                                 groups=list(score_groups), **kw)  # fmt: skip
            )
            if sc > best + 1e-9:
                best, chosen[setting] = sc, float(v)
        cleanup = {**cleanup, setting: chosen[setting]}
    out = finished_metrics(raws, gts, *best_pair, cleanup, groups=list(dict.fromkeys([*groups, *score_groups])), **kw)
    out["score"] = float(score_fn(out))
    out["node_threshold"], out["edge_threshold"] = float(best_pair[0]), float(best_pair[1])
    out.update(chosen)
    return out["node_threshold"], out["edge_threshold"], out
