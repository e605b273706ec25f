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
* **duplicate nodes**: two object tokens (or two overlapping windows) put a node on the same spot a
  couple of pixels apart, and both get edges: the vessel is traced twice. :func:`dedupe_nodes`
  merges nodes closer than a radius into the most confident one.
* **node placement along a vessel**: each window places its nodes on its own, so the degree-2 nodes
  along a long vessel come at an arbitrary phase and spacing. :func:`resample_chains` re-places them
  the way the training graphs (and the skeleton baseline) do: every chain between junctions / end
  points is cut into equal pieces no longer than ``spacing`` px, refined where the traced path strays
  more than ``spacing_tol`` px from a piece's chord. Junctions, end points and the traced geometry are
  kept.

:func:`finish_graph` turns the raw candidates of ``predict(..., keep_raw=True)`` into the final graph:
thresholds, then these steps. ``predict`` and the predict widget both call it.

The defaults of :data:`DEFAULTS` were chosen on validation images (seeds ``20_000_000 + i``) of the
source domains by ``benchmarks/tune_postprocess.py`` (the best mean over the bundled checkpoints),
never on test images; each bundled checkpoint also records its own best setting in its metadata
(``meta["postprocess"]``), which takes precedence.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..graph import VesselGraph
from .stitch import splice_inserted


def _setting(default, off, doc: str):
    """A clean-up setting: its default, the value that switches its step off, one line saying what it does."""
    return field(default=default, metadata={"off": off, "doc": doc})


