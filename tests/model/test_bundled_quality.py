"""The bundled 2D model must actually find vessels (a quick check on a few held-out patches)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
synth = pytest.importorskip("napari_vesselgraph.synth")

from napari_vesselgraph import checkpoints as ck

if "vessel2d-fluo" not in [e["name"] for e in ck.list_bundled()]:
    pytest.skip("no bundled vessel2d-fluo model", allow_module_level=True)


def _patches(n_images: int, per_image: int, seed0: int):
    from napari_vesselgraph.model.predictor import make_predictor

    pred = make_predictor("vessel2d-fluo", device="cpu")
    rng = np.random.default_rng(0)
    out = []
    for k in range(n_images):
        img, g = synth.make_sample("vessel2d-fluo", seed0 + k, shape=(128, 128))
        x = pred.prepare(img)
        for _ in range(per_image):
            o = tuple(int(v) for v in rng.integers(0, 128 - 64 + 1, size=2))
            _, pg = synth.crop_patch(x[0], g, o, (64, 64))
            out.append((x[:, o[0] : o[0] + 64, o[1] : o[1] + 64], pg))
    return pred, out


def _score(pred, patches):
    from napari_vesselgraph.metrics import evaluate
    from napari_vesselgraph.model.predictor import candidates_to_graph

    cands = pred.predict_batch(np.stack([p for p, _ in patches]))
    rows = [
        evaluate(candidates_to_graph(c, pred.node_threshold, pred.edge_threshold), gt, metrics=["prf"])
        for c, (_, gt) in zip(cands, patches)
    ]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("node_f1", "edge_f1")}


def test_bundled_model_finds_vessels():
    # seeds 10_000_000+ are the test seeds: never seen in training or validation
    pred, patches = _patches(2, 4, 10_000_000)
    s = _score(pred, patches)
    assert s["node_f1"] > 0.6, s
    assert s["edge_f1"] > 0.3, s


@pytest.mark.slow
def test_bundled_model_quality_slow():
    pred, patches = _patches(12, 6, 10_000_100)
    s = _score(pred, patches)
    assert s["node_f1"] > 0.75, s
    assert s["edge_f1"] > 0.45, s
