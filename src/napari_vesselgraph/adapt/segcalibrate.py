"""``calibrate`` for a segmentation checkpoint (:mod:`napari_vesselgraph.model.segment`): no training.

The probability threshold and the clean-up setting ``min_brightness`` (edges on structures dimmer than that
share of the image-wide brightness are dropped: :func:`napari_vesselgraph.inference.support.drop_dim`) are chosen on
the K labelled shots: one probability map per shot, then every pair of :data:`THRESHOLDS` x
:data:`BRIGHTNESS_GRID`, scored as the Relationformer's calibrate scores (``cfg.selection``: for a target folder
``(length quality + junction F1) / 2`` at 3 px), mean over the shots; ties keep the earlier pair (the
checkpoint's own threshold first, brightness off first). The held-out samples are measured with the source's
settings (``before``) and the chosen ones (``after``); they choose nothing. The weights are the source's.

With two shots or more it also checks that the choice carries over from shot to shot (leave one out,
:func:`leave_one_out`): each shot is scored with the pair chosen on the other shots and with the source's own
settings, and ``meta["adaptation"]["leave_one_out"]`` records both. Where, on average over the shots, the pair
chosen without a shot scores it no better than the source's own settings, the log warns: the settings fit the
shots but are not expected to improve the user's next image. On the two DIADEM shot stacks, the brightness cut
chosen on the crowded OP_2 scores the clean OP_1 lower than the bundled model's own settings (0.796 against 0.808),
and the cut chosen on OP_1 barely helps OP_2 (0.128 against 0.124).

What it is for: a model that paints every fibre when the user wants only the brightest, e.g. the dye-filled
neuron a DIADEM tracer followed among dimmer fibres.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import VesselGraphError

#: probability thresholds tried (the checkpoint's own is tried first)
THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
#: ``min_brightness`` values tried (0: off, first)
BRIGHTNESS_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _metrics(graph, gt, shape) -> dict:
    from ..metrics import evaluate

    return evaluate(graph, gt, radius=3.0, metrics=["prf", "smd", "length", "junctions"], image_shape=shape,
                    smd_points=300)  # fmt: skip


def _graphs(seg, samples, probs, threshold) -> list:
    """The graph of each sample at ``threshold`` with its edges' image-wide brightness (nothing dropped yet)."""
    from ..inference.support import graph_brightness
    from ..model.segment import grey_of, mask_graph

    out = []
    for s, p in zip(samples, probs):
        g = mask_graph(p, seg.cfg, threshold)
        g.edge_attrs["brightness"] = graph_brightness(grey_of(s.image, seg.cfg), g)
        out.append(g)
    return out


def _rows(graphs, samples, probs, min_brightness) -> list[dict]:
    """The metrics of each sample's graph after the ``min_brightness`` cut."""
    from ..inference.support import drop_unsupported

    return [_metrics(drop_unsupported(g, min_brightness, column="brightness"), s.graph, tuple(np.asarray(p).shape))
            for g, s, p in zip(graphs, samples, probs)]  # fmt: skip


def _summary(rows, threshold, min_brightness, score_fn) -> dict:
    from ..model.thresholds import mean_metrics

    m = mean_metrics(rows)
    m["score"] = float(score_fn(m))
    m["node_threshold"], m["min_brightness"], m["n"] = float(threshold), float(min_brightness), len(rows)
    return m


def _scored(graphs, samples, probs, threshold, min_brightness, score_fn) -> dict:
    return _summary(_rows(graphs, samples, probs, min_brightness), threshold, min_brightness, score_fn)


def _best(table: dict, keep: list[int], score_fn) -> tuple:
    """The (threshold, min_brightness) of ``table`` (``{pair: per-shot metric rows}``, in search order) with the
    highest mean score over the shots ``keep``; ties (and scores that are not numbers) keep the earlier pair."""
    best, best_score = next(iter(table)), -np.inf
    for pair, rows in table.items():
        sc = _summary([rows[i] for i in keep], *pair, score_fn)["score"]
        if sc > best_score + 1e-12:
            best, best_score = pair, sc
    return best


def leave_one_out(table: dict, own_rows: list[dict], ids: list[str], score_fn) -> list[dict]:
    """For each shot: the pair chosen on the other shots, the shot's score and length quality with it (``score``,
    ``length_quality``) and with the source's own settings (``own_score``, ``own_length_quality``; ``own_rows``:
    the shot's metrics with them). Needs two shots or more."""
    out = []
    for i, sid in enumerate(ids):
        others = [j for j in range(len(ids)) if j != i]
        t, b = _best(table, others, score_fn)
        loo, own = _summary([table[(t, b)][i]], t, b, score_fn), _summary([own_rows[i]], t, b, score_fn)
        out.append({"id": sid, "threshold": t, "min_brightness": b, "score": round(loo["score"], 4),
                    "own_score": round(own["score"], 4), "length_quality": round(loo["length_quality"], 4),
                    "own_length_quality": round(own["length_quality"], 4)})  # fmt: skip
    return out


