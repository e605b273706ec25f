"""SWC graph files (neuron morphology): ``_read_swc(path)`` and ``_write_swc(graph, path)``,
dispatched by :mod:`napari_vesselgraph.io.graphfiles`.

``.swc`` — SWC (neuron morphology)
SWC keeps only coordinates, edges, the node attributes ``radius`` (pixels; stored as
``radius * scale_x``) and ``swc_type`` (default 0), the scale and the metadata (in ``#`` header
lines); every other attribute is dropped. Positions are physical (``x y z = pos * scale``; a 2D
graph gets ``z = 0``). Sample ids are node index + 1 and parents come before their children
(breadth-first from the lowest-numbered node of each connected component); reading sorts by id, so
the node order comes back. Only trees and forests can be stored: a graph with a cycle is refused, unless
``break_cycles=True`` (``vesselgraph export --break-cycles``): then the graph's shortest-path spanning forest
(:func:`napari_vesselgraph.graph.trees.spanning_forest`) is written, rooted at ``root`` (a node index) or at
each component's node of largest radius, the removed edges are reported in one
:class:`~napari_vesselgraph.errors.GraphFileWarning` and recorded in the metadata (``swc_removed_edges``, node
index pairs; ``swc_roots``). ``root`` alone makes that node the first sample of its tree (parent -1).
"""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import GraphFileError, GraphFileWarning, VesselGraphError
from ...graph.core import (
    VesselGraph,
    _parse_metadata,
    axis_names,
)
from ..atomic import atomic_write
from ._common import (
    _fmt_float,
    _metadata_json,
)


