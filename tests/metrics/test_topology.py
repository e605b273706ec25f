import numpy as np

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import betti_errors, betti_numbers
from napari_vesselgraph.metrics._geometry import to_arrays
from napari_vesselgraph.metrics.topology import _betti, clip_to_box

from .helpers import graph, grid_network, polyline, square


def test_betti_numbers_hand_cases():
    assert betti_numbers(square()) == (1, 1)
    assert betti_numbers(polyline([[0, 0], [0, 10], [10, 10], [10, 0]])) == (1, 0)
    two_squares = graph(
        np.concatenate([square().nodes, square(origin=(20, 0)).nodes]),
        np.concatenate([square().edges, square().edges + 4]),
    )
    assert betti_numbers(two_squares) == (2, 2)
    assert betti_numbers(graph([[0, 0], [5, 5]])) == (2, 0)  # isolated nodes are components
    assert betti_numbers(VesselGraph.empty()) == (0, 0)
    # a duplicate edge and a self loop do not make cycles
    assert betti_numbers(graph([[0, 0], [0, 1]], [[0, 1], [1, 0], [1, 1]])) == (1, 0)


def test_square_vs_path():
    sq = square()
    path = polyline([[0, 0], [0, 10], [10, 10], [10, 0]])
    r = betti_errors(path, sq)
    assert r == {"betti0_error": 0.0, "betti1_error": 1.0}
    r = betti_errors(sq, sq)
    assert r == {"betti0_error": 0.0, "betti1_error": 0.0}
    # the path broken in two
    broken = graph(path.nodes, [[0, 1], [2, 3]])
    assert betti_errors(broken, sq) == {"betti0_error": 1.0, "betti1_error": 1.0}


def test_clipping_cuts_edges_at_the_border():
    a = to_arrays(square())
    # keep y <= 5: the square becomes a U-shaped path (2 inside nodes + 2 border nodes)
    n, e = clip_to_box(a, np.array([-1.0, -1.0]), np.array([5.0, 11.0]))
    assert (n, len(e)) == (4, 3)
    assert _betti(n, e) == (1, 0)
    # keep a band x in [-1, 5] that splits the square... band y in [3, 7] keeps two vertical pieces
    n, e = clip_to_box(a, np.array([3.0, -1.0]), np.array([7.0, 11.0]))
    assert _betti(n, e) == (2, 0)
    # whole graph inside: unchanged
    n, e = clip_to_box(a, np.array([-1.0, -1.0]), np.array([11.0, 11.0]))
    assert (n, len(e)) == (4, 4)
    # box away from everything: empty
    n, e = clip_to_box(a, np.array([20.0, 20.0]), np.array([30.0, 30.0]))
    assert (n, len(e)) == (0, 0)


def test_clipping_3d_edge_crossing_box():
    a = to_arrays(polyline([[5, 5, -10], [5, 5, 20]]))
    n, e = clip_to_box(a, np.zeros(3), np.full(3, 10.0))
    assert (n, len(e)) == (2, 1)


def test_patch_betti_errors():
    sq = square()
    path = polyline([[0, 0], [0, 10], [10, 10], [10, 0]])
    # a patch larger than the domain sees the whole graphs
    r = betti_errors(path, sq, patch_size=100, n_patches=5, image_shape=(20, 20))
    assert r["betti1_error_patch"] == 1.0 and r["betti0_error_patch"] == 0.0
    g = grid_network(n_side=10, seed=0)
    r = betti_errors(g, g, patch_size=30, n_patches=20, seed=1)
    assert r["betti0_error_patch"] == 0.0 and r["betti1_error_patch"] == 0.0
    r2 = betti_errors(g, g.subgraph(np.arange(g.n_nodes) % 3 != 0), patch_size=30, n_patches=20, seed=1)
    assert r2["betti0_error_patch"] > 0
    assert r2 == betti_errors(g, g.subgraph(np.arange(g.n_nodes) % 3 != 0), patch_size=30, n_patches=20, seed=1)


def test_3d_betti():
    cube_edges = [[0, 1], [1, 3], [3, 2], [2, 0], [4, 5], [5, 7], [7, 6], [6, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
    pts = [[z, y, x] for z in (0, 10) for y in (0, 10) for x in (0, 10)]
    cube = graph(pts, cube_edges)
    assert betti_numbers(cube) == (1, 5)  # 12 - 8 + 1
    # first 7 edges: the closed bottom square and an open top one -> b0 = 2, b1 = 7 - 8 + 2 = 1
    assert betti_errors(graph(pts, cube_edges[:7]), cube) == {"betti0_error": 1.0, "betti1_error": 4.0}
