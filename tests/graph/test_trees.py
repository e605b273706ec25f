"""Spanning forests (graph.trees): cycles broken from a chosen root, removed edges reported."""

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.graph.trees import choose_roots, format_edges, spanning_forest


def _square_with_tail():
    # 0-1-2-3-0 is a unit square (side 10 px), 3-4 a tail; plus a separate edge 5-6
    nodes = np.array([[0, 0], [0, 10], [10, 10], [10, 0], [20, 0], [50, 50], [50, 60]], float)
    edges = [[0, 1], [1, 2], [2, 3], [3, 0], [3, 4], [5, 6]]
    return VesselGraph(nodes, edges, node_attrs={"radius": np.array([1, 1, 5, 1, 1, 1, 2.0])},
                       edge_attrs={"w": np.arange(6.0)})


def _is_forest(g: VesselGraph) -> bool:
    from napari_vesselgraph.graph.morphometrics import connected_components

    k, _ = connected_components(g)
    return g.n_edges == g.n_nodes - k


def test_default_root_is_the_node_of_largest_radius_per_component():
    g = _square_with_tail()
    assert choose_roots(g) == [2, 6]
    g.node_attrs.pop("radius")
    assert choose_roots(g) == [0, 5]  # no radius: the lowest index


def test_spanning_forest_removes_one_edge_per_cycle_and_reports_it():
    g = _square_with_tail()
    f = spanning_forest(g)
    assert f.n_removed == 1 and _is_forest(f.graph)
    assert f.graph.n_nodes == g.n_nodes and f.graph.n_edges == g.n_edges - 1
    # from root 2 the far corner of the square is 0: reached through 1 and through 3 at the same distance,
    # the tie goes to the lower parent, so edge 3-0 is the one removed
    assert f.removed.tolist() == [[3, 0]] and f.removed_index.tolist() == [3]
    assert f.graph.edge_attrs["w"].tolist() == [0, 1, 2, 4, 5]
    assert f.roots == [2, 6] and f.parent[2] == -1 and f.parent[6] == -1
    pos = {int(v): i for i, v in enumerate(f.order)}
    assert all(pos[int(f.parent[v])] < pos[v] for v in range(g.n_nodes) if f.parent[v] >= 0)


def test_a_given_root_is_used_in_its_component():
    f = spanning_forest(_square_with_tail(), root=4)
    assert f.roots == [4, 6]
    # from 4: 3 (10), then 0 and 2 (20 each), then 1 (30) reached from 0 or 2: tie to the lower parent (0)
    assert f.removed.tolist() == [[1, 2]]


def test_a_forest_loses_nothing():
    g = VesselGraph(np.array([[0, 0], [0, 5], [0, 9]], float), [[0, 1], [1, 2]])
    f = spanning_forest(g)
    assert f.n_removed == 0 and f.graph.edges.tolist() == g.edges.tolist()


@pytest.mark.parametrize("root", [7, -1, 1.5, "a"])
def test_a_bad_root_is_one_clear_error(root):
    with pytest.raises(VesselGraphError, match="root"):
        spanning_forest(_square_with_tail(), root=root)


def test_format_edges_lists_the_first_ones():
    assert format_edges([[1, 2], [3, 4]]) == "1-2, 3-4"
    assert format_edges(np.arange(30).reshape(15, 2), limit=2).endswith("(13 more)")
