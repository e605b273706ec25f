"""Convert a :class:`~napari_vesselgraph.graph.VesselGraph` to napari layers and back.

A graph is shown as

* a **Points** layer of the nodes (role ``"nodes"``): its ``features`` table holds every node
  attribute, the node ``degree`` and a persistent ``node_id``;
* a **Vectors** layer of all edges (role ``"edges"``): data ``(E, 2, D)`` = ``[start, direction]``,
  ``features`` = edge attributes + ``source_id``/``target_id`` (node ids) + ``length``. Vectors draw
  fast even for 10⁵ edges, but cannot be edited by hand;
* optionally (``editable=True``) a **Shapes** layer of ``line`` shapes (role ``"edit_edges"``) that the
  user can edit: delete lines, drag their ends, draw new lines (or paths) between nodes.

Every layer carries ``metadata["vesselgraph"]`` = ``{"role", "graph_id", "scale", "metadata", "ndim",
...}`` so the layers of one graph can be found together (:func:`find_graph_layers`) and the graph's own
metadata survives the trip through napari.

Edits come back through :func:`layers_to_graph` (napari layers) or :func:`layer_data_to_graph` /
:func:`layer_tuples_to_graph` (plain data, e.g. in a writer). The rules:

Nodes
    Edges refer to nodes by ``node_id``, never by position, so a node moved in the Points layer keeps
    its edges and a deleted node takes its edges with it. A point whose ``node_id`` is missing, negative
    or repeats the id of an earlier row (napari copies the features of the selected point into a newly
    added or pasted one) is a new node. Nodes of the returned graph are the rows of the Points layer,
    in order; their attributes are the features table minus the derived columns (``node_id``,
    ``degree``).
Vectors edges
    ``source_id``/``target_id`` decide; an edge whose node was deleted is dropped. A row without ids
    (``-1``) is connected by geometry: each end goes to the nearest node.
Shapes edges (``line`` and ``path`` shapes; other shape types are ignored with a warning)
    For each end of a line:

    1. an end still where it was created (the layer remembers the original end points) keeps its stored
       node id, wherever that node has been moved to; if that node was deleted the line is dropped;
    2. an end the user moved (or of a line with no record) keeps its stored node if that node still
       exists and lies within ``snap_distance`` (data pixels of the Points layer) of the end;
    3. otherwise the end snaps to the nearest node, at any distance. Newly drawn lines (ids ``-1``)
       always snap this way: add the points first, then draw the lines between them.

    The inner vertices of a ``path`` become new nodes joined in a chain. Lines whose two ends land on
    the same node are dropped, and so are repeated edges (the first one is kept).
Scale and metadata
    The graph's ``scale`` is the Points layer's scale; its metadata comes back from the layer metadata.

Everything here except the helpers that take napari layers or a viewer works on plain data and layer
data tuples; napari itself is imported only inside those helpers.
"""

from __future__ import annotations

import json
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph, _json_default

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

META_KEY = "vesselgraph"
ROLE_NODES = "nodes"
ROLE_EDGES = "edges"
ROLE_EDIT = "edit_edges"
NODE_ID = "node_id"
SOURCE_ID = "source_id"
TARGET_ID = "target_id"
EDGE_ID = "edge_id"
DEGREE = "degree"
LENGTH = "length"
#: distance (data pixels of the Points layer) within which a moved line end keeps its stored node
DEFAULT_SNAP_DISTANCE = 3.0

NODE_COLOR = "yellow"
EDGE_COLOR = "cyan"
EDIT_COLOR = "magenta"
COLORMAP = "viridis"

LayerDataTuple = tuple  # (data, kwargs, layer_type), as napari readers return them