def _forest_order(graph: VesselGraph, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(order, parent): nodes in breadth-first order per component, parent index or -1."""
    n = graph.n_nodes
    edges = graph.edges
    # union-find: the first edge joining two already connected nodes closes a cycle
    root = list(range(n))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra == rb:
            what = "a self loop" if a == b else f"a cycle (edge {a}-{b} closes a loop)"
            raise GraphFileError(path, _cycle_problem(what))
        root[ra] = rb
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges.tolist():
        adj[a].append(b)
        adj[b].append(a)
    parent = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    order: list[int] = []
    for start in range(n):
        if seen[start]:
            continue
        seen[start] = True
        queue = [start]
        head = 0
        while head < len(queue):
            u = queue[head]
            head += 1
            order.append(u)
            for v in adj[u]:
                if not seen[v]:
                    seen[v] = True
                    parent[v] = u
                    queue.append(v)
    return np.array(order, dtype=np.int64), parent


def _cycle_problem(what: str) -> str:
    return (
        f"the graph has {what}; SWC can only store trees and forests. Save it as GraphML (.graphml) or JSON "
        "(.json) instead, or break the cycles (vesselgraph export --break-cycles; write_graph(..., break_cycles=True))"
    )


def _tree_order(graph: VesselGraph, path: str, break_cycles: bool, root):
    """(graph to write, order, parent, report): the spanning forest from ``root``; ``report`` is the warning
    text naming the removed edges (None when none was removed)."""
    from ...graph.trees import format_edges, spanning_forest

    forest = spanning_forest(graph, root=root)
    if forest.n_removed and not break_cycles:
        a, b = forest.removed[0].tolist()
        raise GraphFileError(path, _cycle_problem(f"a cycle (edge {a}-{b} closes a loop)"))
    g = forest.graph
    report = None
    if forest.n_removed:
        k, roots = forest.n_removed, forest.roots
        g.metadata["swc_removed_edges"] = forest.removed.tolist()
        g.metadata["swc_roots"] = list(roots)
        report = (
            f"{path}: SWC stores trees only, so {k} edge{'s' if k > 1 else ''} closing cycles "
            f"{'were' if k > 1 else 'was'} left out (kept: the shortest-path tree from root node"
            f"{'s' if len(roots) > 1 else ''} {_roots_text(roots)}); removed (node indices): "
            f"{format_edges(forest.removed)}; all are listed in the file's metadata 'swc_removed_edges'"
        )
    return g, forest.order, forest.parent, report


def _roots_text(roots: list[int], limit: int = 5) -> str:
    text = ", ".join(str(r) for r in roots[:limit])
    return text + (f", … ({len(roots) - limit} more)" if len(roots) > limit else "")


def _write_swc(graph: VesselGraph, path: str, break_cycles: bool = False, root: int | None = None) -> list[str]:
    """Write ``graph`` as SWC; ``break_cycles``/``root``: see the module docstring."""
    report = None
    if break_cycles or root is not None:
        graph, order, parent, report = _tree_order(graph, path, break_cycles, root)
    else:
        order, parent = _forest_order(graph, path)
    scale = np.asarray(graph.scale, dtype=float)
    phys = graph.nodes * scale  # napari order
    xyz = np.zeros((graph.n_nodes, 3))
    xyz[:, : graph.ndim] = phys[:, ::-1]  # x, y(, z)
    kept = [k for k in ("radius", "swc_type") if k in graph.node_attrs]
    if "radius" in graph.node_attrs:
        try:
            radius = np.asarray(graph.node_attrs["radius"], dtype=float) * scale[-1]
        except (TypeError, ValueError):
            raise VesselGraphError("node attribute 'radius' must be numeric to be saved as SWC") from None
    else:
        radius = np.full(graph.n_nodes, scale[-1])
    if "swc_type" in graph.node_attrs:
        try:
            types = np.asarray(graph.node_attrs["swc_type"], dtype=float)
            types = np.where(np.isfinite(types), types, 0).astype(np.int64)
        except (TypeError, ValueError):
            raise VesselGraphError("node attribute 'swc_type' must be an integer to be saved as SWC") from None
    else:
        types = np.zeros(graph.n_nodes, dtype=np.int64)
    names = axis_names(graph.ndim)
    with atomic_write(path, "w", newline="\n") as f:
        f.write("# SWC written by napari-vesselgraph\n")
        f.write("# SWC keeps only coordinates, edges, radius, type, scale and metadata\n")
        f.write("# positions and radii are physical: x y z = pos * scale (napari order reversed)\n")
        f.write(f"# ndim {graph.ndim}\n")
        for a, s in zip(names, graph.scale):
            f.write(f"# scale_{a} {_fmt_float(s)}\n")
        f.write(f"# nodes {graph.n_nodes}\n")
        f.write("# attributes" + "".join(" " + k for k in kept) + "\n")
        f.write(f"# metadata {_metadata_json(graph)}\n")
        f.write("# id type x y z radius parent\n")
        for i in order.tolist():
            p = int(parent[i])
            f.write(
                f"{i + 1} {int(types[i])} {_fmt_float(xyz[i, 0])} {_fmt_float(xyz[i, 1])} {_fmt_float(xyz[i, 2])} "
                f"{_fmt_float(radius[i])} {p + 1 if p >= 0 else -1}\n"
            )
    if report is not None:  # after the write: a failed write reports its error, not this
        warnings.warn(report, GraphFileWarning, stacklevel=3)
    return [path]


def _read_swc(path: str) -> VesselGraph:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header: dict[str, str] = {}
    rows = []
    ours = False  # our own header lines are trusted; in other files only parseable scale/ndim lines are used
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s[1:].strip()
            if not rows and "napari-vesselgraph" in body:
                ours = True
            key, _, value = body.partition(" ")
            if key in ("ndim", "scale_z", "scale_y", "scale_x", "nodes", "attributes", "metadata"):
                header.setdefault(key, value.strip())
            continue
        parts = s.split()
        if len(parts) < 7:
            raise GraphFileError(
                path, f"line {lineno}: expected 7 values (id type x y z radius parent), found {len(parts)}"
            )
        try:
            rows.append(
                (
                    int(parts[0]),
                    int(float(parts[1])),
                    float(parts[2]),
                    float(parts[3]),
                    float(parts[4]),
                    float(parts[5]),
                    int(float(parts[6])),
                )
            )
        except ValueError:
            raise GraphFileError(path, f"line {lineno}: not an SWC sample line: {s[:60]!r}") from None
    if not ours:
        header = {k: v for k, v in header.items() if k.startswith("scale_") or k == "ndim"}
        for k, v in list(header.items()):
            try:
                ok = float(v) > 0 and (k != "ndim" or v.strip() in ("2", "3"))
            except ValueError:
                ok = False
            if not ok:
                del header[k]
    if not rows and not ours:
        raise GraphFileError(path, "no SWC sample lines found")
    if "nodes" in header:
        try:
            expected = int(header["nodes"])
        except ValueError:
            raise GraphFileError(path, f"bad '# nodes' header: {header['nodes']!r}") from None
        if expected != len(rows):
            raise GraphFileError(path, f"has {len(rows)} samples but its header says {expected} (truncated file?)")
    rows.sort(key=lambda r: r[0])
    n = len(rows)
    arr = np.array([r[2:6] for r in rows], dtype=float).reshape(n, 4)
    ids = [r[0] for r in rows]
    index = {sid: i for i, sid in enumerate(ids)}
    if len(index) != n:
        raise GraphFileError(path, "a sample id appears twice")
    if "ndim" in header:
        try:
            ndim = int(header["ndim"])
        except ValueError:
            raise GraphFileError(path, f"bad '# ndim' header: {header['ndim']!r}") from None
    else:
        ndim = 2 if n and np.all(arr[:, 2] == 0) else 3
    names = axis_names(ndim)
    scale = np.ones(ndim)
    for j, a in enumerate(names):
        if f"scale_{a}" in header:
            try:
                scale[j] = float(header[f"scale_{a}"])
            except ValueError:
                raise GraphFileError(path, f"bad '# scale_{a}' header: {header[f'scale_{a}']!r}") from None
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise GraphFileError(path, f"the scale in the header must be positive, got {tuple(scale)}")
    pos = arr[:, :ndim][:, ::-1] / scale
    edges = []
    for r in rows:
        if r[6] < 0:
            continue
        if r[6] not in index:
            raise GraphFileError(path, f"sample {r[0]} has parent {r[6]}, which is not in the file")
        edges.append((index[r[6]], index[r[0]]))
    attrs = header["attributes"].split() if "attributes" in header else ["radius", "swc_type"]
    node_attrs: dict[str, np.ndarray] = {}
    if "radius" in attrs:
        node_attrs["radius"] = arr[:, 3] / scale[-1]
    if "swc_type" in attrs:
        node_attrs["swc_type"] = np.array([r[1] for r in rows], dtype=np.int64)
    meta = _parse_metadata(header.get("metadata"))
    return VesselGraph(pos, np.array(edges, dtype=np.int64).reshape(-1, 2), node_attrs, {}, tuple(scale), meta)
