import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.adapt.loop import select_trainable
from napari_vesselgraph.adapt.losses import (
    AdversarialAlignment,
    ContrastiveAlignment,
    dann_lambda,
    grad_reverse,
    supcon_loss,
)

from .conftest import TINY


def _clustered(n_per=20, dim=16, seed=0):
    """Two classes x two domains; embeddings cluster by class (aligned across domains)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(2, dim, generator=g) * 3
    labels = torch.tensor([0, 1] * (2 * n_per))
    domains = torch.tensor([0] * (2 * n_per) + [1] * (2 * n_per))
    z = centres[labels] + 0.3 * torch.randn(len(labels), dim, generator=g)
    return z, labels, domains


def test_supcon_aligned_lower_than_shuffled_and_has_gradients():
    z, labels, domains = _clustered()
    aligned = supcon_loss(z, labels, domains, 0.1)
    # the target domain's embeddings no longer match their labels
    perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(1))
    shuffled_z = z.clone()
    tgt = domains == 1
    shuffled_z[tgt] = z[tgt][perm[: int(tgt.sum())] % int(tgt.sum())]
    flipped = supcon_loss(z, torch.where(tgt, 1 - labels, labels), domains, 0.1)
    assert aligned < supcon_loss(shuffled_z, labels, domains, 0.1)
    assert aligned + 1.0 < flipped  # target classes swapped: pulled to the wrong source cluster
    zz = z.clone().requires_grad_(True)
    supcon_loss(zz, labels, domains, 0.1).backward()
    assert zz.grad is not None and torch.isfinite(zz.grad).all() and zz.grad.abs().sum() > 0


def test_supcon_cross_domain_positives_only():
    z, labels, domains = _clustered(n_per=5)
    one_domain = torch.zeros_like(domains)
    zz = z.clone().requires_grad_(True)
    loss = supcon_loss(zz, labels, one_domain, 0.1)  # no other domain: no positive
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(zz.grad).all()
    assert float(supcon_loss(z, labels, one_domain, 0.1, cross_domain=False)) > 0  # standard SupCon has positives


def test_supcon_temperature_changes_loss():
    z, labels, domains = _clustered()
    assert not np.isclose(float(supcon_loss(z, labels, domains, 0.05)), float(supcon_loss(z, labels, domains, 1.0)))


def test_gradient_reversal_flips_sign():
    x = torch.randn(5, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.allclose(x.grad, -0.7 * torch.arange(5.0))
    assert dann_lambda(0.0) == 0.0 and 0.99 < dann_lambda(1.0) <= 1.0


def test_adversarial_features_get_reversed_gradient():
    torch.manual_seed(0)
    adv = AdversarialAlignment(2, 8, 16)
    feats = torch.randn(4, 8, 3, 3, requires_grad=True)
    tokens = torch.randn(4, 5, 16, requires_grad=True)
    rln = torch.randn(4, 16, requires_grad=True)
    loss, logs = adv(feats, tokens, rln, [0, 0, 1, 1], lam=1.0)
    loss.backward()
    g_rev = feats.grad.clone()
    # the same loss without reversal: the feature gradient must be the exact opposite
    feats.grad = None
    img = adv.image_disc(feats).float()
    t = torch.tensor([0.0, 0, 1, 1]).view(-1, 1, 1, 1).expand_as(img)
    torch.nn.functional.binary_cross_entropy_with_logits(img, t).backward()
    assert torch.allclose(g_rev, -feats.grad, atol=1e-6) and feats.grad.abs().sum() > 0
    assert all(p.grad is not None for p in adv.parameters())
    assert 0.0 <= logs["disc_acc"] <= 1.0


def _tiny_model():
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer

    torch.manual_seed(0)
    return Relationformer(ModelConfig.from_dict({"ndim": 2, **TINY}))


def test_contrastive_alignment_on_model_outputs():
    from napari_vesselgraph.model.losses import hungarian_match

    model = _tiny_model()
    feats = {}
    model.backbone.register_forward_hook(lambda m, i, o: feats.__setitem__("x", o))
    out = model(torch.rand(4, 1, 32, 32))
    g = torch.Generator().manual_seed(0)
    targets = []
    for _ in range(4):
        pos = torch.rand(6, 2, generator=g)
        dense = (torch.rand(2, 8, 8, generator=g) > 0.7).float()
        targets.append(
            {"pos": pos, "radius": torch.ones(6), "edges": torch.tensor([[0, 1], [1, 2], [3, 4]]), "dense": dense}
        )
    match = hungarian_match(out["logits"], out["pos"], targets)
    align = ContrastiveAlignment(32, temperature=0.1, feat_channels=32)
    loss, logs = align(model, out, targets, match, [0, 0, 1, 1], feats["x"])
    assert logs["con_node"] > 0 and logs["con_edge"] > 0 and logs["con_pixel"] > 0
    loss.backward()
    assert model.relation_head.layers[0].weight.grad.abs().sum() > 0  # reaches the relation embedding
    assert model.query_content.grad.abs().sum() > 0  # and the object tokens
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0  # and the backbone


def test_select_trainable():
    model = _tiny_model()
    n_all = len(select_trainable(model, "all"))
    heads = select_trainable(model, "heads")
    assert 0 < len(heads) < n_all
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.relation_head.parameters())
    dec = select_trainable(model, "decoder+heads")
    assert len(heads) < len(dec) < n_all
    assert model.query_content.requires_grad and not any(p.requires_grad for p in model.encoder.parameters())
