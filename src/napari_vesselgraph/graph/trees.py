"""Trees and forests of a :class:`VesselGraph`: a spanning forest from chosen roots.

Formats such as SWC store only trees (every sample has one parent). :func:`spanning_forest` turns any graph
into a forest by keeping, in each connected component, the shortest-path tree from one root node (edge
weights: physical edge lengths) and removing every other edge; the removed edges are returned so that the
caller can report them. A graph that is already a forest loses nothing.

Roots: in the component of ``root`` (a node index), ``root``; in every other component the node with the
largest ``radius`` attribute (the soma of a neuron, the trunk of a vessel tree), ties and graphs without a
``radius`` going to the lowest node index.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ..errors import VesselGraphError
from .core import VesselGraph

__all__ = ["SpanningForest", "choose_roots", "spanning_forest", "format_edges"]


@dataclass
class SpanningForest:
    """The result of :func:`spanning_forest`.

    graph : the forest: every node of the input, the kept edges (in their input order) with their attributes.
    removed : (K, 2) array, the input's edges that were removed (node indices, input order).
    removed_index : (K,) the removed edges' indices in the input's ``edges``.
    roots : one root node index per connected component, in order of first appearance by node index.
    parent : (N,) each node's parent in its tree, -1 for a root.
    order : (N,) node indices, every parent before its children (component by component, by distance from
        the root).
    """

    graph: VesselGraph
    removed: np.ndarray
    removed_index: np.ndarray
    roots: list[int]
    parent: np.ndarray
    order: np.ndarray

    @property
    def n_removed(self) -> int:
        return int(len(self.removed))


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    label = np.arange(n)

    def find(a: int) -> int:
        while label[a] != a:
            label[a] = label[label[a]]
            a = label[a]
        return a

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            label[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def choose_roots(graph: VesselGraph, root: int | None = None) -> list[int]:
    """One root per connected component (see the module docstring), ordered by each component's lowest node."""
    n = graph.n_nodes
    if root is not None:
        try:
            ok = int(root) == root
        except (TypeError, ValueError):
            ok = False
        if not ok or isinstance(root, bool):
            raise VesselGraphError(f"the root must be a node index (an integer), got {root!r}")
        root = int(root)
        if not 0 <= root < n:
            raise VesselGraphError(f"root node {root} does not exist: the graph has nodes 0..{n - 1}")
    comp = _components(n, graph.edges)
    weight = None
    if "radius" in graph.node_attrs:
        try:
            weight = np.asarray(graph.node_attrs["radius"], dtype=float)
            weight = np.where(np.isfinite(weight), weight, -np.inf)
        except (TypeError, ValueError):
            weight = None
    roots: list[int] = []
    for c in np.unique(comp).tolist():  # labels are each component's lowest node, so this is that order
        members = np.flatnonzero(comp == c)
        if root is not None and comp[root] == c:
            roots.append(root)
        elif weight is not None:
            roots.append(int(members[np.argmax(weight[members])]))  # argmax: the first (lowest index) of ties
        else:
            roots.append(int(members[0]))
    return roots


def spanning_forest(graph: VesselGraph, root: int | None = None) -> SpanningForest:
    """The shortest-path spanning forest of ``graph`` from its roots (see the module docstring).

    Self loops and repeated edges are always removed (and reported); of the other edges, those that close a
    cycle are removed: each node keeps the edge on its shortest physical path to its component's root.
    """
    n = graph.n_nodes
    edges = graph.edges
    roots = choose_roots(graph, root)
    lengths = graph.edge_lengths(physical=True) if len(edges) else np.zeros(0)
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k, (a, b) in enumerate(edges.tolist()):
        if a != b:
            adj[a].append((b, k))
            adj[b].append((a, k))
    parent = np.full(n, -1, dtype=np.int64)
    parent_edge = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=bool)
    order: list[int] = []
    for r in roots:  # Dijkstra per component; ties broken by node index, so the result is reproducible
        dist[r] = 0.0
        heap = [(0.0, r)]
        while heap:
            d, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = True
            order.append(u)
            for v, k in adj[u]:
                nd = d + float(lengths[k])
                if not done[v] and (nd < dist[v] or (nd == dist[v] and u < parent[v])):
                    dist[v], parent[v], parent_edge[v] = nd, u, k
                    heapq.heappush(heap, (nd, v))
    keep = np.zeros(len(edges), dtype=bool)
    keep[parent_edge[parent_edge >= 0]] = True
    forest = VesselGraph(
        graph.nodes.copy(),
        edges[keep],
        {k: v.copy() for k, v in graph.node_attrs.items()},
        {k: v[keep] for k, v in graph.edge_attrs.items()},
        graph.scale,
        dict(graph.metadata),
    )
    removed_index = np.flatnonzero(~keep)
    return SpanningForest(
        forest, edges[removed_index].reshape(-1, 2), removed_index, roots, parent, np.array(order, dtype=np.int64)
    )


def format_edges(edges, limit: int = 10) -> str:
    """``"3-7, 12-15, ..."``: the first ``limit`` edges and how many more."""
    pairs = [f"{int(a)}-{int(b)}" for a, b in np.asarray(edges).reshape(-1, 2).tolist()]
    text = ", ".join(pairs[:limit])
    if len(pairs) > limit:
        text += f", … ({len(pairs) - limit} more)"
    return text
