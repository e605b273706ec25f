"""Reading and writing :class:`~napari_vesselgraph.graph.VesselGraph` files.

Formats (chosen from the file suffix, or by ``format=``):

``.graphml`` — GraphML
    Everything round-trips: positions (``pos_z``/``pos_y``/``pos_x`` node data, pixels), all node and
    edge attributes with their types (int → ``long``, float → ``double``, bool → ``boolean``,
    anything else → ``string``), and the graph data ``ndim``, ``scale_z``/``scale_y``/``scale_x`` and
    ``metadata`` (JSON text) exactly as :meth:`VesselGraph.to_networkx` names them, so files written by
    ``nx.write_graphml(graph.to_networkx(), path)`` read back as the same graph and ours open in
    networkx, Cytoscape, Gephi, yEd.
``.json`` — node-link JSON
    The layout of ``networkx.node_link_data``: ``{"directed", "multigraph", "graph", "nodes",
    "edges"}``, one node/edge object per line. Reading accepts the edge list under ``"edges"`` or
    under the older ``"links"``. Non-finite floats are written as ``NaN``/``Infinity``, as Python's
    :mod:`json` (and networkx) do.
``.csv`` — a CSV pair (the Whole-Brain Vessel Graphs layout)
    ``X_nodes.csv`` (``id``, ``pos_z``, ``pos_y``, ``pos_x``, node attributes) and ``X_edges.csv``
    (``node1``, ``node2``, edge attributes), both plain CSV that pandas reads as it is. Scale,
    metadata, the attribute types and the node/edge counts go into a small ``X_graph.json`` beside
    them. Writing ``X.csv``, ``X_nodes.csv`` or ``X_edges.csv`` writes all three files; reading
    accepts any of those names and ``X_graph.json``. Without ``X_graph.json`` (files from elsewhere)
    the scale is 1 and the type of each column is inferred (bool, int, float, else str); ``;`` or
    tab separators are recognised.
``.swc`` — SWC (neuron morphology)
    SWC keeps only coordinates, edges, the node attributes ``radius`` (pixels; stored as
    ``radius * scale_x``) and ``swc_type`` (default 0), the scale and the metadata (in ``#`` header
    lines); every other attribute is dropped. Positions are physical (``x y z = pos * scale``; a 2D
    graph gets ``z = 0``). Sample ids are node index + 1 and parents come before their children
    (breadth-first from the lowest-numbered node of each connected component); reading sorts by id, so
    the node order comes back. Only trees and forests can be stored: a graph with a cycle is refused.
``.vtk`` — legacy VTK PolyData, ASCII
    Opens in ParaView. ``POINTS`` are physical ``x y z`` (napari order reversed, times the scale;
    2D graphs get ``z = 0``), each edge is a 2-point ``LINES`` cell, and numeric and bool node and
    edge attributes become ``POINT_DATA``/``CELL_DATA`` scalars. **String attributes are not stored.**
    ``ndim`` and the scale are in the title line; metadata and which arrays are bool go into a
    dataset-level field array ``vesselgraph`` (UTF-8 JSON bytes).

Errors: a file that cannot be read raises :class:`~napari_vesselgraph.errors.GraphFileError` naming the
file and the problem; an unknown suffix or format raises
:class:`~napari_vesselgraph.errors.VesselGraphError` listing the supported ones. Every write goes
through :func:`~napari_vesselgraph.io.atomic.atomic_write`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import warnings
from contextlib import ExitStack
from typing import Any, Callable
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr as _xml_quoteattr

import numpy as np

from ..errors import GraphFileError, GraphFileWarning, VesselGraphError
from ..graph.core import (
    VesselGraph,
    _guess_ndim,
    _json_default,
    _node_position,
    _parse_metadata,
    axis_names,
    column_from_values,
    pos_columns,
)
from .atomic import atomic_write

__all__ = ["FORMATS", "read_graph", "write_graph", "graph_format", "csv_paths", "check_graph_output"]

#: file suffix -> format name
FORMATS: dict[str, str] = {
    ".graphml": "graphml",
    ".json": "json",
    ".csv": "csv",
    ".swc": "swc",
    ".vtk": "vtk",
}

_DESCRIPTIONS = {
    "graphml": "GraphML",
    "json": "node-link JSON",
    "csv": "CSV pair X_nodes.csv + X_edges.csv",
    "swc": "SWC, trees only",
    "vtk": "legacy VTK PolyData",
}


# ============================================================== public API
def graph_format(path, format: str | None = None) -> str:
    """The format name for ``path`` (from ``format`` if given, else from the suffix)."""
    if format is not None:
        key = str(format).strip().lower()
        if key in _DESCRIPTIONS:
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
    items = ", ".join(f"{s} ({_DESCRIPTIONS[n]})" for s, n in FORMATS.items())
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
    reader = _READERS[fmt]
    if fmt != "csv":
        _check_readable(path)
    try:
        return _valid(path, reader(path))
    except RecursionError:
        raise GraphFileError(path, f"malformed {_DESCRIPTIONS[fmt]} file (nested too deeply to read)") from None
    except GraphFileError:
        raise
    except VesselGraphError as e:
        raise GraphFileError(path, str(e)) from None
    except UnicodeDecodeError:
        raise GraphFileError(path, f"not a {_DESCRIPTIONS[fmt]} file (not UTF-8 text)") from None
    except OSError as e:
        raise GraphFileError(path, f"cannot read the file: {e.strerror or e}") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError, csv.Error) as e:
        raise GraphFileError(path, f"malformed {_DESCRIPTIONS[fmt]} file ({type(e).__name__}: {e})") from e


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


def write_graph(graph: VesselGraph, path, format: str | None = None) -> list[str]:
    """Write ``graph`` to ``path``; returns the paths written (the CSV format writes three files).

    See the module docstring for what each format keeps: GraphML, JSON and CSV keep everything; SWC
    keeps only coordinates, edges, ``radius``, ``swc_type``, scale and metadata (and refuses graphs
    with cycles); VTK keeps everything except string attributes.
    """
    if not isinstance(graph, VesselGraph):
        raise VesselGraphError(f"write_graph needs a VesselGraph, got {type(graph).__name__}")
    fmt = graph_format(path, format)
    path = os.fspath(path)
    if os.path.isdir(path):
        raise GraphFileError(path, "is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GraphFileError(path, f"the folder {folder} does not exist")
    try:
        return _WRITERS[fmt](graph, path)
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


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise GraphFileError(path, "file not found")
    if os.path.isdir(path):
        raise GraphFileError(path, "is a folder, not a graph file")
    if os.path.getsize(path) == 0:
        raise GraphFileError(path, "file is empty")


# ======================================================= column helpers
def _typed_columns(attrs: dict[str, np.ndarray]) -> dict[str, tuple[str, list]]:
    """name -> (kind, python values) with kind one of bool/int/float/str."""
    out = {}
    for name, arr in attrs.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "O":
            typed = column_from_values([v.item() if isinstance(v, np.generic) else v for v in arr.tolist()])
            if typed.dtype.kind in "biuf":
                arr = typed
        k = arr.dtype.kind
        if k == "b":
            out[name] = ("bool", [bool(v) for v in arr.tolist()])
        elif k in "iu":
            out[name] = ("int", [int(v) for v in arr.tolist()])
        elif k == "f":
            out[name] = ("float", [float(v) for v in arr.tolist()])
        else:
            out[name] = ("str", ["" if v is None else str(v) for v in arr.tolist()])
    return out


def _check_names(graph: VesselGraph, fmt: str, node_reserved: set[str], edge_reserved: set[str]) -> None:
    node_reserved = node_reserved | {"pos_z", "pos_y", "pos_x"}
    for name in graph.node_attrs:
        if name in node_reserved:
            raise VesselGraphError(
                f"node attribute {name!r} clashes with a field the {_DESCRIPTIONS[fmt]} format uses; rename it"
            )
    for name in graph.edge_attrs:
        if name in edge_reserved:
            raise VesselGraphError(
                f"edge attribute {name!r} clashes with a field the {_DESCRIPTIONS[fmt]} format uses; rename it"
            )


def _metadata_json(graph: VesselGraph) -> str:
    try:
        return json.dumps(graph.metadata, default=_json_default)
    except (TypeError, ValueError) as e:
        raise VesselGraphError(f"graph metadata cannot be saved as JSON: {e}") from None


def _graph_attrs(graph: VesselGraph) -> dict[str, Any]:
    """ndim, scale_* and metadata (JSON text): the graph attributes of ``to_networkx``."""
    out: dict[str, Any] = {"ndim": graph.ndim}
    for a, s in zip(axis_names(graph.ndim), graph.scale):
        out[f"scale_{a}"] = float(s)
    out["metadata"] = _metadata_json(graph)
    return out


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _scale_from_attrs(gattrs: dict, names: tuple[str, ...]):
    if all(f"scale_{a}" in gattrs for a in names):
        try:
            return tuple(float(gattrs[f"scale_{a}"]) for a in names)
        except (TypeError, ValueError):
            raise VesselGraphError("the scale_* graph attributes are not numbers") from None
    if "scale" in gattrs:
        s = gattrs["scale"]
        if isinstance(s, str):
            s = re.split(r"[\s,;()\[\]]+", s.strip(" ()[]"))
        try:
            vals = tuple(float(x) for x in s)
        except (TypeError, ValueError):
            raise VesselGraphError(f"cannot read the scale {gattrs['scale']!r}") from None
        return vals
    return None


def _assemble(
    gattrs: dict,
    node_ids: list,
    node_dicts: list[dict],
    edge_ends: list[tuple],
    edge_dicts: list[dict],
) -> VesselGraph:
    """Build a VesselGraph from records (node ids in file order, edges as pairs of node ids)."""
    ndim = gattrs.get("ndim")
    if ndim is None:
        ndim = _guess_ndim(node_dicts)
    try:
        ndim = int(ndim)
    except (TypeError, ValueError):
        raise VesselGraphError(f"graph attribute ndim={ndim!r} is not a number") from None
    names = axis_names(ndim)
    index: dict = {}
    for i, nid in enumerate(node_ids):
        key = _hashable(nid)
        if key in index:
            raise VesselGraphError(f"node id {nid!r} appears twice")
        index[key] = i
    pos = np.zeros((len(node_ids), ndim))
    coord_keys: set[str] = set()
    for i, d in enumerate(node_dicts):
        pos[i], used = _node_position(d, names, node_ids[i])
        coord_keys |= used
    node_attrs = _columns_from_dicts(node_dicts, coord_keys)
    edges = np.zeros((len(edge_ends), 2), dtype=np.int64)
    for k, (s, t) in enumerate(edge_ends):
        for j, end in enumerate((s, t)):
            try:
                edges[k, j] = index[_hashable(end)]
            except KeyError:
                raise VesselGraphError(f"edge {k} ({s!r}, {t!r}) refers to a node that does not exist") from None
    edge_attrs = _columns_from_dicts(edge_dicts, set())
    scale = _scale_from_attrs(gattrs, names)
    meta = _parse_metadata(gattrs.get("metadata"))
    known = {"ndim", "scale", "metadata"} | {f"scale_{a}" for a in "zyx"}
    for k, v in gattrs.items():  # other graph attributes (files from elsewhere) are kept in metadata
        if k not in known and k not in meta:
            meta[k] = v
    return VesselGraph(pos, edges, node_attrs, edge_attrs, scale, meta)


def _columns_from_dicts(dicts: list[dict], exclude: set[str]) -> dict[str, np.ndarray]:
    keys: dict[str, None] = {}
    for d in dicts:
        for k in d:
            if k not in exclude:
                keys.setdefault(k, None)
    return {str(k): column_from_values([d.get(k) for d in dicts]) for k in keys}


def _fmt_float(v: float) -> str:
    return repr(float(v))  # shortest exact text; 'nan', 'inf', '-inf'


# =============================================================== GraphML
_GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"
_GRAPHML_TYPES = {"bool": "boolean", "int": "long", "float": "double", "str": "string"}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _graphml_text(kind: str, v) -> str:
    if kind == "bool":
        return "true" if v else "false"
    if kind == "int":
        return str(int(v))
    if kind == "float":
        v = float(v)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    return _xml_escape(_XML_ILLEGAL.sub("\ufffd", str(v)))


def _write_graphml(graph: VesselGraph, path: str) -> list[str]:
    _check_names(graph, "graphml", set(), set())
    ncols = _typed_columns(graph.node_attrs)
    ecols = _typed_columns(graph.edge_attrs)
    gattrs = _graph_attrs(graph)
    pcols = pos_columns(graph.ndim)
    keys: list[tuple[str, str, str, str]] = []  # id, domain, name, graphml type

    def add_key(domain, name, kind):
        kid = f"d{len(keys)}"
        keys.append((kid, domain, name, _GRAPHML_TYPES[kind]))
        return kid

    gkeys = [
        (add_key("graph", k, "int" if k == "ndim" else "str" if k == "metadata" else "float"), k) for k in gattrs
    ]
    pkeys = [add_key("node", c, "float") for c in pcols]
    nkeys = [(add_key("node", name, kind), kind, vals) for name, (kind, vals) in ncols.items()]
    ekeys = [(add_key("edge", name, kind), kind, vals) for name, (kind, vals) in ecols.items()]

    with atomic_write(path, "w", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write(
            f'<graphml xmlns="{_GRAPHML_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{_GRAPHML_NS} {_GRAPHML_NS}/1.0/graphml.xsd">\n'
        )
        for kid, domain, name, typ in keys:
            f.write(f'  <key id="{kid}" for="{domain}" attr.name={_xml_quoteattr(name)} attr.type="{typ}"/>\n')
        f.write('  <graph id="G" edgedefault="undirected">\n')
        for kid, name in gkeys:
            v = gattrs[name]
            kind = "int" if name == "ndim" else "str" if name == "metadata" else "float"
            f.write(f'    <data key="{kid}">{_graphml_text(kind, v)}</data>\n')
        nodes = graph.nodes
        for i in range(graph.n_nodes):
            parts = [f'    <node id="{i}">']
            for j, kid in enumerate(pkeys):
                parts.append(f'<data key="{kid}">{_graphml_text("float", nodes[i, j])}</data>')
            for kid, kind, vals in nkeys:
                parts.append(f'<data key="{kid}">{_graphml_text(kind, vals[i])}</data>')
            parts.append("</node>\n")
            f.write("".join(parts))
        for e, (a, b) in enumerate(graph.edges.tolist()):
            parts = [f'    <edge source="{a}" target="{b}">']
            for kid, kind, vals in ekeys:
                parts.append(f'<data key="{kid}">{_graphml_text(kind, vals[e])}</data>')
            parts.append("</edge>\n")
            f.write("".join(parts))
        f.write("  </graph>\n</graphml>\n")
    return [path]


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _graphml_value(typ: str, text: str | None, what: str):
    typ = (typ or "string").lower()
    if typ == "string":
        return text or ""
    if text is None or not text.strip():
        return None
    t = text.strip()
    if typ == "boolean":
        low = t.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise VesselGraphError(f"{what}: {t!r} is not a boolean")
    if typ in ("int", "long"):
        try:
            return int(t)
        except ValueError:
            raise VesselGraphError(f"{what}: {t!r} is not an integer") from None
    if typ in ("float", "double"):
        try:
            return float(t)
        except ValueError:
            raise VesselGraphError(f"{what}: {t!r} is not a number") from None
    return t


def _read_graphml(path: str) -> VesselGraph:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise GraphFileError(path, f"not valid GraphML (XML error: {e})") from None
    if _local(root.tag) != "graphml":
        raise GraphFileError(path, f"not a GraphML file (the root element is <{_local(root.tag)}>)")
    keys: dict[str, tuple[str, str, str]] = {}  # id -> (name, type, domain)
    defaults: dict[str, dict[str, Any]] = {"node": {}, "edge": {}, "graph": {}}
    for el in root:
        if _local(el.tag) != "key":
            continue
        kid = el.get("id")
        if kid is None:
            raise GraphFileError(path, "a <key> has no id")
        if el.get("yfiles.type") is not None:  # yEd drawing data, not attributes
            continue
        name = el.get("attr.name", kid)
        typ = el.get("attr.type", "string")
        domain = el.get("for", "all")
        keys[kid] = (name, typ, domain)
        for child in el:
            if _local(child.tag) == "default":
                value = _graphml_value(typ, child.text, f"default of key {name!r}")
                for dom in ("node", "edge", "graph") if domain == "all" else (domain,):
                    if dom in defaults:
                        defaults[dom][name] = value
    graphs = [el for el in root if _local(el.tag) == "graph"]
    if not graphs:
        raise GraphFileError(path, "GraphML file has no <graph> element")
    g = graphs[0]

    def read_data(el, domain: str, what: str) -> dict:
        d = dict(defaults[domain])
        for child in el:
            if _local(child.tag) != "data":
                continue
            kid = child.get("key")
            if kid not in keys:
                if kid is None:
                    raise VesselGraphError(f"{what}: <data> without a key")
                continue  # yEd graphics and other skipped keys
            if len(child):  # structured (XML) content: not an attribute value
                continue
            name, typ, _ = keys[kid]
            value = _graphml_value(typ, child.text, f"{what}, attribute {name!r}")
            if value is None:
                d.pop(name, None)
            else:
                d[name] = value
        return d

    gattrs = read_data(g, "graph", "graph")
    node_ids, node_dicts, edge_ends, edge_dicts = [], [], [], []
    for el in g:
        tag = _local(el.tag)
        if tag == "node":
            nid = el.get("id")
            if nid is None:
                raise GraphFileError(path, f"node {len(node_ids)} has no id")
            node_ids.append(nid)
            node_dicts.append(read_data(el, "node", f"node {nid!r}"))
        elif tag == "edge":
            s, t = el.get("source"), el.get("target")
            if s is None or t is None:
                raise GraphFileError(path, f"edge {len(edge_ends)} has no source or target")
            edge_ends.append((s, t))
            edge_dicts.append(read_data(el, "edge", f"edge ({s}, {t})"))
    return _assemble(gattrs, node_ids, node_dicts, edge_ends, edge_dicts)


# ================================================================= JSON
def _write_json(graph: VesselGraph, path: str) -> list[str]:
    _check_names(graph, "json", {"id"}, {"source", "target"})
    ncols = _typed_columns(graph.node_attrs)
    ecols = _typed_columns(graph.edge_attrs)
    pcols = pos_columns(graph.ndim)
    head = {"directed": False, "multigraph": False, "graph": _graph_attrs(graph)}
    nodes = graph.nodes.tolist()
    with atomic_write(path, "w", newline="\n") as f:
        f.write(json.dumps(head)[:-1] + ',\n "nodes": [')
        for i in range(graph.n_nodes):
            d: dict[str, Any] = {"id": i}
            d.update(zip(pcols, nodes[i]))
            for name, (_, vals) in ncols.items():
                d[name] = vals[i]
            f.write(("\n  " if i == 0 else ",\n  ") + json.dumps(d))
        f.write('\n ],\n "edges": [')
        for e, (a, b) in enumerate(graph.edges.tolist()):
            d = {"source": a, "target": b}
            for name, (_, vals) in ecols.items():
                d[name] = vals[e]
            f.write(("\n  " if e == 0 else ",\n  ") + json.dumps(d))
        f.write("\n ]\n}\n")
    return [path]


def _read_json(path: str) -> VesselGraph:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise GraphFileError(path, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if isinstance(data, dict) and data.get("format") == _CSV_SIDECAR_FORMAT:
        return _read_csv(path)  # the X_graph.json side file of a CSV pair: read the pair
    if not isinstance(data, dict) or "nodes" not in data:
        raise GraphFileError(path, "not a node-link graph (expected a JSON object with 'nodes' and 'edges')")
    nodes = data["nodes"]
    if "edges" in data:
        links = data["edges"]
    elif "links" in data:
        links = data["links"]
    else:
        links = []
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise GraphFileError(path, "'nodes' and 'edges' must be lists")
    gattrs = data.get("graph") or {}
    if not isinstance(gattrs, dict):
        raise GraphFileError(path, "'graph' must be a JSON object")
    node_ids, node_dicts = [], []
    for i, d in enumerate(nodes):
        if not isinstance(d, dict):
            raise GraphFileError(path, f"node {i} is not a JSON object")
        d = dict(d)
        node_ids.append(d.pop("id", i))
        node_dicts.append(d)
    edge_ends, edge_dicts = [], []
    multigraph = bool(data.get("multigraph", False))
    for k, d in enumerate(links):
        if not isinstance(d, dict):
            raise GraphFileError(path, f"edge {k} is not a JSON object")
        d = dict(d)
        if "source" not in d or "target" not in d:
            raise GraphFileError(path, f"edge {k} has no 'source' or 'target'")
        edge_ends.append((d.pop("source"), d.pop("target")))
        if multigraph:
            d.pop("key", None)
        edge_dicts.append(d)
    return _assemble(gattrs, node_ids, node_dicts, edge_ends, edge_dicts)


# ================================================================== CSV
_CSV_SIDECAR_FORMAT = "napari-vesselgraph csv"


def csv_paths(path) -> tuple[str, str, str]:
    """``(X_nodes.csv, X_edges.csv, X_graph.json)`` for ``X.csv``, ``X_nodes.csv``, ``X_edges.csv`` or
    ``X_graph.json``."""
    p = os.fspath(path)
    if p.endswith("_graph.json"):
        return csv_paths(p[: -len("_graph.json")] + ".csv")
    base = p[:-4] if p.lower().endswith(".csv") else p
    for suffix in ("_nodes", "_edges"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + "_nodes.csv", base + "_edges.csv", base + "_graph.json"


def _csv_text(kind: str, v) -> str:
    if kind == "float":
        return _fmt_float(v)
    if kind == "bool":
        return "True" if v else "False"
    return str(v)


def _write_csv(graph: VesselGraph, path: str) -> list[str]:
    _check_names(graph, "csv", {"id"}, {"node1", "node2"})
    npath, epath, spath = csv_paths(path)
    ncols = _typed_columns(graph.node_attrs)
    ecols = _typed_columns(graph.edge_attrs)
    pcols = pos_columns(graph.ndim)
    sidecar = {
        "format": _CSV_SIDECAR_FORMAT,
        "version": 1,
        "nodes": os.path.basename(npath),
        "edges": os.path.basename(epath),
        "ndim": graph.ndim,
        "axes": list(axis_names(graph.ndim)),
        "scale": [float(s) for s in graph.scale],
        "n_nodes": graph.n_nodes,
        "n_edges": graph.n_edges,
        "node_attrs": {k: kind for k, (kind, _) in ncols.items()},
        "edge_attrs": {k: kind for k, (kind, _) in ecols.items()},
        "metadata": json.loads(_metadata_json(graph)),
    }
    # all three are written to temporary files first and only then moved into place
    with ExitStack() as stack:
        fn = stack.enter_context(atomic_write(npath, "w", newline=""))
        fe = stack.enter_context(atomic_write(epath, "w", newline=""))
        fs = stack.enter_context(atomic_write(spath, "w", newline="\n"))
        w = csv.writer(fn, lineterminator="\n")
        w.writerow(["id", *pcols, *ncols])
        nodes = graph.nodes.tolist()
        nvals = [(kind, vals) for kind, vals in ncols.values()]
        for i in range(graph.n_nodes):
            w.writerow([str(i), *map(_fmt_float, nodes[i]), *(_csv_text(k, vals[i]) for k, vals in nvals)])
        w = csv.writer(fe, lineterminator="\n")
        w.writerow(["node1", "node2", *ecols])
        evals = [(kind, vals) for kind, vals in ecols.values()]
        for e, (a, b) in enumerate(graph.edges.tolist()):
            w.writerow([str(a), str(b), *(_csv_text(k, vals[e]) for k, vals in evals)])
        json.dump(sidecar, fs, indent=1)
        fs.write("\n")
    return [npath, epath, spath]


_INT_RE = re.compile(r"^[+-]?\d+$")
_BOOL = {"true": True, "false": False}


def _infer_column(cells: list[str]) -> np.ndarray:
    present = [c.strip() for c in cells if c.strip() != ""]
    full = len(present) == len(cells)
    if present and full and all(c.lower() in _BOOL for c in present):
        return np.array([_BOOL[c.strip().lower()] for c in cells], dtype=bool)
    if present and all(_INT_RE.match(c) for c in present):
        if full:
            try:
                return np.array([int(c) for c in cells], dtype=np.int64)
            except OverflowError:
                pass
        return np.array([float(c) if c.strip() else np.nan for c in cells])
    if present:
        try:
            return np.array([float(c) if c.strip() else np.nan for c in cells])
        except ValueError:
            pass
    return np.array(cells, dtype=object)


def _typed_column(cells: list[str], kind: str, name: str) -> np.ndarray:
    try:
        if kind == "bool":
            out = []
            for c in cells:
                low = c.strip().lower()
                if low in ("true", "1"):
                    out.append(True)
                elif low in ("false", "0"):
                    out.append(False)
                else:
                    raise ValueError(c)
            return np.array(out, dtype=bool)
        if kind == "int":
            return np.array([int(c) for c in cells], dtype=np.int64)
        if kind == "float":
            return np.array([float(c) if c.strip() else np.nan for c in cells], dtype=float)
    except ValueError:
        raise VesselGraphError(f"column {name!r} should hold {kind} values") from None
    return np.array(cells, dtype=object)


def _node_key(token: str):
    t = token.strip()
    return int(t) if _INT_RE.match(t) else t


def _read_csv_table(path: str) -> tuple[list[str], list[list[str]]]:
    _check_readable(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    if not text.strip():
        raise GraphFileError(path, "file is empty")
    first = text.split("\n", 1)[0]
    delim = max([",", ";", "\t"], key=first.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True))
    header = [h.strip() for h in rows[0]]
    body = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise GraphFileError(path, f"line {lineno} has {len(row)} values but the header has {len(header)}")
        body.append(row)
    if len(set(header)) != len(header):
        raise GraphFileError(path, "the header names a column twice")
    return header, body


def _read_csv(path: str) -> VesselGraph:
    npath, epath, spath = csv_paths(path)
    side: dict[str, Any] = {}
    if os.path.exists(spath):
        try:
            with open(spath, encoding="utf-8") as f:
                side = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GraphFileError(spath, f"not valid JSON ({e})") from None
        if not isinstance(side, dict):
            raise GraphFileError(spath, "not a graph description (expected a JSON object)")
    try:
        return _read_csv_pair(npath, epath, spath, side)
    except GraphFileError:
        raise
    except VesselGraphError as e:
        raise GraphFileError(npath, str(e)) from None


def _read_csv_pair(npath: str, epath: str, spath: str, side: dict) -> VesselGraph:
    try:
        nheader, nrows = _read_csv_table(npath)
    except csv.Error as e:
        raise GraphFileError(npath, f"malformed CSV ({e})") from None
    try:
        eheader, erows = _read_csv_table(epath)
    except csv.Error as e:
        raise GraphFileError(epath, f"malformed CSV ({e})") from None

    ndim = side.get("ndim")
    if ndim is None:
        ndim = 3 if ("pos_z" in nheader or "z" in nheader) else 2
    try:
        names = axis_names(int(ndim))
    except (TypeError, ValueError):
        raise GraphFileError(spath, f"ndim {ndim!r} is not a number") from None
    pcols = None
    for prefix in ("pos_", ""):
        cand = [prefix + a for a in names]
        if all(c in nheader for c in cand):
            pcols = cand
            break
    if pcols is None:
        want = ", ".join("pos_" + a for a in names)
        raise GraphFileError(npath, f"no coordinate columns (expected {want}); is this a nodes CSV file?")
    for label, n_expected, rows, p in (("nodes", "n_nodes", nrows, npath), ("edges", "n_edges", erows, epath)):
        if n_expected in side and side[n_expected] != len(rows):
            raise GraphFileError(
                p, f"has {len(rows)} {label} but {os.path.basename(spath)} says {side[n_expected]} (truncated file?)"
            )
    ncol = {h: [r[j] for r in nrows] for j, h in enumerate(nheader)}
    try:
        pos = np.array([[float(c) for c in ncol[h]] for h in pcols], dtype=float).T.reshape(len(nrows), len(names))
    except ValueError:
        raise GraphFileError(npath, "a coordinate is not a number") from None
    if "id" in ncol:
        ids = [_node_key(c) for c in ncol["id"]]
    else:
        ids = list(range(len(nrows)))
    index: dict = {}
    for i, nid in enumerate(ids):
        if nid in index:
            raise GraphFileError(npath, f"node id {nid!r} appears twice")
        index[nid] = i
    ntypes = side.get("node_attrs") or {}
    etypes = side.get("edge_attrs") or {}
    skip = set(pcols) | {"id"}

    def column(cells, name, types):
        kind = types.get(name) if isinstance(types, dict) else None
        if kind in ("bool", "int", "float"):
            return _typed_column(cells, kind, name)
        if kind == "str":
            return np.array(cells, dtype=object)
        return _infer_column(cells)

    node_attrs = {}
    for h in nheader:
        if h not in skip:
            try:
                node_attrs[h] = column(ncol[h], h, ntypes)
            except VesselGraphError as e:
                raise GraphFileError(npath, str(e)) from None

    ends = None
    for a, b in (("node1", "node2"), ("source", "target"), ("u", "v")):
        if a in eheader and b in eheader:
            ends = (a, b)
            break
    if ends is None:
        raise GraphFileError(epath, "no node1/node2 columns; is this an edges CSV file?")
    ecol = {h: [r[j] for r in erows] for j, h in enumerate(eheader)}
    edges = np.zeros((len(erows), 2), dtype=np.int64)
    for j, h in enumerate(ends):
        for k, c in enumerate(ecol[h]):
            try:
                edges[k, j] = index[_node_key(c)]
            except KeyError:
                problem = f"edge on line {k + 2} refers to node {c!r}, which is not in the nodes file"
                raise GraphFileError(epath, problem) from None
    edge_attrs = {}
    for h in eheader:
        if h not in ends:
            try:
                edge_attrs[h] = column(ecol[h], h, etypes)
            except VesselGraphError as e:
                raise GraphFileError(epath, str(e)) from None

    scale = side.get("scale")
    meta = _parse_metadata(side.get("metadata"))
    try:
        return VesselGraph(pos, edges, node_attrs, edge_attrs, scale, meta)
    except VesselGraphError as e:
        raise GraphFileError(spath if "scale" in str(e) else npath, str(e)) from None


# ================================================================== SWC
def _forest_order(graph: VesselGraph, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(order, parent): nodes in breadth-first order per component, parent index or -1."""
    n = graph.n_nodes
    edges = graph.edges
    # union-find: the first edge joining two already connected nodes closes a cycle
    root = list(range(n))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra == rb:
            what = "a self loop" if a == b else f"a cycle (edge {a}-{b} closes a loop)"
            raise GraphFileError(
                path,
                f"the graph has {what}; SWC can only store trees and forests. "
                "Save it as GraphML (.graphml) or JSON (.json) instead",
            )
        root[ra] = rb
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges.tolist():
        adj[a].append(b)
        adj[b].append(a)
    parent = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    order: list[int] = []
    for start in range(n):
        if seen[start]:
            continue
        seen[start] = True
        queue = [start]
        head = 0
        while head < len(queue):
            u = queue[head]
            head += 1
            order.append(u)
            for v in adj[u]:
                if not seen[v]:
                    seen[v] = True
                    parent[v] = u
                    queue.append(v)
    return np.array(order, dtype=np.int64), parent


