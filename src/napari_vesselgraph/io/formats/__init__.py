"""One module per graph file format, each with ``_read_<format>(path) -> VesselGraph`` and
``_write_<format>(graph, path) -> list[str]``; :mod:`napari_vesselgraph.io.graphfiles` dispatches to them
through :data:`READERS` and :data:`WRITERS` (and wraps errors, checks paths, drops self loops on read).

Adding a format: a module here with the two functions, a suffix in ``_common.FORMATS``, a description in
``_common.DESCRIPTIONS``, and an entry in the two tables below.
"""

from __future__ import annotations

from typing import Callable

from ...graph.core import VesselGraph
from ._common import DESCRIPTIONS, FORMATS
from .csv import _read_csv, _write_csv, csv_paths
from .graphml import _read_graphml, _write_graphml
from .json import _read_json, _write_json
from .swc import _read_swc, _write_swc
from .vtk import _read_vtk, _write_vtk

READERS: dict[str, Callable[[str], VesselGraph]] = {
    "graphml": _read_graphml,
    "json": _read_json,
    "csv": _read_csv,
    "swc": _read_swc,
    "vtk": _read_vtk,
}
WRITERS: dict[str, Callable[[VesselGraph, str], list[str]]] = {
    "graphml": _write_graphml,
    "json": _write_json,
    "csv": _write_csv,
    "swc": _write_swc,
    "vtk": _write_vtk,
}

__all__ = ["DESCRIPTIONS", "FORMATS", "READERS", "WRITERS", "csv_paths"]