# ---------------------------------------------------------------- graph -> layers
def graph_to_layer_data(
    graph: VesselGraph,
    name: str = "graph",
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    editable: bool = False,
    color_by: str | None = "confidence",
    node_size: float | None = None,
    edge_width: float | None = None,
) -> list[LayerDataTuple]:
    """Layer data tuples ``(data, kwargs, layer_type)`` showing ``graph``.

    Returns ``[vectors, points]`` or, with ``editable=True``, ``[vectors, shapes, points]`` (nodes last so
    they are drawn on top and are the active layer). The Vectors layer is hidden when the Shapes layer
    is there, since both draw the same edges.

    Parameters
    ----------
    graph : the graph (node positions in pixels, napari axis order).
    name : layer names are ``"{name} nodes"``, ``"{name} edges"`` and ``"{name} edit edges"``.
    scale, translate : layer transform; default ``graph.scale`` and zeros. To overlay an image layer use
        ``scale=image_layer.scale[-D:], translate=image_layer.translate[-D:]`` (D = ``graph.ndim``);
        longer sequences are cut to their last D values, so the image's own values also work.
    editable : add the Shapes layer of lines for editing edges.
    color_by : colour nodes and edges by this attribute when they have it (numeric: ``viridis``
        over its range; anything else: one colour per value).
    node_size : point diameter in pixels; default ``2 * radius`` when nodes have a ``radius``
        attribute, else a size from the median edge length.
    edge_width : line width of edges in pixels; default the median ``radius`` when nodes have one,
        else 40 % of the default point size (1 to 4 pixels).
    """
    import pandas as pd

    if not isinstance(graph, VesselGraph):
        raise VesselGraphError(f"expected a VesselGraph, got {type(graph).__name__}")
    d = graph.ndim
    scale = _spatial(scale, graph.scale, d, "scale")
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise VesselGraphError(f"scale must be positive and finite, got {tuple(scale)}")
    translate = _spatial(translate, np.zeros(d), d, "translate")
    base = {
        "graph_id": uuid.uuid4().hex,
        "scale": [float(s) for s in scale],
        "translate": [float(t) for t in translate],
        "metadata": json.loads(json.dumps(graph.metadata, default=_json_default)),
        "ndim": d,
        "name": name,
    }
    common = {"scale": tuple(scale), "translate": tuple(translate)}
    nodes = graph.nodes
    src, tgt = graph.edges[:, 0], graph.edges[:, 1]

    # ---- nodes
    id_col = _free_name(NODE_ID, graph.node_attrs)
    degree_col = _free_name(DEGREE, set(graph.node_attrs) | {id_col})
    node_cols: dict[str, np.ndarray] = {id_col: np.arange(graph.n_nodes, dtype=np.int64)}
    node_cols.update(graph.node_attrs)
    node_cols[degree_col] = graph.degree()
    node_features = pd.DataFrame(node_cols, index=pd.RangeIndex(graph.n_nodes))
    node_defaults = {k: _missing_value(v) for k, v in graph.node_attrs.items()}
    node_defaults.update({id_col: -1, degree_col: 0})
    points_kwargs: dict[str, Any] = {
        "name": f"{name} nodes",
        "features": node_features,
        "feature_defaults": node_defaults,
        "size": _node_sizes(graph, node_size),
        "face_color": NODE_COLOR,
        "border_width": 0,
        "ndim": d,
        "metadata": {
            META_KEY: {
                **base,
                "role": ROLE_NODES,
                "id_column": id_col,
                "derived": [id_col, degree_col],
            }
        },
        **common,
    }
    points_kwargs.update(_color_kwargs(graph.node_attrs.get(color_by) if color_by else None, color_by, "face_"))
    points = (nodes.copy(), points_kwargs, "points")

    if edge_width is None:
        edge_width = _edge_width(graph)

    # ---- edges (Vectors)
    src_col = _free_name(SOURCE_ID, graph.edge_attrs)
    tgt_col = _free_name(TARGET_ID, set(graph.edge_attrs) | {src_col})
    len_col = _free_name(LENGTH, set(graph.edge_attrs) | {src_col, tgt_col})
    start = nodes[src]
    vec_data = np.stack([start, nodes[tgt] - start], axis=1).reshape(graph.n_edges, 2, d)
    lengths = np.linalg.norm((nodes[tgt] - start) * scale, axis=1) if graph.n_edges else np.zeros(0)
    edge_cols: dict[str, np.ndarray] = {src_col: src.astype(np.int64), tgt_col: tgt.astype(np.int64)}
    edge_cols.update(graph.edge_attrs)
    edge_cols[len_col] = lengths
    edge_defaults = {k: _missing_value(v) for k, v in graph.edge_attrs.items()}
    edge_defaults.update({src_col: -1, tgt_col: -1, len_col: np.nan})
    edge_color = _color_kwargs(graph.edge_attrs.get(color_by) if color_by else None, color_by, "edge_")
    edges_meta = {
        **base,
        "source_column": src_col,
        "target_column": tgt_col,
        "derived": [src_col, tgt_col, len_col],
    }
    vectors_kwargs: dict[str, Any] = {
        "name": f"{name} edges",
        "features": pd.DataFrame(edge_cols, index=pd.RangeIndex(graph.n_edges)),
        "feature_defaults": edge_defaults,
        "edge_width": edge_width,
        "edge_color": EDGE_COLOR,
        "vector_style": "line",
        "length": 1.0,
        "ndim": d,
        "visible": not editable,
        "metadata": {META_KEY: {**edges_meta, "role": ROLE_EDGES}},
        **common,
    }
    vectors_kwargs.update(edge_color)
    out: list[LayerDataTuple] = [(vec_data, vectors_kwargs, "vectors")]

    # ---- editable edges (Shapes)
    if editable:
        eid_col = _free_name(EDGE_ID, set(graph.edge_attrs) | {src_col, tgt_col, len_col})
        shape_cols = dict(edge_cols)
        shape_cols[eid_col] = np.arange(graph.n_edges, dtype=np.int64)
        ends = np.stack([start, nodes[tgt]], axis=1).reshape(graph.n_edges, 2, d)
        shapes_kwargs: dict[str, Any] = {
            "name": f"{name} edit edges",
            "shape_type": "line",
            "features": pd.DataFrame(shape_cols, index=pd.RangeIndex(graph.n_edges)),
            "feature_defaults": {**edge_defaults, eid_col: -1},
            "edge_width": edge_width,
            "edge_color": EDIT_COLOR,
            "ndim": d,
            "metadata": {
                META_KEY: {
                    **edges_meta,
                    "role": ROLE_EDIT,
                    "edge_id_column": eid_col,
                    "derived": [src_col, tgt_col, len_col, eid_col],
                    # where each line's ends were when the layer was made: an end still there was not
                    # touched by the user and keeps its node whatever happened to the node's position
                    "line_ends": ends.copy(),
                }
            },
            **common,
        }
        shapes_kwargs.update(edge_color)
        out.append((list(ends), shapes_kwargs, "shapes"))
    out.append(points)
    return out


