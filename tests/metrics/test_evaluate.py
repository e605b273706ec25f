import math
import time

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.metrics import DENSITY_DEPENDENT, GROUPS, LOWER_IS_BETTER, aggregate, evaluate, format_table

from .helpers import grid_network, polyline, shifted, square

KEYS = {
    "node_precision", "node_recall", "node_f1", "edge_precision", "edge_recall", "edge_f1",
    "node_mAP", "node_AP50", "edge_mAP", "edge_AP50", "smd", "apls", "topo_precision", "topo_recall",
    "topo_f1", "betti0_error", "betti1_error", "length_completeness", "length_correctness", "length_quality",
    "junction_precision", "junction_recall", "junction_f1",
}


def _assert_perfect(r):
    for k, v in r.items():
        assert v == pytest.approx(0.0 if k in LOWER_IS_BETTER else 1.0), k


def test_keys_and_identical_graphs_2d():
    g = grid_network(n_side=12, seed=0)
    r = evaluate(g, g)
    assert set(r) == KEYS
    assert all(isinstance(v, float) for v in r.values())
    _assert_perfect(r)
    assert DENSITY_DEPENDENT <= set(r)
    assert "smd" not in DENSITY_DEPENDENT and "length_quality" not in DENSITY_DEPENDENT


def test_identical_graphs_3d():
    g = grid_network(n_side=5, seed=0, ndim=3)
    r = evaluate(g, g, betti_patch_size=20, image_shape=(50, 50, 50))
    assert set(r) == KEYS | {"betti0_error_patch", "betti1_error_patch"}
    _assert_perfect(r)


def test_shift_by_one_pixel():
    g = square(side=20.0)
    r = evaluate(shifted(g, [1.0, 0]), g, radius=3.0)
    for k in ("node_f1", "edge_f1", "node_AP50", "edge_AP50", "topo_f1", "length_quality"):
        assert r[k] == 1.0, k
    assert r["smd"] == pytest.approx(1.0)
    assert r["betti0_error"] == 0.0 and r["betti1_error"] == 0.0
    r = evaluate(shifted(g, [1.0, 0]), g, radius=0.5)
    assert r["node_f1"] == 0.0 and r["edge_f1"] == 0.0
    assert r["length_quality"] < 1.0 and r["topo_f1"] < 1.0


def test_empty_prediction_does_not_crash():
    g = grid_network(n_side=6, seed=0)
    r = evaluate(VesselGraph.empty(), g)
    assert set(r) == KEYS
    for k in ("node_recall", "edge_recall", "node_precision", "node_mAP", "edge_mAP", "apls", "topo_recall",
              "length_completeness", "length_quality"):
        assert r[k] == 0.0, k
    assert r["smd"] > 0 and math.isfinite(r["smd"])
    r = evaluate(VesselGraph.empty(), VesselGraph.empty())
    _assert_perfect(r)
    # a 2D empty graph against a 3D one
    r = evaluate(VesselGraph.empty(), grid_network(n_side=3, ndim=3))
    assert r["node_recall"] == 0.0


def test_density_dependence_is_real():
    coarse = polyline([[0, 0], [0, 40]])
    fine = polyline(np.stack([np.zeros(21), np.linspace(0, 40, 21)], 1))
    r = evaluate(fine, coarse)
    assert r["node_precision"] < 0.2  # counts nodes
    assert r["smd"] == pytest.approx(0.0, abs=1e-9)
    for k in ("apls", "topo_f1", "length_quality"):
        assert r[k] == pytest.approx(1.0), k
    assert r["betti0_error"] == 0.0 and r["betti1_error"] == 0.0


