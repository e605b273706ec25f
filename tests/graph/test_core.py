import networkx as nx
import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph


def make_graph(ndim=2):
    rng = np.random.default_rng(0)
    nodes = rng.uniform(0, 50, size=(6, ndim))
    edges = [[0, 1], [1, 2], [2, 3], [1, 4], [4, 5]]
    return VesselGraph(
        nodes,
        edges,
        node_attrs={
            "radius": rng.uniform(1, 3, 6),
            "label": np.array(list("abcdef"), dtype=object),
            "flag": np.array([True, False, True, True, False, False]),
            "count": np.arange(6),
        },
        edge_attrs={"confidence": np.linspace(0.1, 0.9, 5), "kind": np.array(["a", "b", "a", "b", "a"], object)},
        scale=(2.0, 0.5, 0.5)[-ndim:],
        metadata={"model": "test", "image_shape": [64] * ndim},
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_networkx_round_trip_keeps_everything(ndim):
    g = make_graph(ndim)
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 6 and nxg.number_of_edges() == 5
    assert nxg.nodes[2]["label"] == "c"
    assert nxg.edges[0, 1]["kind"] == "a"
    back = VesselGraph.from_networkx(nxg)
    assert back.differences(g) == []
    assert back.metadata == g.metadata
    assert back.node_attrs["count"].dtype.kind == "i"
    assert back.node_attrs["flag"].dtype == bool


def test_differences_detects_changes():
    g = make_graph()
    h = g.copy()
    h.nodes[0] += 0.5
    assert "node positions differ" in g.differences(h)
    h = g.copy()
    h.edge_attrs["confidence"][2] = 5
    assert any("confidence" in d for d in g.differences(h))
    h = g.copy()
    h.edges = h.edges[:4]
    h.edge_attrs = {k: v[:4] for k, v in h.edge_attrs.items()}
    assert any("edge sets differ" in d for d in g.differences(h))


def test_edge_order_and_direction_do_not_matter_for_equality():
    g = make_graph()
    perm = np.array([4, 2, 0, 3, 1])
    h = VesselGraph(g.nodes, g.edges[perm][:, ::-1], g.node_attrs, {k: v[perm] for k, v in g.edge_attrs.items()},
                    g.scale, g.metadata)
    assert g.same_as(h)


def test_from_networkx_accepts_pos_tuples_and_missing_values():
    nxg = nx.Graph()
    nxg.add_node("a", pos=(1.0, 2.0), radius=2.0)
    nxg.add_node("b", pos=(3.0, 4.0))
    nxg.add_edge("a", "b")
    g = VesselGraph.from_networkx(nxg)
    assert g.ndim == 2
    np.testing.assert_allclose(g.nodes, [[1, 2], [3, 4]])
    assert g.node_attrs["radius"][0] == 2.0 and np.isnan(g.node_attrs["radius"][1])


def test_from_networkx_without_coordinates_is_a_clear_error():
    nxg = nx.path_graph(3)
    with pytest.raises(VesselGraphError, match="no coordinates"):
        VesselGraph.from_networkx(nxg)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(nodes=np.zeros((3, 4))), "N x 2 or N x 3"),
        (dict(nodes=np.zeros((3, 2)), edges=[[0, 5]]), "outside"),
        (dict(nodes=np.zeros((3, 2)), scale=(1, 2, 3)), "scale has 3"),
        (dict(nodes=np.zeros((3, 2)), scale=(0, 1)), "positive"),
        (dict(nodes=np.zeros((3, 2)), node_attrs={"r": [1, 2]}), "one value per item"),
    ],
)
def test_invalid_graphs_are_refused(kwargs, match):
    with pytest.raises(VesselGraphError, match=match):
        VesselGraph(**kwargs)


def test_canonical_drops_self_loops_and_duplicates():
    g = VesselGraph(np.zeros((3, 2)), [[0, 1], [1, 0], [2, 2], [2, 1]], edge_attrs={"w": [1, 2, 3, 4]})
    c = g.canonical()
    assert c.edges.tolist() == [[0, 1], [1, 2]]
    assert c.edge_attrs["w"].tolist() == [1, 4]


def test_subgraph_reindexes_edges():
    g = make_graph()
    s = g.subgraph(np.array([False, True, True, True, False, False]))
    assert s.n_nodes == 3
    assert sorted(map(tuple, s.edges.tolist())) == [(0, 1), (1, 2)]
    assert s.node_attrs["label"].tolist() == ["b", "c", "d"]


def test_physical_edge_lengths_use_scale():
    g = VesselGraph([[0, 0, 0], [1, 0, 0], [0, 0, 4]], [[0, 1], [0, 2]], scale=(2.0, 0.5, 0.5))
    np.testing.assert_allclose(g.edge_lengths(), [2.0, 2.0])
    np.testing.assert_allclose(g.edge_lengths(physical=False), [1.0, 4.0])