# ---------------------------------------------------------------- layers -> graph
def layer_data_to_graph(
    points_data,
    points_features=None,
    edges=None,
    edge_features=None,
    *,
    edge_type: str = "vectors",
    shape_types: Sequence[str] | str | None = None,
    scale: Sequence[float] | None = None,
    metadata: Mapping | None = None,
    points_metadata: Mapping | None = None,
    edges_metadata: Mapping | None = None,
    edges_to_points: tuple[Sequence[float], Sequence[float]] | None = None,
    snap_distance: float = DEFAULT_SNAP_DISTANCE,
) -> VesselGraph:
    """Build a graph from the data of a Points layer and a Vectors or Shapes layer.

    Parameters
    ----------
    points_data : (N, D) node positions (data coordinates of the Points layer).
    points_features : the Points layer's ``features`` (DataFrame or dict of columns), or None.
    edges : Vectors data ``(E, 2, D)`` (``edge_type="vectors"``) or a list of Shapes vertex arrays
        (``edge_type="shapes"``), or None for a graph without edges.
    edge_features : the edges layer's ``features``.
    shape_types : the Shapes layer's ``shape_type`` (one per shape, or one for all; default ``"line"``).
    scale : the graph's scale (default: from ``points_metadata``, else ones).
    metadata : the graph's metadata (default: from ``points_metadata``).
    points_metadata, edges_metadata : the layers' ``metadata`` (or their ``"vesselgraph"`` entry); they
        name the id/derived columns and hold the original line ends of an edit layer.
    edges_to_points : ``(mult, offset)`` mapping edges-layer data coordinates to Points-layer data
        coordinates (``p = e * mult + offset``), when the two layers have different transforms.
    snap_distance : see the module docstring (rule 2 for Shapes).

    See the module docstring for the rules applied to edited layers.
    """
    import pandas as pd

    nodes = np.asarray(points_data, dtype=float)
    if nodes.ndim != 2 or nodes.shape[1] not in (2, 3):
        raise VesselGraphError(f"node positions must be an N x 2 or N x 3 array, got shape {nodes.shape}")
    n, d = nodes.shape
    pm = _vg_meta(points_metadata)
    em = _vg_meta(edges_metadata)
    if pm.get("graph_id") and em.get("graph_id") and pm["graph_id"] != em["graph_id"]:
        raise VesselGraphError(
            "the nodes and edges layers belong to different graphs "
            f"({pm.get('name', '?')!r} and {em.get('name', '?')!r})"
        )

    feats = _frame(points_features, n, "nodes")
    id_col = pm.get("id_column", NODE_ID)
    node_derived = set(pm.get("derived", [id_col])) | {id_col}
    ids = _id_column(feats, id_col, n)
    # the first row with an id owns it; later rows repeating it (copied by napari) are new nodes
    owner = ids >= 0
    if n:
        owner &= ~pd.Series(ids).duplicated(keep="first").to_numpy()
    lookup = _IdLookup(ids, owner)

    node_attrs = {
        str(c): _column_to_array(feats[c]) for c in feats.columns if str(c) not in node_derived
    }
    if scale is None:
        scale = pm.get("scale")
    scale = None if scale is None else _spatial(scale, None, d, "scale")
    if metadata is None:
        metadata = pm.get("metadata", {})
    metadata = json.loads(json.dumps(dict(metadata or {}), default=_json_default))

    extra_nodes: list[np.ndarray] = []  # inner vertices of Shapes paths
    n_rows = 0 if edges is None else len(edges)
    edge_derived: set[str] = set()
    if n_rows == 0:
        pairs = np.zeros((0, 2), dtype=np.int64)
        rows = np.zeros(0, dtype=np.int64)
    else:
        if edge_type not in ("vectors", "shapes"):
            raise VesselGraphError(f"edge_type must be 'vectors' or 'shapes', got {edge_type!r}")
        n_rows = len(edges)
        efeats = _frame(edge_features, n_rows, "edges")
        src_col = em.get("source_column", SOURCE_ID)
        tgt_col = em.get("target_column", TARGET_ID)
        stored_a = _id_column(efeats, src_col, n_rows)
        stored_b = _id_column(efeats, tgt_col, n_rows)
        mult, offset = (np.ones(d), np.zeros(d)) if edges_to_points is None else edges_to_points
        mult = _spatial(mult, None, d, "edges_to_points scale")
        offset = _spatial(offset, None, d, "edges_to_points offset")
        if edge_type == "vectors":
            vec = np.asarray(edges, dtype=float)
            if vec.ndim != 3 or vec.shape[1:] != (2, d):
                raise VesselGraphError(f"Vectors data must be E x 2 x {d}, got shape {vec.shape}")
            end_a = vec[:, 0] * mult + offset
            end_b = (vec[:, 0] + vec[:, 1]) * mult + offset
            res_a = _resolve_by_id(end_a, stored_a, nodes, lookup)
            res_b = _resolve_by_id(end_b, stored_b, nodes, lookup)
            pairs = np.stack([res_a, res_b], axis=1)
            rows = np.arange(n_rows, dtype=np.int64)
        else:
            pairs, rows, extra_nodes = _shape_edges(
                edges, shape_types, stored_a, stored_b, efeats, em, nodes, lookup, d, mult, offset, snap_distance
            )
        edge_derived = set(em.get("derived", [src_col, tgt_col])) | {src_col, tgt_col}

    # drop edges with a missing end, self loops and repeats (keeping the first)
    keep = np.all(pairs >= 0, axis=1) & (pairs[:, 0] != pairs[:, 1])
    if keep.any():
        srt = np.sort(pairs[keep], axis=1)
        _, first = np.unique(srt, axis=0, return_index=True)
        idx = np.flatnonzero(keep)[np.sort(first)]
    else:
        idx = np.zeros(0, dtype=np.int64)
    pairs, rows = pairs[idx], rows[idx]

    edge_attrs: dict[str, np.ndarray] = {}
    if n_rows:
        for c in efeats.columns:
            if str(c) not in edge_derived:
                edge_attrs[str(c)] = _column_to_array(efeats[c])[rows]

    if extra_nodes:
        extra = np.asarray(extra_nodes, dtype=float).reshape(-1, d)
        nodes = np.concatenate([nodes, extra])
        node_attrs = {k: _pad(v, len(extra)) for k, v in node_attrs.items()}
    return VesselGraph(nodes, pairs, node_attrs, edge_attrs, scale, metadata)