def _write_swc(graph: VesselGraph, path: str) -> list[str]:
    order, parent = _forest_order(graph, path)
    scale = np.asarray(graph.scale, dtype=float)
    phys = graph.nodes * scale  # napari order
    xyz = np.zeros((graph.n_nodes, 3))
    xyz[:, : graph.ndim] = phys[:, ::-1]  # x, y(, z)
    kept = [k for k in ("radius", "swc_type") if k in graph.node_attrs]
    if "radius" in graph.node_attrs:
        try:
            radius = np.asarray(graph.node_attrs["radius"], dtype=float) * scale[-1]
        except (TypeError, ValueError):
            raise VesselGraphError("node attribute 'radius' must be numeric to be saved as SWC") from None
    else:
        radius = np.full(graph.n_nodes, scale[-1])
    if "swc_type" in graph.node_attrs:
        try:
            types = np.asarray(graph.node_attrs["swc_type"], dtype=float)
            types = np.where(np.isfinite(types), types, 0).astype(np.int64)
        except (TypeError, ValueError):
            raise VesselGraphError("node attribute 'swc_type' must be an integer to be saved as SWC") from None
    else:
        types = np.zeros(graph.n_nodes, dtype=np.int64)
    names = axis_names(graph.ndim)
    with atomic_write(path, "w", newline="\n") as f:
        f.write("# SWC written by napari-vesselgraph\n")
        f.write("# SWC keeps only coordinates, edges, radius, type, scale and metadata\n")
        f.write("# positions and radii are physical: x y z = pos * scale (napari order reversed)\n")
        f.write(f"# ndim {graph.ndim}\n")
        for a, s in zip(names, graph.scale):
            f.write(f"# scale_{a} {_fmt_float(s)}\n")
        f.write(f"# nodes {graph.n_nodes}\n")
        f.write("# attributes" + "".join(" " + k for k in kept) + "\n")
        f.write(f"# metadata {_metadata_json(graph)}\n")
        f.write("# id type x y z radius parent\n")
        for i in order.tolist():
            p = int(parent[i])
            f.write(
                f"{i + 1} {int(types[i])} {_fmt_float(xyz[i, 0])} {_fmt_float(xyz[i, 1])} {_fmt_float(xyz[i, 2])} "
                f"{_fmt_float(radius[i])} {p + 1 if p >= 0 else -1}\n"
            )
    return [path]


