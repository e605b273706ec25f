"""npe2 reader: graph files (GraphML, JSON, CSV pair, SWC, VTK) as a Points + Vectors layer pair.

``get_reader`` only peeks at the start of a file, so napari can hand files that are not graphs (any
``.json``, any ``.csv``) on to other readers quickly.
"""

from __future__ import annotations

import os
import re
from typing import Callable

SUFFIXES = (".graphml", ".geojson", ".json", ".csv", ".swc", ".vtk")  # .geojson before .json: it ends in .json
_PEEK = 65536
_NODE_LIST = re.compile(r'"nodes"\s*:\s*\[')
_CSV_SIDECAR = re.compile(r'"format"\s*:\s*"napari-vesselgraph csv"')
_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def get_reader(path) -> Callable | None:
    """Return :func:`read_graph_layers` when every path looks like a graph file, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path or [])
    if not paths:
        return None
    for p in paths:
        if not isinstance(p, (str, os.PathLike)) or not looks_like_graph(os.fspath(p)):
            return None
    return read_graph_layers


def read_graph_layers(path) -> list[tuple]:
    """Read one or more graph files into layer data tuples (``[vectors, points]`` per file)."""
    from ..errors import GraphFileError, VesselGraphError
    from ..io import read_graph
    from .layers import graph_to_layer_data

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    out: list[tuple] = []
    seen: set[str] = set()
    for p in paths:
        p = graph_source(os.fspath(p))
        if p in seen:  # X_nodes.csv, X_edges.csv and X_graph.json are one graph
            continue
        seen.add(p)
        aligned = aligned_layers(p)  # an SWC beside its stack, a GeoJSON beside its GeoTIFF
        if aligned is not None:
            out.extend(aligned)
            continue
        try:
            graph = read_graph(p)
        except VesselGraphError:
            raise
        except Exception as e:  # a parser failing deep inside: report it as a problem with the file
            raise GraphFileError(p, f"cannot read this graph file ({type(e).__name__}: {e})") from e
        out.extend(graph_to_layer_data(graph, name=graph_name(p)))
    return out


def graph_source(path: str) -> str:
    """The file to hand to ``io.read_graph``: the nodes CSV for any file of a CSV pair (including its
    ``X_graph.json`` side file), else ``path``."""
    low = path.lower()
    if low.endswith(".csv") or (low.endswith(".json") and _is_csv_sidecar(_head(path))):
        pair = csv_pair(path[: -len("_graph.json")] + ".csv" if low.endswith("_graph.json") else path)
        if pair is not None:
            return pair[0]
    return path


def graph_name(path: str) -> str:
    """Layer base name for a file: its stem, without a ``_nodes``/``_edges`` CSV suffix."""
    stem = os.path.basename(path)
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for tail in ("_nodes", "_edges", "_graph"):
        if stem.endswith(tail):
            stem = stem[: -len(tail)]
    return stem or "graph"


def csv_pair(path: str) -> tuple[str, str] | None:
    """``(nodes_csv, edges_csv)`` of the pair that ``path`` names (``X.csv``, ``X_nodes.csv`` or
    ``X_edges.csv``), or None when either file is missing."""
    from ..io import csv_paths

    nodes, edges = csv_paths(path)[:2]
    if os.path.isfile(nodes) and os.path.isfile(edges):
        return nodes, edges
    return None


def looks_like_graph(path: str) -> bool:
    """A cheap check (the first 64 KiB at most) that ``path`` is a graph file this plugin reads."""
    low = path.lower()
    suffix = next((s for s in SUFFIXES if low.endswith(s)), None)
    if suffix is None:
        return False
    if suffix == ".csv":
        pair = csv_pair(path)
        if pair is None:
            return False
        head = _head(pair[0])
        first = head.splitlines()[0] if head else ""
        columns = {c.strip().strip('"').lower() for c in re.split(r"[,;\t]", first)}
        return {"pos_y", "pos_x"} <= columns or {"y", "x"} <= columns
    if not os.path.isfile(path):
        return False
    head = _head(path)
    if suffix == ".graphml":
        return "<graphml" in head.lower()
    if suffix == ".json":
        body = head.lstrip("\ufeff \t\r\n")
        if not body.startswith("{"):
            return False
        if _is_csv_sidecar(head):  # the side file of a CSV pair opens the pair
            return low.endswith("_graph.json") and csv_pair(path[: -len("_graph.json")] + ".csv") is not None
        return _NODE_LIST.search(head) is not None
    if suffix == ".geojson":
        return geotiff_for(path) is not None and '"coordinates"' in head
    if suffix == ".vtk":
        return head.lstrip().lower().startswith("# vtk datafile")
    if suffix == ".swc":
        return _looks_like_swc(head)
    return False  # pragma: no cover


def _head(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(_PEEK)
    except OSError:
        return ""
    return raw.decode("utf-8", errors="replace")


def _is_csv_sidecar(head: str) -> bool:
    return _CSV_SIDECAR.search(head) is not None


def _looks_like_swc(head: str) -> bool:
    """SWC: ``#`` comments, then lines of 7 numbers (id type x y z radius parent)."""
    lines = head.splitlines()
    if len(head) >= _PEEK and lines:
        lines = lines[:-1]  # the last line may be cut
    data = [ln for ln in (x.strip() for x in lines) if ln and not ln.startswith("#")]
    if not data:
        return head.lstrip().startswith("#")  # comments only: an empty tree
    return all(len(f := ln.split()) >= 7 and all(_NUM.match(x) for x in f[:7]) for ln in data[:20])


