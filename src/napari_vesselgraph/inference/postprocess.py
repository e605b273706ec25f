"""Clean-up of a predicted graph: shortcut edges and small fragments.

A Relationformer predicts edges pair by pair, so two failure modes are common on thin structures:

* **shortcut edges**: besides ``i - j`` and ``j - k`` along a vessel, the model also links ``i - k``
  directly. The triangle is almost flat (``j`` lies near the segment ``i - k``), adds a cycle that is
  not in the image and a duplicate stretch of centreline. :func:`prune_shortcuts` removes the long
  side of such flat triangles.
* **broken networks**: an edge whose score falls just under the edge threshold splits a vessel into
  fragments (many more connected components than in the image). :func:`link_components` keeps, on
  top of the confident edges, the weaker edges (down to ``link_threshold``) that join two different
  components -- hysteresis thresholding on the graph, as Canny does on edge pixels.
* **fragments**: isolated nodes and tiny components (a node pair in the background). They carry no
  network and cost precision. :func:`drop_fragments` removes components shorter than a length.

:func:`finish_graph` turns the raw candidates of ``predict(..., keep_raw=True)`` into the final graph:
thresholds, then these steps. ``predict`` and the predict widget both call it.

The defaults of :data:`DEFAULTS` were chosen on validation images (seeds ``20_000_000 + i``) of the
source domains by ``benchmarks/tune_postprocess.py``, never on test images.
"""

from __future__ import annotations

import numpy as np

from ..graph import VesselGraph

#: ``flat``: a triangle ``i-j-k`` is flat when ``|ij| + |jk| <= flat * |ik|``; its long side goes.
#: ``min_length``: components with less total centreline length (pixels) are dropped (0: keep all;
#: isolated nodes have length 0 and go whenever ``min_length > 0``).
#: ``link_threshold``: weakest edge confidence that may join two components (``None``: no linking).
DEFAULTS: dict = {"link_threshold": 0.1, "flat": 2.0, "min_length": 0.0}


def _lengths(nodes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    if not len(edges):
        return np.zeros(0)
    return np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1)


def link_components(graph: VesselGraph, edge_threshold: float, link_threshold: float | None) -> VesselGraph:
    """Keep edges with ``confidence >= edge_threshold``, plus weaker ones (``>= link_threshold``) that
    join two different components, strongest first. Cut nodes (``inserted``) left without an edge go."""
    g = graph
    n = g.n_nodes
    conf = np.asarray(g.edge_attrs.get("confidence", np.ones(g.n_edges)), float)
    strong = conf >= edge_threshold
    keep = strong.copy()
    if link_threshold is not None and link_threshold < edge_threshold and g.n_edges:
        parent = np.arange(n)

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in g.edges[strong]:
            ra, rb = find(int(a)), find(int(b))
            if ra != rb:
                parent[ra] = rb
        weak = np.flatnonzero(~strong & (conf >= link_threshold))
        for t in weak[np.argsort(-conf[weak], kind="stable")]:
            ra, rb = find(int(g.edges[t, 0])), find(int(g.edges[t, 1]))
            if ra != rb:
                parent[ra] = rb
                keep[t] = True
    if keep.all():
        return g
    out = VesselGraph(
        g.nodes,
        g.edges[keep],
        dict(g.node_attrs),
        {k: np.asarray(v)[keep] for k, v in g.edge_attrs.items()},
        g.scale,
        dict(g.metadata),
    )
    inserted = np.asarray(out.node_attrs.get("inserted", np.zeros(n, bool)), bool)
    if inserted.any():
        # a cut node (stitching put it where an edge crosses a border) that only a weak edge reaches is
        # a stub of a weak edge whose far end was dropped: remove it, and repeat along the chain
        weak = np.asarray(out.edge_attrs.get("confidence", np.ones(out.n_edges)), float) < edge_threshold
        ekeep = np.ones(out.n_edges, bool)
        while True:
            degree = np.bincount(out.edges[ekeep].ravel(), minlength=n)
            stub = inserted & (degree == 1)
            drop = ekeep & weak & (stub[out.edges[:, 0]] | stub[out.edges[:, 1]])
            if not drop.any():
                break
            ekeep &= ~drop
        out = VesselGraph(
            out.nodes,
            out.edges[ekeep],
            dict(out.node_attrs),
            {k: np.asarray(v)[ekeep] for k, v in out.edge_attrs.items()},
            out.scale,
            dict(out.metadata),
        )
        degree = np.bincount(out.edges.ravel(), minlength=n)
        out = out.subgraph(~(inserted & (degree == 0)))
    return out