def _read_swc(path: str) -> VesselGraph:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header: dict[str, str] = {}
    rows = []
    ours = False  # our own header lines are trusted; in other files only parseable scale/ndim lines are used
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s[1:].strip()
            if not rows and "napari-vesselgraph" in body:
                ours = True
            key, _, value = body.partition(" ")
            if key in ("ndim", "scale_z", "scale_y", "scale_x", "nodes", "attributes", "metadata"):
                header.setdefault(key, value.strip())
            continue
        parts = s.split()
        if len(parts) < 7:
            raise GraphFileError(
                path, f"line {lineno}: expected 7 values (id type x y z radius parent), found {len(parts)}"
            )
        try:
            rows.append(
                (
                    int(parts[0]),
                    int(float(parts[1])),
                    float(parts[2]),
                    float(parts[3]),
                    float(parts[4]),
                    float(parts[5]),
                    int(float(parts[6])),
                )
            )
        except ValueError:
            raise GraphFileError(path, f"line {lineno}: not an SWC sample line: {s[:60]!r}") from None
    if not ours:
        header = {k: v for k, v in header.items() if k.startswith("scale_") or k == "ndim"}
        for k, v in list(header.items()):
            try:
                ok = float(v) > 0 and (k != "ndim" or v.strip() in ("2", "3"))
            except ValueError:
                ok = False
            if not ok:
                del header[k]
    if not rows and not ours:
        raise GraphFileError(path, "no SWC sample lines found")
    if "nodes" in header:
        try:
            expected = int(header["nodes"])
        except ValueError:
            raise GraphFileError(path, f"bad '# nodes' header: {header['nodes']!r}") from None
        if expected != len(rows):
            raise GraphFileError(path, f"has {len(rows)} samples but its header says {expected} (truncated file?)")
    rows.sort(key=lambda r: r[0])
    n = len(rows)
    arr = np.array([r[2:6] for r in rows], dtype=float).reshape(n, 4)
    ids = [r[0] for r in rows]
    index = {sid: i for i, sid in enumerate(ids)}
    if len(index) != n:
        raise GraphFileError(path, "a sample id appears twice")
    if "ndim" in header:
        try:
            ndim = int(header["ndim"])
        except ValueError:
            raise GraphFileError(path, f"bad '# ndim' header: {header['ndim']!r}") from None
    else:
        ndim = 2 if n and np.all(arr[:, 2] == 0) else 3
    names = axis_names(ndim)
    scale = np.ones(ndim)
    for j, a in enumerate(names):
        if f"scale_{a}" in header:
            try:
                scale[j] = float(header[f"scale_{a}"])
            except ValueError:
                raise GraphFileError(path, f"bad '# scale_{a}' header: {header[f'scale_{a}']!r}") from None
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise GraphFileError(path, f"the scale in the header must be positive, got {tuple(scale)}")
    pos = arr[:, :ndim][:, ::-1] / scale
    edges = []
    for r in rows:
        if r[6] < 0:
            continue
        if r[6] not in index:
            raise GraphFileError(path, f"sample {r[0]} has parent {r[6]}, which is not in the file")
        edges.append((index[r[6]], index[r[0]]))
    attrs = header["attributes"].split() if "attributes" in header else ["radius", "swc_type"]
    node_attrs: dict[str, np.ndarray] = {}
    if "radius" in attrs:
        node_attrs["radius"] = arr[:, 3] / scale[-1]
    if "swc_type" in attrs:
        node_attrs["swc_type"] = np.array([r[1] for r in rows], dtype=np.int64)
    meta = _parse_metadata(header.get("metadata"))
    return VesselGraph(pos, np.array(edges, dtype=np.int64).reshape(-1, 2), node_attrs, {}, tuple(scale), meta)


