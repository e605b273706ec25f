"""geojson_to_graph / import_geojson on GeoTIFFs with a known geotransform written by tifffile."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.importers import geojson_to_graph, import_geojson
from napari_vesselgraph.importers.geojson import read_georef
from napari_vesselgraph.synth import read_dataset

REALDATA = Path(__file__).parents[2].parent / "shared/realdata"
LON0, LAT0, STEP = -115.0, 36.0, 1e-4  # corner of pixel (0, 0); degrees per pixel
H, W = 100, 200


def geotiff(path, raster_type=1, transform=False, epsg=4326, data=None):
    """A GeoTIFF whose pixel (row r, col c) centre is at lon LON0 + (c + 0.5) STEP, lat LAT0 - (r + 0.5) STEP."""
    keys = [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, raster_type, 2048, 0, 1, epsg]
    off = 0.5 if raster_type == 2 else 0.0  # PixelIsPoint: the tie point is the first pixel's centre
    if transform:
        m = [STEP, 0, 0, LON0 + off * STEP, 0, -STEP, 0, LAT0 - off * STEP, 0, 0, 0, 0, 0, 0, 0, 1]
        extratags = [(34264, "d", 16, m, True)]
    else:
        extratags = [(33550, "d", 3, (STEP, STEP, 0.0), True),
                     (33922, "d", 6, (0.0, 0.0, 0.0, LON0 + off * STEP, LAT0 - off * STEP, 0.0), True)]
    extratags.append((34735, "H", len(keys), keys, True))
    if data is None:
        data = (np.arange(H * W).reshape(H, W) % 2048).astype(np.uint16)
    tifffile.imwrite(path, data, extratags=extratags)
    return path


def lonlat(r, c):
    return [LON0 + (c + 0.5) * STEP, LAT0 - (r + 0.5) * STEP]


def geojson(path, lines, crs=None, kind="LineString"):
    feats = []
    for ln in lines:
        coords = [lonlat(*p) for p in ln] if kind == "LineString" else [[lonlat(*p) for p in part] for part in ln]
        feats.append({"type": "Feature", "properties": {}, "geometry": {"type": kind, "coordinates": coords}})
    doc = {"type": "FeatureCollection", "features": feats}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("raster_type, transform", [(1, False), (2, False), (1, True), (2, True)])
def test_a_geojson_point_maps_to_its_pixel(tmp_path, raster_type, transform):
    tif = geotiff(tmp_path / "a.tif", raster_type, transform)
    gj = geojson(tmp_path / "a.geojson", [[(10, 20), (10, 120), (60, 120)]])
    g = geojson_to_graph(gj, tif, spacing=None)
    np.testing.assert_allclose(g.nodes, [[10, 20], [10, 120], [60, 120]], atol=1e-6)
    assert g.n_edges == 2 and g.metadata["epsg"] == 4326
    sy, sx = g.scale  # metres per pixel
    assert sy == pytest.approx(STEP * 110_574, rel=1e-6) and sx == pytest.approx(STEP * 111_320 * np.cos(np.radians(LAT0 - 0.005)), rel=1e-4)
    geo = read_georef(tif)
    np.testing.assert_allclose(geo.to_map(np.array([[10.0, 20.0]])), [lonlat(10, 20)], atol=1e-12)


def test_junctions_merge_t_junctions_join_and_nodes_are_respaced(tmp_path):
    tif = geotiff(tmp_path / "a.tif")
    lines = [
        [(50, 10), (50, 100)],
        [(50, 100.2), (50, 190)],  # shares the end point (within the 1 px tolerance)
        [(5, 100), (49.6, 100)],  # ends on the first junction
        [(90, 40), (50.4, 40)],  # ends on the interior of the first line: a T junction
    ]
    g = geojson_to_graph(geojson(tmp_path / "a.geojson", lines), tif, spacing=None)
    deg = g.degree()
    assert sorted(deg.tolist()) == [1, 1, 1, 1, 3, 3]
    assert g.n_edges == 5
    r = geojson_to_graph(geojson(tmp_path / "a.geojson", lines), tif)  # spacing 10
    assert np.count_nonzero(r.degree() == 3) == 2 and np.count_nonzero(r.degree() == 1) == 4
    lengths = r.edge_lengths(physical=False)
    assert lengths.max() <= 12.0 + 1e-6 and lengths.mean() >= 7.0
    assert np.all(np.abs(r.nodes[np.abs(r.nodes[:, 0] - 50) < 2, 0] - 50) < 0.5)


def test_multilinestring_and_clipping_at_the_border(tmp_path):
    tif = geotiff(tmp_path / "a.tif")
    gj = geojson(tmp_path / "m.geojson", [[[(20, 150), (20, 260)], [(-30, 30), (30, 30)]]], kind="MultiLineString")
    g = geojson_to_graph(gj, tif, spacing=None)
    assert g.nodes[:, 1].max() == pytest.approx(W - 1) and g.nodes[:, 0].min() == pytest.approx(0)
    assert g.n_edges == 2


def test_crs_mismatch_and_far_away_coordinates_are_one_line_errors(tmp_path):
    tif = geotiff(tmp_path / "a.tif")
    gj = geojson(tmp_path / "utm.geojson", [[(10, 20), (10, 120)]], crs="urn:ogc:def:crs:EPSG::32611")
    with pytest.raises(VesselGraphError, match=r"utm\.geojson: GeoJSON coordinates are in EPSG:32611 but the GeoTIFF a\.tif is in EPSG:4326") as e:
        geojson_to_graph(gj, tif)
    assert "\n" not in str(e.value)
    # the CRS84 name is WGS84 lon/lat
    ok = geojson(tmp_path / "crs84.geojson", [[(10, 20), (10, 120)]], crs="urn:ogc:def:crs:OGC:1.3:CRS84")
    assert geojson_to_graph(ok, tif, spacing=None).n_edges == 1
    metres = tmp_path / "metres.geojson"
    metres.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                      "geometry": {"type": "LineString", "coordinates": [[600000.0, 4000000.0], [600100.0, 4000000.0]]}}]}))
    with pytest.raises(VesselGraphError, match=r"metres\.geojson: no coordinate falls near the raster"):
        geojson_to_graph(metres, tif)
    with pytest.raises(VesselGraphError, match="not a GeoTIFF"):
        tifffile.imwrite(tmp_path / "plain.tif", np.zeros((10, 10), np.uint8))
        geojson_to_graph(ok, tmp_path / "plain.tif")
    pts = tmp_path / "points.geojson"
    pts.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": lonlat(1, 1)}}))
    with pytest.raises(VesselGraphError, match="no LineString"):
        geojson_to_graph(pts, tif)


def test_import_geojson_tiles_region_and_11_bit_images(tmp_path):
    tif = geotiff(tmp_path / "chip.tif")
    gj = geojson(tmp_path / "roads.geojson", [[(50, 5), (50, 195)], [(5, 150), (95, 150)]])
    out = import_geojson(tif, gj, tmp_path / "ds", tile=64, domain="roads")
    recs = read_dataset(out)
    ids = [r.id for r in recs]
    # tiles of 64 over 100 x 200: rows at 0, 36; columns at 0, 64, 128, 136 -> 8 tiles, all crossed by a road
    assert len(ids) == 8 and "chip_y36_x136" in ids
    for r in recs:
        assert r.image.shape == (64, 64) and r.graph.n_edges >= 1
        assert r.graph.nodes.min() >= 0 and r.graph.nodes.max() <= 63
    # 11-bit data: stored as float divided by 2047, so it reads back in [0, 1] with full contrast
    assert 0.9 < max(float(r.image.max()) for r in recs) <= 1.0
    m = json.loads((out / "manifest.json").read_text())
    s = {x["id"]: x for x in m["samples"]}["chip_y36_x136"]
    assert s["origin"] == [36, 136] and s["size"] == [64, 64] and s["seed"] is None
    left = import_geojson(tif, gj, tmp_path / "left", region="left")
    (rec,) = read_dataset(left)
    assert rec.id == "chip_left" and rec.image.shape == (100, 100) and rec.graph.nodes[:, 1].max() <= 99
    right = read_dataset(import_geojson(tif, gj, tmp_path / "right", region=(slice(None), slice(100, None))))[0]
    assert right.graph.nodes[:, 1].min() >= 0 and right.image.shape == (100, 100)
    with pytest.raises(VesselGraphError, match="region must be"):
        import_geojson(tif, gj, tmp_path / "x", region="middle")


@pytest.mark.skipif(not (REALDATA / "spacenet-vegas").is_dir(), reason=f"real data not present at {REALDATA}")
def test_real_spacenet_chip(tmp_path):
    d = REALDATA / "spacenet-vegas"
    g = geojson_to_graph(d / "sample_roads_for_masking.geojson", d / "road_mask_input.tif")
    mask = tifffile.imread(d / "sample_road_raster_mask.tif")
    idx = np.rint(g.nodes).astype(int)
    assert (mask[tuple(idx.T)] > 0).mean() > 0.98  # measured: every node on the published road mask
    assert g.metadata["n_lines"] == 9 and 250 <= g.n_nodes <= 500  # measured: 368 nodes
    out = import_geojson(d / "road_mask_input.tif", d / "sample_roads_for_masking.geojson", tmp_path / "sn", tile=512)
    assert len(read_dataset(out)) == 7  # 9 tiles of 512 (overlapping at the far edges), 2 without a road
