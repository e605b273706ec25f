"""Adaptation's held-out selection finishes graphs as inference does (model.thresholds)."""

import pytest

pytest.importorskip("torch")

from napari_vesselgraph.inference import postprocess


@pytest.fixture
def finish_calls(monkeypatch):
    calls = []
    real = postprocess.finish_graph

    def spy(raw, nt, et, **kw):
        calls.append(kw)
        return real(raw, nt, et, **kw)

    monkeypatch.setattr(postprocess, "finish_graph", spy)
    return calls


def test_adaptation_selects_with_the_checkpoints_clean_up(finish_calls, tiny_checkpoint, fundus_folder):
    from napari_vesselgraph.adapt.data import TargetSample
    from napari_vesselgraph.adapt.loop import evaluate_heldout
    from napari_vesselgraph.checkpoints import load_checkpoint
    from napari_vesselgraph.synth import read_dataset

    model, meta = load_checkpoint(tiny_checkpoint)
    meta = {**meta, "postprocess": {"spacing": 0.0, "dedupe_radius": 2.0}}
    rec = read_dataset(fundus_folder, split="train")[0]
    out = evaluate_heldout(model, meta, [TargetSample(rec.id, rec.seed, rec.image, rec.graph)], "cpu", sweep=False)
    assert out["n"] == 1 and (out["node_threshold"], out["edge_threshold"]) == (0.5, 0.5)
    assert finish_calls and all(kw["spacing"] == 0.0 and kw["dedupe_radius"] == 2.0 for kw in finish_calls)
