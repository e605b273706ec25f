"""Reading and writing :class:`~napari_vesselgraph.graph.VesselGraph` files.

Formats (chosen from the file suffix, or by ``format=``); each module's docstring says what it stores:

``.graphml`` — GraphML (:mod:`~napari_vesselgraph.io.formats.graphml`): everything round-trips, the names
    :meth:`VesselGraph.to_networkx` uses, so networkx, Cytoscape, Gephi and yEd open it.
``.json`` — node-link JSON (:mod:`~napari_vesselgraph.io.formats.json`): ``networkx.node_link_data``'s layout.
``.csv`` — a CSV pair (:mod:`~napari_vesselgraph.io.formats.csv`): ``X_nodes.csv`` + ``X_edges.csv`` (the
    Whole-Brain Vessel Graphs layout) and ``X_graph.json`` with scale, metadata and types.
``.swc`` — SWC (:mod:`~napari_vesselgraph.io.formats.swc`): trees and forests only, coordinates, ``radius``
    and ``swc_type``; ``write_graph(..., break_cycles=True)`` writes a graph's spanning forest.
``.vtk`` — legacy VTK PolyData, ASCII (:mod:`~napari_vesselgraph.io.formats.vtk`): opens in ParaView;
    string attributes are not stored.

Each format is one module of :mod:`napari_vesselgraph.io.formats` (``graphml``, ``json``, ``csv``, ``swc``,
``vtk``); this module chooses the format, checks the path, wraps errors and drops self loops and repeated
edges on read, and re-exports the format modules' names it always had.

Errors: a file that cannot be read raises :class:`~napari_vesselgraph.errors.GraphFileError` naming the
file and the problem; an unknown suffix or format raises
:class:`~napari_vesselgraph.errors.VesselGraphError` listing the supported ones. Every write goes
through :func:`~napari_vesselgraph.io.atomic.atomic_write`.
"""


from __future__ import annotations

import csv
import os
import warnings

import numpy as np

from ..errors import GraphFileError, GraphFileWarning, VesselGraphError
from ..graph.core import VesselGraph
from .atomic import atomic_write  # noqa: F401  (re-exported: it was importable from here)
from .formats import DESCRIPTIONS, FORMATS, READERS, WRITERS
from .formats._common import _check_readable

# the format modules' names, importable from here as before the split
from .formats.csv import _read_csv, _write_csv, csv_paths
from .formats.graphml import _read_graphml, _write_graphml
from .formats.json import _read_json, _write_json
from .formats.swc import _forest_order, _read_swc, _write_swc
from .formats.vtk import _read_vtk, _write_vtk

__all__ = ["FORMATS", "read_graph", "write_graph", "graph_format", "csv_paths", "check_graph_output"]

_DESCRIPTIONS = DESCRIPTIONS
_READERS = READERS
_WRITERS = WRITERS
_REEXPORTED = (
    _read_csv, _write_csv, _read_graphml, _write_graphml, _read_json, _write_json, _forest_order, _read_swc,
    _write_swc, _read_vtk, _write_vtk,
)  # fmt: skip


# ============================================================== public API
def graph_format(path, format: str | None = None) -> str:
    """The format name for ``path`` (from ``format`` if given, else from the suffix)."""
    if format is not None:
        key = str(format).strip().lower()
        if key in DESCRIPTIONS:
            return key
        if key in FORMATS:
            return FORMATS[key]
        if "." + key in FORMATS:
            return FORMATS["." + key]
        raise VesselGraphError(f"unknown graph file format {format!r}; {_supported()}")
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    what = f"suffix {suffix!r}" if suffix else "no suffix"
    raise VesselGraphError(f"cannot tell the graph format of {os.fspath(path)} ({what}); {_supported()}")


def _supported() -> str:
    items = ", ".join(f"{s} ({DESCRIPTIONS[n]})" for s, n in FORMATS.items())
    return f"supported formats: {items}"


