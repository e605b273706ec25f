"""Graph <-> napari layers: round trips, and edits made in napari coming back as a graph."""

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph._napari.layers import (
    add_graph_to_viewer,
    find_graph_layers,
    graph_to_layer_data,
    layer_data_to_graph,
    layer_tuples_to_graph,
    layers_to_graph,
)

from .graphs import make_graph_2d, make_graph_3d


def _by_type(tuples):
    return {t[2]: t for t in tuples}


# ------------------------------------------------------------------ pure data (no viewer)
def test_layer_data_contents(graph_2d):
    tuples = graph_to_layer_data(graph_2d, name="g", editable=True)
    assert [t[2] for t in tuples] == ["vectors", "shapes", "points"]
    lt = _by_type(tuples)
    pts, pkw, _ = lt["points"]
    np.testing.assert_allclose(pts, graph_2d.nodes)
    assert pkw["name"] == "g nodes"
    feats = pkw["features"]
    assert list(feats["node_id"]) == list(range(6))
    assert list(feats["degree"]) == list(graph_2d.degree())
    np.testing.assert_allclose(pkw["size"], 2 * graph_2d.node_attrs["radius"])
    assert pkw["face_color"] == "confidence"
    assert pkw["feature_defaults"]["node_id"] == -1
    meta = pkw["metadata"]["vesselgraph"]
    assert meta["role"] == "nodes" and meta["ndim"] == 2 and meta["metadata"] == graph_2d.metadata
    assert tuple(pkw["scale"]) == graph_2d.scale and tuple(pkw["translate"]) == (0.0, 0.0)

    vec, vkw, _ = lt["vectors"]
    assert vec.shape == (6, 2, 2)
    np.testing.assert_allclose(vec[:, 0], graph_2d.nodes[graph_2d.edges[:, 0]])
    np.testing.assert_allclose(vec[:, 0] + vec[:, 1], graph_2d.nodes[graph_2d.edges[:, 1]])
    ef = vkw["features"]
    assert list(ef["source_id"]) == list(graph_2d.edges[:, 0]) and list(ef["target_id"]) == list(graph_2d.edges[:, 1])
    np.testing.assert_allclose(ef["length"], graph_2d.edge_lengths())
    assert vkw["edge_color"] == "confidence" and vkw["edge_width"] == 1.75  # the median radius
    assert vkw["visible"] is False  # the Shapes layer draws the edges when editable

    shp, skw, _ = lt["shapes"]
    assert len(shp) == 6 and skw["shape_type"] == "line"
    assert skw["feature_defaults"]["source_id"] == -1 and skw["feature_defaults"]["target_id"] == -1
    ids = {t[1]["metadata"]["vesselgraph"]["graph_id"] for t in tuples}
    assert len(ids) == 1
    assert {t[1]["metadata"]["vesselgraph"]["role"] for t in tuples} == {"nodes", "edges", "edit_edges"}


@pytest.mark.parametrize("make", [make_graph_2d, make_graph_3d])
@pytest.mark.parametrize("use", ["vectors", "shapes"])
def test_tuples_round_trip(make, use):
    g = make()
    tuples = graph_to_layer_data(g, editable=True)
    lt = _by_type(tuples)
    back = layer_tuples_to_graph([lt["points"], lt[use]])
    assert g.differences(back) == []
    assert back.metadata == g.metadata


def test_empty_and_edgeless_graphs():
    for d in (2, 3):
        g = VesselGraph.empty(d, scale=(2.0,) * d)
        back = layer_tuples_to_graph(graph_to_layer_data(g, editable=True))
        assert back.n_nodes == 0 and back.ndim == d and back.scale == g.scale
    g = VesselGraph(np.array([[1.0, 2.0], [3.0, 4.0]]))
    tuples = graph_to_layer_data(g)
    back = layer_tuples_to_graph(tuples)
    assert g.differences(back) == []


def test_plain_layers_snap_to_nearest_nodes():
    """Layers not made by this plugin (no ids): every edge end goes to the nearest node."""
    nodes = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    vectors = np.array([[[0.2, 0.1], [0.0, 9.5]], [[0.1, 10.2], [9.8, 0.0]], [[0.0, 0.0], [0.3, 0.2]]])
    g = layer_data_to_graph(nodes, {"w": np.array([1, 2, 3])}, vectors, None)
    assert g.edges.tolist() == [[0, 1], [1, 2]]  # the third vector starts and ends at node 0: dropped
    assert g.node_attrs["w"].tolist() == [1, 2, 3]


