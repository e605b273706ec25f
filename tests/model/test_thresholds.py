"""Threshold selection runs the clean-up inference runs (model.thresholds), in training and adaptation."""

import numpy as np
import pytest

from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference import postprocess
from napari_vesselgraph.metrics import evaluate
from napari_vesselgraph.model import thresholds as TH
from napari_vesselgraph.model.predictor import candidates_to_graph


def _candidates(seed=0, n=14):
    """Candidates of a patch: a chain along a line (true nodes and edges) among weaker false ones."""
    rng = np.random.default_rng(seed)
    nodes = np.stack([np.full(n, 20.0) + rng.normal(0, 0.3, n), np.linspace(2, 60, n)], 1)
    score = np.concatenate([rng.uniform(0.45, 0.95, n - 4), rng.uniform(0.05, 0.45, 4)])
    edges = np.array([(i, i + 1) for i in range(n - 1)] + [(0, 5), (2, 9), (3, n - 1)])
    escore = np.concatenate([rng.uniform(0.25, 0.9, n - 1), rng.uniform(0.05, 0.6, 3)])
    cand = {"nodes": nodes, "node_score": score, "radius": np.full(n, 2.0), "edges": edges, "edge_score": escore}
    gt = VesselGraph(nodes[: n - 4], np.array([(i, i + 1) for i in range(n - 5)]))
    return cand, gt


def test_a_patch_as_a_raw_graph_finishes_like_candidates_to_graph_with_the_clean_up_off():
    cand, _ = _candidates()
    for nt, et in [(0.3, 0.3), (0.5, 0.5), (0.7, 0.3)]:
        a = postprocess.finish_graph(TH.candidates_to_raw(cand), nt, et, **postprocess.OFF)
        b = candidates_to_graph(cand, nt, et)
        np.testing.assert_allclose(a.nodes, b.nodes)
        assert {tuple(sorted(e)) for e in a.edges.tolist()} == {tuple(sorted(e)) for e in b.edges.tolist()}


@pytest.mark.parametrize("cleanup", [None, {**postprocess.DEFAULTS, "spacing": 0.0, "link_threshold": None}])
def test_the_chosen_pair_is_the_best_of_what_inference_would_return(cleanup):
    pairs = [_candidates(s) for s in range(3)]
    cands, gts = [c for c, _ in pairs], [g for _, g in pairs]
    settings = TH.cleanup_settings() if cleanup is None else cleanup
    nt, et, m = TH.select_thresholds(cands, gts, cleanup=cleanup, shapes=[(64, 64)] * 3)

    def expected(n, e, groups):
        rows = [
            evaluate(postprocess.finish_graph(TH.candidates_to_raw(c), n, e, **settings), g, radius=3.0,
                     metrics=groups, image_shape=(64, 64), smd_points=200)
            for c, g in zip(cands, gts)
        ]  # fmt: skip
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    scores = {(n, e): TH.score(expected(n, e, ["prf"])) for n in TH.THRESHOLD_GRID[0] for e in TH.THRESHOLD_GRID[1]}
    assert scores[(nt, et)] == pytest.approx(max(scores.values()))
    want = expected(nt, et, ["prf", "smd"])
    for k in ("node_f1", "edge_f1", "smd"):
        assert m[k] == pytest.approx(want[k])
    assert m["score"] == pytest.approx(TH.score(want)) and (m["node_threshold"], m["edge_threshold"]) == (nt, et)
    # no sweep: the default pair
    n0, e0, _ = TH.select_thresholds(cands, gts, cleanup=cleanup, sweep=False, default=(0.6, 0.7))
    assert (n0, e0) == (0.6, 0.7)


def test_cleanup_settings_are_the_checkpoints():
    assert TH.cleanup_settings() == postprocess.DEFAULTS
    assert TH.cleanup_settings({"postprocess": {"spacing": 0.0}})["spacing"] == 0.0


@pytest.fixture
def finish_calls(monkeypatch):
    calls = []
    real = postprocess.finish_graph

    def spy(raw, nt, et, **kw):
        calls.append(kw)
        return real(raw, nt, et, **kw)

    monkeypatch.setattr(postprocess, "finish_graph", spy)
    return calls


def test_training_validation_finishes_patches_as_inference_does(finish_calls):
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.model import train as T
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.data import validation_set
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.preprocess import input_meta

    tiny = {"patch_size": [32, 32], "backbone_channels": [8, 16, 32], "stride": 4, "hidden": 32, "heads": 2,
            "ffn": 64, "query_grid": [4, 4], "enc_layers": 1, "dec_layers": 1}  # fmt: skip
    torch.manual_seed(0)
    model = Relationformer(ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **tiny}))
    cfg = T.TrainConfig(image_shape=[64, 64], val_images=1, val_patches=3)
    vs = validation_set(cfg, model.cfg, input_meta(2, 1))
    m = T.validate(model, vs, cfg, torch.device("cpu"))
    grid = len(TH.THRESHOLD_GRID[0]) * len(TH.THRESHOLD_GRID[1])
    extra = 1 if "at_default" in m else 0
    assert len(finish_calls) == len(vs) * (grid + 1 + extra)
    assert all(kw == postprocess.DEFAULTS for kw in finish_calls)
    assert {"node_f1", "edge_f1", "score", "node_threshold", "edge_threshold"} <= set(m)