def layer_tuples_to_graph(layer_data: Iterable[Sequence], snap_distance: float = DEFAULT_SNAP_DISTANCE) -> VesselGraph:
    """A graph from layer data tuples ``(data, attributes, layer_type)``: one ``points`` tuple and at most
    one ``vectors`` and/or ``shapes`` tuple (an edit Shapes layer wins over Vectors when both are given),
    as napari hands them to writers (``layer.as_layer_data_tuple()``) or as
    :func:`graph_to_layer_data` returns them."""
    points, vectors, shapes = [], [], []
    for item in layer_data:
        data, attrs, ltype = item[0], (item[1] if len(item) > 1 else {}) or {}, (item[2] if len(item) > 2 else "")
        ltype = str(ltype).lower()
        {"points": points, "vectors": vectors, "shapes": shapes}.get(ltype, []).append((data, attrs))
        if ltype not in ("points", "vectors", "shapes"):
            raise VesselGraphError(f"a graph is made of a points layer and a vectors or shapes layer, not {ltype!r}")
    if len(points) != 1:
        raise VesselGraphError(f"a graph needs exactly one points layer for its nodes, got {len(points)}")
    if len(vectors) > 1 or len(shapes) > 1:
        raise VesselGraphError("a graph takes one vectors or shapes layer for its edges")
    p_data, p_attrs = points[0]
    edge_type, e_data, e_attrs = None, None, {}
    if shapes:
        edge_type, (e_data, e_attrs) = "shapes", shapes[0]
    elif vectors:
        edge_type, (e_data, e_attrs) = "vectors", vectors[0]
    ps, pt = _transform(p_attrs, np.shape(p_data)[1] if np.ndim(p_data) == 2 else None)
    kwargs = {}
    if edge_type is not None:
        es, et = _transform(e_attrs, ps.size)
        kwargs = dict(
            edges=e_data,
            edge_features=e_attrs.get("features"),
            edge_type=edge_type,
            shape_types=e_attrs.get("shape_type"),
            edges_metadata=e_attrs.get("metadata"),
            edges_to_points=(es / ps, (et - pt) / ps),
        )
    return layer_data_to_graph(
        p_data,
        p_attrs.get("features"),
        scale=ps,
        points_metadata=p_attrs.get("metadata"),
        snap_distance=snap_distance,
        **kwargs,
    )


