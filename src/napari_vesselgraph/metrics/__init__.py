"""Graph comparison metrics: prediction vs ground truth, 2D and 3D, in pixel units.

``evaluate(pred, gt, radius=3.0, **opts)`` returns every score in one flat dict; the individual
functions are exported too. Physical units: pass ``physical=True`` (coordinates times each graph's
``scale``; radius and tolerances are then physical as well).

Node/edge P/R/F1 and mAP depend on node density (:data:`DENSITY_DEPENDENT`); SMD, APLS, TOPO,
Betti errors, the length metrics and junction F1 (:func:`junction_prf`) do not.
"""

from ._geometry import match_points
from .ap import average_precision, node_edge_map
from .evaluate import (
    DENSITY_DEPENDENT, GROUPS, LOWER_IS_BETTER, aggregate, evaluate, format_table, scale_mismatch,
)
from .junctions import junction_points, junction_prf
from .length import length_metrics
from .matching import match_nodes, node_edge_prf
from .paths import apls, topo
from .smd import smd
from .topology import betti_errors, betti_numbers

__all__ = [
    "DENSITY_DEPENDENT",
    "GROUPS",
    "LOWER_IS_BETTER",
    "aggregate",
    "apls",
    "average_precision",
    "betti_errors",
    "betti_numbers",
    "evaluate",
    "format_table",
    "junction_points",
    "junction_prf",
    "length_metrics",
    "match_nodes",
    "match_points",
    "node_edge_map",
    "node_edge_prf",
    "scale_mismatch",
    "smd",
    "topo",
]
