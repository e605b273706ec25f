import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.model.config import ModelConfig
from napari_vesselgraph.model.losses import LossWeights, SetCriterion, hungarian_match
from napari_vesselgraph.model.network import Relationformer, sine_embedding
from napari_vesselgraph.model.preprocess import normalize_image
from napari_vesselgraph.model.targets import augment, collate, graph_to_target

TINY2 = dict(ndim=2, patch_size=32, backbone_channels=(8, 16, 32), hidden=32, heads=2, ffn=64, query_grid=4)
TINY3 = dict(ndim=3, patch_size=16, backbone_channels=(8, 16, 32), hidden=32, heads=2, ffn=64, query_grid=2)


def _tiny_sample(seed: int, size: int = 32):
    """A polyline drawn into an image, with its graph."""
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.uniform(-6, 6, size=(4, 2)), axis=0) + size / 2
    pts = np.clip(pts, 2, size - 3)
    img = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[:size, :size]
    for a, b in zip(pts[:-1], pts[1:]):
        t = np.linspace(0, 1, 50)[:, None]
        for p in a + t * (b - a):
            img = np.maximum(img, np.exp(-((yy - p[0]) ** 2 + (xx - p[1]) ** 2) / 2.0))
    g = VesselGraph(pts, [[0, 1], [1, 2], [2, 3]], node_attrs={"radius": np.full(4, 1.5)})
    return img, g


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("kw", [TINY2, TINY3])
def test_forward_shapes(kw):
    cfg = ModelConfig(**kw)
    m = Relationformer(cfg)
    x = torch.rand(2, 1, *cfg.patch_size)
    o = m(x)
    n, d = cfg.n_queries, cfg.ndim
    assert o["logits"].shape == (2, n, 2)
    assert o["pos"].shape == (2, n, d)
    assert o["radius"].shape == (2, n)
    assert o["rln"].shape == (2, cfg.hidden)
    assert o["dense"].shape == (2, 2, *cfg.feature_shape)
    assert len(o["aux"]) == cfg.dec_layers - 1
    # positions stay within max_offset cells of the reference points
    off = (o["pos"] - m.reference).abs() / m.cell
    assert float(off.max().detach()) <= cfg.max_offset + 1e-5


def test_rgb_and_stride8():
    cfg = ModelConfig(**{**TINY2, "in_channels": 3, "stride": 8, "backbone_channels": (8, 16, 16, 32)})
    o = Relationformer(cfg)(torch.rand(1, 3, 32, 32))
    assert o["dense"].shape == (1, 2, 4, 4)


def test_config_errors():
    with pytest.raises(VesselGraphError):
        ModelConfig(ndim=4)
    with pytest.raises(VesselGraphError):
        ModelConfig(patch_size=30, stride=4)
    with pytest.raises(VesselGraphError):
        ModelConfig(stride=8, backbone_channels=(8, 16))
    with pytest.raises(VesselGraphError):
        ModelConfig.from_dict({"bogus": 1})
    cfg = ModelConfig(**TINY3)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_rln_token_not_in_cross_attention():
    """Changing the image must not change the [rln] token after the first decoder layer's cross-attention
    unless through self-attention: with one decoder layer and self-attention disabled it must be unchanged."""
    cfg = ModelConfig(**{**TINY2, "dec_layers": 1})
    m = Relationformer(cfg).eval()
    layer = m.decoder[0]

    class NoSelf(torch.nn.Module):
        def forward(self, q, k, v, need_weights=False):
            return torch.zeros_like(q), None

    layer.self_attn = NoSelf()
    a = m(torch.rand(1, 1, 32, 32))["rln"]
    b = m(torch.rand(1, 1, 32, 32))["rln"]
    assert torch.allclose(a, b)


def test_relation_symmetric():
    cfg = ModelConfig(**TINY2)
    m = Relationformer(cfg).eval()
    o = m(torch.rand(2, 1, 32, 32))
    bi = torch.tensor([0, 0, 1, 1])
    i = torch.tensor([0, 3, 5, 7])
    j = torch.tensor([1, 9, 2, 15])
    a = m.relation_logits(o["tokens"], o["rln"], bi, i, j)
    b = m.relation_logits(o["tokens"], o["rln"], bi, j, i)
    assert torch.allclose(a, b, atol=1e-6)


def test_sine_embedding_dims():
    for d, dim in [(2, 32), (3, 32), (3, 128)]:
        e = sine_embedding(torch.rand(5, d), dim)
        assert e.shape == (5, dim)


def test_matcher_hand_case():
    # three queries, two targets: query 2 sits on target 0, query 0 on target 1
    logits = torch.tensor([[[0.0, 2.0], [0.0, 2.0], [0.0, 2.0]]])
    pos = torch.tensor([[[0.8, 0.8], [0.5, 0.1], [0.2, 0.2]]])
    targets = [{"pos": torch.tensor([[0.21, 0.19], [0.79, 0.82]])}]
    ((q, t),) = hungarian_match(logits, pos, targets)
    assert t.tolist() == [0, 1]
    assert q.tolist() == [2, 0]
    # class cost matters: among two equally far queries the confident one wins
    logits = torch.tensor([[[3.0, -3.0], [-3.0, 3.0]]])
    pos = torch.tensor([[[0.4, 0.5], [0.6, 0.5]]])
    ((q, t),) = hungarian_match(logits, pos, [{"pos": torch.tensor([[0.5, 0.5]])}])
    assert q.tolist() == [1]
    ((q, t),) = hungarian_match(logits, pos, [{"pos": torch.zeros(0, 2)}])
    assert len(q) == 0


