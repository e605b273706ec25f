"""GeoJSON line strings (road centre lines) on a GeoTIFF -> graphs in the raster's pixels, and dataset tiles.

The GeoTIFF's georeferencing is read from its tags with tifffile (no GDAL/rasterio): ModelPixelScaleTag
(33550) with ModelTiepointTag (33922), or ModelTransformationTag (34264); the EPSG code from the
GeoKeyDirectoryTag (34735: ProjectedCSTypeGeoKey 3072, else GeographicTypeGeoKey 2048); the pixel
convention from GTRasterTypeGeoKey (1025: PixelIsArea, the default, puts the tie point at the *corner* of
pixel (0, 0), so pixel centres sit half a pixel in; PixelIsPoint at its centre).

GeoJSON CRS: RFC 7946 says WGS84 longitude/latitude (EPSG:4326); an old-style ``crs`` member naming
``urn:ogc:def:crs:OGC:1.3:CRS84``, ``EPSG:4326`` or ``urn:ogc:def:crs:EPSG::<code>`` is read (positions
are always taken x/east first, as GeoJSON writes them). When the GeoJSON's EPSG differs from the
GeoTIFF's, or no coordinate falls anywhere near the raster (projected metres read as degrees, a file of
another place), a one-line VesselGraphError names the file. Nothing is reprojected.

Graph: every LineString / MultiLineString part is a chain of nodes; vertices within ``tolerance`` px of
each other are merged (shared end points become junctions) and a free end within ``tolerance`` of another
line's interior joins it (a T junction); edges are clipped to the raster (border nodes inserted) and the
nodes re-spaced to about ``spacing`` px along the lines. Other geometry types are skipped (counted in the
metadata). ``scale`` is the ground size of a pixel in metres (approximate for geographic CRSs: degrees
times 111 320 m, times cos(latitude) for x), or in the projected CRS's units.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import VesselGraphError

__all__ = ["GeoRef", "geojson_to_graph", "import_geojson", "read_georef"]


class GeoRef:
    """Pixel <-> map coordinates of a GeoTIFF. ``to_pixel(x, y)`` gives (row, col) of pixel centres."""

    def __init__(self, matrix: np.ndarray, epsg: int | None, shape: tuple, geographic: bool | None, path: str):
        self.matrix = matrix  # 2x3: [x, y] = M @ [col_edge, row_edge, 1] (raster space, corner convention)
        self.epsg = epsg
        self.shape = tuple(int(s) for s in shape)
        self.geographic = geographic
        self.path = path
        A = matrix[:, :2]
        if abs(np.linalg.det(A)) < 1e-300:
            raise VesselGraphError(f"{path}: the GeoTIFF's geotransform is singular")
        self.inverse = np.linalg.inv(A)

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) map x, y -> (N, 2) pixel (row, col), integer = pixel centre."""
        rc = (np.asarray(xy, float) - self.matrix[:, 2]) @ self.inverse.T  # (col_edge, row_edge)
        return rc[:, ::-1] - 0.5

    def to_map(self, rowcol: np.ndarray) -> np.ndarray:
        cr = np.asarray(rowcol, float)[:, ::-1] + 0.5
        return cr @ self.matrix[:, :2].T + self.matrix[:, 2]

    def pixel_size_m(self) -> tuple[float, float]:
        """Ground size of a pixel (row step, column step) in metres (CRS units when projected)."""
        col_step = np.hypot(*self.matrix[:, 0])
        row_step = np.hypot(*self.matrix[:, 1])
        if self.geographic:
            lat = float(self.to_map(np.array([[self.shape[0] / 2, self.shape[1] / 2]]))[0, 1])
            return (row_step * 110_574.0, col_step * 111_320.0 * math.cos(math.radians(lat)))
        return (float(row_step), float(col_step))


def _geokeys(values) -> dict[int, object]:
    v = [int(x) for x in values]
    out = {}
    n = v[3] if len(v) >= 4 else 0
    for k in range(n):
        key, loc, count, val = v[4 + 4 * k : 8 + 4 * k]
        out[key] = val if loc == 0 else (loc, count, val)
    return out


