"""``evaluate``: every metric in one flat dict, plus helpers for benchmark tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph

#: keys of :func:`evaluate` whose value changes when the same curves are described by more or fewer
#: nodes (they count nodes or node-anchored boxes); compare them only between methods that place
#: nodes alike.
DENSITY_DEPENDENT = frozenset(
    {
        "node_precision",
        "node_recall",
        "node_f1",
        "edge_precision",
        "edge_recall",
        "edge_f1",
        "node_mAP",
        "node_AP50",
        "edge_mAP",
        "edge_AP50",
    }
)

#: keys of :func:`evaluate` where smaller is better (all others: larger is better, best 1).
LOWER_IS_BETTER = frozenset({"smd", "betti0_error", "betti1_error", "betti0_error_patch", "betti1_error_patch"})

#: metric groups ``evaluate(..., metrics=...)`` can select
GROUPS = ("prf", "map", "smd", "apls", "topo", "betti", "length", "junctions")

_OPTIONS = {
    "metrics": None,  # groups to compute (default: all)
    "physical": False,  # measure in physical units (pixels * scale); radius and tolerances too
    "image_shape": None,  # normalises SMD; domain of the random Betti patches
    "seed": 0,  # APLS / TOPO / Betti patch sampling
    "node_box_size": None,  # mAP: node box side (default 2 * radius)
    "edge_box_pad": None,  # mAP: edge box padding (default node_box_size / 2)
    "iou_thresholds": None,  # mAP: default 0.50:0.05:0.95
    "smd_points": 1000,
    "apls_sources": 100,
    "apls_spacing": None,  # default 3 * radius
    "apls_min_path": None,  # default 3 * radius
    "topo_spacing": None,  # default radius
    "topo_max_dist": None,  # default 20 * radius
    "topo_seeds": 100,
    "betti_patch_size": None,  # give a size to also get patch-averaged Betti errors
    "betti_patches": 100,
    "length_tol": None,  # default radius
    "length_step": None,  # default length_tol / 4
    "junction_radius": None,  # junction matching radius (default 2 * radius)
}


def evaluate(pred: VesselGraph, gt: VesselGraph, radius: float = 3.0, **opts) -> dict[str, float]:
    """Compare a predicted graph with a ground-truth graph; returns a flat ``{name: float}`` dict.

    All distances are in pixels (or physical units with ``physical=True``); ``radius`` is the
    matching radius for nodes, boxes (node box side ``2 * radius``), APLS snapping and TOPO, and the
    default tolerance of the length metrics. Keys:

    - ``node_precision/recall/f1``, ``edge_precision/recall/f1``: one-to-one node matching within
      ``radius`` (:func:`~napari_vesselgraph.metrics.node_edge_prf`)
    - ``node_mAP``, ``node_AP50``, ``edge_mAP``, ``edge_AP50``: Relationformer-style box AP
      (:func:`~napari_vesselgraph.metrics.node_edge_map`)
    - ``smd``: street mover distance (:func:`~napari_vesselgraph.metrics.smd`); normalised by
      ``image_shape`` when given
    - ``apls``: average path length similarity (:func:`~napari_vesselgraph.metrics.apls`)
    - ``topo_precision/recall/f1`` (:func:`~napari_vesselgraph.metrics.topo`)
    - ``betti0_error``, ``betti1_error`` (+ ``*_patch`` with ``betti_patch_size``)
    - ``length_completeness/correctness/quality`` (:func:`~napari_vesselgraph.metrics.length_metrics`)
    - ``junction_precision/recall/f1``: branch points matched within ``junction_radius``
      (default ``2 * radius``; :func:`~napari_vesselgraph.metrics.junctions.junction_prf`)

    Keys in :data:`DENSITY_DEPENDENT` depend on how densely nodes are placed. Options (keyword
    arguments) and their defaults are listed in ``_OPTIONS``; ``metrics=["prf", "smd", ...]`` computes
    only some groups (:data:`GROUPS`).
    """
    from .ap import node_edge_map
    from .length import length_metrics
    from .matching import node_edge_prf
    from .paths import apls, topo
    from .smd import smd
    from .topology import betti_errors

    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise VesselGraphError(f"unknown evaluate option(s) {unknown}; valid: {sorted(_OPTIONS)}")
    o = {**_OPTIONS, **opts}
    radius = float(radius)
    if not (math.isfinite(radius) and radius >= 0):
        raise VesselGraphError(f"radius must be a non-negative number, got {radius}")
    groups = o["metrics"] if o["metrics"] is not None else GROUPS
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    bad = sorted(set(groups) - set(GROUPS))
    if bad:
        raise VesselGraphError(f"unknown metric group(s) {bad}; valid: {list(GROUPS)}")
    phys = bool(o["physical"])
    out: dict[str, float] = {}
    if "prf" in groups:
        r = node_edge_prf(pred, gt, radius, physical=phys)
        for k in ("node_precision", "node_recall", "node_f1", "edge_precision", "edge_recall", "edge_f1"):
            out[k] = r[k]
    if "map" in groups:
        kw = {} if o["iou_thresholds"] is None else {"iou_thresholds": o["iou_thresholds"]}
        out.update(
            node_edge_map(pred, gt, radius, node_box_size=o["node_box_size"], edge_box_pad=o["edge_box_pad"],
                          physical=phys, **kw)
        )
    if "smd" in groups:
        out["smd"] = smd(pred, gt, n_points=o["smd_points"], image_shape=o["image_shape"], physical=phys)
    if "apls" in groups:
        out["apls"] = apls(pred, gt, radius, n_sources=o["apls_sources"], control_spacing=o["apls_spacing"],
                           min_path_length=o["apls_min_path"], seed=o["seed"], physical=phys)["apls"]
    if "topo" in groups:
        out.update(topo(pred, gt, radius, spacing=o["topo_spacing"], max_dist=o["topo_max_dist"],
                        n_seeds=o["topo_seeds"], seed=o["seed"], physical=phys))
    if "betti" in groups:
        out.update(betti_errors(pred, gt, patch_size=o["betti_patch_size"], n_patches=o["betti_patches"],
                                image_shape=o["image_shape"], seed=o["seed"], physical=phys))
    if "length" in groups:
        tol = radius if o["length_tol"] is None else float(o["length_tol"])
        out.update(length_metrics(pred, gt, tol=tol, step=o["length_step"], physical=phys))
    if "junctions" in groups:
        from .junctions import junction_prf

        jr = 2 * radius if o["junction_radius"] is None else float(o["junction_radius"])
        j = junction_prf(pred, gt, jr, physical=phys)
        out.update({k: j[k] for k in ("junction_precision", "junction_recall", "junction_f1")})
    return {k: float(v) for k, v in out.items()}


def scale_mismatch(pred: VesselGraph, gt: VesselGraph, physical: bool = False) -> str | None:
    """One line saying why scores of ``pred`` against ``gt`` may mislead because of their voxel sizes, or None.

    In pixels (``physical=False``) two graphs with different scales are compared as if they lay on the same
    pixel grid (identical pixel positions score 1.0 although they lie at different places in µm). In physical
    units, a graph without a voxel size (scale 1) against one with a voxel size reads its pixels as 1 µm.
    """
    a, b = np.asarray(pred.scale, float), np.asarray(gt.scale, float)
    if a.shape != b.shape or np.allclose(a, b, rtol=1e-6, atol=0):
        return None
    fmt = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"  # noqa: E731
    if not physical:
        return (
            f"the prediction's voxel size {fmt(a)} differs from the ground truth's {fmt(b)}: the scores compare pixel "
            "positions as if both lay on one pixel grid; give both graphs the same scale, or compare in physical "
            "units (--physical, evaluate(..., physical=True))"
        )
    for what, s, other in (("prediction", a, b), ("ground truth", b, a)):
        if np.allclose(s, 1.0) and not np.allclose(other, 1.0):
            return (
                f"the {what} has no voxel size (scale 1) but the other graph has {fmt(other)}: in physical units its "
                "pixels count as 1 µm each; set its scale first"
            )
    return None


# ----------------------------------------------------------------------------- tables
def aggregate(rows: Iterable[Mapping]) -> dict:
    """Mean and standard deviation of every numeric key over a list of result dicts.

    Returns ``{key: mean, key + "_std": std, ..., "n": number of rows}``. NaN values are skipped
    (a key that is NaN everywhere stays NaN); the std is the sample standard deviation (ddof=1),
    0 for a single value. Non-numeric values (``method``, ``domain``, ...) are kept when all rows
    agree and dropped otherwise.
    """
    rows = list(rows)
    out: dict = {}
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        if all(_is_number(v) for v in vals):
            x = np.asarray(vals, dtype=float)
            x = x[np.isfinite(x)]
            out[k] = float(x.mean()) if len(x) else float("nan")
            out[f"{k}_std"] = float(x.std(ddof=1)) if len(x) > 1 else (0.0 if len(x) else float("nan"))
        elif all(v == vals[0] for v in vals):
            out[k] = vals[0]
    out["n"] = len(rows)
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def format_table(
    rows: Sequence[Mapping], columns: Sequence[str] | None = None, digits: int = 3, note: bool = True
) -> str:
    """A Markdown table of result dicts (e.g. ``{"method": ..., "domain": ..., **evaluate(...)}``).

    Text columns (``method``, ``domain``) come first, then metric columns in order of first
    appearance (or ``columns``). A key ``k`` with a companion ``k_std`` (from :func:`aggregate`) is
    shown as ``mean ± std``; columns in :data:`DENSITY_DEPENDENT` get a ``*`` in the header, and
    the table is followed by a note saying so (``note=False`` leaves it out). Missing or NaN values show as ``n/a``.
    """
    rows = list(rows)
    if columns is None:
        seen: list[str] = []
        for r in rows:
            for k in r:
                if k not in seen:
                    seen.append(k)
        stds = {k for k in seen if k.endswith("_std") and k[:-4] in seen}
        seen = [k for k in seen if k not in stds]
        front = [k for k in ("method", "domain") if k in seen]
        columns = front + [k for k in seen if k not in front]
    columns = list(columns)

    def cell(r: Mapping, k: str) -> str:
        if k not in r or r[k] is None:
            return "n/a"
        v = r[k]
        if not _is_number(v):
            return str(v).replace("|", "\\|")
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if not math.isfinite(v):
            return "n/a"
        s = f"{v:.{digits}f}"
        sd = r.get(f"{k}_std")
        if _is_number(sd) and math.isfinite(sd):
            s += f" ± {sd:.{digits}f}"
        return s

    header = [f"{k}*" if k in DENSITY_DEPENDENT else k for k in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(cell(r, k) for k in columns) + " |")
    text = "\n".join(lines) + "\n"
    if note and any(k in DENSITY_DEPENDENT for k in columns):
        text += "\n\\* depends on node density: compare only methods that place nodes alike.\n"
    return text
