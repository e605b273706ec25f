"""GraphML graph files: ``_read_graphml(path)`` and ``_write_graphml(graph, path)``,
dispatched by :mod:`napari_vesselgraph.io.graphfiles`.

``.graphml`` — GraphML
Everything round-trips: positions (``pos_z``/``pos_y``/``pos_x`` node data, pixels), all node and
edge attributes with their types (int → ``long``, float → ``double``, bool → ``boolean``,
anything else → ``string``), and the graph data ``ndim``, ``scale_z``/``scale_y``/``scale_x`` and
``metadata`` (JSON text) exactly as :meth:`VesselGraph.to_networkx` names them, so files written by
``nx.write_graphml(graph.to_networkx(), path)`` read back as the same graph and ours open in
networkx, Cytoscape, Gephi, yEd.
"""

from __future__ import annotations

import math
import re
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr as _xml_quoteattr

from ...errors import GraphFileError, VesselGraphError
from ...graph.core import VesselGraph, pos_columns
from ..atomic import atomic_write
from ._common import _assemble, _check_names, _graph_attrs, _typed_columns

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