def test_options():
    g = square()
    r = evaluate(g, g, metrics=["prf", "smd"])
    assert set(r) == {"node_precision", "node_recall", "node_f1", "edge_precision", "edge_recall", "edge_f1", "smd"}
    assert set(evaluate(g, g, metrics="betti")) == {"betti0_error", "betti1_error"}
    with pytest.raises(VesselGraphError, match="unknown evaluate option"):
        evaluate(g, g, raduis=2)
    with pytest.raises(VesselGraphError, match="unknown metric group"):
        evaluate(g, g, metrics=["nope"])
    with pytest.raises(VesselGraphError):
        evaluate(g, g, radius=-1)
    r = evaluate(shifted(g, [2.0, 0]), g, metrics=["smd"], image_shape=(100, 100))
    assert r["smd"] == pytest.approx(0.02)
    assert set(GROUPS) == {"prf", "map", "smd", "apls", "topo", "betti", "length", "junctions"}


def test_physical_units():
    g = VesselGraph(square().nodes, square().edges, scale=(2.0, 2.0))
    s = VesselGraph(g.nodes + [1.0, 0], g.edges, scale=(2.0, 2.0))  # 1 px = 2 um
    assert evaluate(s, g, radius=1.5, metrics="prf")["node_f1"] == 1.0
    assert evaluate(s, g, radius=1.5, metrics="prf", physical=True)["node_f1"] == 0.0
    assert evaluate(s, g, metrics="smd", physical=True)["smd"] == pytest.approx(2.0)


def test_deterministic():
    g = grid_network(n_side=10, seed=0)
    pred = shifted(g.subgraph(np.arange(g.n_nodes) % 4 != 0), [0.7, -0.4])
    assert evaluate(pred, g, seed=5) == evaluate(pred, g, seed=5)


def test_two_thousand_nodes_is_fast():
    gt = grid_network(n_side=45, seed=0)  # 2025 nodes
    rng = np.random.default_rng(1)
    pred = VesselGraph(gt.nodes + rng.normal(0, 1.0, gt.nodes.shape), gt.edges[rng.random(gt.n_edges) > 0.1])
    evaluate(pred, gt, metrics="prf")  # imports
    t0 = time.perf_counter()
    r = evaluate(pred, gt)
    elapsed = time.perf_counter() - t0
    assert 0.9 < r["node_f1"] < 1.0 and 0.8 < r["length_quality"] < 1.0
    assert elapsed < 15.0  # ~1 s on an idle core; generous for shared CI machines


def test_aggregate():
    rows = [
        {"method": "m", "domain": "a", "node_f1": 0.5, "smd": 1.0},
        {"method": "m", "domain": "b", "node_f1": 1.0, "smd": float("nan")},
        {"method": "m", "domain": "c", "node_f1": 0.0, "smd": 3.0},
    ]
    a = aggregate(rows)
    assert a["method"] == "m" and "domain" not in a
    assert a["node_f1"] == pytest.approx(0.5) and a["node_f1_std"] == pytest.approx(0.5)
    assert a["smd"] == pytest.approx(2.0) and a["smd_std"] == pytest.approx(np.sqrt(2))
    assert a["n"] == 3
    one = aggregate([{"x": 2.0}])
    assert one == {"x": 2.0, "x_std": 0.0, "n": 1}


def test_format_table():
    rows = [
        {"domain": "roads", "method": "model", "node_f1": 0.91234, "smd": 0.5},
        aggregate([{"method": "skel", "node_f1": 0.5, "smd": 1.0}, {"method": "skel", "node_f1": 0.7, "smd": 1.0}]),
    ]
    t = format_table(rows)
    lines = t.strip().splitlines()
    assert lines[0] == "| method | domain | node_f1* | smd | n |"
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    assert lines[2] == "| model | roads | 0.912 | 0.500 | n/a |"
    assert lines[3] == "| skel | n/a | 0.600 ± 0.141 | 1.000 ± 0.000 | 2 |"
    assert "depends on node density" in t
    t = format_table(rows, columns=["method", "smd"], digits=2, note=False)
    assert t.splitlines() == ["| method | smd |", "| --- | --- |", "| model | 0.50 |", "| skel | 1.00 ± 0.00 |"]