# ================================================================== VTK
_VTK_INT_TYPES = {
    "char", "signed_char", "unsigned_char", "short", "unsigned_short", "int", "unsigned_int", "long",
    "unsigned_long", "vtkidtype", "vtktypeint64", "vtktypeuint64", "vtktypeint32", "vtktypeuint32",
    "vtktypeint8", "vtktypeuint8", "vtktypeint16", "vtktypeuint16",
}  # fmt: skip
_VTK_FLOAT_TYPES = {"float", "double", "vtktypefloat32", "vtktypefloat64"}
_VTK_NAME_OK = re.compile(r"[A-Za-z0-9_\-.:()\[\]+]")


def _vtk_name(name: str) -> str:
    """Array names may not contain white space: percent-encode like VTK's own writer."""
    return "".join(c if _VTK_NAME_OK.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def _vtk_unname(name: str) -> str:
    try:
        return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name.encode()).decode()
    except UnicodeDecodeError:
        return name


def _vtk_arrays(cols: dict[str, tuple[str, list]]) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(vtk name, vtk type, value texts) for every numeric/bool column, and the names of the bool ones."""
    out, bools = [], []
    for name, (kind, vals) in cols.items():
        if kind == "str":
            continue
        if kind == "bool":
            out.append((_vtk_name(name), "unsigned_char", ["1" if v else "0" for v in vals]))
            bools.append(name)
        elif kind == "int":
            small = all(-(2**31) <= v < 2**31 for v in vals)
            out.append((_vtk_name(name), "int" if small else "vtktypeint64", [str(v) for v in vals]))
        else:
            out.append((_vtk_name(name), "double", [_fmt_float(v) for v in vals]))
    return out, bools


def _write_lines(f, texts: list[str], per_line: int = 9) -> None:
    for k in range(0, len(texts), per_line):
        f.write(" ".join(texts[k : k + per_line]) + "\n")


def _write_vtk(graph: VesselGraph, path: str) -> list[str]:
    names = axis_names(graph.ndim)
    ncols = _typed_columns(graph.node_attrs)
    ecols = _typed_columns(graph.edge_attrs)
    narrays, nbools = _vtk_arrays(ncols)
    earrays, ebools = _vtk_arrays(ecols)
    title = "napari-vesselgraph ndim={} {}".format(
        graph.ndim, " ".join(f"scale_{a}={_fmt_float(s)}" for a, s in zip(names, graph.scale))
    )
    info = {
        "ndim": graph.ndim,
        "scale": [float(s) for s in graph.scale],
        "metadata": json.loads(_metadata_json(graph)),
        "node_bool": nbools,
        "edge_bool": ebools,
    }
    blob = json.dumps(info).encode("utf-8")
    phys = graph.nodes * np.asarray(graph.scale)
    xyz = np.zeros((graph.n_nodes, 3))
    xyz[:, : graph.ndim] = phys[:, ::-1]
    with atomic_write(path, "w", newline="\n") as f:
        f.write("# vtk DataFile Version 3.0\n")
        f.write(title[:255] + "\n")
        f.write("ASCII\nDATASET POLYDATA\n")
        f.write("FIELD FieldData 1\n")
        f.write(f"vesselgraph 1 {len(blob)} unsigned_char\n")
        _write_lines(f, [str(b) for b in blob], 32)
        f.write(f"POINTS {graph.n_nodes} double\n")
        for x, y, z in xyz.tolist():
            f.write(f"{_fmt_float(x)} {_fmt_float(y)} {_fmt_float(z)}\n")
        if graph.n_edges:
            f.write(f"LINES {graph.n_edges} {3 * graph.n_edges}\n")
            for a, b in graph.edges.tolist():
                f.write(f"2 {a} {b}\n")
        for section, count, arrays in (("POINT_DATA", graph.n_nodes, narrays), ("CELL_DATA", graph.n_edges, earrays)):
            if not arrays or not count:
                continue
            f.write(f"{section} {count}\n")
            for vname, vtype, texts in arrays:
                f.write(f"SCALARS {vname} {vtype} 1\nLOOKUP_TABLE default\n")
                _write_lines(f, texts)
    return [path]


class _Tokens:
    def __init__(self, tokens: list[str], path: str):
        self.t = tokens
        self.i = 0
        self.path = path

    def more(self) -> bool:
        return self.i < len(self.t)

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self) -> str:
        if self.i >= len(self.t):
            raise GraphFileError(self.path, "the file ends unexpectedly (truncated?)")
        self.i += 1
        return self.t[self.i - 1]

    def int(self, what: str) -> int:
        tok = self.next()
        try:
            v = int(tok)
        except ValueError:
            raise GraphFileError(self.path, f"expected a whole number for {what}, found {tok[:30]!r}") from None
        if v < 0:
            raise GraphFileError(self.path, f"{what} is negative ({v})")
        return v

    def values(self, count: int, vtype: str, what: str) -> np.ndarray:
        if self.i + count > len(self.t):
            raise GraphFileError(self.path, f"the file ends inside {what} (truncated?)")
        chunk = self.t[self.i : self.i + count]
        self.i += count
        vtype = vtype.lower()
        try:
            if vtype in _VTK_INT_TYPES:
                return np.array([int(v) for v in chunk], dtype=np.int64)
            if vtype == "bit":
                return np.array([int(v) != 0 for v in chunk], dtype=bool)
            if vtype in _VTK_FLOAT_TYPES:
                return np.array([float(v) for v in chunk], dtype=float)
        except ValueError:
            raise GraphFileError(self.path, f"{what} holds a value that is not a {vtype} number") from None
        raise GraphFileError(self.path, f"{what}: VTK data type {vtype!r} is not supported")


_VTK_SECTIONS = {
    "POINTS", "VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS", "POINT_DATA", "CELL_DATA", "FIELD",
    "SCALARS", "COLOR_SCALARS", "LOOKUP_TABLE", "VECTORS", "NORMALS", "TEXTURE_COORDINATES", "TENSORS",
    "TENSORS6", "GLOBAL_IDS", "PEDIGREE_IDS",
}  # fmt: skip


def _strip_vtk_metadata(lines: list[str]) -> list[str]:
    """Drop the ``METADATA`` blocks newer VTK writers add after arrays (they end at a blank line)."""
    out, skipping = [], False
    for line in lines:
        s = line.strip()
        if skipping:
            if not s:
                skipping = False
            continue
        if s.upper() == "METADATA":
            skipping = True
            continue
        out.append(line)
    return out


def _read_vtk(path: str) -> VesselGraph:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].lstrip().lower().startswith("# vtk datafile"):
        raise GraphFileError(path, "not a legacy VTK file (the first line should be '# vtk DataFile Version ...')")
    if len(lines) < 4:
        raise GraphFileError(path, "the VTK header is incomplete (truncated file?)")
    title = lines[1]
    mode = lines[2].strip().upper()
    if mode == "BINARY":
        raise GraphFileError(path, "binary VTK files are not supported; save it as ASCII")
    if mode != "ASCII":
        raise GraphFileError(path, f"the third line should be ASCII, found {lines[2][:30]!r}")
    tok = _Tokens(" ".join(_strip_vtk_metadata(lines[3:])).split(), path)
    if tok.next().upper() != "DATASET":
        raise GraphFileError(path, "expected 'DATASET POLYDATA' after the header")
    kind = tok.next().upper()
    if kind != "POLYDATA":
        raise GraphFileError(path, f"the VTK dataset is {kind}; only POLYDATA (points and lines) can be a graph")

    points = None
    cells: dict[str, list[list[int]]] = {}
    dataset_fields: dict[str, np.ndarray] = {}
    data: dict[str, dict[str, np.ndarray]] = {"POINT_DATA": {}, "CELL_DATA": {}}
    counts: dict[str, int] = {}
    current = None

    def read_field(target: dict[str, np.ndarray], n_expected: int | None, what: str) -> None:
        tok.next()  # the field's name
        n_arrays = tok.int(f"{what} array count")
        for _ in range(n_arrays):
            name = _vtk_unname(tok.next())
            ncomp = tok.int(f"components of {name!r}")
            ntup = tok.int(f"tuples of {name!r}")
            vtype = tok.next()
            if vtype.lower() in ("string", "utf8_string", "variant"):
                raise GraphFileError(path, f"field array {name!r} holds {vtype} values, which are not supported")
            vals = tok.values(ncomp * ntup, vtype, f"array {name!r}")
            if n_expected is not None and ntup != n_expected:
                raise GraphFileError(path, f"array {name!r} has {ntup} values for {n_expected} items")
            _store(target, name, vals.reshape(ntup, ncomp) if ncomp > 1 else vals)

    def read_cells(section: str) -> None:
        n = tok.int(f"{section} count")
        size = tok.int(f"{section} size")
        polys: list[list[int]] = []
        if (tok.peek() or "").upper() == "OFFSETS":  # VTK 5.1 layout
            tok.next()
            offsets = tok.values(n, tok.next(), f"{section} offsets")
            if (tok.next() or "").upper() != "CONNECTIVITY":
                raise GraphFileError(path, f"{section}: expected CONNECTIVITY after OFFSETS")
            conn = tok.values(size, tok.next(), f"{section} connectivity")
            for k in range(max(n - 1, 0)):
                a, b = int(offsets[k]), int(offsets[k + 1])
                if not 0 <= a <= b <= size:
                    raise GraphFileError(path, f"{section}: bad offsets")
                polys.append(conn[a:b].tolist())
        else:
            flat = tok.values(size, "int", section)
            j = 0
            for _ in range(n):
                if j >= size:
                    raise GraphFileError(path, f"{section}: the cell list is shorter than its header says")
                k = int(flat[j])
                if j + 1 + k > size:
                    raise GraphFileError(path, f"{section}: the cell list is shorter than its header says")
                polys.append(flat[j + 1 : j + 1 + k].tolist())
                j += 1 + k
            if j != size:
                raise GraphFileError(path, f"{section}: the cell list size does not match its header")
        cells[section] = polys

    while tok.more():
        word = tok.next()
        key = word.upper()
        if key == "POINTS":
            n = tok.int("POINTS count")
            points = tok.values(3 * n, tok.next(), "POINTS").reshape(n, 3)
        elif key in ("VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS"):
            read_cells(key)
        elif key in ("POINT_DATA", "CELL_DATA"):
            current = key
            counts[key] = tok.int(f"{key} count")
        elif key == "FIELD":
            if current is None:
                read_field(dataset_fields, None, "FIELD")
            else:
                read_field(data[current], counts[current], "FIELD")
        elif current is None:
            raise GraphFileError(path, f"unexpected {word[:30]!r} in the VTK file")
        elif key in ("SCALARS", "GLOBAL_IDS", "PEDIGREE_IDS"):
            name = _vtk_unname(tok.next())
            vtype = tok.next()
            ncomp = 1
            if key == "SCALARS" and (tok.peek() or "").isdigit():
                ncomp = tok.int(f"components of {name!r}")
            if key == "SCALARS" and (tok.peek() or "").upper() == "LOOKUP_TABLE":
                tok.next()
                tok.next()
            if vtype.lower() in ("string", "utf8_string", "variant"):
                raise GraphFileError(path, f"array {name!r} holds {vtype} values, which are not supported")
            n = counts[current]
            vals = tok.values(n * ncomp, vtype, f"array {name!r}")
            _store(data[current], name, vals.reshape(n, ncomp) if ncomp > 1 else vals)
        elif key == "LOOKUP_TABLE":
            tok.next()
            tok.values(4 * tok.int("LOOKUP_TABLE size"), "float", "LOOKUP_TABLE")
        elif key == "COLOR_SCALARS":
            tok.next()
            m = tok.int("COLOR_SCALARS components")
            tok.values(m * counts[current], "float", "COLOR_SCALARS")
        elif key in ("VECTORS", "NORMALS", "TENSORS", "TENSORS6"):
            tok.next()
            width = {"TENSORS": 9, "TENSORS6": 6}.get(key, 3)
            tok.values(width * counts[current], tok.next(), key)
        elif key == "TEXTURE_COORDINATES":
            tok.next()
            dim = tok.int("TEXTURE_COORDINATES dimension")
            tok.values(dim * counts[current], tok.next(), key)
        else:
            raise GraphFileError(path, f"unexpected {word[:30]!r} in the VTK file")

    if points is None:
        raise GraphFileError(path, "the VTK file has no POINTS")
    n = len(points)
    info: dict[str, Any] = {}
    if "vesselgraph" in dataset_fields:
        try:
            info = json.loads(bytes(int(b) for b in dataset_fields["vesselgraph"].ravel()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise GraphFileError(path, "the 'vesselgraph' field data is damaged") from None
        if not isinstance(info, dict):
            raise GraphFileError(path, "the 'vesselgraph' field data is damaged")
    mt = re.search(r"ndim=(\d)", title)
    ndim = info.get("ndim") or (int(mt.group(1)) if mt else (3 if n and np.any(points[:, 2] != 0) else 2))
    names = axis_names(int(ndim))
    scale = info.get("scale")
    if scale is None:
        scale = []
        for a in names:
            ms = re.search(rf"scale_{a}=(\S+)", title)
            scale.append(float(ms.group(1)) if ms else 1.0)
    try:
        scale_arr = np.array([float(s) for s in scale], dtype=float)
    except (TypeError, ValueError):
        raise GraphFileError(path, f"cannot read the scale {scale!r}") from None
    if scale_arr.shape != (len(names),) or not np.all(np.isfinite(scale_arr) & (scale_arr > 0)):
        raise GraphFileError(path, f"bad scale {scale!r} for a {len(names)}D graph")
    pos = points[:, : len(names)][:, ::-1] / scale_arr

    n_verts = len(cells.get("VERTICES", []))
    lines_cells = cells.get("LINES", [])
    edges: list[tuple[int, int]] = []
    edge_cell: list[int] = []
    for c, poly in enumerate(lines_cells):
        for a, b in zip(poly[:-1], poly[1:]):
            if not (0 <= a < n and 0 <= b < n):
                raise GraphFileError(path, f"line cell {c} refers to point {max(a, b)} but there are {n} points")
            edges.append((a, b))
            edge_cell.append(n_verts + c)
    node_attrs = {}
    for name, vals in data["POINT_DATA"].items():
        if len(vals) != n:
            raise GraphFileError(path, f"POINT_DATA array {name!r} has {len(vals)} values for {n} points")
        node_attrs[name] = vals.astype(bool) if name in (info.get("node_bool") or []) else vals
    n_cells = sum(len(v) for v in cells.values())
    edge_attrs = {}
    idx = np.array(edge_cell, dtype=np.int64)
    for name, vals in data["CELL_DATA"].items():
        if len(vals) != n_cells:
            raise GraphFileError(path, f"CELL_DATA array {name!r} has {len(vals)} values for {n_cells} cells")
        v = vals[idx]
        edge_attrs[name] = v.astype(bool) if name in (info.get("edge_bool") or []) else v
    meta = _parse_metadata(info.get("metadata"))
    edge_array = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return VesselGraph(pos, edge_array, node_attrs, edge_attrs, tuple(scale_arr), meta)


def _store(target: dict[str, np.ndarray], name: str, vals: np.ndarray) -> None:
    if vals.ndim == 1:
        target[name] = vals
    else:
        for j in range(vals.shape[1]):
            target[f"{name}_{j}"] = vals[:, j]


_READERS: dict[str, Callable[[str], VesselGraph]] = {
    "graphml": _read_graphml,
    "json": _read_json,
    "csv": _read_csv,
    "swc": _read_swc,
    "vtk": _read_vtk,
}
_WRITERS: dict[str, Callable[[VesselGraph, str], list[str]]] = {
    "graphml": _write_graphml,
    "json": _write_json,
    "csv": _write_csv,
    "swc": _write_swc,
    "vtk": _write_vtk,
}