# ---------------------------------------------------------------- napari layer helpers
def layers_to_graph(points_layer, edges_layer=None, snap_distance: float = DEFAULT_SNAP_DISTANCE) -> VesselGraph:
    """The graph shown by a Points layer (nodes) and a Vectors or Shapes layer (edges) after any edits.

    The edges layer is mapped into the Points layer's data coordinates through both layers' scale and
    translate (rotation, shear and affine are not taken into account). See the module docstring for
    how edits are read.
    """
    tuples = [_layer_tuple(points_layer)]
    if edges_layer is not None:
        tuples.append(_layer_tuple(edges_layer))
    if tuples[0][2] != "points":
        raise VesselGraphError(f"nodes must come from a Points layer, not a {tuples[0][2]} layer")
    return layer_tuples_to_graph(tuples, snap_distance=snap_distance)


def find_graph_layers(layers, graph_id: str | None = None) -> dict[str, Any]:
    """``{role: layer}`` for the layers of one graph among ``layers`` (e.g. ``viewer.layers``).

    With ``graph_id=None`` the graph of the first graph layer found (in list order) is used.
    Roles: ``"nodes"``, ``"edges"``, ``"edit_edges"``.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        meta = _vg_meta(getattr(layer, "metadata", None))
        if not meta.get("graph_id") or "role" not in meta:
            continue
        if graph_id is None:
            graph_id = meta["graph_id"]
        if meta["graph_id"] == graph_id and meta["role"] not in out:
            out[meta["role"]] = layer
    return out


def add_graph_to_viewer(viewer, graph: VesselGraph, image_layer=None, name: str = "graph", **kwargs) -> list:
    """Add the layers of ``graph`` to ``viewer``, aligned with ``image_layer`` (its scale/translate) when
    given; further keyword arguments go to :func:`graph_to_layer_data`. Returns the new layers."""
    from napari.layers import Layer

    if image_layer is not None:
        kwargs.setdefault("scale", tuple(image_layer.scale)[-graph.ndim :])
        kwargs.setdefault("translate", tuple(image_layer.translate)[-graph.ndim :])
    added = []
    for data, meta, ltype in graph_to_layer_data(graph, name=name, **kwargs):
        layer = Layer.create(data, meta, ltype)
        viewer.add_layer(layer)
        added.append(layer)
    for layer in added:
        if _vg_meta(layer.metadata).get("role") == ROLE_NODES:
            link_graph_layers(layer)
    return added


def link_graph_layers(points_layer) -> None:
    """Make points the user adds to a graph's Points layer new nodes right away (``node_id = -1``),
    instead of copies of the selected node's id. :func:`layer_data_to_graph` already treats repeated
    ids as new nodes; this also covers a point added after the node whose id it copied was deleted."""
    id_col = _vg_meta(points_layer.metadata).get("id_column", NODE_ID)

    def _on_data(event) -> None:
        action = str(getattr(event, "action", ""))
        if not action.lower().endswith("added"):
            return
        n = len(points_layer.data)
        idx = sorted({int(i) % n for i in (getattr(event, "data_indices", ()) or ()) if n})
        feats = points_layer.features
        if idx and id_col in feats.columns:
            feats.loc[feats.index[idx], id_col] = -1

    points_layer.events.data.connect(_on_data)


# ---------------------------------------------------------------- internals
def _vg_meta(metadata) -> dict:
    if not metadata:
        return {}
    metadata = dict(metadata)
    inner = metadata.get(META_KEY)
    if isinstance(inner, Mapping):
        return dict(inner)
    if "role" in metadata or "graph_id" in metadata:
        return metadata
    return {}


def _layer_tuple(layer) -> tuple:
    ltype = type(layer).__name__.lower()
    attrs = {
        "features": layer.features,
        "metadata": layer.metadata,
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
    }
    if ltype == "shapes":
        attrs["shape_type"] = list(layer.shape_type)
    elif ltype not in ("points", "vectors"):
        raise VesselGraphError(f"edges must come from a Vectors or Shapes layer, not a {type(layer).__name__} layer")
    return (layer.data, attrs, ltype)


def _transform(attrs: Mapping, d: int | None) -> tuple[np.ndarray, np.ndarray]:
    scale = attrs.get("scale")
    translate = attrs.get("translate")
    if d is None:
        d = len(scale) if scale is not None else 2
    s = _spatial(scale, np.ones(d), d, "scale")
    t = _spatial(translate, np.zeros(d), d, "translate")
    return s, t


def _spatial(values, default, d: int, what: str) -> np.ndarray:
    if values is None:
        values = default
    v = np.ravel(np.asarray(values, dtype=float))
    if v.size > d:
        v = v[-d:]
    if v.size != d:
        raise VesselGraphError(f"{what} needs {d} values (one per spatial axis), got {v.size}")
    return v


def _free_name(base: str, taken) -> str:
    taken = set(taken)
    name = base
    while name in taken:
        name += "_"
    return name


def _missing_value(arr: np.ndarray):
    kind = np.asarray(arr).dtype.kind
    if kind == "f":
        return np.nan
    if kind in "iu":
        return 0
    if kind == "b":
        return False
    return ""


def _node_sizes(graph: VesselGraph, node_size: float | None):
    if node_size is not None:
        return float(node_size)
    if graph.n_edges:
        med = float(np.median(graph.edge_lengths(physical=False)))
        default = float(np.clip(0.5 * med, 2.0, 8.0))
    else:
        default = 4.0
    radius = graph.node_attrs.get("radius")
    if radius is None or radius.dtype.kind not in "fiu" or not graph.n_nodes:
        return default
    size = 2.0 * radius.astype(float)
    size[~np.isfinite(size)] = default
    return np.maximum(size, 1.0)


def _edge_width(graph: VesselGraph) -> float:
    radius = graph.node_attrs.get("radius")
    if radius is not None and radius.dtype.kind in "fiu" and graph.n_nodes:
        r = radius.astype(float)
        r = r[np.isfinite(r) & (r > 0)]
        if r.size:
            return float(np.clip(np.median(r), 1.0, 20.0))
    default = _node_sizes(VesselGraph(graph.nodes, graph.edges), None)
    return float(np.clip(0.4 * default, 1.0, 4.0))


def _color_kwargs(values: np.ndarray | None, column: str | None, prefix: str) -> dict:
    if values is None or column is None or len(values) == 0:
        return {}
    if values.dtype.kind in "fiu":
        finite = values[np.isfinite(values.astype(float))]
        if finite.size == 0:
            return {}
        lo, hi = float(finite.min()), float(finite.max())
        if hi <= lo:
            hi = lo + 1.0
        return {f"{prefix}color": column, f"{prefix}colormap": _colormap(), f"{prefix}contrast_limits": (lo, hi)}
    return {f"{prefix}color": column}


def _colormap():
    """viridis, with missing values (NaN, e.g. in points the user added) grey instead of invisible."""
    from napari.utils.colormaps import Colormap, ensure_colormap

    base = ensure_colormap(COLORMAP)
    return Colormap(
        colors=base.colors, controls=base.controls, name=f"{COLORMAP}_nan_grey", display_name=COLORMAP,
        nan_color="gray", interpolation=base.interpolation,
    )


def _frame(features, n: int, what: str) -> pd.DataFrame:
    import pandas as pd

    if features is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if isinstance(features, pd.DataFrame):
        df = features.reset_index(drop=True)
    else:
        df = pd.DataFrame({k: np.asarray(v) for k, v in dict(features).items()})
        if not len(df.columns):
            df = pd.DataFrame(index=pd.RangeIndex(n))
    if len(df) != n:
        raise VesselGraphError(f"the {what} features table has {len(df)} rows for {n} {what}")
    return df


def _id_column(df: pd.DataFrame, column: str, n: int) -> np.ndarray:
    import pandas as pd

    if column not in df.columns:
        return np.full(n, -1, dtype=np.int64)
    vals = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    vals = np.where(np.isfinite(vals) & (vals >= 0) & (np.mod(vals, 1) == 0), vals, -1)
    return vals.astype(np.int64)


def _column_to_array(col: pd.Series) -> np.ndarray:
    import pandas as pd

    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if col.isna().any():
            return np.array(["" if pd.isna(v) else str(bool(v)) for v in col], dtype=object)
        return col.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        if col.isna().any():
            return col.to_numpy(dtype=float, na_value=np.nan)
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return col.to_numpy(dtype=float, na_value=np.nan)
    return np.array(["" if _isna(v) else str(v) for v in col], dtype=object)


def _isna(v) -> bool:
    try:
        return bool(v is None or (isinstance(v, float) and np.isnan(v)))
    except TypeError:  # pragma: no cover
        return False


def _pad(arr: np.ndarray, k: int) -> np.ndarray:
    fill = _missing_value(arr)
    return np.concatenate([arr, np.full(k, fill, dtype=arr.dtype if arr.dtype.kind != "U" else object)])


class _IdLookup:
    """Row of the node owning each id (-1 when no node has it)."""

    def __init__(self, ids: np.ndarray, owner: np.ndarray):
        rows = np.flatnonzero(owner)
        order = np.argsort(ids[rows], kind="stable")
        self.ids = ids[rows][order]
        self.rows = rows[order]

    def __call__(self, query: np.ndarray) -> np.ndarray:
        query = np.asarray(query, dtype=np.int64)
        out = np.full(query.shape, -1, dtype=np.int64)
        if not self.ids.size:
            return out
        pos = np.searchsorted(self.ids, query)
        pos_c = np.minimum(pos, self.ids.size - 1)
        hit = (pos < self.ids.size) & (self.ids[pos_c] == query) & (query >= 0)
        out[hit] = self.rows[pos_c[hit]]
        return out


def _nearest(points: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, row) of the nearest node to each point."""
    if len(points) == 0 or len(nodes) == 0:
        return np.full(len(points), np.inf), np.full(len(points), -1, dtype=np.int64)
    from scipy.spatial import cKDTree

    dist, row = cKDTree(nodes).query(points)
    return np.asarray(dist, dtype=float), np.asarray(row, dtype=np.int64)


