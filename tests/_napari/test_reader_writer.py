"""npe2 reader and writers: files written by ``io`` open as layers; layers save to files that read back."""

import os

import numpy as np
import pytest

from napari_vesselgraph import io
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph._napari._reader import get_reader, read_graph_layers
from napari_vesselgraph._napari._writer import write_graph_layers
from napari_vesselgraph._napari.layers import add_graph_to_viewer, find_graph_layers, layer_tuples_to_graph

from .graphs import make_graph_2d, make_graph_3d

SUFFIXES = sorted(io.FORMATS)


def _graph_for(suffix, ndim=2):
    """A graph every format can hold (SWC stores trees only)."""
    g = make_graph_2d() if ndim == 2 else make_graph_3d()
    if suffix == ".swc":
        tree = np.array([[0, 1], [1, 2], [2, 3], [2, 4], [1, 5]]) if ndim == 2 else np.array([[i, i + 1] for i in range(11)])
        g = VesselGraph(g.nodes, tree, {"radius": g.node_attrs["radius"]}, {}, g.scale, g.metadata)
    return g


def test_manifest_lists_every_io_format():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-vesselgraph")
    patterns = set(pm.contributions.readers[0].filename_patterns)
    assert {"*" + s for s in SUFFIXES} <= patterns
    combos = {}
    for w in pm.contributions.writers:
        combos.setdefault(tuple(w.layer_types), set()).update(w.filename_extensions)
    assert combos[("points", "vectors")] == set(SUFFIXES)
    assert combos[("points", "shapes")] == set(SUFFIXES)
    keys = [s.key for s in pm.contributions.sample_data]
    assert keys == ["retina", "vessel2d-fluo", "vessel2d-fundus", "vessel3d-lightsheet", "road-clean"]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_reader_opens_io_files(tmp_path, suffix, ndim):
    g = _graph_for(suffix, ndim)
    path = str(tmp_path / f"vessels{suffix}")
    written = io.write_graph(g, path)
    expected = io.read_graph(path)  # what the format keeps
    for p in [path, *written]:
        # any file of a CSV pair (X_nodes.csv, X_edges.csv, X_graph.json) opens the pair
        reader = get_reader(p)
        assert reader is not None, p
        layers = reader(p)
        assert [t[2] for t in layers] == ["vectors", "points"]
        assert layers[1][1]["name"] == "vessels nodes"
        back = layer_tuples_to_graph(layers)
        assert expected.differences(back) == [], p
        assert back.metadata == expected.metadata
    assert expected.n_edges == g.n_edges
    if suffix == ".csv":  # dropping all three files of a pair opens the graph once
        assert len(get_reader(written)(written)) == 2


def test_viewer_open_uses_the_plugin(make_napari_viewer, tmp_path, graph_3d):
    path = str(tmp_path / "g.graphml")
    io.write_graph(graph_3d, path)
    viewer = make_napari_viewer()
    viewer.open(path, plugin="napari-vesselgraph")
    found = find_graph_layers(viewer.layers)
    assert set(found) == {"nodes", "edges"}
    assert found["nodes"].data.shape == (12, 3)
    np.testing.assert_allclose(found["nodes"].scale, graph_3d.scale)


def test_reader_declines_other_files(tmp_path):
    garbage = tmp_path / "settings.json"
    garbage.write_text('{"theme": "dark", "size": [1, 2]}')
    assert get_reader(str(garbage)) is None
    not_json = tmp_path / "broken.json"
    not_json.write_bytes(b"\x00\x01 not json at all")
    assert get_reader(str(not_json)) is None
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    assert get_reader(str(table)) is None
    xml = tmp_path / "x.graphml"
    xml.write_text("<html></html>")
    assert get_reader(str(xml)) is None
    swc = tmp_path / "x.swc"
    swc.write_text("hello world\n")
    assert get_reader(str(swc)) is None
    vtk = tmp_path / "x.vtk"
    vtk.write_text("binary junk")
    assert get_reader(str(vtk)) is None
    assert get_reader(str(tmp_path / "missing.graphml")) is None
    assert get_reader(str(tmp_path / "image.tif")) is None
    assert get_reader([str(garbage), str(table)]) is None


def test_reader_error_on_a_broken_graph_file_is_clear(tmp_path):
    bad = tmp_path / "cut.json"
    bad.write_text('{"directed": false, "nodes": [{"id": 0, "pos_y": 1.0, "pos_x": 2.0},')
    reader = get_reader(str(bad))
    assert reader is not None  # looks like a graph from its first bytes...
    with pytest.raises(VesselGraphError, match="cut.json"):  # ...but is not: one clear message
        reader(str(bad))


def test_reader_reads_several_files(tmp_path, graph_2d):
    paths = [str(tmp_path / "a.graphml"), str(tmp_path / "b.json")]
    for p in paths:
        io.write_graph(graph_2d, p)
    reader = get_reader(paths)
    layers = reader(paths)
    assert [t[1]["name"] for t in layers] == ["a edges", "a nodes", "b edges", "b nodes"]
    assert read_graph_layers(paths[0])[1][0].shape == (6, 2)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("edge_layer", ["vectors", "shapes"])
def test_writer_writes_files_that_read_back(make_napari_viewer, tmp_path, suffix, edge_layer):
    g = _graph_for(suffix)
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, g, editable=(edge_layer == "shapes"))
    found = find_graph_layers(viewer.layers)
    chosen = [found["nodes"], found["edges" if edge_layer == "vectors" else "edit_edges"]]
    viewer.layers.selection = set(chosen)
    path = str(tmp_path / f"saved{suffix}")
    written = viewer.layers.save(path, selected=True, plugin="napari-vesselgraph")
    assert written and all(os.path.exists(p) for p in written)
    reference = str(tmp_path / f"reference{suffix}")
    io.write_graph(g, reference)
    assert io.read_graph(reference).differences(io.read_graph(path)) == []
    # and the plugin's own reader opens what the writer wrote
    back = layer_tuples_to_graph(get_reader(written[0])(written[0]))
    assert io.read_graph(reference).differences(back) == []


def test_writer_applies_edits(tmp_path, graph_2d):
    from napari_vesselgraph._napari.layers import graph_to_layer_data

    vec, shapes, pts = graph_to_layer_data(graph_2d, editable=True)
    data = pts[0].copy()
    data[2] += 5.0
    written = write_graph_layers(str(tmp_path / "edited.graphml"), [(data, pts[1], "points"), shapes])
    back = io.read_graph(written[0])
    np.testing.assert_allclose(back.nodes[2], graph_2d.nodes[2] + 5.0)
    assert back.edges.tolist() == graph_2d.edges.tolist()
