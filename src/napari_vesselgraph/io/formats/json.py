"""Node-link JSON graph files: ``_read_json(path)`` and ``_write_json(graph, path)``,
dispatched by :mod:`napari_vesselgraph.io.graphfiles`.

``.json`` — node-link JSON
The layout of ``networkx.node_link_data``: ``{"directed", "multigraph", "graph", "nodes",
"edges"}``, one node/edge object per line. Reading accepts the edge list under ``"edges"`` or
under the older ``"links"``. Non-finite floats are written as ``NaN``/``Infinity``, as Python's
:mod:`json` (and networkx) do.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import GraphFileError
from ...graph.core import VesselGraph, pos_columns
from ..atomic import atomic_write
from ._common import _assemble, _check_names, _graph_attrs, _typed_columns
from .csv import _CSV_SIDECAR_FORMAT, _read_csv


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
