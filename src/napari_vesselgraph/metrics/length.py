"""Length-based completeness, correctness and quality (Wiedemann et al. 1998) at a tolerance.

Both graphs are sampled densely and evenly by arc length (spacing ``step``, by default tol / 4);
each sample stands for an equal share of its graph's length. A sample is *matched* when the exact
distance from it to the other graph's edges (as straight segments) is at most ``tol``.

- completeness = matched ground-truth length / ground-truth length   (recall by length)
- correctness  = matched predicted length / predicted length         (precision by length)
- quality      = TP / (TP + FP + FN) with TP = matched predicted length, FP = unmatched predicted
  length, FN = unmatched ground-truth length (Wiedemann's definition)

A ratio with denominator 0 is 1 when both graphs have no length, else 0. Isolated nodes have no
length and are ignored. These scores do not depend on node density.
"""

from __future__ import annotations

import numpy as np

from ..graph.core import VesselGraph
from ._geometry import Arrays, prepare, safe_ratio, sample_along_edges, within_distance


def _matched_length(a: Arrays, other: Arrays, tol: float, step: float) -> tuple[float, float]:
    total = float(a.lengths().sum())
    if total <= 0:
        return 0.0, 0.0
    step = max(step, total / 500_000.0)  # at most ~500k samples
    s = sample_along_edges(a, spacing=step)
    return float(np.count_nonzero(within_distance(s.coords, other, tol)) * s.weight), total


def length_metrics(
    pred: VesselGraph, gt: VesselGraph, tol: float = 3.0, step: float | None = None, physical: bool = False
) -> dict[str, float]:
    """``length_completeness``, ``length_correctness``, ``length_quality`` (see the module docstring)."""
    tol = float(tol)
    if step is None:
        step = tol / 4 if tol > 0 else 0.25
    p, g, _ = prepare(pred, gt, physical)
    gt_hit, gt_len = _matched_length(g, p, tol, float(step))
    pr_hit, pr_len = _matched_length(p, g, tol, float(step))
    both = 1.0 if (gt_len == 0 and pr_len == 0) else 0.0
    fn = gt_len - gt_hit
    fp = pr_len - pr_hit
    return {
        "length_completeness": safe_ratio(gt_hit, gt_len, both),
        "length_correctness": safe_ratio(pr_hit, pr_len, both),
        "length_quality": safe_ratio(pr_hit, pr_hit + fp + fn, both),
    }