def test_shapes_rules_duplicates_paths_and_other_shapes():
    nodes = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    shapes = [
        np.array([[0.0, 0.0], [0.0, 10.0]]),  # 0-1
        np.array([[0.0, 10.0], [0.0, 0.0]]),  # 1-0 again: dropped
        np.array([[0.0, 10.0], [5.0, 12.0], [9.0, 9.0]]),  # path 1 -> new node -> 2
        np.array([[0.0, 0.0], [0.0, 5.0], [5.0, 5.0], [5.0, 0.0]]),  # rectangle: ignored
    ]
    with pytest.warns(UserWarning, match="rectangle"):
        g = layer_data_to_graph(
            nodes,
            None,
            shapes,
            {"kind": np.array([1, 2, 3, 4])},
            edge_type="shapes",
            shape_types=["line", "line", "path", "rectangle"],
        )
    assert g.n_nodes == 4
    np.testing.assert_allclose(g.nodes[3], [5.0, 12.0])
    assert g.edges.tolist() == [[0, 1], [1, 3], [3, 2]]
    assert g.edge_attrs["kind"].tolist() == [1, 3, 3]


def test_layers_of_different_graphs_are_refused(graph_2d):
    a = _by_type(graph_to_layer_data(graph_2d))
    b = _by_type(graph_to_layer_data(graph_2d))
    with pytest.raises(VesselGraphError, match="different graphs"):
        layer_tuples_to_graph([a["points"], b["vectors"]])


def test_scale_must_fit(graph_3d):
    with pytest.raises(VesselGraphError, match="scale"):
        graph_to_layer_data(graph_3d, scale=(1.0, 1.0))
    # an image layer's longer scale is cut to its last D values
    t = _by_type(graph_to_layer_data(graph_3d, scale=(7.0, 2.0, 0.5, 0.5)))
    assert tuple(t["points"][1]["scale"]) == (2.0, 0.5, 0.5)


# ------------------------------------------------------------------ with a viewer
@pytest.mark.parametrize("editable", [False, True])
def test_viewer_round_trip_2d_rgb(make_napari_viewer, editable):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((80, 80, 3), np.uint8), rgb=True, scale=(0.5, 0.5), translate=(3.0, -4.0))
    g = make_graph_2d(scale=(0.5, 0.5))
    layers = add_graph_to_viewer(viewer, g, image_layer=image, editable=editable)
    found = find_graph_layers(viewer.layers)
    assert set(found) == ({"nodes", "edges", "edit_edges"} if editable else {"nodes", "edges"})
    pts = found["nodes"]
    assert pts is layers[-1]
    np.testing.assert_allclose(pts.scale, image.scale)
    np.testing.assert_allclose(pts.translate, image.translate)
    # node 1 sits on image pixel (10, 40) in world coordinates too
    np.testing.assert_allclose(pts.data_to_world(pts.data[1]), image.data_to_world([10.0, 40.0]))
    for role in found:
        if role != "nodes":
            back = layers_to_graph(pts, found[role])
            assert g.differences(back) == [], role
            assert back.metadata == g.metadata


def test_viewer_round_trip_3d_anisotropic(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((16, 32, 32), np.float32), scale=(2.0, 0.5, 0.5), translate=(10.0, 5.0, 5.0))
    g = make_graph_3d(scale=(2.0, 0.5, 0.5))
    add_graph_to_viewer(viewer, g, image_layer=image, editable=True)
    found = find_graph_layers(viewer.layers)
    viewer.dims.ndisplay = 3
    qtbot.wait(10)
    for role in ("edges", "edit_edges"):
        back = layers_to_graph(found["nodes"], found[role])
        assert g.differences(back) == [], role
        assert back.scale == (2.0, 0.5, 0.5)
    np.testing.assert_allclose(
        found["nodes"].data_to_world(found["nodes"].data[4]), image.data_to_world(g.nodes[4])
    )


def _add_from_tuples(viewer, tuples):
    """Add layer data tuples the way napari adds a reader's output (no linking of the Points layer)."""
    from napari.layers import Layer

    for data, kwargs, ltype in tuples:
        viewer.add_layer(Layer.create(data, kwargs, ltype))
    return find_graph_layers(viewer.layers)