def test_targets_and_augment():
    img, g = _tiny_sample(1)
    t = graph_to_target(g, (32, 32), 4)
    assert t["pos"].shape == (4, 2) and t["edges"].shape == (3, 2)
    assert t["dense"].shape == (2, 8, 8) and t["dense"][1].sum() >= 1 and t["dense"][0].sum() >= 3
    rng = np.random.default_rng(0)
    p, nodes = augment(img[None], g.nodes, rng)
    # the node positions follow the image: intensity at the transformed nodes stays high
    vals = [p[0, int(round(y)), int(round(x))] for y, x in nodes]
    assert min(vals) > 0.5


def test_overfit_one_batch():
    cfg = ModelConfig(**{**TINY2, "backbone_channels": (4, 8, 16), "enc_layers": 1})
    m = Relationformer(cfg)
    samples = [_tiny_sample(s) for s in (1, 2)]
    x = torch.from_numpy(np.stack([normalize_image(i, {"ndim": 2, "channels": 1}) for i, _ in samples]))
    tg = collate([graph_to_target(g, cfg.patch_size, cfg.stride) for _, g in samples])
    crit = SetCriterion(m, LossWeights(), rng=np.random.default_rng(0))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, logs = crit(m(x), tg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


def test_more_targets_than_queries():
    cfg = ModelConfig(**{**TINY2, "query_grid": 2})
    m = Relationformer(cfg)
    rng = np.random.default_rng(0)
    nodes = rng.uniform(0, 31, size=(9, 2))
    g = VesselGraph(nodes, [[i, i + 1] for i in range(8)])
    tg = collate([graph_to_target(g, cfg.patch_size, cfg.stride)])
    loss, logs = SetCriterion(m)(m(torch.rand(1, 1, 32, 32)), tg)
    assert np.isfinite(logs["loss"])


def test_loss_options_hard_and_unmatched_negatives():
    cfg = ModelConfig(**TINY2)
    m = Relationformer(cfg)
    samples = [_tiny_sample(s) for s in (1, 2)]
    x = torch.from_numpy(np.stack([normalize_image(i, {"ndim": 2, "channels": 1}) for i, _ in samples]))
    tg = collate([graph_to_target(g, cfg.patch_size, cfg.stride) for _, g in samples])
    w = LossWeights(near_neg_frac=0.5, unmatched_neg_ratio=1.0)
    loss, logs = SetCriterion(m, w)(m(x), tg)
    loss.backward()
    assert np.isfinite(logs["rel"]) and logs["rel"] > 0


def test_refine_positions():
    cfg = ModelConfig(**{**TINY2, "refine": True, "dec_layers": 3})
    m = Relationformer(cfg)
    o = m(torch.rand(2, 1, 32, 32))
    assert o["pos"].shape == (2, cfg.n_queries, 2) and len(o["aux"]) == 2
    off = ((o["pos"] - m.reference).abs() / m.cell).max().item()
    assert off <= 3 * cfg.max_offset + 1e-5
    loss, _ = SetCriterion(m)(o, collate([graph_to_target(_tiny_sample(1)[1], cfg.patch_size, cfg.stride)] * 2))
    loss.backward()


@pytest.mark.parametrize("kw", [TINY2, TINY3])
def test_relation_line_symmetric_and_trained(kw):
    """The relation head that samples the image between two nodes stays symmetric in (i, j), needs the forward
    output, and its line map receives gradient from the relation loss."""
    cfg = ModelConfig(**{**kw, "relation_line": 6, "relation_line_channels": 4})
    m = Relationformer(cfg)
    o = m(torch.rand(2, 1, *cfg.patch_size))
    assert o["line"].shape == (2, 4, *(p // 2 for p in cfg.patch_size))
    assert all(a["line"] is o["line"] for a in o["aux"])
    n = cfg.n_queries
    bi = torch.tensor([0, 0, 1, 1])
    i = torch.tensor([0, 1, 2, n - 1])
    j = torch.tensor([n - 1, 2, 0, 1])
    a = m.relation_logits(o["tokens"], o["rln"], bi, i, j, o)
    b = m.relation_logits(o["tokens"], o["rln"], bi, j, i, o)
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="forward output"):
        m.relation_logits(o["tokens"], o["rln"], bi, i, j)
    a.sum().backward()
    assert m.line_proj.weight.grad.abs().sum() > 0


def test_relation_line_samples_the_segment():
    """Samples follow the segment from node i to node j in pixel units (a ramp along the last axis)."""
    cfg = ModelConfig(**{**TINY3, "relation_line": 5})
    m = Relationformer(cfg)
    s = tuple(p // 2 for p in cfg.patch_size)  # the line map is at stride 2
    line = torch.zeros(1, cfg.relation_line_channels, *s)
    line[:, 0] = torch.arange(s[-1], dtype=torch.float32).expand(*s)  # value = x index
    line[:, 1] = torch.arange(s[0], dtype=torch.float32).view(-1, 1, 1).expand(*s)  # value = z index
    # normalised positions: u = (index + 0.5) / size on the stride-2 map
    u = lambda z, x: [(z + 0.5) / s[0], 0.5, (x + 0.5) / s[2]]
    pos = torch.tensor([[u(1, 2), u(5, 6)]])
    samples, disp = m._line_features(line, pos, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    assert samples.shape == (1, 5, cfg.relation_line_channels)
    assert torch.allclose(samples[0, :, 0], torch.linspace(2, 6, 5), atol=1e-5)
    assert torch.allclose(samples[0, :, 1], torch.linspace(1, 5, 5), atol=1e-5)
    assert torch.allclose(disp, pos[0, 1] - pos[0, 0])


def test_relation_line_config_errors():
    with pytest.raises(VesselGraphError, match="relation_line"):
        ModelConfig(**{**TINY2, "relation_line": 1})
    cfg = ModelConfig(**{**TINY2, "relation_line": 4})
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