def prune_shortcuts(graph: VesselGraph, flat: float = DEFAULTS["flat"]) -> VesselGraph:
    """Remove the long side ``i - k`` of every flat triangle ``i - j - k`` (see the module docstring).

    Lengths are in pixels (the graph's node coordinates). Triangles are visited from the longest
    side down, and a side is only removed while the two short sides are still present, so a chain of
    overlapping triangles keeps its path. ``flat <= 1`` disables the pruning.
    """
    g = graph
    if flat <= 1.0 or g.n_edges < 3:
        return g
    nodes = np.asarray(g.nodes, float)
    e = np.sort(np.asarray(g.edges, np.int64), axis=1)
    length = _lengths(nodes, e)
    adj: list[set[int]] = [set() for _ in range(g.n_nodes)]
    eid: dict[tuple[int, int], int] = {}
    for t, (a, b) in enumerate(e):
        adj[a].add(b)
        adj[b].add(a)
        eid[(int(a), int(b))] = t
    alive = np.ones(len(e), bool)
    for t in np.argsort(-length, kind="stable"):
        a, b = int(e[t, 0]), int(e[t, 1])
        if not alive[t]:
            continue
        for j in adj[a] & adj[b]:
            t1 = eid[(min(a, j), max(a, j))]
            t2 = eid[(min(b, j), max(b, j))]
            if alive[t1] and alive[t2] and length[t1] + length[t2] <= flat * length[t]:
                alive[t] = False
                adj[a].discard(b)
                adj[b].discard(a)
                break
    if alive.all():
        return g
    return VesselGraph(
        g.nodes,
        g.edges[alive],
        dict(g.node_attrs),
        {k: np.asarray(v)[alive] for k, v in g.edge_attrs.items()},
        g.scale,
        dict(g.metadata),
    )


def drop_fragments(graph: VesselGraph, min_length: float = DEFAULTS["min_length"]) -> VesselGraph:
    """Remove connected components whose total edge length (pixels) is below ``min_length``."""
    g = graph
    if min_length <= 0 or g.n_nodes == 0:
        return g
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = g.n_nodes
    e = np.asarray(g.edges, np.int64).reshape(-1, 2)
    mat = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(mat, directed=False)
    comp_len = np.bincount(label[e[:, 0]], weights=_lengths(np.asarray(g.nodes, float), e), minlength=label.max() + 1)
    keep = comp_len[label] >= min_length
    if keep.all():
        return g
    return g.subgraph(np.flatnonzero(keep))


def settings(params: dict | None = None, meta: dict | None = None) -> dict:
    """The clean-up settings: :data:`DEFAULTS`, then the checkpoint's ``meta["postprocess"]``, then
    ``params`` (``None`` values are ignored; ``{"postprocess": False}`` switches every step off)."""
    out = dict(DEFAULTS)
    out.update((meta or {}).get("postprocess") or {})
    params = {k: v for k, v in (params or {}).items() if v is not None}
    if params.pop("postprocess", True) is False:
        out = {"link_threshold": None, "flat": 1.0, "min_length": 0.0}
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        from ..errors import VesselGraphError

        raise VesselGraphError(f"unknown clean-up setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    out.update(params)
    return out


def finish_graph(
    raw: VesselGraph,
    node_threshold: float,
    edge_threshold: float,
    link_threshold: float | None = DEFAULTS["link_threshold"],
    flat: float = DEFAULTS["flat"],
    min_length: float = DEFAULTS["min_length"],
    drop_isolated: bool = False,
) -> VesselGraph:
    """Raw candidates -> final graph: thresholds, :func:`link_components`, :func:`prune_shortcuts`,
    :func:`drop_fragments`; the settings are recorded in ``metadata["postprocess"]``."""
    from .stitch import apply_thresholds

    low = edge_threshold if link_threshold is None else min(float(link_threshold), float(edge_threshold))
    g = apply_thresholds(raw, node_threshold, low, drop_isolated=False)
    g = link_components(g, edge_threshold, link_threshold)
    g = drop_fragments(prune_shortcuts(g, flat), min_length)
    if drop_isolated and g.n_nodes:
        degree = np.bincount(g.edges.ravel(), minlength=g.n_nodes)
        g = g.subgraph(degree > 0)
    meta = dict(g.metadata)
    meta.update(node_threshold=float(node_threshold), edge_threshold=float(edge_threshold), raw=False)
    meta["postprocess"] = {
        "link_threshold": None if link_threshold is None else float(link_threshold),
        "flat": float(flat),
        "min_length": float(min_length),
    }
    g.metadata = meta
    return g


def finish_raw(raw: VesselGraph, node_threshold: float, edge_threshold: float) -> VesselGraph:
    """:func:`finish_graph` with the clean-up settings the prediction recorded in ``raw.metadata``
    (none when it recorded none, e.g. a skeleton graph)."""
    pp = (raw.metadata or {}).get("postprocess") or {"link_threshold": None, "flat": 1.0, "min_length": 0.0}
    kw = {k: pp[k] for k in ("link_threshold", "flat", "min_length") if k in pp}
    return finish_graph(raw, node_threshold, edge_threshold, **kw)
