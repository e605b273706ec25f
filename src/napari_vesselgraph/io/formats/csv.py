"""CSV pair graph files (the Whole-Brain Vessel Graphs layout): ``_read_csv(path)`` and ``_write_csv(graph, path)``,
dispatched by :mod:`napari_vesselgraph.io.graphfiles`.

``.csv`` — a CSV pair (the Whole-Brain Vessel Graphs layout)
``X_nodes.csv`` (``id``, ``pos_z``, ``pos_y``, ``pos_x``, node attributes) and ``X_edges.csv``
(``node1``, ``node2``, edge attributes), both plain CSV that pandas reads as it is. Scale,
metadata, the attribute types and the node/edge counts go into a small ``X_graph.json`` beside
them. Writing ``X.csv``, ``X_nodes.csv`` or ``X_edges.csv`` writes all three files; reading
accepts any of those names and ``X_graph.json``. Without ``X_graph.json`` (files from elsewhere)
the scale is 1 and the type of each column is inferred (bool, int, float, else str); ``;`` or
tab separators are recognised.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from contextlib import ExitStack
from typing import Any

import numpy as np

from ...errors import GraphFileError, VesselGraphError
from ...graph.core import (
    VesselGraph,
    _parse_metadata,
    axis_names,
    pos_columns,
)
from ..atomic import atomic_write
from ._common import (
    _check_names,
    _check_readable,
    _fmt_float,
    _metadata_json,
    _typed_columns,
)

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
