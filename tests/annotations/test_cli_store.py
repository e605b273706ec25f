"""`vesselgraph evaluate --dataset` reads an annotation store like any dataset folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_vesselgraph.annotations import AnnotationStore
from napari_vesselgraph.cli import main
from napari_vesselgraph.synth import crop_patch, make_sample


@pytest.fixture
def store_dir(tmp_path):
    image, graph = make_sample("vessel2d-fluo", 3, (128, 128))
    s = AnnotationStore.create(tmp_path / "ann", ndim=2, channels=1, source_image="synthetic")
    for origin in ((0, 0), (64, 64)):
        patch, local = crop_patch(image, graph, origin, (64, 64))
        s.add_patch(patch, origin, local)
    return tmp_path / "ann"


@pytest.mark.parametrize("method", ["skeleton", "model"])
def test_evaluate_a_store(store_dir, method, capsys):
    args = ["evaluate", "--dataset", str(store_dir), "--method", method, "--json", "--device", "cpu"]
    if method == "model":
        args += ["--checkpoint", "vessel2d-fluo"]
    assert main(args) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 2
    for key in ("node_f1", "edge_f1", "smd", "node_f1_std"):
        assert np.isfinite(scores[key])
    assert 0.0 <= scores["node_f1"] <= 1.0


def test_evaluate_split_and_argument_errors(store_dir, capsys):
    AnnotationStore.open(store_dir).assign_splits(0.5)
    assert main(["evaluate", "--dataset", str(store_dir), "--method", "skeleton", "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1
    assert main(["evaluate", "--dataset", str(store_dir), "--split", "test"]) == 2
    assert "no samples" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "--dataset" in capsys.readouterr().err