def read_graph(path, format: str | None = None) -> VesselGraph:
    """Read a graph file written by :func:`write_graph` (or by networkx, ParaView, neuron tools, ...).

    Parameters
    ----------
    path : str or os.PathLike
        The file. For the CSV format, any of ``X.csv``, ``X_nodes.csv`` or ``X_edges.csv``.
    format : str, optional
        ``"graphml"``, ``"json"``, ``"csv"``, ``"swc"`` or ``"vtk"``; by default taken from the suffix.

    Raises
    ------
    GraphFileError
        The file is missing, empty, truncated, malformed or not a graph of that format.
    VesselGraphError
        The format is unknown.
    """
    fmt = graph_format(path, format)
    path = os.fspath(path)
    reader = READERS[fmt]
    if fmt != "csv":
        _check_readable(path)
    try:
        return _valid(path, reader(path))
    except RecursionError:
        raise GraphFileError(path, f"malformed {DESCRIPTIONS[fmt]} file (nested too deeply to read)") from None
    except GraphFileError:
        raise
    except VesselGraphError as e:
        raise GraphFileError(path, str(e)) from None
    except UnicodeDecodeError:
        raise GraphFileError(path, f"not a {DESCRIPTIONS[fmt]} file (not UTF-8 text)") from None
    except OSError as e:
        raise GraphFileError(path, f"cannot read the file: {e.strerror or e}") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError, csv.Error) as e:
        raise GraphFileError(path, f"malformed {DESCRIPTIONS[fmt]} file ({type(e).__name__}: {e})") from e


def _valid(path: str, g: VesselGraph) -> VesselGraph:
    """What a graph read from a file must be (see :class:`VesselGraph`): NaN or infinite coordinates are refused;
    self loops and repeated edges (either orientation) are dropped, keeping the first of each edge as it is in
    the file, with a :class:`GraphFileWarning` naming the file and what was dropped."""
    if g.n_nodes:
        bad = ~np.isfinite(g.nodes).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GraphFileError(
                path, f"{int(bad.sum())} node(s) have NaN or infinite coordinates (first: node {i} at "
                f"{g.nodes[i].tolist()}); every node needs a position",
            )  # fmt: skip
    if not g.n_edges:
        return g
    e = np.sort(g.edges, axis=1)
    loops = e[:, 0] == e[:, 1]
    keep = ~loops
    _, first = np.unique(e[keep], axis=0, return_index=True)
    idx = np.sort(np.flatnonzero(keep)[first])
    n_loops, n_dups = int(loops.sum()), int(keep.sum()) - len(idx)
    if not (n_loops or n_dups):
        return g
    dropped = []
    if n_loops:
        dropped.append(f"{n_loops} self loop{'s' if n_loops > 1 else ''}")
    if n_dups:
        dropped.append(f"{n_dups} duplicate edge{'s' if n_dups > 1 else ''}")
    warnings.warn(
        f"{path}: dropped {' and '.join(dropped)} (a graph has neither; the first of each edge is kept)",
        GraphFileWarning,
        stacklevel=3,
    )
    return VesselGraph(
        g.nodes, g.edges[idx], g.node_attrs, {k: v[idx] for k, v in g.edge_attrs.items()}, g.scale, g.metadata
    )


def write_graph(
    graph: VesselGraph, path, format: str | None = None, *, break_cycles: bool = False, root: int | None = None
) -> list[str]:
    """Write ``graph`` to ``path``; returns the paths written (the CSV format writes three files).

    See the module docstring for what each format keeps: GraphML, JSON and CSV keep everything; SWC
    keeps only coordinates, edges, ``radius``, ``swc_type``, scale and metadata (and refuses graphs
    with cycles); VTK keeps everything except string attributes.

    SWC only: ``break_cycles=True`` writes the graph's spanning forest instead of refusing a graph with a
    cycle (the removed edges are reported in a :class:`GraphFileWarning`); ``root`` is the node index its
    tree starts from (default: each component's node of largest ``radius``). See
    :func:`napari_vesselgraph.graph.trees.spanning_forest`.
    """
    if not isinstance(graph, VesselGraph):
        raise VesselGraphError(f"write_graph needs a VesselGraph, got {type(graph).__name__}")
    fmt = graph_format(path, format)
    tree_options = {}
    if break_cycles or root is not None:
        if fmt != "swc":
            raise VesselGraphError(
                f"breaking cycles and choosing a root apply to SWC files only, not {DESCRIPTIONS[fmt]}"
            )
        tree_options = {"break_cycles": bool(break_cycles), "root": root}
    path = os.fspath(path)
    if os.path.isdir(path):
        raise GraphFileError(path, "is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GraphFileError(path, f"the folder {folder} does not exist")
    try:
        return WRITERS[fmt](graph, path, **tree_options)
    except OSError as e:
        raise GraphFileError(path, f"cannot write: {e.strerror or e}") from None


def check_graph_output(path, format: str | None = None) -> str:
    """Check before the work that :func:`write_graph` will be able to write ``path`` (format known, folder there
    and writable, names not too long; the CSV format's three files too). Returns the format name; raises a
    one-line :class:`VesselGraphError` otherwise."""
    from .atomic import check_writable

    fmt = graph_format(path, format)
    for p in csv_paths(path) if fmt == "csv" else (os.fspath(path),):
        check_writable(p)
    return fmt
