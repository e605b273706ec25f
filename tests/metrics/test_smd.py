import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import smd

from .helpers import graph, grid_network, polyline, shifted, square


def test_identical_graphs_have_zero_smd():
    g = grid_network(n_side=10, seed=2)
    assert smd(g, g) == 0.0


@pytest.mark.parametrize("d", [0.5, 2.0, 7.0])
def test_parallel_segment_shifted_by_d(d):
    g = polyline([[0, 0], [0, 10]])
    assert smd(shifted(g, [d, 0]), g) == pytest.approx(d, abs=1e-9)


def test_normalised_by_image_shape():
    g = polyline([[0, 0], [0, 10]])
    assert smd(shifted(g, [2.0, 0]), g, image_shape=(100, 50)) == pytest.approx(0.02)
    assert smd(shifted(g, [0, 2.0]), g, image_shape=(100, 50)) == pytest.approx(0.04, abs=1e-3)
    # RGB shape (Y, X, C): the channel axis is ignored
    assert smd(shifted(g, [2.0, 0]), g, image_shape=(100, 50, 3)) == pytest.approx(0.02)
    with pytest.raises(VesselGraphError):
        smd(g, g, image_shape=(100,))


def test_independent_of_node_density():
    coarse = polyline([[0, 0], [0, 30]])
    fine = polyline(np.stack([np.zeros(31), np.arange(31.0)], 1))
    assert smd(fine, coarse) == pytest.approx(0.0, abs=1e-9)


def test_symmetric_and_3d():
    a = polyline([[0, 0, 0], [0, 0, 10], [0, 10, 10]])
    b = polyline([[1, 0, 0], [1, 0, 12]])
    assert smd(a, b, n_points=300) == pytest.approx(smd(b, a, n_points=300))
    assert smd(shifted(a, [0, 0, 3.0]), a, n_points=300) > 0
    assert smd(shifted(a, [3.0, 0, 0]), a, n_points=300) == pytest.approx(3.0)


def test_half_missing_costs_transport():
    # prediction covers only the first half of a 20 px line: uniform on [0, 10] vs uniform on
    # [0, 20]; the monotone plan x -> 2x moves mass by x on average -> W1 = 5
    gt = polyline([[0, 0], [0, 20]])
    pred = polyline([[0, 0], [0, 10]])
    assert smd(pred, gt, n_points=400) == pytest.approx(5.0, abs=1e-9)


def test_empty_cases():
    g = square(side=10.0)
    e = VesselGraph.empty()
    assert smd(e, e) == 0.0
    # largest possible distance: diagonal of the box spanned by the origin and the graph
    assert smd(e, g) == pytest.approx(np.hypot(10, 10))
    assert smd(g, e) == pytest.approx(np.hypot(10, 10))
    assert smd(e, g, image_shape=(64, 64)) == pytest.approx(np.sqrt(2))
    # a graph of lone nodes is a point cloud
    assert smd(graph([[0, 0]]), graph([[0, 3]])) == pytest.approx(3.0)
