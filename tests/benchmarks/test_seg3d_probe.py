"""benchmarks/seg3d_probe.py (a feasibility probe): its tube target follows the graph, its sliding-window
prediction covers stacks smaller and larger than a patch and returns their shape, the graph of a perfect
probability map is the ground truth, missing data and a wrong command line are one line and a non-zero exit
(none of these need ../shared)."""

import numpy as np
import pytest
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
    mask = probe.target(g, (16, 40, 64)) >= 0.5
    q = length_metrics(mask_to_graph(mask), g, tol=3.0)["length_quality"]
    assert q > 0.9


def test_missing_data_is_one_line_and_a_nonzero_exit(load_bench, monkeypatch, tmp_path):
    probe = load_bench("seg3d_probe")
    rd = load_bench("real_data")
    monkeypatch.setattr(probe, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match=r"^seg3d_probe: runs/data/diadem-op1, .* not found"):
        probe.main(tmp_path / "out", 0.1)
    monkeypatch.setattr(rd, "DATA", tmp_path / "nothing")
    with pytest.raises(SystemExit, match=r"^seg3d_probe: diadem: skipped, .* not found"):
        probe.evaluate(tmp_path / "net.safetensors")


def test_a_wrong_command_line_is_a_usage_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "seg3d_probe.py"
    r = subprocess.run([sys.executable, str(script), "eval"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "usage" in r.stderr