def read_georef(path) -> GeoRef:
    """The georeferencing of a GeoTIFF (see the module doc); VesselGraphError naming the file if absent."""
    import tifffile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VesselGraphError(f"{path}: GeoTIFF not found")
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            tags = {t.code: t.value for t in page.tags.values() if t.code in (33550, 33922, 34264, 34735)}
            shape = tif.series[0].shape
    except (tifffile.TiffFileError, OSError, ValueError) as e:
        raise VesselGraphError(f"{path}: cannot read the GeoTIFF ({type(e).__name__}: {e})") from None
    keys = _geokeys(tags[34735]) if 34735 in tags else {}
    is_point = keys.get(1025) == 2
    if 34264 in tags:
        m = np.asarray(tags[34264], float).reshape(4, 4)
        matrix = np.array([[m[0, 0], m[0, 1], m[0, 3]], [m[1, 0], m[1, 1], m[1, 3]]])
    elif 33550 in tags and 33922 in tags:
        sx, sy = float(tags[33550][0]), float(tags[33550][1])
        tp = [float(t) for t in tags[33922][:6]]
        i, j, x, y = tp[0], tp[1], tp[3], tp[4]
        matrix = np.array([[sx, 0.0, x - i * sx], [0.0, -sy, y + j * sy]])
    else:
        raise VesselGraphError(
            f"{path}: not a GeoTIFF (no ModelPixelScale/ModelTiepoint or ModelTransformation tags); "
            "the road lines cannot be placed on it"
        )
    if is_point:  # raster (0, 0) is the centre of the first pixel: move the origin to its corner
        matrix[:, 2] -= 0.5 * (matrix[:, 0] + matrix[:, 1])
    epsg = None
    geographic = None
    model = keys.get(1024)
    if isinstance(keys.get(3072), int) and keys[3072] not in (0, 32767):
        epsg, geographic = int(keys[3072]), False
    elif isinstance(keys.get(2048), int) and keys[2048] not in (0, 32767):
        epsg, geographic = int(keys[2048]), True
    if model in (1, 2):
        geographic = model == 2
    spatial = shape[:2] if len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4)) else shape[-2:]
    return GeoRef(matrix, epsg, spatial, geographic, path)


_EPSG = re.compile(r"(?:EPSG(?::+|/)|EPSG:[\d.]*:)(\d+)\s*$", re.IGNORECASE)


def _geojson_epsg(doc: dict, path: str) -> int:
    crs = doc.get("crs")
    if not crs:
        return 4326
    name = str(((crs.get("properties") or {}).get("name")) if isinstance(crs, dict) else crs)
    if "CRS84" in name.upper() or "CRS:84" in name.upper():
        return 4326
    m = _EPSG.search(name)
    if m:
        return int(m.group(1))
    raise VesselGraphError(f"{path}: unknown GeoJSON crs {name!r} (expected EPSG:<code> or CRS84)")


def _lines(doc: dict, path: str) -> tuple[list[np.ndarray], int, int]:
    """Coordinate arrays (N, 2) of every line part; number of features; number skipped (not lines)."""
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
    elif doc.get("type") == "Feature":
        feats = [doc]
    elif "coordinates" in doc or doc.get("type") == "GeometryCollection":
        feats = [{"geometry": doc}]
    else:
        raise VesselGraphError(f"{path}: not a GeoJSON FeatureCollection, Feature or geometry")
    out, skipped = [], 0

    def geom(g):
        nonlocal skipped
        if not isinstance(g, dict):
            skipped += 1
            return
        t = g.get("type")
        try:
            if t == "LineString":
                out.append(np.asarray(g["coordinates"], float)[:, :2])
            elif t == "MultiLineString":
                out.extend(np.asarray(c, float)[:, :2] for c in g["coordinates"])
            elif t == "GeometryCollection":
                for h in g.get("geometries") or []:
                    geom(h)
            else:
                skipped += 1
        except (KeyError, ValueError, IndexError, TypeError):
            raise VesselGraphError(f"{path}: a {t} has malformed coordinates") from None

    for f in feats:
        geom((f or {}).get("geometry"))
    return [c for c in out if len(c) >= 2], len(feats), skipped


