"""predict and a checkpoint's candidate selection (meta['candidates']): recorded, and lowered to a lower threshold."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.inference import predict
from napari_vesselgraph.inference.plan import candidate_kwargs
from napari_vesselgraph.model.config import ModelConfig
from napari_vesselgraph.model.network import Relationformer
from napari_vesselgraph.model.predictor import PatchPredictor

CFG = {"ndim": 2, "patch_size": (32, 32), "backbone_channels": (8, 16, 32), "hidden": 32, "heads": 2, "enc_layers": 1,
       "dec_layers": 1, "ffn": 64, "query_grid": (4, 4)}  # fmt: skip


class Spy(PatchPredictor):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = []

    def predict_batch(self, patches, **kw):
        self.calls.append(kw)
        return super().predict_batch(patches, **kw)


def _spy(meta):
    torch.manual_seed(0)
    return Spy(Relationformer(ModelConfig(**CFG)), {"name": "tiny", **meta}, device="cpu")


def test_candidate_kwargs():
    class NoCandidates:  # a test double that says nothing about candidates gets nothing
        def __init__(self):
            self.meta = {}

    assert candidate_kwargs(NoCandidates(), 0.0) == ({}, {})
    p = _spy({"candidates": {"node_floor": 0.3, "pair_radius": 20}})
    assert candidate_kwargs(p, 0.5) == ({}, {"node_floor": 0.3, "pair_radius": 20.0})
    assert candidate_kwargs(p, 0.1) == ({"node_floor": 0.1}, {"node_floor": 0.1, "pair_radius": 20.0})

    class Client:  # the client side of a cluster run: metadata only, no model
        def __init__(self):
            self.meta = {"candidates": {"node_floor": 0.3}}

    assert candidate_kwargs(Client(), 0.2) == ({"node_floor": 0.2}, {"node_floor": 0.2, "pair_radius": None})


def test_predict_records_and_lowers_the_floor():
    img = (np.random.default_rng(0).random((60, 70)) * 255).astype(np.uint8)
    p = _spy({"candidates": {"node_floor": 0.3, "pair_radius": 12}})
    raw = predict(img, predictor=p, keep_raw=True, zoom=1)
    assert raw.metadata["candidates"] == {"node_floor": 0.3, "pair_radius": 12.0}
    assert p.calls and all(c == {} for c in p.calls)
    assert (np.asarray(raw.node_attrs["confidence"])[~np.asarray(raw.node_attrs["inserted"])] >= 0.3).all()
    p.calls.clear()
    low = predict(img, predictor=p, keep_raw=True, zoom=1, node_threshold=0.1)
    assert all(c == {"node_floor": 0.1} for c in p.calls)
    assert low.metadata["candidates"]["node_floor"] == 0.1 and low.n_nodes >= raw.n_nodes
