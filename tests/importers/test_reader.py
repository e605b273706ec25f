"""napari reader: an SWC beside its stack and a GeoJSON beside its GeoTIFF open aligned on the image."""

import numpy as np
import pytest
import tifffile

from napari_vesselgraph._napari._reader import get_reader
from napari_vesselgraph._napari.layers import find_graph_layers, layer_tuples_to_graph

from .test_geojson import geojson, geotiff

SWC = "1 3 10 20 0 1.5 -1\n2 3 30 20 6 1 1\n3 3 30 35 6 1 2\n"


def test_manifest_reads_geojson():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-vesselgraph")
    assert "*.geojson" in pm.contributions.readers[0].filename_patterns


def test_swc_beside_its_stack_opens_over_it(tmp_path):
    tifffile.imwrite(tmp_path / "cell.tif", np.zeros((8, 40, 50), np.uint8), imagej=True,
                     resolution=(2.0, 2.0), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    (tmp_path / "cell.swc").write_text(SWC)
    path = str(tmp_path / "cell.swc")
    layers = get_reader(path)(path)
    assert [t[2] for t in layers] == ["image", "vectors", "points"]
    assert layers[0][1]["name"] == "cell" and layers[0][0].shape == (8, 40, 50)
    g = layer_tuples_to_graph(layers[1:])
    np.testing.assert_allclose(g.nodes, [[0, 20, 10], [6, 20, 30], [6, 35, 30]])  # z = slice, y = row, x = column
    np.testing.assert_allclose(layers[0][1]["scale"], (2.0, 0.5, 0.5))
    np.testing.assert_allclose(layers[2][1]["scale"], (2.0, 0.5, 0.5))


def test_swc_deeper_than_its_stack_gets_an_inferred_z_step(tmp_path):
    tifffile.imwrite(tmp_path / "cell.tif", np.zeros((4, 40, 50), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    (tmp_path / "cell.swc").write_text(SWC.replace(" 6 ", " 9 "))  # z up to 9 in 4 slices: z step 9 / 3.5 -> 2.58
    path = str(tmp_path / "cell.swc")
    g = layer_tuples_to_graph(get_reader(path)(path)[1:])
    assert g.nodes[:, 0].max() == pytest.approx(9 / 2.58)


def test_swc_without_a_stack_still_opens_as_a_graph(tmp_path):
    (tmp_path / "lone.swc").write_text(SWC)
    path = str(tmp_path / "lone.swc")
    assert [t[2] for t in get_reader(path)(path)] == ["vectors", "points"]


def test_geojson_beside_its_geotiff_opens_on_it(tmp_path, make_napari_viewer):
    geotiff(tmp_path / "chip.tif")
    path = str(geojson(tmp_path / "roads.geojson", [[(10, 20), (10, 120)]]))  # the only GeoTIFF in the folder
    layers = get_reader(path)(path)
    assert [t[2] for t in layers] == ["image", "vectors", "points"]
    g = layer_tuples_to_graph(layers[1:])
    assert g.nodes[:, 0].min() == pytest.approx(10) and g.nodes[:, 1].min() == pytest.approx(20)
    assert g.nodes[:, 1].max() == pytest.approx(120)
    viewer = make_napari_viewer()
    viewer.open(path, plugin="napari-vesselgraph")
    assert viewer.layers["chip"].data.shape == (100, 200)
    found = find_graph_layers(viewer.layers)
    np.testing.assert_allclose(found["nodes"].scale, viewer.layers["chip"].scale)


def test_geojson_without_a_geotiff_is_not_ours(tmp_path):
    path = str(geojson(tmp_path / "roads.geojson", [[(10, 20), (10, 120)]]))
    assert get_reader(path) is None
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((10, 10), np.uint8))
    assert get_reader(path) is None
