"""Re-spacing the nodes of a traced graph (SWC, GeoJSON) along its paths, like the synthetic ground truth.

Nodes of degree other than 2 (end points, junctions) stay where they are; the chains of degree-2 nodes
between them are densified to ~0.5 px steps and simplified with the skeleton importer's rule
(:func:`napari_vesselgraph.baseline.skeleton.simplify_path`): edges at most ``1.2 * spacing`` long,
the path within ``tol`` px of its edges. ``radius`` and other float node attributes are interpolated
along the path; integer, bool and text attributes are copied from the nearest original node.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..graph.core import VesselGraph

MAX_EDGE_FACTOR = 1.2  # smooth traced lines: edges <= 12 px at spacing 10, as in the synthetic graphs (max ~11.9)


def chains(n: int, edges: np.ndarray) -> list[list[int]]:
    """Node index lists from a key node (degree != 2) to the next, plus closed loops of degree-2 nodes."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in np.asarray(edges, dtype=np.int64).tolist():
        adj[a].append(b)
        adj[b].append(a)
    deg = np.array([len(x) for x in adj])
    used_edge: set[tuple[int, int]] = set()
    out: list[list[int]] = []

    def walk(start: int, nxt: int) -> list[int]:
        path = [start]
        prev, cur = start, nxt
        used_edge.add((min(prev, cur), max(prev, cur)))
        while True:
            path.append(cur)
            if deg[cur] != 2 or cur == start:
                return path
            a, b = adj[cur]
            step = b if a == prev else a
            key = (min(cur, step), max(cur, step))
            if key in used_edge:
                return path
            used_edge.add(key)
            prev, cur = cur, step

    for v in range(n):
        if deg[v] == 2:
            continue
        for w in adj[v]:
            if (min(v, w), max(v, w)) not in used_edge:
                out.append(walk(v, w))
    for v in range(n):  # loops with no key node
        if deg[v] == 2:
            for w in adj[v]:
                if (min(v, w), max(v, w)) not in used_edge:
                    out.append(walk(v, w))
    return out


def resample(graph: VesselGraph, spacing: float, tol: float = 1.0) -> VesselGraph:
    """A copy of ``graph`` with nodes about ``spacing`` px apart along its paths (see the module doc).

    Lengths are measured with the pixel size relative to the last axis (a z step of 3 counts 3 px).
    """
    from ..baseline.skeleton import simplify_path

    if graph.n_edges == 0:
        return graph.copy()
    d = graph.ndim
    rel = np.ones(d) if graph.scale is None else np.asarray(graph.scale, float) / float(graph.scale[-1])
    P0 = graph.nodes
    deg = graph.degree()
    key = np.flatnonzero(deg != 2)
    new_id = {int(v): i for i, v in enumerate(key)}
    nodes: list[np.ndarray] = [P0[v] for v in key]
    src_of: list[tuple[int, int, float]] = [(int(v), int(v), 0.0) for v in key]  # (a, b, t): between originals
    edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for ch in chains(graph.n_nodes, graph.edges):
        closed = ch[0] == ch[-1]
        if closed and ch[0] not in new_id:
            new_id[ch[0]] = len(nodes)
            nodes.append(P0[ch[0]])
            src_of.append((ch[0], ch[0], 0.0))
        pts = P0[ch]
        # densify: ~0.5 px steps, remembering which original segment and fraction each point comes from
        dense, origin = [pts[:1]], [(0, 0.0)]
        for i in range(len(ch) - 1):
            seg = np.linalg.norm((pts[i + 1] - pts[i]) * rel)
            k = max(int(np.ceil(seg / 0.5)), 1)
            t = np.arange(1, k + 1) / k
            dense.append(pts[i] + t[:, None] * (pts[i + 1] - pts[i]))
            origin += [(i, float(x)) for x in t]
        D = np.concatenate(dense)
        keep = simplify_path(D * rel, MAX_EDGE_FACTOR * float(spacing), tol, closed=closed)
        ids = []
        for j, kk in enumerate(keep):
            if j == 0:
                ids.append(new_id[ch[0]])
            elif j == len(keep) - 1:
                ids.append(new_id[ch[-1]])
            else:
                i, t = origin[kk]
                ids.append(len(nodes))
                nodes.append(D[kk])
                src_of.append((ch[i], ch[min(i + 1, len(ch) - 1)], t))
        if closed and len(ids) < 4:
            continue
        for u, v in itertools.pairwise(ids):
            k2 = (min(u, v), max(u, v))
            if u != v and k2 not in seen:
                seen.add(k2)
                edges.append(k2)
    a = np.array([s[0] for s in src_of], dtype=np.int64)
    b = np.array([s[1] for s in src_of], dtype=np.int64)
    t = np.array([s[2] for s in src_of])
    attrs = {}
    for name, col in graph.node_attrs.items():
        col = np.asarray(col)
        if col.dtype.kind == "f":
            attrs[name] = (1 - t) * col[a] + t * col[b]
        else:
            attrs[name] = np.where(t <= 0.5, col[a], col[b])
    meta = {**graph.metadata, "resampled_spacing": float(spacing), "original_nodes": int(graph.n_nodes)}
    return VesselGraph(np.array(nodes, float).reshape(-1, d), np.array(edges, np.int64).reshape(-1, 2), attrs, {},
                       graph.scale, meta)