# --------------------------------------------------------------------------- annotations over their image
_TIF = (".tif", ".tiff")


def stack_for_swc(path: str) -> str | None:
    """The image stack beside an SWC file: same stem, ``.tif`` or ``.tiff``."""
    base = path[: -len(".swc")]
    for ext in _TIF + tuple(e.upper() for e in _TIF):
        if os.path.isfile(base + ext):
            return base + ext
    return None


def geotiff_for(path: str) -> str | None:
    """The GeoTIFF a GeoJSON file lies on: same stem, else the only GeoTIFF in its folder, else the first
    (by name) of the folder's GeoTIFFs."""
    base = path[: -len(".geojson")]
    for ext in _TIF:
        if os.path.isfile(base + ext) and _is_geotiff(base + ext):
            return base + ext
    folder = os.path.dirname(path) or "."
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(_TIF))
    except OSError:
        return None
    for n in names:
        if _is_geotiff(os.path.join(folder, n)):
            return os.path.join(folder, n)
    return None


def _is_geotiff(path: str) -> bool:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            return 33922 in tags or 34264 in tags
    except (tifffile.TiffFileError, OSError, ValueError, IndexError):  # not a readable TIFF
        return False


def aligned_layers(path: str) -> list[tuple] | None:
    """``[image, vectors, points]`` for an SWC with its stack beside it (pixel-aligned, z step ``auto``:
    1 when the traces fit the stack, else the step that fits) or a GeoJSON on its GeoTIFF; None otherwise
    (the file then opens as a plain graph file)."""
    import warnings

    import numpy as np

    from ..errors import VesselGraphError
    from ..io import load_image
    from .layers import graph_to_layer_data

    low = path.lower()
    if low.endswith(".swc"):
        image_path = stack_for_swc(path)
        if image_path is None:
            return None
        from ..importers import read_swc_graph

        image, scale = load_image(image_path)
        image = np.asarray(image)
        while image.ndim > 2 and image.shape[0] == 1:
            image = image[0]
        spatial = image.shape[: len(scale)] if len(scale) < image.ndim else image.shape
        try:
            graph = read_swc_graph(path, shape=spatial, z_step="auto")
        except VesselGraphError as e:
            warnings.warn(f"{e}; opened without the image", stacklevel=2)
            return None
        scale = tuple(scale)[-graph.ndim:] if len(scale) >= graph.ndim else (1.0,) * graph.ndim
    elif low.endswith(".geojson"):
        image_path = geotiff_for(path)
        if image_path is None:
            return None
        from ..importers import geojson_to_graph

        graph = geojson_to_graph(path, image_path)
        image, _ = load_image(image_path)
        image = np.asarray(image)
        scale = tuple(graph.scale)
    else:
        return None
    graph.scale = tuple(float(s) for s in scale)
    kwargs = {"name": os.path.splitext(os.path.basename(image_path))[0], "scale": graph.scale}
    if image.dtype.kind in "iu" and image.size:
        kwargs["contrast_limits"] = [float(image.min()), float(max(image.max(), image.min() + 1))]
    return [(image, kwargs, "image"), *graph_to_layer_data(graph, name=graph_name(path), scale=graph.scale)]
