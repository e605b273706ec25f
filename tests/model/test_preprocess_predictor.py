import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.preprocess import normalize_image


def test_normalize_grey():
    img = np.arange(100, dtype=np.uint16).reshape(10, 10) * 10
    out = normalize_image(img, {"ndim": 2, "channels": 1})
    assert out.shape == (1, 10, 10) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0


def test_normalize_rgb_to_grey_and_back():
    rng = np.random.default_rng(0)
    rgb = rng.random((12, 14, 3)).astype(np.float32)
    g = normalize_image(rgb, {"ndim": 2, "channels": 1})
    assert g.shape == (1, 12, 14)
    c = normalize_image(rgb, {"ndim": 2, "channels": 3})
    assert c.shape == (3, 12, 14)
    c2 = normalize_image(np.moveaxis(rgb, -1, 0), {"ndim": 2, "channels": 3})
    assert np.allclose(c, c2)
    grey3 = normalize_image(rgb[..., 0], {"ndim": 2, "channels": 3})
    assert grey3.shape == (3, 12, 14)
    rgba = np.concatenate([rgb, np.ones((12, 14, 1), np.float32)], -1)
    assert normalize_image(rgba, {"ndim": 2, "channels": 3}).shape == (3, 12, 14)


def test_normalize_3d_and_errors():
    vol = np.random.default_rng(1).random((6, 7, 8))
    assert normalize_image(vol, {"ndim": 3, "channels": 1}).shape == (1, 6, 7, 8)
    with pytest.raises(VesselGraphError):
        normalize_image(np.zeros((4, 5, 6, 7, 8)), {"ndim": 3, "channels": 1})
    flat = normalize_image(np.full((5, 5), 3.0), {"ndim": 2, "channels": 1})
    assert np.isfinite(flat).all()


def test_select_device():
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.model.predictor import select_device

    assert isinstance(select_device("auto"), torch.device)
    assert select_device("cpu").type == "cpu"
    with pytest.raises(VesselGraphError):
        select_device("nonsense-device")
    if not torch.cuda.is_available():
        with pytest.raises(VesselGraphError):
            select_device("cuda")


def test_predictor_outputs():
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.predictor import PatchPredictor, candidates_to_graph

    torch.manual_seed(0)
    cfg = ModelConfig(ndim=2, patch_size=32, backbone_channels=(8, 16, 32), hidden=32, heads=2, ffn=64, query_grid=4)
    pred = PatchPredictor(Relationformer(cfg), {"input": {"ndim": 2, "channels": 1}}, device="cpu")
    assert pred.ndim == 2 and pred.patch_size == (32, 32) and pred.channels == 1
    img = pred.prepare(np.random.default_rng(0).random((40, 50)))
    assert img.shape == (1, 40, 50)
    out = pred.predict_batch(np.stack([img[:, :32, :32], img[:, 8:40, 10:42]]))
    assert len(out) == 2
    for r in out:
        k = len(r["nodes"])
        assert r["nodes"].shape == (k, 2) and r["node_score"].shape == (k,) and r["radius"].shape == (k,)
        assert (r["node_score"] >= 0.05).all()
        assert r["edges"].shape[1] == 2 and len(r["edge_score"]) == len(r["edges"])
        if len(r["edges"]):
            assert r["edges"].max() < k and (r["edge_score"] >= 0.05).all()
        g = candidates_to_graph(r, 0.0, 0.0)
        assert g.n_nodes == k
    with pytest.raises(VesselGraphError):
        pred.predict_batch(np.zeros((1, 1, 16, 16), np.float32))