@dataclass(frozen=True)
class CleanupSettings:
    """The clean-up of a thresholded graph: one field per setting, and :meth:`apply`, the steps in order.

    Adding a clean-up step touches only this class: a field (default, the value that switches it off, its
    doc line) and its call in :meth:`apply`. :data:`DEFAULTS`, :data:`OFF`, :func:`finish_graph`'s keyword
    arguments, the ``metadata["postprocess"]`` record and ``predict``'s options all follow from the fields.
    Values are checked (numbers, ``None`` only for ``link_threshold``).
    """

    link_threshold: float | None = _setting(
        0.1, None, "weakest edge confidence that may join two components (hysteresis linking; None: no linking)"
    )
    flat: float = _setting(
        2.0, 1.0, "a triangle i-j-k is flat when |ij| + |jk| <= flat * |ik|; its long side goes (<= 1: off)"
    )
    min_length: float = _setting(
        0.0, 0.0, "components with less total centreline length (px) are dropped (0: keep all)"
    )
    dedupe_radius: float = _setting(
        5.0, 0.0, "nodes closer than this (px) are merged into the most confident one (0: off)"
    )
    min_support: float = _setting(
        0.0, 0.0, "edges whose image support (inference.support: normalised brightness along them) is lower are "
        "dropped, with the nodes left without edges (0: off)"
    )
    min_brightness: float = _setting(
        0.0, 0.0, "edges whose image-wide brightness (inference.support: 0 at the image's median, 1 at its "
        "brightest structures) is lower are dropped, with the nodes left without edges (0: off)"
    )
    spacing: float = _setting(11.0, 0.0, "re-place the nodes along each chain at most this far apart (px; 0: off)")
    spacing_tol: float = _setting(2.0, 2.0, "how far (px) a re-placed chain may stray from the traced path")

    def __post_init__(self) -> None:
        from ..errors import VesselGraphError

        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.name == "link_threshold":
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = float("nan")
            if isinstance(v, (bool, str)) or not np.isfinite(x):
                raise VesselGraphError(f"clean-up setting {f.name} must be a number, got {v!r}")
            if f.name == "link_threshold" and not 0.0 <= x <= 1.0:
                raise VesselGraphError(f"clean-up setting link_threshold must be in [0, 1] or None, got {v!r}")
            object.__setattr__(self, f.name, x)

    # ---------------------------------------------------------------- construction
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def off(cls) -> CleanupSettings:
        """Every step switched off (``postprocess=False``)."""
        return cls(**{f.name: f.metadata["off"] for f in fields(cls)})

    @classmethod
    def check_names(cls, names, where: str = "clean-up setting(s)") -> None:
        from ..errors import VesselGraphError

        unknown = sorted(set(names) - set(cls.names()))
        if unknown:
            raise VesselGraphError(f"unknown {where} {unknown}; known: {sorted(cls.names())}")

    @classmethod
    def resolve(cls, params: dict | None = None, meta: dict | None = None) -> CleanupSettings:
        """The settings a prediction uses: the defaults, then the checkpoint's ``meta["postprocess"]``, then
        ``params`` (the call's options: ``None`` values are ignored; ``{"postprocess": False}`` switches every
        step off)."""
        recorded = (meta or {}).get("postprocess") or {}
        cls.check_names(recorded, "clean-up setting(s) in the checkpoint metadata:")
        params = {k: v for k, v in (params or {}).items() if v is not None}
        out = cls().replace(**recorded) if params.pop("postprocess", True) is not False else cls.off()
        cls.check_names(params)
        return out.replace(**params)

    @classmethod
    def from_record(cls, record: dict | None) -> CleanupSettings:
        """The settings a graph's ``metadata["postprocess"]`` records (a setting it does not record is off;
        none recorded: all off, e.g. a skeleton graph; unknown keys are ignored)."""
        record = record or {}
        off = cls.off()
        return cls(**{n: record.get(n, getattr(off, n)) for n in cls.names()})

    @classmethod
    def coerce(cls, value) -> CleanupSettings:
        """``value`` as settings: a :class:`CleanupSettings`, a dict of settings over the defaults, or ``None``
        (the defaults)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            cls.check_names(value)
            return cls(**value)
        from ..errors import VesselGraphError

        raise VesselGraphError(f"clean-up settings must be a CleanupSettings or a dict, got {value!r}")

    def replace(self, **changes) -> CleanupSettings:
        self.check_names(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """``{name: value}`` in field order (what ``metadata["postprocess"]`` records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ---------------------------------------------------------------- the steps
    def apply(self, raw: VesselGraph, node_threshold: float, edge_threshold: float) -> VesselGraph:
        """Thresholds, then :func:`.support.drop_unsupported` (``support``, then ``brightness``),
        :func:`link_components`, :func:`dedupe_nodes`, :func:`prune_shortcuts`, :func:`drop_fragments`,
        :func:`resample_chains` with these settings."""
        from .support import drop_unsupported

        link = self.link_threshold
        low = edge_threshold if link is None else min(float(link), float(edge_threshold))
        g = apply_thresholds(raw, node_threshold, low, drop_isolated=False)
        g = drop_unsupported(g, self.min_support)
        g = drop_unsupported(g, self.min_brightness, column="brightness")
        g = link_components(g, edge_threshold, link)
        g = dedupe_nodes(g, self.dedupe_radius)
        g = drop_fragments(prune_shortcuts(g, self.flat), self.min_length)
        return resample_chains(g, self.spacing, self.spacing_tol)


#: the default clean-up settings, as a dict (``CleanupSettings().to_dict()``)
DEFAULTS: dict = CleanupSettings().to_dict()

#: every step switched off (``postprocess=False``), as a dict
OFF: dict = CleanupSettings.off().to_dict()


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


def _edge_attrs_max_conf(edge_attrs: dict, inv: np.ndarray, n_out: int) -> dict:
    """Edge attributes of deduplicated edges (``inv``: old edge -> new edge): the strongest copy's."""
    conf = np.asarray(edge_attrs.get("confidence", np.ones(len(inv))), float)
    best = np.full(n_out, -1, np.int64)
    order = np.argsort(conf, kind="stable")  # weakest first: the strongest copy writes last
    best[inv[order]] = order
    return {k: np.asarray(v)[best] for k, v in edge_attrs.items()}


def dedupe_nodes(graph: VesselGraph, radius: float = DEFAULTS["dedupe_radius"]) -> VesselGraph:
    """Merge nodes closer than ``radius`` pixels (see the module docstring).

    Nodes are visited from the most confident down; a node not yet absorbed keeps its place and its
    attributes and absorbs the not-yet-absorbed nodes within ``radius``. Edges follow their nodes;
    self loops go and parallel edges keep the most confident one. ``radius <= 0`` disables it.
    """
    g = graph
    if radius <= 0 or g.n_nodes < 2:
        return g
    from scipy.spatial import cKDTree

    nodes = np.asarray(g.nodes, float)
    pairs = cKDTree(nodes).query_pairs(float(radius), output_type="ndarray")
    if not len(pairs):
        return g
    n = g.n_nodes
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    start = np.searchsorted(both[:, 0], np.arange(n + 1))
    nbr = both[:, 1]
    conf = np.asarray(g.node_attrs.get("confidence", np.ones(n)), float)
    label = np.full(n, -1, np.int64)
    for i in np.argsort(-conf, kind="stable"):
        if label[i] >= 0:
            continue
        label[i] = i
        near = nbr[start[i] : start[i + 1]]
        label[near[label[near] < 0]] = i
    keep = np.unique(label)
    new = np.searchsorted(keep, label)
    e = new[np.asarray(g.edges, np.int64).reshape(-1, 2)]
    ok = e[:, 0] != e[:, 1]
    e = np.sort(e[ok], axis=1)
    eattrs = {k: np.asarray(v)[ok] for k, v in g.edge_attrs.items()}
    e, inv = np.unique(e.reshape(-1, 2), axis=0, return_inverse=True)
    eattrs = _edge_attrs_max_conf(eattrs, inv.ravel(), len(e))
    return VesselGraph(
        nodes[keep],
        e.reshape(-1, 2),
        {k: np.asarray(v)[keep] for k, v in g.node_attrs.items()},
        eattrs,
        g.scale,
        dict(g.metadata),
    )


def _chains(n: int, edges: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Paths between nodes of degree != 2 (and cycles without such a node): ``(nodes, edge ids)``."""
    deg = np.bincount(edges.ravel(), minlength=n)
    both = np.concatenate([edges, edges[:, ::-1]])
    eid = np.concatenate([np.arange(len(edges)), np.arange(len(edges))])
    order = np.argsort(both[:, 0], kind="stable")
    nbr, eid = both[order, 1].tolist(), eid[order].tolist()
    start = np.searchsorted(both[order, 0], np.arange(n + 1)).tolist()
    used = [False] * len(edges)
    key = (deg != 2).tolist()
    out = []

    def walk(v0: int, k: int):
        vs, es = [v0], []
        while True:
            used[eid[k]] = True
            es.append(eid[k])
            v = nbr[k]
            vs.append(v)
            if key[v]:
                return vs, es
            a, b = start[v], start[v] + 1  # degree 2: two slots
            k = b if eid[a] == es[-1] else a
            if used[eid[k]]:
                return vs, es

    for v0 in np.flatnonzero(deg != 2).tolist():
        for k in range(start[v0], start[v0 + 1]):
            if not used[eid[k]]:
                out.append(walk(v0, k))
    for e in range(len(edges)):  # cycles made only of degree-2 nodes
        if not used[e]:
            v0 = int(edges[e, 0])
            key[v0] = True
            k = start[v0] if eid[start[v0]] == e else start[v0] + 1
            out.append(walk(v0, k))
    return out


def _split_piece(P: np.ndarray, i: int, j: int, tol: float, out: list[int]) -> None:
    """Douglas-Peucker between polyline vertices ``i < j``: append the vertices to keep (not ``i``/``j``)."""
    if j - i < 2:
        return
    a, b = P[i], P[j]
    ab = b - a
    q = P[i + 1 : j] - a
    t = np.clip(q @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    dev = np.linalg.norm(q - t[:, None] * ab, axis=1)
    k = int(dev.argmax())
    if dev[k] > tol:
        m = i + 1 + k
        _split_piece(P, i, m, tol, out)
        out.append(m)
        _split_piece(P, m, j, tol, out)


def resample_chains(
    graph: VesselGraph, spacing: float = DEFAULTS["spacing"], tol: float = DEFAULTS["spacing_tol"]
) -> VesselGraph:
    """Re-place the degree-2 nodes of every chain (see the module docstring).

    Each chain between nodes of degree != 2 is cut into ``ceil(length / spacing)`` pieces of equal
    length along the traced path (a closed loop into at least 3); a piece whose traced path strays more
    than ``tol`` px from its chord is split further at the farthest vertex (Douglas-Peucker), as the
    ground-truth graphs of :mod:`napari_vesselgraph.synth` are built. Chain ends keep their attributes;
    a new node takes the attributes of the path interpolated where it lies (``inserted`` False), a new
    edge the smallest ``confidence`` of the traced edges it replaces. ``spacing <= 0`` disables it.
    """
    g = graph
    if spacing <= 0 or g.n_edges == 0:
        return g
    nodes = np.asarray(g.nodes, float)
    edges = np.asarray(g.edges, np.int64).reshape(-1, 2)
    econf = np.asarray(g.edge_attrs.get("confidence", np.ones(len(edges))), float)
    num = {k: np.asarray(v) for k, v in g.node_attrs.items()}
    new_pos: list[np.ndarray] = []
    new_attr: dict[str, list] = {k: [] for k in num}
    out_edges: list[tuple[int, int]] = []
    out_conf: list[float] = []
    n = g.n_nodes
    single: set[tuple[int, int]] = set()

    for vs, es in _chains(n, edges):
        P = nodes[vs]
        seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        L = float(s[-1])
        closed = vs[0] == vs[-1]
        parts = max(int(np.ceil(L / spacing)), 3 if closed else 1)
        pair = (min(vs[0], vs[-1]), max(vs[0], vs[-1]))
        if parts == 1 and len(vs) > 2:
            if pair in single:  # a second path between the same two nodes: keep a middle node
                parts = 2
            single.add(pair)
        if parts == 1 and len(vs) == 2:  # a single traced edge that is short enough: kept as it is
            out_edges.append((vs[0], vs[1]))
            out_conf.append(float(econf[es[0]]))
            continue
        # cut points at equal arc length; snapped to a vertex when one lies within 0.5 px
        targets = L * np.arange(1, parts) / parts
        cuts: list[tuple[float, int]] = []  # (arc position, vertex index or -1)
        for t in targets:
            v = int(np.argmin(np.abs(s - t)))
            cuts.append((s[v], v) if abs(s[v] - t) <= 0.5 and 0 < v < len(vs) - 1 else (float(t), -1))
        # positions of the cut points; Douglas-Peucker inside each piece on the traced vertices
        stops: list[tuple[float, int]] = [(0.0, 0)] + cuts + [(L, len(vs) - 1)]
        refined: list[tuple[float, int]] = [stops[0]]
        for (sa, va), (sb, vb) in itertools.pairwise(stops):
            lo = int(np.searchsorted(s, sa, side="right"))  # first vertex strictly after a
            hi = int(np.searchsorted(s, sb, side="left")) - 1  # last vertex strictly before b
            if hi >= lo:
                pa = P[va] if va >= 0 else _at(P, s, sa)
                pb = P[vb] if vb >= 0 else _at(P, s, sb)
                Q = np.concatenate([pa[None], P[lo : hi + 1], pb[None]])
                keep: list[int] = []
                _split_piece(Q, 0, len(Q) - 1, float(tol), keep)
                refined.extend((s[lo + q - 1], lo + q - 1) for q in keep)
            refined.append((sb, vb))
        # node ids: chain ends are the original nodes, the rest are new
        ids = []
        for r, (sv, v) in enumerate(refined):
            if r == 0:
                ids.append(vs[0])
            elif r == len(refined) - 1:
                ids.append(vs[-1])
            elif v >= 0 and not (v in (0, len(vs) - 1)):
                ids.append(n + len(new_pos))
                new_pos.append(P[v])
                for k, a in num.items():
                    new_attr[k].append(a[vs[v]] if a.dtype != bool else False)
            else:
                ids.append(n + len(new_pos))
                new_pos.append(_at(P, s, sv))
                j = min(int(np.searchsorted(s, sv, side="right")) - 1, len(vs) - 2)
                f = (sv - s[j]) / max(seg[j], 1e-12)
                for k, a in num.items():
                    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
                        new_attr[k].append(False if a.dtype == bool else a[vs[j]])
                    else:
                        new_attr[k].append((1 - f) * a[vs[j]] + f * a[vs[j + 1]])
        arc = [sv for sv, _ in refined]
        ec = econf[es]
        for r in range(len(ids) - 1):
            if ids[r] == ids[r + 1]:
                continue
            over = (s[1:] > arc[r] + 1e-9) & (s[:-1] < arc[r + 1] - 1e-9)
            out_edges.append((ids[r], ids[r + 1]))
            out_conf.append(float(ec[over].min()) if over.any() else float(ec.min()))
    # original degree-2 nodes are replaced; the others stay
    deg = np.bincount(edges.ravel(), minlength=n)
    keep_old = deg != 2
    # a cycle's start node became a chain end: keep it
    used_ends = np.zeros(n, bool)
    for a, b in out_edges:
        if a < n:
            used_ends[a] = True
        if b < n:
            used_ends[b] = True
    keep_old |= used_ends
    all_pos = np.concatenate([nodes, np.asarray(new_pos, float).reshape(-1, nodes.shape[1])])
    attrs = {}
    for k, a in num.items():
        extra = np.asarray(new_attr[k], dtype=a.dtype) if new_attr[k] else np.zeros(0, a.dtype)
        attrs[k] = np.concatenate([a, extra])
    keep = np.concatenate([keep_old, np.ones(len(new_pos), bool)])
    index = np.cumsum(keep) - 1
    e = index[np.asarray(out_edges, np.int64).reshape(-1, 2)]
    e = np.sort(e, axis=1)
    e, inv = np.unique(e, axis=0, return_inverse=True)
    conf = np.full(len(e), np.inf)
    np.minimum.at(conf, inv.ravel(), np.asarray(out_conf))
    # other edge attributes of the traced edges do not carry over to the re-placed edges
    eattrs = {"confidence": conf} if "confidence" in g.edge_attrs else {}
    return VesselGraph(
        all_pos[keep], e.reshape(-1, 2), {k: v[keep] for k, v in attrs.items()}, eattrs, g.scale, dict(g.metadata)
    )


def _at(P: np.ndarray, s: np.ndarray, t: float) -> np.ndarray:
    """The point at arc length ``t`` of the polyline ``P`` (cumulative lengths ``s``)."""
    j = min(max(int(np.searchsorted(s, t, side="right")) - 1, 0), len(P) - 2)
    f = (t - s[j]) / max(s[j + 1] - s[j], 1e-12)
    return (1 - f) * P[j] + f * P[j + 1]


def settings(params: dict | None = None, meta: dict | None = None) -> dict:
    """:meth:`CleanupSettings.resolve` as a dict: the defaults, then the checkpoint's ``meta["postprocess"]``,
    then ``params`` (``None`` values are ignored; ``{"postprocess": False}`` switches every step off)."""
    return CleanupSettings.resolve(params, meta).to_dict()


def apply_thresholds(
    raw_graph: VesselGraph, node_threshold: float = 0.5, edge_threshold: float = 0.5, drop_isolated: bool = False
) -> VesselGraph:
    """Keep nodes with ``confidence >= node_threshold`` and edges with ``confidence >= edge_threshold``
    between kept nodes.

    Cut nodes (``inserted``; placed by stitching where an edge crosses a patch or region border) have no
    model score of their own: they stay exactly when one of their edges stays. ``drop_isolated`` also
    removes model nodes left without edges. Works on the raw graph from ``predict(..., keep_raw=True)``
    (re-threshold without running the model again) and on any graph with ``confidence`` columns
    (missing columns count as confidence 1).
    """
    g = raw_graph
    n = g.n_nodes
    conf = np.asarray(g.node_attrs.get("confidence", np.ones(n)), float)
    inserted = np.asarray(g.node_attrs.get("inserted", np.zeros(n, bool)), bool)
    econf = np.asarray(g.edge_attrs.get("confidence", np.ones(g.n_edges)), float)
    keep = inserted | (conf >= node_threshold)
    ekeep = (econf >= edge_threshold) & keep[g.edges[:, 0]] & keep[g.edges[:, 1]] if g.n_edges else np.zeros(0, bool)
    degree = np.bincount(g.edges[ekeep].ravel(), minlength=n)
    keep &= ~inserted | (degree > 0)
    edges = g.edges[ekeep]
    eattrs = {k: v[ekeep] for k, v in g.edge_attrs.items()}
    # cut nodes whose other edges were dropped are spliced out, as stitching does
    kept_nodes, edges, conf_e, src = splice_inserted(n, inserted & keep, edges, econf[ekeep])
    eattrs = {k: v[src] for k, v in eattrs.items()}
    if "confidence" in eattrs:
        eattrs["confidence"] = conf_e.astype(eattrs["confidence"].dtype, copy=False)
    survives = np.zeros(n, bool)
    survives[kept_nodes] = True
    keep &= survives
    if drop_isolated:
        degree = np.bincount(edges.ravel(), minlength=n)
        keep &= degree > 0
    index = np.full(n, -1, np.int64)
    index[keep] = np.arange(int(keep.sum()))
    meta = dict(g.metadata)
    meta.update(node_threshold=float(node_threshold), edge_threshold=float(edge_threshold), raw=False)
    return VesselGraph(
        g.nodes[keep],
        index[edges],
        {k: v[keep] for k, v in g.node_attrs.items()},
        eattrs,
        g.scale,
        meta,
    )


def finish_graph(
    raw: VesselGraph,
    node_threshold: float,
    edge_threshold: float,
    cleanup: CleanupSettings | dict | None = None,
    drop_isolated: bool = False,
    **settings,
) -> VesselGraph:
    """Raw candidates -> final graph: thresholds, then the clean-up (:meth:`CleanupSettings.apply`).

    ``cleanup``: a :class:`CleanupSettings` or a dict of settings (``None``: :data:`DEFAULTS`); keyword
    ``settings`` (``link_threshold=...``, any field of :class:`CleanupSettings`) replace single ones.
    ``drop_isolated`` also removes nodes left without edges. The settings are recorded in
    ``metadata["postprocess"]``, the thresholds in ``metadata["node_threshold"]``/``["edge_threshold"]``.
    """
    c = CleanupSettings.coerce(cleanup).replace(**settings)
    g = c.apply(raw, node_threshold, edge_threshold)
    if drop_isolated and g.n_nodes:
        degree = np.bincount(g.edges.ravel(), minlength=g.n_nodes)
        g = g.subgraph(degree > 0)
    meta = dict(g.metadata)
    meta.update(node_threshold=float(node_threshold), edge_threshold=float(edge_threshold), raw=False)
    meta["postprocess"] = c.to_dict()
    g.metadata = meta
    return g


def finish_raw(raw: VesselGraph, node_threshold: float, edge_threshold: float) -> VesselGraph:
    """:func:`finish_graph` with the clean-up settings the prediction recorded in ``raw.metadata``
    (none when it recorded none, e.g. a skeleton graph; a setting an older raw graph does not record is off)."""
    return finish_graph(
        raw, node_threshold, edge_threshold, CleanupSettings.from_record((raw.metadata or {}).get("postprocess"))
    )