def _resolve_by_id(ends: np.ndarray, stored: np.ndarray, nodes: np.ndarray, lookup: _IdLookup) -> np.ndarray:
    """Vectors: a stored id decides (-1 if its node was deleted); ends without an id go to the nearest node."""
    rows = lookup(stored)
    free = stored < 0
    if free.any():
        _, nn = _nearest(ends[free], nodes)
        rows[free] = nn
    return rows


def _resolve_line_ends(
    ends: np.ndarray,
    stored: np.ndarray,
    untouched: np.ndarray,
    nodes: np.ndarray,
    lookup: _IdLookup,
    snap_distance: float,
) -> np.ndarray:
    """Shapes: the three rules of the module docstring, vectorised."""
    srow = lookup(stored)
    nn_d, nn_row = _nearest(ends, nodes)
    out = nn_row.copy()  # rule 3 (nearest node)
    if len(nodes):
        d_stored = np.full(len(ends), np.inf)
        ok = srow >= 0
        d_stored[ok] = np.linalg.norm(ends[ok] - nodes[srow[ok]], axis=1)
        near = ok & (d_stored <= snap_distance)
        out[near] = srow[near]  # rule 2
    keep_id = untouched & (stored >= 0)
    out[keep_id] = srow[keep_id]  # rule 1 (-1 when the node was deleted)
    return out


