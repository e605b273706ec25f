import numpy as np
import pytest

from napari_vesselgraph.graph import VesselGraph, graph_statistics, morphometrics, segments


def y_graph():
    # a Y: 0-1-2 (bent), 2 is a branch point, 2-3 and 2-4 are straight, plus a detached edge 5-6
    nodes = [[0, 0], [0, 3], [4, 3], [4, 6], [10, 3], [20, 20], [20, 25]]
    return VesselGraph(np.array(nodes, float), [[0, 1], [1, 2], [2, 3], [2, 4], [5, 6]], scale=(2.0, 1.0))


def test_degrees_branch_points_endpoints_components():
    m = morphometrics(y_graph())
    assert m["nodes"]["degree"].tolist() == [1, 2, 3, 1, 1, 1, 1]
    assert m["nodes"]["is_branch_point"].tolist() == [False, False, True, False, False, False, False]
    assert m["nodes"]["is_endpoint"].sum() == 5
    comp = m["nodes"]["component"]
    assert len(set(comp[:5])) == 1 and comp[5] == comp[6] != comp[0]


def test_segment_lengths_and_tortuosity_in_physical_units():
    segs = sorted(segments(y_graph()), key=lambda s: s.nodes[0] * 10 + s.nodes[-1])
    bent = [s for s in segs if set(s.nodes) == {0, 1, 2}][0]
    # 0->1 is 3 px along x (3 units), 1->2 is 4 px along y (scale 2 -> 8 units)
    assert bent.length == pytest.approx(11.0)
    assert bent.chord == pytest.approx(np.hypot(8, 3))
    assert bent.tortuosity == pytest.approx(11.0 / np.hypot(8, 3))
    assert len(segs) == 4
    straight = [s for s in segs if set(s.nodes) == {5, 6}][0]
    assert straight.tortuosity == pytest.approx(1.0)


def test_pure_cycle_is_one_segment_with_nan_tortuosity():
    square = VesselGraph([[0, 0], [0, 1], [1, 1], [1, 0]], [[0, 1], [1, 2], [2, 3], [3, 0]])
    segs = segments(square)
    assert len(segs) == 1
    assert segs[0].length == pytest.approx(4.0)
    assert np.isnan(segs[0].tortuosity)


def test_statistics_summary():
    s = graph_statistics(y_graph())
    assert s["nodes"] == 7 and s["edges"] == 5
    assert s["branch_points"] == 1 and s["endpoints"] == 5 and s["components"] == 2
    assert s["total_length"] == pytest.approx(3 + 8 + 3 + 12 + 5)
    assert s["segments"] == 4


def test_empty_graph_statistics():
    s = graph_statistics(VesselGraph.empty(3))
    assert s["nodes"] == 0 and s["components"] == 0 and s["total_length"] == 0.0


def test_edge_segment_labels_cover_all_edges():
    m = morphometrics(y_graph())
    assert (m["edges"]["segment"] >= 0).all()


def test_3d_segments_with_a_branch_a_loop_and_a_zero_length_edge():
    # 3D, anisotropic: a path 0-1-2 to the branch point 2, a loop 2-3-4-2 and a spur 2-5; 6-7 sit on one spot
    nodes = [[0, 0, 0], [0, 0, 4], [0, 3, 4], [1, 3, 4], [1, 4, 4], [0, 3, 9], [5, 5, 5], [5, 5, 5]]
    g = VesselGraph(np.array(nodes, float), [[0, 1], [1, 2], [2, 3], [3, 4], [4, 2], [2, 5], [6, 7]], scale=(3, 2, 1))
    segs = segments(g)
    by_edges = {tuple(sorted(s.edges)): s for s in segs}
    assert set(by_edges) == {(0, 1), (2, 3, 4), (5,), (6,)}
    assert by_edges[(0, 1)].length == pytest.approx(4 + 6) and by_edges[(0, 1)].chord == pytest.approx(np.hypot(6, 4))
    loop = by_edges[(2, 3, 4)]
    assert loop.nodes[0] == loop.nodes[-1] == 2 and np.isnan(loop.tortuosity)
    assert loop.length == pytest.approx(3 + 2 + np.hypot(3, 2))
    assert by_edges[(6,)].length == 0.0 and by_edges[(6,)].nodes in ([6, 7], [7, 6])
    m = morphometrics(g)
    assert (m["edges"]["segment"] >= 0).all() and m["nodes"]["is_branch_point"].tolist()[2]
