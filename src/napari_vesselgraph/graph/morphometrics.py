"""Morphometrics of a :class:`VesselGraph` in physical units.

A *segment* is a chain of edges between two nodes whose degree is not 2 (branch points and
endpoints); nodes of degree 2 are interior points of a segment. A closed loop made only of
degree-2 nodes is one segment whose two ends coincide (its tortuosity is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import VesselGraph


@dataclass
class Segment:
    nodes: list[int]  # path of node indices, first and last are the ends
    edges: list[int]  # edge indices along the path
    length: float  # physical path length
    chord: float  # physical straight-line distance between the ends

    @property
    def tortuosity(self) -> float:
        return float(self.length / self.chord) if self.chord > 0 else float("nan")


def _adjacency(graph: VesselGraph) -> list[list[tuple[int, int]]]:
    adj: list[list[tuple[int, int]]] = [[] for _ in range(graph.n_nodes)]
    for k, (i, j) in enumerate(graph.edges.tolist()):
        adj[i].append((j, k))
        adj[j].append((i, k))
    return adj


def segments(graph: VesselGraph) -> list[Segment]:
    """Branch-to-branch segments of the graph (self loops and duplicate edges are ignored)."""
    g = graph.canonical()
    # canonical() keeps edge order for kept edges; map back to the caller's edge indices
    lengths = g.edge_lengths(physical=True)
    pts = g.physical_nodes()
    deg = g.degree()
    adj = _adjacency(g)
    visited = np.zeros(g.n_edges, dtype=bool)
    out: list[Segment] = []

    def walk(start: int, first_nb: int, first_edge: int) -> Segment:
        path, epath = [start], []
        cur, e = first_nb, first_edge
        while True:
            visited[e] = True
            epath.append(e)
            path.append(cur)
            if deg[cur] != 2 or cur == start:
                break
            nxt = [(n, k) for n, k in adj[cur] if k != e]
            cur, e = nxt[0]
            if visited[e]:
                break
        length = float(lengths[epath].sum())
        chord = float(np.linalg.norm(pts[path[0]] - pts[path[-1]]))
        return Segment(path, epath, length, chord)

    for s in np.flatnonzero(deg != 2):
        for nb, k in adj[s]:
            if not visited[k]:
                out.append(walk(int(s), nb, k))
    # pure cycles made of degree-2 nodes only
    for k in np.flatnonzero(~visited):
        if visited[k]:
            continue
        i, j = g.edges[k]
        out.append(walk(int(i), int(j), int(k)))
    # translate edge indices back to the original graph's indexing
    orig = _canonical_edge_index(graph)
    for seg in out:
        seg.edges = [int(orig[e]) for e in seg.edges]
    return out


def _canonical_edge_index(graph: VesselGraph) -> np.ndarray:
    """For each edge of ``graph.canonical()``, its index in ``graph.edges``."""
    e = np.sort(graph.edges, axis=1)
    keep = e[:, 0] != e[:, 1]
    if not keep.any():
        return np.zeros(0, dtype=np.int64)
    _, first = np.unique(e[keep], axis=0, return_index=True)
    return np.flatnonzero(keep)[np.sort(first)]


def connected_components(graph: VesselGraph) -> tuple[int, np.ndarray]:
    """Number of components and the component label of each node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    n = graph.n_nodes
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    e = graph.edges
    m = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    k, labels = cc(m, directed=False)
    return int(k), labels.astype(np.int64)


def morphometrics(graph: VesselGraph) -> dict:
    """Per-node, per-edge and per-segment tables (physical units).

    Returns ``{"nodes": {...}, "edges": {...}, "segments": {...}, "segment_nodes": [...]}``; every table
    maps a column name to an array. Nodes: degree, is_branch_point, is_endpoint, component. Edges:
    length, segment. Segments: length, chord, tortuosity, n_edges, start, end; ``segment_nodes`` lists
    each segment's node path.
    """
    deg = graph.degree()
    _, comp = connected_components(graph)
    segs = segments(graph)
    edge_seg = np.full(graph.n_edges, -1, dtype=np.int64)
    for s, seg in enumerate(segs):
        edge_seg[seg.edges] = s
    return {
        "nodes": {
            "degree": deg,
            "is_branch_point": deg >= 3,
            "is_endpoint": deg == 1,
            "component": comp,
        },
        "edges": {"length": graph.edge_lengths(physical=True), "segment": edge_seg},
        "segments": {
            "length": np.array([s.length for s in segs], dtype=float),
            "chord": np.array([s.chord for s in segs], dtype=float),
            "tortuosity": np.array([s.tortuosity for s in segs], dtype=float),
            "n_edges": np.array([len(s.edges) for s in segs], dtype=np.int64),
            "start": np.array([s.nodes[0] for s in segs], dtype=np.int64),
            "end": np.array([s.nodes[-1] for s in segs], dtype=np.int64),
        },
        "segment_nodes": [list(s.nodes) for s in segs],
    }


def graph_statistics(graph: VesselGraph, m: dict | None = None) -> dict[str, float]:
    """Summary numbers a user reads in the inspector (lengths in the graph's physical units).

    ``m``: the graph's :func:`morphometrics`, when already computed.
    """
    if m is None:
        m = morphometrics(graph)
    n_comp = int(len(np.unique(m["nodes"]["component"])))
    seg_len = m["segments"]["length"]
    tort = m["segments"]["tortuosity"]
    tort = tort[np.isfinite(tort)]
    return {
        "nodes": graph.n_nodes,
        "edges": graph.n_edges,
        "branch_points": int(m["nodes"]["is_branch_point"].sum()),
        "endpoints": int(m["nodes"]["is_endpoint"].sum()),
        "components": n_comp,
        "segments": int(len(seg_len)),
        "total_length": float(m["edges"]["length"].sum()),
        "mean_segment_length": float(seg_len.mean()) if len(seg_len) else 0.0,
        "mean_tortuosity": float(tort.mean()) if len(tort) else float("nan"),
    }


_MICRO = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre", "micrometers", "micrometres"}


def length_unit(graph: VesselGraph) -> str:
    """The unit of the graph's physical lengths: its ``unit`` metadata when set (``um`` etc. written ``µm``),
    else ``px`` when its scale is 1 along every axis (no voxel size: lengths in pixels), else ``µm`` (the scale
    is micrometres per pixel, as the image readers give it)."""
    unit = (graph.metadata or {}).get("unit")
    if isinstance(unit, str) and unit.strip():
        unit = unit.strip()
        return "µm" if unit.lower() in _MICRO else unit
    return "px" if np.allclose(graph.scale, 1.0) else "µm"


def mean_radius(graph: VesselGraph) -> float | None:
    """Mean of the ``radius`` node attribute in physical units (pixels times the x scale, as SWC stores it);
    None when the graph has no numeric radius."""
    r = graph.node_attrs.get("radius")
    if r is None or not graph.n_nodes:
        return None
    try:
        r = np.asarray(r, dtype=float)
    except (TypeError, ValueError):
        return None
    r = r[np.isfinite(r)]
    return float(r.mean() * graph.scale[-1]) if len(r) else None

