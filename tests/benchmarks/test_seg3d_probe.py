"""benchmarks/seg3d_probe.py (a feasibility probe): its tube target follows the graph, its sliding-window
prediction covers stacks smaller and larger than a patch and returns their shape, and the graph of a perfect
probability map is the ground truth (none of these need ../shared)."""

import numpy as np
import torch


def test_target_is_a_tube_around_the_graph(load_bench):
    probe = load_bench("seg3d_probe")
    from napari_vesselgraph.graph import VesselGraph

    g = VesselGraph(np.array([[5.0, 10, 4], [5, 10, 28]]), np.array([[0, 1]]))
    t = probe.target(g, (10, 20, 32))
    assert t.shape == (10, 20, 32)
    assert t[5, 10, 4:29].all()  # on the centre line
    assert t[5, 11, 16] and not t[5, 13, 16] and not t[8, 10, 16]  # radius 1.5 px
    assert probe.target(VesselGraph(np.zeros((0, 3)), np.zeros((0, 2), int)), (4, 5, 6)).sum() == 0


def test_sliding_window_covers_any_stack_shape(load_bench):
    probe = load_bench("seg3d_probe")
    torch.manual_seed(0)
    net = probe.UNet()
    rng = np.random.default_rng(0)
    for shape in [(9, 40, 50), (30, 70, 90)]:  # thinner than a patch; larger than one in every axis
        img = rng.random(shape).astype(np.float32)
        p = probe.predict_prob(net, img)
        assert p.shape == shape
        assert np.isfinite(p).all() and (p > 0).all() and (p < 1).all()


def test_graph_of_a_perfect_map_matches_the_ground_truth(load_bench):
    probe = load_bench("seg3d_probe")
    from napari_vesselgraph.graph import VesselGraph
    from napari_vesselgraph.importers.masks import mask_to_graph
    from napari_vesselgraph.metrics import length_metrics

    g = VesselGraph(np.array([[8.0, 6, 6], [8, 30, 30], [8, 30, 56]]), np.array([[0, 1], [1, 2]]))
    mask = probe.clean(probe.target(g, (16, 40, 64)) >= 0.5, 64)
    q = length_metrics(mask_to_graph(mask), g, tol=3.0)["length_quality"]
    assert q > 0.9
    assert not probe.clean(probe.target(g, (16, 40, 64)) >= 0.5, 10**6).any()  # smaller than min_size: dropped
