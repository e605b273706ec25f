"""Prediction speed-ups that must not change results: the relation head's fast path, the candidate selection of the
patch predictor (node floor, pair radius), batched node refinement, the separable upsampling of local contrast."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.checkpoints import CheckpointMeta, checkpoint_candidates
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.config import ModelConfig
from napari_vesselgraph.model.network import Relationformer
from napari_vesselgraph.model.predictor import PatchPredictor
from napari_vesselgraph.model.refine import refine_nodes, refine_nodes_batch

TINY2 = {"ndim": 2, "patch_size": 32, "backbone_channels": (8, 16, 32), "hidden": 32, "heads": 2, "ffn": 64,
         "query_grid": 4}  # fmt: skip
TINY3 = {"ndim": 3, "patch_size": 16, "backbone_channels": (8, 16, 32), "hidden": 32, "heads": 2, "ffn": 64,
         "query_grid": 2}  # fmt: skip
LINE = {"relation_line": 6, "relation_line_channels": 4}


def _model(kw, seed=0):
    torch.manual_seed(seed)
    m = Relationformer(ModelConfig(**kw))
    # a random model scores every pair near 0.5: spread the scores so that floors and radii matter
    with torch.no_grad():
        m.relation_head.layers[-1].weight.mul_(20.0)
        m.class_head.weight.mul_(20.0)
    return m


def _pairs(n_batch, n):
    iu, ju = torch.triu_indices(n, n, 1)
    bi = torch.arange(n_batch).repeat_interleave(len(iu))
    return bi, iu.repeat(n_batch), ju.repeat(n_batch)


@pytest.mark.parametrize("kw", [TINY2, TINY3, {**TINY2, **LINE}, {**TINY3, **LINE}])
def test_fast_relation_head_is_the_reference(kw):
    """relation_logits (per-token first layer) gives the reference MLP's logits and gradients."""
    m = _model(kw)
    x = torch.rand(2, 1, *ModelConfig(**kw).patch_size)
    bi, i, j = _pairs(2, ModelConfig(**kw).n_queries)
    o = m(x)
    ref = m.relation_logits_reference(o["tokens"], o["rln"], bi, i, j, o)
    g_ref = torch.autograd.grad(ref.square().sum(), list(m.relation_head.parameters()))
    o = m(x)
    fast = m.relation_logits(o["tokens"], o["rln"], bi, i, j, o)
    g_fast = torch.autograd.grad(fast.square().sum(), list(m.relation_head.parameters()))
    assert torch.allclose(fast, ref, atol=1e-4, rtol=1e-5)
    for a, b in zip(g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
    with torch.inference_mode():  # the in-place inference variant
        o = m(x)
        assert torch.allclose(m.relation_logits(o["tokens"], o["rln"], bi, i, j, o), ref.detach(), atol=1e-4)


def test_forward_without_aux_keeps_the_last_layer():
    m = _model({**TINY2, **LINE}).eval()
    x = torch.rand(3, 1, 32, 32)
    with torch.inference_mode():
        full, lean = m(x), m(x, aux=False)
    assert lean["aux"] == [] and lean["dense"] is None and len(full["aux"]) == 1
    for k in ("logits", "pos", "radius", "tokens", "rln", "line"):
        assert torch.equal(full[k], lean[k])


def _predict(model, patches, **candidates):
    return PatchPredictor(model, {}, device="cpu", candidates=candidates or None).predict_batch(patches)


def test_node_floor_and_pair_radius_select_from_the_full_prediction():
    """A floor and a radius keep exactly the candidates and pairs of the full prediction they allow, with the
    same scores: nothing else changes."""
    m = _model({**TINY2, **LINE})
    patches = np.random.default_rng(0).random((3, 1, 32, 32)).astype(np.float32)
    full = _predict(m, patches, node_floor=0.0, pair_radius=None)
    cut = _predict(m, patches, node_floor=0.4, pair_radius=10.0)
    unrefined = PatchPredictor(m, {"node_refinement": False}, candidates={"node_floor": 0.0}).predict_batch(patches)
    n_cut = 0
    for f, c, raw in zip(full, cut, unrefined):
        keep = np.flatnonzero(f["node_score"] >= 0.4)
        assert np.array_equal(c["node_score"], f["node_score"][keep])
        assert np.allclose(c["nodes"], f["nodes"][keep]) and np.array_equal(c["radius"], f["radius"][keep])
        new = {int(k): n for n, k in enumerate(keep)}
        want = {}
        for (a, b), s in zip(f["edges"], f["edge_score"]):
            close = np.linalg.norm(raw["nodes"][a] - raw["nodes"][b]) <= 10.0  # radius on unrefined positions
            if a in new and b in new and close:
                want[(new[a], new[b])] = s
        got = {(int(a), int(b)): s for (a, b), s in zip(c["edges"], c["edge_score"])}
        assert got.keys() == want.keys()
        assert np.allclose([got[k] for k in want], list(want.values()), atol=1e-5)
        n_cut += len(f["edges"]) - len(c["edges"])
    assert n_cut > 0  # the test would not show anything otherwise


def test_candidates_from_the_checkpoint_and_overrides():
    m = _model(TINY2)
    meta = {"candidates": {"node_floor": 0.3, "pair_radius": 20}}
    p = PatchPredictor(m, meta)
    assert (p.node_floor, p.pair_radius) == (0.3, 20.0)
    p = PatchPredictor(m, meta, candidates={"pair_radius": None})
    assert (p.node_floor, p.pair_radius) == (0.3, None)
    p = PatchPredictor(m, {})
    assert (p.node_floor, p.pair_radius) == (0.05, None)
    # predict_batch(node_floor=...) lowers it for one call
    patches = np.random.default_rng(1).random((2, 1, 32, 32)).astype(np.float32)
    low = PatchPredictor(m, meta).predict_batch(patches, node_floor=0.0)
    assert sum(len(r["node_score"]) for r in low) == 2 * 16


def test_candidates_metadata_checked_and_read_leniently():
    assert checkpoint_candidates({}) == {"node_floor": None, "pair_radius": None}
    assert checkpoint_candidates({"candidates": {"node_floor": "x", "pair_radius": 12}}) == {
        "node_floor": None,
        "pair_radius": 12.0,
    }
    base = CheckpointMeta.for_model(ModelConfig(**TINY2)).to_dict()
    CheckpointMeta.from_dict({**base, "candidates": {"node_floor": 0.3, "pair_radius": 20.0}})
    for bad in ({"node_floor": 1.5}, {"pair_radius": 0}, {"pair_radius": True}, [0.3]):
        with pytest.raises(VesselGraphError, match="candidates"):
            CheckpointMeta.from_dict({**base, "candidates": bad})


def test_refine_batch_is_refine_per_patch():
    rng = np.random.default_rng(0)
    for d, shape in ((2, (32, 32)), (3, (12, 16, 16))):
        patches = rng.random((4, 1, *shape)).astype(np.float32)
        nodes = [rng.uniform(-2, np.array(shape) + 1, (k, d)) for k in (3, 0, 9, 1)]
        scores = [rng.random(len(n)) for n in nodes]
        got = refine_nodes_batch(patches, nodes, scores)
        for b in range(4):
            assert np.array_equal(got[b], refine_nodes(patches[b], nodes[b], scores[b]))


def test_bundled_robust_model_records_its_candidates():
    from napari_vesselgraph.checkpoints import list_bundled

    entry = next((e for e in list_bundled() if e["name"] == "vessel2d-random"), None)
    if entry is None:
        pytest.skip("vessel2d-random is not bundled")
    cand = checkpoint_candidates(entry["meta"])
    # benchmarks/candidate_pruning.py: floor = the lowest node threshold of THRESHOLD_GRID, radius ~1.7x the
    # longest training edge (12 px)
    from napari_vesselgraph.model.thresholds import THRESHOLD_GRID

    assert cand["node_floor"] == min(THRESHOLD_GRID[0])
    assert 12.0 < cand["pair_radius"] <= 24.0


def test_separable_upsampling_is_map_coordinates():
    from scipy import ndimage as ndi

    from napari_vesselgraph.model.preprocess import _upsample_linear

    rng = np.random.default_rng(0)
    for shape, f in (((37, 29), 3), ((20, 16, 11), 2), ((5, 9), 4)):
        small = rng.random(tuple(-(-s // f) for s in shape)).astype(np.float32)
        grid = np.meshgrid(*[(np.arange(s) + 0.5) / f - 0.5 for s in shape], indexing="ij", sparse=True)
        ref = ndi.map_coordinates(small, np.broadcast_arrays(*grid), order=1, mode="nearest")
        got = _upsample_linear(small, shape, f)
        assert got.dtype == np.float32 and got.shape == shape
        assert np.allclose(got, ref, rtol=0, atol=1e-6)
