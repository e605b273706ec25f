"""What the graph file formats share: the format table, attribute columns typed for writing, a graph
assembled from the records a reader collected, and the checks before reading a file."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from ...errors import GraphFileError, VesselGraphError
from ...graph.core import (
    VesselGraph,
    _guess_ndim,
    _json_default,
    _node_position,
    _parse_metadata,
    axis_names,
    column_from_values,
)

#: file suffix -> format name
FORMATS: dict[str, str] = {
    ".graphml": "graphml",
    ".json": "json",
    ".csv": "csv",
    ".swc": "swc",
    ".vtk": "vtk",
}

DESCRIPTIONS = {
    "graphml": "GraphML",
    "json": "node-link JSON",
    "csv": "CSV pair X_nodes.csv + X_edges.csv",
    "swc": "SWC, trees only",
    "vtk": "legacy VTK PolyData",
}



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
                f"node attribute {name!r} clashes with a field the {DESCRIPTIONS[fmt]} format uses; rename it"
            )
    for name in graph.edge_attrs:
        if name in edge_reserved:
            raise VesselGraphError(
                f"edge attribute {name!r} clashes with a field the {DESCRIPTIONS[fmt]} format uses; rename it"
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


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise GraphFileError(path, "file not found")
    if os.path.isdir(path):
        raise GraphFileError(path, "is a folder, not a graph file")
    if os.path.getsize(path) == 0:
        raise GraphFileError(path, "file is empty")

