"""The `VesselGraph` type: a spatial graph in napari axis order.

Node positions are stored in *pixels* in napari/numpy axis order ((y, x) or (z, y, x)).
Physical units enter only through ``scale`` (size of one pixel along each axis, e.g. µm).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import VesselGraphError

AXIS_NAMES = {2: ("y", "x"), 3: ("z", "y", "x")}


def axis_names(ndim: int) -> tuple[str, ...]:
    try:
        return AXIS_NAMES[ndim]
    except KeyError:
        raise VesselGraphError(f"graphs must be 2D or 3D, got {ndim} coordinate axes") from None


def pos_columns(ndim: int) -> tuple[str, ...]:
    """Names of the coordinate columns used by every file format (``pos_z``, ``pos_y``, ``pos_x``)."""
    return tuple(f"pos_{a}" for a in axis_names(ndim))


def _as_attr_array(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise VesselGraphError(f"{what} must have one value per item ({n}), got shape {arr.shape}")
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr


@dataclass
class VesselGraph:
    """An undirected spatial graph.

    Attributes
    ----------
    nodes : (N, D) float array of positions in pixels, napari axis order.
    edges : (E, 2) int array of node indices (undirected; no self loops, no duplicates).
    node_attrs, edge_attrs : column tables, name -> 1-D array of length N / E.
    scale : physical size of a pixel along each axis (length D).
    metadata : JSON-serialisable dict (image shape, producing model/checkpoint, ...).
    """

    nodes: np.ndarray
    edges: np.ndarray = None  # type: ignore[assignment]
    node_attrs: dict[str, np.ndarray] = field(default_factory=dict)
    edge_attrs: dict[str, np.ndarray] = field(default_factory=dict)
    scale: tuple[float, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = np.asarray(self.nodes, dtype=float)
        if nodes.ndim != 2 or (nodes.shape[0] and nodes.shape[1] not in (2, 3)):
            raise VesselGraphError(f"nodes must be an N x 2 or N x 3 array, got shape {nodes.shape}")
        if nodes.shape[0] == 0 and nodes.shape[1] not in (2, 3):
            nodes = nodes.reshape(0, 2)
        self.nodes = nodes
        n = nodes.shape[0]
        edges = np.zeros((0, 2), dtype=np.int64) if self.edges is None else np.asarray(self.edges)
        if edges.size == 0:
            edges = np.zeros((0, 2), dtype=np.int64)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise VesselGraphError(f"edges must be an E x 2 array, got shape {edges.shape}")
        if edges.dtype.kind not in "iu":
            if not np.all(np.equal(np.mod(edges, 1), 0)):
                raise VesselGraphError("edge endpoints must be integer node indices")
        edges = edges.astype(np.int64)
        if edges.size and (edges.min() < 0 or edges.max() >= n):
            raise VesselGraphError(f"edges refer to nodes outside 0..{n - 1}")
        self.edges = edges
        self.node_attrs = {str(k): _as_attr_array(v, n, f"node attribute {k!r}") for k, v in self.node_attrs.items()}
        self.edge_attrs = {
            str(k): _as_attr_array(v, len(edges), f"edge attribute {k!r}") for k, v in self.edge_attrs.items()
        }
        d = nodes.shape[1]
        if self.scale is None:
            self.scale = (1.0,) * d
        scale = tuple(float(s) for s in np.ravel(self.scale))
        if len(scale) != d:
            raise VesselGraphError(f"scale has {len(scale)} values but the graph is {d}D")
        if not all(np.isfinite(s) and s > 0 for s in scale):
            raise VesselGraphError(f"scale must be positive and finite, got {scale}")
        self.scale = scale
        self.metadata = dict(self.metadata or {})

    # ------------------------------------------------------------------ basics
    @property
    def ndim(self) -> int:
        return int(self.nodes.shape[1])

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def __repr__(self) -> str:
        return (
            f"VesselGraph({self.ndim}D, {self.n_nodes} nodes, {self.n_edges} edges, scale={self.scale}, "
            f"node_attrs={list(self.node_attrs)}, edge_attrs={list(self.edge_attrs)})"
        )

    def copy(self) -> VesselGraph:
        return VesselGraph(
            self.nodes.copy(),
            self.edges.copy(),
            {k: v.copy() for k, v in self.node_attrs.items()},
            {k: v.copy() for k, v in self.edge_attrs.items()},
            self.scale,
            json.loads(json.dumps(self.metadata, default=_json_default)),
        )

    @classmethod
    def empty(cls, ndim: int = 2, scale=None, metadata=None) -> VesselGraph:
        return cls(np.zeros((0, ndim)), np.zeros((0, 2), dtype=np.int64), scale=scale, metadata=metadata or {})

    def physical_nodes(self) -> np.ndarray:
        """Node positions in physical units (pixels * scale)."""
        return self.nodes * np.asarray(self.scale)

    def edge_lengths(self, physical: bool = True) -> np.ndarray:
        """Straight-line length of each edge (physical units unless ``physical=False``)."""
        pts = self.physical_nodes() if physical else self.nodes
        if not self.n_edges:
            return np.zeros(0)
        return np.linalg.norm(pts[self.edges[:, 0]] - pts[self.edges[:, 1]], axis=1)

    def degree(self) -> np.ndarray:
        return np.bincount(self.edges.ravel(), minlength=self.n_nodes).astype(np.int64)

    # ------------------------------------------------------------ normalising
    def canonical(self) -> VesselGraph:
        """Drop self loops and duplicate edges (keeping the first), store edges with i < j."""
        e = np.sort(self.edges, axis=1)
        keep = e[:, 0] != e[:, 1]
        if keep.any():
            _, first = np.unique(e[keep], axis=0, return_index=True)
            idx = np.flatnonzero(keep)[np.sort(first)]
        else:
            idx = np.zeros(0, dtype=np.int64)
        return VesselGraph(
            self.nodes.copy(),
            e[idx],
            {k: v.copy() for k, v in self.node_attrs.items()},
            {k: v[idx] for k, v in self.edge_attrs.items()},
            self.scale,
            dict(self.metadata),
        )

    def subgraph(self, node_mask: np.ndarray) -> VesselGraph:
        """Keep the nodes where ``node_mask`` is true and the edges between them."""
        node_mask = np.asarray(node_mask)
        if node_mask.dtype != bool:
            m = np.zeros(self.n_nodes, bool)
            m[node_mask] = True
            node_mask = m
        new_index = np.full(self.n_nodes, -1, dtype=np.int64)
        new_index[node_mask] = np.arange(int(node_mask.sum()))
        ekeep = node_mask[self.edges[:, 0]] & node_mask[self.edges[:, 1]] if self.n_edges else np.zeros(0, bool)
        return VesselGraph(
            self.nodes[node_mask],
            new_index[self.edges[ekeep]],
            {k: v[node_mask] for k, v in self.node_attrs.items()},
            {k: v[ekeep] for k, v in self.edge_attrs.items()},
            self.scale,
            dict(self.metadata),
        )

    def remove_isolated(self) -> VesselGraph:
        return self.subgraph(self.degree() > 0)

    # ------------------------------------------------------------- networkx
    def to_networkx(self):
        """An ``nx.Graph`` with nodes 0..N-1 carrying ``pos_y``/``pos_x`` (``pos_z``) and every attribute.

        Graph attributes: ``ndim``, ``scale_z``/``scale_y``/``scale_x`` and ``metadata`` (JSON text), so the
        graph can be written by ``nx.write_graphml`` as it is.
        """
        import networkx as nx

        g = nx.Graph()
        names = axis_names(self.ndim)
        g.graph["ndim"] = self.ndim
        for a, s in zip(names, self.scale):
            g.graph[f"scale_{a}"] = float(s)
        g.graph["metadata"] = json.dumps(self.metadata, default=_json_default)
        cols = pos_columns(self.ndim)
        nattr = {k: _to_python_list(v) for k, v in self.node_attrs.items()}
        for i in range(self.n_nodes):
            d = {c: float(self.nodes[i, j]) for j, c in enumerate(cols)}
            for k, v in nattr.items():
                d[k] = v[i]
            g.add_node(i, **d)
        eattr = {k: _to_python_list(v) for k, v in self.edge_attrs.items()}
        for e in range(self.n_edges):
            i, j = int(self.edges[e, 0]), int(self.edges[e, 1])
            g.add_edge(i, j, **{k: v[e] for k, v in eattr.items()})
        return g

    @classmethod
    def from_networkx(cls, g, ndim: int | None = None, scale=None) -> VesselGraph:
        """Build a graph from any networkx graph whose nodes carry coordinates.

        Coordinates are read from ``pos_z``/``pos_y``/``pos_x`` (or ``z``/``y``/``x``), or from a ``pos``
        sequence in napari axis order. Other node/edge attributes become attribute columns.
        """
        nodes = list(g.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        gattr = dict(g.graph)
        if ndim is None:
            ndim = gattr.get("ndim")
        if ndim is None:
            ndim = _guess_ndim([g.nodes[n] for n in nodes])
        ndim = int(ndim)
        names = axis_names(ndim)
        pos = np.zeros((len(nodes), ndim))
        coord_keys: set[str] = set()
        for i, n in enumerate(nodes):
            pos[i], used = _node_position(g.nodes[n], names, n)
            coord_keys |= used
        node_attrs = _collect_attrs([g.nodes[n] for n in nodes], exclude=coord_keys)
        elist = list(g.edges(data=True))
        edges = np.array([[index[u], index[v]] for u, v, _ in elist], dtype=np.int64).reshape(-1, 2)
        edge_attrs = _collect_attrs([d for _, _, d in elist], exclude=set())
        if scale is None:
            if all(f"scale_{a}" in gattr for a in names):
                scale = tuple(float(gattr[f"scale_{a}"]) for a in names)
            elif "scale" in gattr:
                scale = _parse_scale(gattr["scale"])
        return cls(pos, edges, node_attrs, edge_attrs, scale, _parse_metadata(gattr.get("metadata")))

    # ------------------------------------------------------------ comparison
    def same_as(self, other: VesselGraph, atol: float = 1e-6) -> bool:
        """True when both graphs have the same nodes (in order), edge set, attributes and scale."""
        return not self.differences(other, atol)

    def differences(self, other: VesselGraph, atol: float = 1e-6) -> list[str]:
        out = []
        if self.nodes.shape != other.nodes.shape or not np.allclose(self.nodes, other.nodes, atol=atol):
            out.append("node positions differ")
        if not np.allclose(self.scale, other.scale, atol=atol):
            out.append(f"scale {self.scale} != {other.scale}")
        a, b = self.canonical(), other.canonical()
        ka = {tuple(e): i for i, e in enumerate(a.edges.tolist())}
        kb = {tuple(e): i for i, e in enumerate(b.edges.tolist())}
        if set(ka) != set(kb):
            out.append(f"edge sets differ ({len(ka)} vs {len(kb)} edges)")
        for name in sorted(set(self.node_attrs) | set(other.node_attrs)):
            if name not in self.node_attrs or name not in other.node_attrs:
                out.append(f"node attribute {name!r} missing on one side")
            elif not _values_equal(self.node_attrs[name], other.node_attrs[name], atol):
                out.append(f"node attribute {name!r} differs")
        if set(ka) == set(kb):
            order_b = [kb[k] for k in ka]
            for name in sorted(set(a.edge_attrs) | set(b.edge_attrs)):
                if name not in a.edge_attrs or name not in b.edge_attrs:
                    out.append(f"edge attribute {name!r} missing on one side")
                elif not _values_equal(a.edge_attrs[name], b.edge_attrs[name][order_b], atol):
                    out.append(f"edge attribute {name!r} differs")
        return out


# ---------------------------------------------------------------- helpers
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _to_python_list(v: np.ndarray) -> list:
    return [x.item() if isinstance(x, np.generic) else x for x in v.tolist()]


def _parse_metadata(meta) -> dict:
    if meta is None:
        return {}
    if isinstance(meta, str):
        if not meta.strip():
            return {}
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return {"metadata": meta}
    if not isinstance(meta, dict):
        return {"metadata": meta}
    return meta


def _values_equal(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
        return bool(np.allclose(a.astype(float), b.astype(float), atol=atol, equal_nan=True))
    return [str(x) for x in a] == [str(x) for x in b]


def _guess_ndim(node_dicts: list[dict]) -> int:
    for d in node_dicts[:1]:
        if "pos_z" in d or "z" in d:
            return 3
        if "pos" in d:
            p = d["pos"]
            if isinstance(p, str):
                p = [x for x in re.split(r"[\s,;()\[\]]+", p) if x]
            try:
                return len(p)
            except TypeError:
                return 2
    return 2


def _node_position(d: dict, names: tuple[str, ...], node) -> tuple[list[float], set[str]]:
    for prefix in ("pos_", ""):
        keys = [prefix + a for a in names]
        if all(k in d for k in keys):
            try:
                return [float(d[k]) for k in keys], set(keys)
            except (TypeError, ValueError):
                raise VesselGraphError(f"node {node!r} has a non-numeric coordinate") from None
    if "pos" in d:
        p = d["pos"]
        if isinstance(p, str):
            p = re.split(r"[\s,;()\[\]]+", p.strip(" ()[]"))
        try:
            vals = [float(x) for x in p]
        except (TypeError, ValueError):
            raise VesselGraphError(f"node {node!r} has a non-numeric 'pos'") from None
        if len(vals) != len(names):
            raise VesselGraphError(f"node {node!r}: 'pos' has {len(vals)} values, expected {len(names)}")
        return vals, {"pos"}
    want = ", ".join("pos_" + a for a in names)
    raise VesselGraphError(f"node {node!r} has no coordinates (expected {want})")


def _collect_attrs(datas: list[Mapping], exclude: set[str]) -> dict[str, np.ndarray]:
    keys: list[str] = []
    for d in datas:
        for k in d:
            if k not in exclude and k not in keys:
                keys.append(k)
    out = {}
    for k in keys:
        vals = [d.get(k, None) for d in datas]
        out[k] = column_from_values(vals)
    return out


def column_from_values(vals: list) -> np.ndarray:
    """Turn a list of python values (possibly with ``None`` holes) into a typed column."""
    present = [v for v in vals if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present) and len(present) == len(vals):
        return np.array(vals, dtype=bool)
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        if len(present) == len(vals):
            return np.array(vals, dtype=np.int64)
        return np.array([np.nan if v is None else float(v) for v in vals])
    if present and all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
        return np.array([np.nan if v is None else float(v) for v in vals])
    return np.array(["" if v is None else str(v) for v in vals], dtype=object)


def _parse_scale(s) -> tuple[float, ...] | None:
    if isinstance(s, str):
        s = s.replace("[", " ").replace("]", " ").replace("(", " ").replace(")", " ").replace(",", " ").split()
    try:
        return tuple(float(x) for x in s)
    except (TypeError, ValueError):
        raise VesselGraphError(f"cannot read scale {s!r}") from None