@pytest.mark.parametrize("linked", [True, False])
def test_edit_scenario_shapes(make_napari_viewer, graph_2d, linked):
    viewer = make_napari_viewer()
    if linked:
        add_graph_to_viewer(viewer, graph_2d, editable=True)
        found = find_graph_layers(viewer.layers)
    else:
        found = _add_from_tuples(viewer, graph_to_layer_data(graph_2d, editable=True))
    pts, lines = found["nodes"], found["edit_edges"]

    # 1. move node 2 far away (its lines are not updated: they keep node 2 by id)
    data = pts.data.copy()
    data[2] = [50.0, 55.0]
    pts.data = data
    # 2. delete node 4: edge 2-4 goes with it
    pts.selected_data = {4}
    pts.remove_selected()
    # 3. with node 0 selected (napari copies its features, node_id included), add a new point
    pts.selected_data = {0}
    pts.add(np.array([[70.0, 70.0]]))
    assert len(pts.data) == 6
    # 4. draw a line from the new point to node 5, a pixel off at both ends
    lines.selected_data = set()
    lines.add_lines(np.array([[71.0, 69.0], [25.5, 70.5]]))
    # 5. drag the end of line 3-0 from node 0 onto node 1
    shapes = [s.copy() for s in lines.data]
    shapes[3][1] = [10.5, 40.0]
    lines.data = shapes

    g = layers_to_graph(pts, lines)
    # nodes are the Points rows: old 0, 1, 2 (moved), 3, 5, then the new node
    np.testing.assert_allclose(g.nodes, [[10, 10], [10, 40], [50, 55], [40, 10], [25, 70], [70, 70]])
    assert g.edges.tolist() == [[0, 1], [1, 2], [2, 3], [3, 1], [1, 4], [5, 4]]
    np.testing.assert_allclose(g.edge_attrs["confidence"][:5], [0.1, 0.2, 0.3, 0.4, 0.6])
    assert np.isnan(g.edge_attrs["confidence"][5])  # a drawn line has no confidence
    assert g.node_attrs["label"].tolist()[:5] == ["a", "b", "c", "d", "f"]
    assert set(g.node_attrs) == {"radius", "confidence", "label"}
    assert set(g.edge_attrs) == {"confidence", "kind", "artery"}
    assert g.metadata == graph_2d.metadata and g.scale == graph_2d.scale

    # the same edits seen through the (not editable) Vectors layer: ids decide, no geometry
    gv = layers_to_graph(pts, found["edges"])
    assert gv.edges.tolist() == [[0, 1], [1, 2], [2, 3], [3, 0], [1, 4]]


def test_edit_scenario_vectors(make_napari_viewer, graph_3d):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, graph_3d)
    found = find_graph_layers(viewer.layers)
    pts = found["nodes"]
    data = pts.data.copy()
    data[0] += 20.0
    pts.data = data
    pts.selected_data = {11}
    pts.remove_selected()
    pts.add(np.array([[1.0, 2.0, 3.0]]))
    g = layers_to_graph(pts, found["edges"])
    expected = graph_3d.subgraph(np.arange(11))
    assert g.n_nodes == 12
    np.testing.assert_allclose(g.nodes[0], graph_3d.nodes[0] + 20.0)
    assert g.edges.tolist() == expected.edges.tolist()
    assert g.degree()[11] == 0


def test_deleting_a_node_in_a_dense_chain_does_not_rewire(make_napari_viewer):
    """Nodes 2 px apart (closer than the snap distance): deleting the middle one drops its two edges
    instead of joining its neighbours, because the untouched line ends keep their stored node."""
    viewer = make_napari_viewer()
    g = VesselGraph(np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0], [0.0, 6.0]]), np.array([[0, 1], [1, 2], [2, 3]]))
    add_graph_to_viewer(viewer, g, editable=True)
    found = find_graph_layers(viewer.layers)
    found["nodes"].selected_data = {1}
    found["nodes"].remove_selected()
    back = layers_to_graph(found["nodes"], found["edit_edges"])
    assert back.edges.tolist() == [[1, 2]]


def test_deleted_line_and_new_line_between_existing_nodes(make_napari_viewer, graph_2d):
    viewer = make_napari_viewer()
    add_graph_to_viewer(viewer, graph_2d, editable=True)
    found = find_graph_layers(viewer.layers)
    lines = found["edit_edges"]
    lines.selected_data = {0}
    lines.remove_selected()  # edge 0-1
    lines.selected_data = {1}  # napari copies this line's features into the next one
    lines.add_lines(np.array([[10.0, 10.0], [40.0, 40.0]]))  # 0-2
    lines.add_lines(np.array([[40.0, 10.0], [41.0, 11.0]]))  # both ends on node 3: dropped
    back = layers_to_graph(found["nodes"], lines)
    assert back.edges.tolist() == [[1, 2], [2, 3], [3, 0], [2, 4], [1, 5], [0, 2]]
