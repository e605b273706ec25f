"""crop_patch / random_patches: border nodes where edges leave the patch, 2D and 3D."""

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.synth import crop_patch, make_sample, random_patches


def _line_graph(a, b, ra=1.0, rb=3.0, **kw):
    return VesselGraph(np.array([a, b], float), np.array([[0, 1]]), {"radius": np.array([ra, rb])}, **kw)


def test_edge_leaving_patch_gets_node_on_border_2d():
    g = _line_graph((10, 10), (10, 30))
    image = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    patch, pg = crop_patch(image, g, (0, 0), 20)
    assert patch.shape == (20, 20) and np.array_equal(patch, image[:20, :20])
    assert pg.n_nodes == 2 and pg.n_edges == 1
    assert np.allclose(pg.nodes[0], (10, 10))
    assert np.allclose(pg.nodes[1], (10, 19))  # exactly on the last pixel column of the patch
    assert np.isclose(pg.node_attrs["radius"][1], 1.0 + 2.0 * 9 / 20)
    assert pg.metadata["patch_origin"] == [0, 0] and pg.metadata["patch_size"] == [20, 20]


def test_patch_coordinates_are_relative_and_enter_side():
    g = _line_graph((10, 2), (10, 30))
    _, pg = crop_patch(np.zeros((40, 40)), g, (5, 6), (10, 10))
    # box y 5..14, x 6..15; the edge enters at x = 6 and leaves at x = 15
    assert pg.n_nodes == 2 and pg.n_edges == 1
    got = sorted(map(tuple, np.round(pg.nodes, 9)))
    assert got == [(5.0, 0.0), (5.0, 9.0)]


def test_edge_passing_through_and_outside():
    g = VesselGraph(
        np.array([[5, -10], [5, 40], [30, 30], [35, 35], [19, 19], [19, 25]], float),
        np.array([[0, 1], [2, 3], [4, 5]]),
        {"radius": np.ones(6)},
    )
    _, pg = crop_patch(np.zeros((50, 50)), g, (0, 0), 20)
    # through-edge -> two border nodes; outside edge dropped; corner node stays, its outgoing edge is cut at
    # the node itself (no duplicate node)
    pts = sorted(map(tuple, np.round(pg.nodes, 9)))
    assert pts == [(5.0, 0.0), (5.0, 19.0), (19.0, 19.0)]
    assert pg.n_edges == 1


def test_edge_leaving_patch_gets_node_on_border_3d():
    g = _line_graph((4, 4, 4), (4, 4, 30), 2.0, 2.0, scale=(2.0, 0.5, 0.5))
    vol = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32)
    patch, pg = crop_patch(vol, g, (0, 0, 0), 16)
    assert patch.shape == (16, 16, 16) and np.array_equal(patch, vol[:16, :16, :16])
    assert np.allclose(sorted(map(tuple, pg.nodes)), [(4, 4, 4), (4, 4, 15)])
    assert pg.scale == (2.0, 0.5, 0.5)
    # a diagonal edge through a corner region leaves through the face it reaches first
    g2 = _line_graph((10, 10, 10), (20, 30, 12))
    _, pg2 = crop_patch(vol, g2, (0, 0, 0), 16)
    assert pg2.n_nodes == 2 and np.isclose(pg2.nodes[:, 1].max(), 15.0)


def test_channels_and_padding():
    img = np.ones((30, 30, 3), np.float32)
    g = _line_graph((25, 25), (29, 29))
    patch, pg = crop_patch(img, g, (20, 20), 16)
    assert patch.shape == (16, 16, 3)
    assert patch[:10, :10].min() == 1 and patch[10:].max() == 0  # outside the image: zeros
    assert pg.n_nodes == 2 and np.allclose(pg.nodes, [(5, 5), (9, 9)])
    with pytest.raises(VesselGraphError):
        crop_patch(np.zeros((4, 4, 4, 4)), g, (0, 0), 2)
    with pytest.raises(VesselGraphError):
        crop_patch(img, g, (0, 0, 0), 8)


def _clipped_length(graph, origin, size, samples=2001):
    lo = np.asarray(origin, float)
    hi = lo + np.asarray(size) - 1
    t = np.linspace(0, 1, samples)[None, :, None]
    a = graph.nodes[graph.edges[:, 0]][:, None]
    b = graph.nodes[graph.edges[:, 1]][:, None]
    pts = a + t * (b - a)
    inside = np.all((pts >= lo) & (pts <= hi), -1)
    return float((inside.mean(1) * np.linalg.norm(b - a, axis=-1)[:, 0]).sum())


@pytest.mark.parametrize("domain,size", [("vessel2d-fluo", 48), ("road-clean", 40), ("vessel3d-lightsheet", 24)])
def test_patch_graph_keeps_everything_inside(domain, size):
    image, graph = make_sample(domain, 1)
    rng = np.random.default_rng(0)
    d = graph.ndim
    for origin in rng.integers(0, np.asarray(image.shape[:d]) - size + 1, size=(5, d)):
        patch, pg = crop_patch(image, graph, origin, size)
        assert patch.shape[:d] == (size,) * d
        assert np.all(pg.nodes >= 0) and np.all(pg.nodes <= size - 1)
        expected = _clipped_length(graph, origin, (size,) * d)
        assert abs(pg.edge_lengths(physical=False).sum() - expected) < 0.01 * max(expected, 1.0) + 0.05
        inside = np.all((graph.nodes >= origin) & (graph.nodes <= origin + size - 1), 1)
        assert pg.n_nodes >= inside.sum()


def test_random_patches_prefer_structure():
    image, graph = make_sample("vessel2d-fluo", 2)
    patches = random_patches(image, graph, 32, 6, np.random.default_rng(1), min_nodes=4)
    assert len(patches) == 6
    for patch, pg in patches:
        assert patch.shape == (32, 32)
        assert pg.n_nodes >= 4
        assert np.all(pg.nodes >= 0) and np.all(pg.nodes <= 31)
    again = random_patches(image, graph, 32, 6, np.random.default_rng(1), min_nodes=4)
    assert all(np.array_equal(p1, p2) for (p1, _), (p2, _) in zip(patches, again))