def run(cfg, data, out_path: Path, device, progress=None, cancel=None, log=print) -> Path:
    """Choose the threshold and ``min_brightness`` on ``data.shots``; write the source weights with them."""
    from ..inference.plan import check_cancel
    from ..model.segment import load_segmenter, save_segmenter
    from ..model.thresholds import SCORES
    from .loop import report_leave_one_out, run_meta, short_metrics

    if not data.shots:
        raise VesselGraphError("no labelled target samples (shots) to calibrate on")
    t_start = time.time()
    seg = load_segmenter(cfg.checkpoint, device=device)
    score_fn = SCORES[cfg.selection][0]
    n_all = len(data.shots) + len(data.heldout)
    log(f"adapt[calibrate]: segmentation checkpoint; target {data.name}: {len(data.shots)} shot(s) "
        f"{data.ids(data.shots)}, {len(data.heldout)} held out {data.ids(data.heldout)}; "
        "the weights are not trained")  # fmt: skip
    if progress is not None:
        progress(0, n_all + 1, {"phase": f"segmenting {len(data.shots)} labelled sample(s)"})
    probs = []
    for i, s in enumerate(data.shots):
        check_cancel(cancel)
        probs.append(seg.probability(s.image, cancel=cancel))
        if progress is not None:
            progress(i + 1, n_all + 1, {"loss": 0.0, "phase": "segmented"})
    own = float(seg.cfg.threshold)
    thresholds = [own] + [t for t in THRESHOLDS if abs(t - own) > 1e-9]
    table: dict[tuple[float, float], list[dict]] = {}  # (threshold, min_brightness) -> metrics per shot
    own_rows = None
    for t in thresholds:
        graphs = _graphs(seg, data.shots, probs, t)
        if t == own:  # the source's own settings, for the leave-one-out comparison
            own_rows = _rows(graphs, data.shots, probs, float(seg.cfg.min_brightness))
        for b in BRIGHTNESS_GRID:
            check_cancel(cancel)
            table[(float(t), float(b))] = _rows(graphs, data.shots, probs, b)
    pair = _best(table, list(range(len(data.shots))), score_fn)
    best = _summary(table[pair], *pair, score_fn)
    new_cfg = replace(seg.cfg, threshold=best["node_threshold"], min_brightness=best["min_brightness"])
    log(f"chosen on the shots: threshold {new_cfg.threshold:g}, min_brightness {new_cfg.min_brightness:g} "
        f"(score {best['score']:.3f})")  # fmt: skip
    loo = None
    if len(data.shots) >= 2:
        loo = leave_one_out(table, own_rows, [str(s.id) for s in data.shots], score_fn)
        report_leave_one_out(loo, log)
    if progress is not None:
        progress(len(data.shots) + 1, n_all + 1, {"loss": 0.0, "phase": "chosen"})
    before = after = None
    if data.heldout:
        hprobs = []
        for s in data.heldout:
            check_cancel(cancel)
            hprobs.append(seg.probability(s.image, cancel=cancel))
        before = _scored(_graphs(seg, data.heldout, hprobs, seg.cfg.threshold), data.heldout, hprobs,
                         seg.cfg.threshold, seg.cfg.min_brightness, score_fn)  # fmt: skip
        after = _scored(_graphs(seg, data.heldout, hprobs, new_cfg.threshold), data.heldout, hprobs,
                        new_cfg.threshold, new_cfg.min_brightness, score_fn)  # fmt: skip
        if progress is not None:
            progress(n_all + 1, n_all + 1, {"loss": 0.0, "val": after["score"], "validation": True})
        log(f"held out: score {before['score']:.3f} with the source's settings -> {after['score']:.3f} calibrated")
    sp = Path(str(seg.meta.get("path", cfg.checkpoint)))
    source = seg.meta.get("name") or f"{sp.parent.name}/{sp.stem}"  # runs/X/best.safetensors -> X/best
    meta = run_meta(dict(seg.meta), cfg, data, out_path, source, before=before, after=after, steps_done=0,
                    history=[], t_start=t_start, chosen_on_shots=short_metrics(best), leave_one_out=loo,
                    metrics_on="held-out target samples, whole-sample segmentation (the probability map once, then "
                    "the graph at each threshold and min_brightness); radius 3 px")  # fmt: skip
    for k in ("segmentation", "kind", "format_version"):  # save_segmenter writes them from the new config
        meta.pop(k, None)
    return save_segmenter(out_path, seg.net, new_cfg, meta)
