"""Graph core: the :class:`VesselGraph` type, networkx bridge and morphometrics."""

from .core import VesselGraph, axis_names, pos_columns
from .morphometrics import graph_statistics, length_unit, segments, morphometrics

__all__ = ["VesselGraph", "axis_names", "pos_columns", "graph_statistics", "length_unit", "segments",
           "morphometrics"]