def _merge(chains_px: list[np.ndarray], tol: float):
    """Nodes and edges from pixel chains: vertices within ``tol`` merged, T junctions joined."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    P = np.concatenate(chains_px)
    starts = np.cumsum([0] + [len(c) for c in chains_px])[:-1]
    e = [np.stack([np.arange(s, s + len(c) - 1), np.arange(s + 1, s + len(c))], 1) for s, c in zip(starts, chains_px)]
    E = np.concatenate(e)
    pairs = cKDTree(P).query_pairs(tol, output_type="ndarray") if len(P) > 1 else np.zeros((0, 2), int)
    n = len(P)
    m = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    k, lab = connected_components(m, directed=False)
    sums = np.zeros((k, 2))
    np.add.at(sums, lab, P)
    nodes = sums / np.bincount(lab, minlength=k)[:, None]
    E = lab[E]
    E = E[E[:, 0] != E[:, 1]]
    E = np.unique(np.sort(E, 1), axis=0)
    # T junctions: a free end within tol of the interior of an edge it is not on
    nodes = list(nodes)
    edges = [tuple(x) for x in E.tolist()]
    for _ in range(2):
        deg = np.bincount(np.array(edges).ravel(), minlength=len(nodes)) if edges else np.zeros(len(nodes), int)
        ends = np.flatnonzero(deg == 1)
        if not len(ends) or not edges:
            break
        N = np.array(nodes)
        Ea = np.array(edges)
        A, B = N[Ea[:, 0]], N[Ea[:, 1]]
        AB = B - A
        L2 = np.maximum((AB * AB).sum(1), 1e-12)
        changed = False
        for v in ends.tolist():
            t = np.clip(((N[v] - A) * AB).sum(1) / L2, 0, 1)
            d = np.linalg.norm(A + t[:, None] * AB - N[v], axis=1)
            d[(Ea[:, 0] == v) | (Ea[:, 1] == v)] = np.inf
            j = int(d.argmin())
            if d[j] > tol or edges[j] is None:
                continue
            a, b = edges[j]
            if t[j] <= 0 or t[j] >= 1:  # nearest to an end of that edge: join the two nodes by an edge
                w = a if t[j] <= 0 else b
                edges.append((min(v, w), max(v, w)))
            else:
                edges[j] = None
                edges += [(min(a, v), max(a, v)), (min(v, b), max(v, b))]
            changed = True
            break  # geometry changed: recompute
        edges = [x for x in edges if x is not None]
        if not changed:
            break
    return np.array(nodes, float).reshape(-1, 2), np.array(sorted(set(edges)), np.int64).reshape(-1, 2)


def geojson_to_graph(geojson_path, geotiff_path, *, spacing: float | None = 10.0, tolerance: float = 1.0,
                     clip: bool = True):
    """GeoJSON line strings as a graph in the pixels ``(y, x)`` of a GeoTIFF (see the module doc).

    ``spacing``: nodes re-spaced to about this many pixels along the lines (``None``: the GeoJSON's own
    vertices); ``tolerance``: merge distance in pixels; ``clip``: cut the lines at the raster's edge.
    """
    from ..graph.core import VesselGraph

    gpath = os.fspath(geojson_path)
    geo = read_georef(geotiff_path)
    if not os.path.isfile(gpath):
        raise VesselGraphError(f"{gpath}: GeoJSON file not found")
    try:
        with open(gpath, encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VesselGraphError(f"{gpath}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise VesselGraphError(f"{gpath}: not a GeoJSON object")
    epsg = _geojson_epsg(doc, gpath)
    if geo.epsg is not None and epsg != geo.epsg:
        raise VesselGraphError(
            f"{gpath}: GeoJSON coordinates are in EPSG:{epsg} but the GeoTIFF {os.path.basename(geo.path)} is in "
            f"EPSG:{geo.epsg}; reproject one of them (e.g. ogr2ogr -t_srs EPSG:{geo.epsg})"
        )
    lines, n_feat, skipped = _lines(doc, gpath)
    if not lines:
        raise VesselGraphError(f"{gpath}: no LineString or MultiLineString features")
    px = [geo.to_pixel(c) for c in lines]
    allp = np.concatenate(px)
    H, W = geo.shape
    near = np.all((allp >= [-H, -W]) & (allp <= [2 * H, 2 * W]), 1)
    if not near.any():
        c = lines[0][0]
        raise VesselGraphError(
            f"{gpath}: no coordinate falls near the raster {os.path.basename(geo.path)} (first point {c.tolist()} "
            f"maps to pixel {allp[0].round(1).tolist()} of a {H}x{W} image); the GeoJSON is in another CRS or of "
            "another place"
        )
    nodes, edges = _merge(px, float(tolerance))
    meta = {
        "source": "geojson",
        "geojson": os.path.abspath(gpath),
        "geotiff": os.path.abspath(geo.path),
        "epsg": geo.epsg if geo.epsg is not None else epsg,
        "geotransform": geo.matrix.tolist(),
        "n_features": n_feat,
        "n_lines": len(lines),
        "skipped_geometries": skipped,
        "image_shape": [H, W],
    }
    g = VesselGraph(nodes, edges, {}, {}, tuple(geo.pixel_size_m()), meta)
    if clip:
        from ..synth.patches import crop_graph

        g = crop_graph(g, (0, 0), (H, W))
        g.metadata = {k: v for k, v in g.metadata.items() if k not in ("patch_origin", "patch_size")}
        g = g.remove_isolated()
    if spacing is not None:
        from ._resample import resample

        g = resample(g, float(spacing))
        g.metadata.pop("original_nodes", None)
    return g


def _region_box(region, shape) -> tuple[tuple[int, int], tuple[int, int], str]:
    """(origin, size, label) of ``region``: None, 'left'/'right'/'top'/'bottom' halves, or (slice_y, slice_x)."""
    H, W = shape
    if region is None:
        return (0, 0), (H, W), ""
    if isinstance(region, str):
        r = region.strip().lower()
        halves = {"left": ((0, 0), (H, W // 2)), "right": ((0, W // 2), (H, W - W // 2)),
                  "top": ((0, 0), (H // 2, W)), "bottom": ((H // 2, 0), (H - H // 2, W))}
        if r not in halves:
            raise VesselGraphError(f"region must be left, right, top, bottom or (slice_y, slice_x), got {region!r}")
        o, s = halves[r]
        return o, s, r
    try:
        sy, sx = region
        y0, y1, _ = sy.indices(H)
        x0, x1, _ = sx.indices(W)
    except (TypeError, ValueError, AttributeError):
        raise VesselGraphError(f"region must be left, right, top, bottom or (slice_y, slice_x), got {region!r}") from None
    if y1 <= y0 or x1 <= x0:
        raise VesselGraphError(f"region {region!r} is empty in an image of shape {shape}")
    return (y0, x0), (y1 - y0, x1 - x0), f"y{y0}-{y1}_x{x0}-{x1}"


def _tile_origins(n: int, tile: int) -> list[int]:
    """Tile starts covering ``n`` px with full tiles; the last is moved back to end at the border."""
    if tile >= n:
        return [0]
    starts = list(range(0, n - tile + 1, tile))
    if starts[-1] + tile < n:
        starts.append(n - tile)
    return starts


def import_geojson(
    geotiff,
    geojson,
    out,
    tile: int | None = None,
    split: str = "train",
    domain: str | None = None,
    region=None,
    *,
    spacing: float = 10.0,
    tolerance: float = 1.0,
    keep_empty: bool = False,
) -> Path:
    """A GeoTIFF and its GeoJSON centre lines -> dataset folder samples (created or extended).

    ``region``: ``"left"``, ``"right"``, ``"top"`` or ``"bottom"`` half of the image, or
    ``(slice(y0, y1), slice(x0, x1))``; default the whole image. ``tile``: cut the region into
    ``tile`` x ``tile`` tiles (full-size tiles; the last row/column is moved back to end at the border,
    so it overlaps its neighbour), each graph cropped with :func:`synth.crop_patch` (border nodes
    inserted); tiles with no edge are skipped unless ``keep_empty``. Sample ids:
    ``<stem>[_<region>]`` or ``<stem>[_<region>]_y<Y>_x<X>`` (tile origin in the full image); each
    tile's record has ``"origin"`` and ``"size"`` (pixels of the full image). Images with fewer bits than
    their type (SpaceNet: 11-bit data in uint16) are stored as float32 divided by ``2**bits - 1``.
    """
    from ..io import load_image
    from ..synth.patches import crop_patch
    from ._folder import DatasetFolder, relpath_or_abs, safe_id
    from .masks import _squeeze

    geotiff = Path(geotiff)
    graph = geojson_to_graph(geojson, geotiff, spacing=spacing, tolerance=tolerance)
    image, _ = load_image(geotiff)
    image = _squeeze(np.asarray(image))
    if image.ndim == 3 and image.shape[-1] not in (3, 4) and image.shape[0] in (3, 4):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[-1] != 3:
        raise VesselGraphError(f"{geotiff}: expected a single band or RGB image, got shape {image.shape}")
    H, W = image.shape[:2]
    (oy, ox), (h, w), label = _region_box(region, (H, W))
    if tile is not None:
        tile = int(tile)
        if tile < 8:
            raise VesselGraphError(f"tile must be at least 8 pixels, got {tile}")
    ty = _tile_origins(h, tile) if tile else [0]
    tx = _tile_origins(w, tile) if tile else [0]
    size = (min(tile, h), min(tile, w)) if tile else (h, w)
    folder = DatasetFolder(out, domain=domain, source={
        "kind": "geojson", "geotiff": relpath_or_abs(geotiff), "geojson": relpath_or_abs(geojson), "tile": tile,
        "region": label or None, "spacing": spacing})
    base = geotiff.stem + (f"_{label}" if label else "")
    skipped = 0
    for y in ty:
        for x in tx:
            origin = (oy + y, ox + x)
            img, g = crop_patch(image, graph, origin, size)
            if g.n_edges == 0 and not keep_empty:
                skipped += 1
                continue
            g.metadata = {**graph.metadata, "origin": list(origin), "size": list(size), "region": label or None}
            sid = base if not tile else f"{base}_y{origin[0]}_x{origin[1]}"
            folder.add(safe_id(sid), img, g, split, extra={"origin": list(origin), "size": list(size)})
    folder.manifest["imports"][-1]["skipped_empty_tiles"] = skipped
    if not folder.added:
        raise VesselGraphError(f"{geojson}: no line falls inside the {'tiles' if tile else 'region'} of {geotiff}")
    return folder.close()