def _shape_edges(edges, shape_types, stored_a, stored_b, efeats, em, nodes, lookup, d, mult, offset, snap):
    n_rows = len(edges)
    if shape_types is None:
        types = ["line"] * n_rows
    elif isinstance(shape_types, str):
        types = [shape_types] * n_rows
    else:
        types = [str(t) for t in shape_types]
        if len(types) != n_rows:
            raise VesselGraphError(f"{len(types)} shape types for {n_rows} shapes")
    skipped: dict[str, int] = {}
    first, last, used_rows, inner = [], [], [], []
    for i, (verts, t) in enumerate(zip(edges, types)):
        v = np.asarray(verts, dtype=float)
        if t not in ("line", "path") or v.ndim != 2 or len(v) < 2:
            skipped[t] = skipped.get(t, 0) + 1
            continue
        if v.shape[1] != d:
            raise VesselGraphError(f"shape {i} has {v.shape[1]} coordinates, the nodes have {d}")
        first.append(v[0])
        last.append(v[-1])
        used_rows.append(i)
        inner.append(v[1:-1])
    if skipped:
        what = ", ".join(f"{k} {t}" for t, k in skipped.items())
        warnings.warn(f"ignored shapes that are not lines or paths: {what}", stacklevel=3)
    if not used_rows:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64), []
    rows = np.asarray(used_rows, dtype=np.int64)
    a_raw, b_raw = np.asarray(first), np.asarray(last)
    end_a, end_b = a_raw * mult + offset, b_raw * mult + offset

    # which ends are still where the layer put them (compared in the edges layer's own coordinates)
    untouched_a = np.zeros(len(rows), bool)
    untouched_b = np.zeros(len(rows), bool)
    original = em.get("line_ends")
    eid_col = em.get("edge_id_column", EDGE_ID)
    if original is not None and eid_col in efeats.columns:
        original = np.asarray(original, dtype=float)
        eids = _id_column(efeats, eid_col, n_rows)[rows]
        import pandas as pd

        # an edge id repeated by a later row (napari copied it into a new line) is that row's by accident
        valid = (eids >= 0) & (eids < len(original)) & ~pd.Series(eids).duplicated(keep="first").to_numpy()
        if original.ndim == 3 and original.shape[1:] == (2, d) and valid.any():
            o = original[eids[valid]]
            tol = 1e-3
            untouched_a[valid] = np.all(np.abs(a_raw[valid] - o[:, 0]) <= tol, axis=1)
            untouched_b[valid] = np.all(np.abs(b_raw[valid] - o[:, 1]) <= tol, axis=1)

    ra = _resolve_line_ends(end_a, stored_a[rows], untouched_a, nodes, lookup, snap)
    rb = _resolve_line_ends(end_b, stored_b[rows], untouched_b, nodes, lookup, snap)

    pairs, pair_rows, extra = [], [], []
    n = len(nodes)
    simple = np.array([len(x) == 0 for x in inner])
    if simple.all():
        return np.stack([ra, rb], axis=1), rows, []
    for k in range(len(rows)):
        if simple[k]:
            pairs.append((ra[k], rb[k]))
            pair_rows.append(rows[k])
            continue
        if ra[k] < 0 or rb[k] < 0:
            continue
        chain = [ra[k]]
        for p in inner[k]:
            extra.append(p * mult + offset)
            chain.append(n + len(extra) - 1)
        chain.append(rb[k])
        for u, w in zip(chain[:-1], chain[1:]):
            pairs.append((u, w))
            pair_rows.append(rows[k])
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2), np.asarray(pair_rows, dtype=np.int64), extra
