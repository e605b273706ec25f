"""Alignment losses: supervised contrastive alignment across domains, and the gradient-reversal baseline.

Contrastive (:class:`ContrastiveAlignment`)
    Embeddings from the two domains get a class each:

    - backbone feature cells (stride-s map): ``vessel`` when a ground-truth centreline crosses the cell (the
      dense target), ``background`` otherwise;
    - object tokens (last decoder layer): ``node`` when Hungarian matching assigns the token to a ground-truth
      node, ``background`` otherwise;
    - relation embeddings: the hidden layers of the relation MLP applied to ``[obj_i ‖ obj_j ‖ rln]`` (averaged
      over both orders, as the relation head does) for pairs of matched tokens: ``edge`` for ground-truth
      edges, ``no-edge`` for non-adjacent pairs.

    A small projection head maps each embedding to a unit vector ``z``; the supervised contrastive (SupCon)
    loss with temperature ``tau`` then, for every anchor ``i``::

        L_i = -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{a in A(i)} exp(z_i.z_a / tau) )

    With ``cross_domain=True`` (used for adaptation) the positives ``P(i)`` are the embeddings of the *other*
    domain with the same class (pulled together) and ``A(i)`` holds every embedding except ``i`` and the
    same-domain same-class ones (so the other-class embeddings of both domains are pushed apart; same-domain
    same-class pairs are left alone). Anchors without a positive are skipped. Each (domain, class) group is
    subsampled to at most ``max_per_group`` embeddings per step so that the many background tokens do not
    dominate. A small ``tau`` (0.05-0.1) sharpens the pull towards the nearest positives; a large one (0.5+)
    spreads it evenly.

Adversarial (:class:`AdversarialAlignment`, as in Berger et al. 2024, arXiv 2403.06601)
    Gradient reversal (identity forward, ``-lambda * grad`` backward) in front of two domain discriminators:
    an image-level one (1x1-conv MLP on every location of the backbone feature map) and a graph-level one
    (MLP on every object token and the [rln] token). The discriminators learn to tell source from target;
    the reversed gradient pushes the model towards features they cannot tell apart.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NEG_FILL = -1e9  # finite "minus infinity" (an all-masked row must not give NaN gradients)


# ------------------------------------------------------------------ SupCon
def supcon_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    domains: torch.Tensor | None = None,
    temperature: float = 0.1,
    cross_domain: bool = True,
) -> torch.Tensor:
    """Supervised contrastive loss of embeddings ``z`` ``(n, p)`` with class ``labels`` ``(n,)``.

    ``domains`` ``(n,)`` + ``cross_domain``: positives are same-class embeddings of another domain (see the
    module docstring); otherwise the standard SupCon (every other same-class embedding is a positive).
    Returns 0 (with a graph) when no anchor has a positive.
    """
    n = z.shape[0]
    if n < 2:
        return z.sum() * 0.0
    z = F.normalize(z.float(), dim=-1)
    sim = z @ z.T / float(temperature)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    same = labels[:, None] == labels[None, :]
    if domains is not None and cross_domain:
        other = domains[:, None] != domains[None, :]
        pos = same & other
        valid = ~eye & ~(same & ~other)
    else:
        pos = same & ~eye
        valid = ~eye
    logits = sim.masked_fill(~valid, NEG_FILL)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    per_anchor = -log_prob.masked_fill(~pos, 0.0).sum(1) / n_pos.clamp(min=1)
    return per_anchor[has].mean()


class Projector(nn.Module):
    """Linear -> ReLU -> Linear projection head (SupCon), output not normalised (the loss normalises)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))

    def forward(self, x):
        return self.net(x)


def relation_hidden(model, tokens: torch.Tensor, rln: torch.Tensor, bi, i, j, out: dict | None = None) -> torch.Tensor:
    """Hidden features of the relation MLP for the pairs ``(tokens[bi, i], tokens[bi, j])`` (both orders
    averaged): the representation the edge classifier reads. ``out``: the forward output, for models whose
    relation head samples the image between the nodes."""
    layers = model.relation_head.layers

    def hidden(x):
        for layer in layers[:-1]:
            x = F.relu(layer(x))
        return x

    a, b = model.relation_inputs(tokens, rln, bi, i, j, out)
    return 0.5 * (hidden(a) + hidden(b))


def _subsample(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) <= k else rng.choice(idx, size=k, replace=False)


def token_groups(match, n_queries: int, rows: list[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """``([(row, query)], [class])`` of every object token of the given batch rows: 1 node, 0 background."""
    pairs, labels = [], []
    for b in rows:
        q, _ = match[b]
        node = np.zeros(n_queries, dtype=bool)
        node[q.numpy()] = True
        for k in range(n_queries):
            pairs.append((b, k))
            labels.append(int(node[k]))
    return pairs, labels


def edge_pairs(
    match, targets: list[dict], rows: list[int], rng: np.random.Generator, neg_per_pos: float = 1.0, min_neg: int = 2
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """``([(row, query_i, query_j)], [class])`` of matched token pairs: 1 ground-truth edge, 0 non-adjacent."""
    out, labels = [], []
    for b in rows:
        q, t = match[b]
        if len(t) < 2:
            continue
        m = len(targets[b]["pos"])
        q_of_t = np.full(m, -1, dtype=np.int64)
        q_of_t[t.numpy()] = q.numpy()
        edges = targets[b]["edges"].cpu().numpy().reshape(-1, 2)
        if len(edges):
            edges = edges[(q_of_t[edges[:, 0]] >= 0) & (q_of_t[edges[:, 1]] >= 0)]
        adj = np.zeros((m, m), dtype=bool)
        if len(edges):
            adj[edges[:, 0], edges[:, 1]] = adj[edges[:, 1], edges[:, 0]] = True
        iu, ju = np.triu_indices(m, 1)
        neg = np.flatnonzero(~adj[iu, ju] & (q_of_t[iu] >= 0) & (q_of_t[ju] >= 0))
        neg = _subsample(neg, max(min_neg, round(neg_per_pos * len(edges))), rng)
        for a, c in edges:
            out.append((b, int(q_of_t[a]), int(q_of_t[c])))
            labels.append(1)
        for k in neg:
            out.append((b, int(q_of_t[iu[k]]), int(q_of_t[ju[k]])))
            labels.append(0)
    return out, labels


class ContrastiveAlignment(nn.Module):
    """Cross-domain SupCon over object tokens (node / background) and relation embeddings (edge / no edge)."""

    def __init__(
        self,
        hidden: int,
        proj_dim: int = 64,
        temperature: float = 0.1,
        max_per_group: int = 48,
        seed: int = 0,
        feat_channels: int | None = None,
    ):
        super().__init__()
        self.node_proj = Projector(hidden, hidden, proj_dim)
        self.edge_proj = Projector(hidden, hidden, proj_dim)
        self.pixel_proj = Projector(feat_channels, feat_channels, proj_dim) if feat_channels else None
        self.temperature = float(temperature)
        self.max_per_group = int(max_per_group)
        self.rng = np.random.default_rng(seed)

    def _balanced(self, labels: list[int], domains: list[int]) -> np.ndarray:
        lab, dom = np.asarray(labels), np.asarray(domains)
        keep = []
        for d in np.unique(dom):
            for c in np.unique(lab):
                keep.append(_subsample(np.flatnonzero((dom == d) & (lab == c)), self.max_per_group, self.rng))
        return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)

    def forward(
        self, model, out: dict, targets: list[dict], match, row_domain: list[int], feats: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict]:
        """``row_domain[b]``: 0 source, 1 target for batch row ``b``; ``feats``: the backbone feature map (adds the
        backbone term when the module has a ``pixel_proj``). Returns ``(loss, logs)``."""
        tokens, rln = out["tokens"], out["rln"]
        dev = tokens.device
        rows = list(range(tokens.shape[0]))
        # nodes vs background
        pairs, labels = token_groups(match, tokens.shape[1], rows)
        doms = [row_domain[b] for b, _ in pairs]
        sel = self._balanced(labels, doms)
        bi = torch.as_tensor([pairs[k][0] for k in sel], device=dev, dtype=torch.long)
        qi = torch.as_tensor([pairs[k][1] for k in sel], device=dev, dtype=torch.long)
        z = self.node_proj(tokens[bi, qi])
        lab = torch.as_tensor([labels[k] for k in sel], device=dev)
        dom = torch.as_tensor([doms[k] for k in sel], device=dev)
        l_node = supcon_loss(z, lab, dom, self.temperature)
        # edges vs no edges
        epairs, elabels = edge_pairs(match, targets, rows, self.rng)
        l_edge = tokens.sum() * 0.0
        if epairs:
            edoms = [row_domain[b] for b, _, _ in epairs]
            sel = self._balanced(elabels, edoms)
            t = lambda k: torch.as_tensor([epairs[s][k] for s in sel], device=dev, dtype=torch.long)
            h = relation_hidden(model, tokens, rln, t(0), t(1), t(2), out)
            ze = self.edge_proj(h)
            elab = torch.as_tensor([elabels[s] for s in sel], device=dev)
            edom = torch.as_tensor([edoms[s] for s in sel], device=dev)
            l_edge = supcon_loss(ze, elab, edom, self.temperature)
        loss = l_node + l_edge
        logs = {"con_node": float(l_node.detach()), "con_edge": float(l_edge.detach())}
        if feats is not None and self.pixel_proj is not None:
            l_pix = self.pixel_loss(feats, targets, row_domain)
            loss = loss + l_pix
            logs["con_pixel"] = float(l_pix.detach())
        return loss, logs

    def pixel_loss(self, feats: torch.Tensor, targets: list[dict], row_domain: list[int]) -> torch.Tensor:
        """SupCon over backbone feature cells: ``vessel`` (a centreline crosses the cell) vs ``background``."""
        b = feats.shape[0]
        cells = feats.flatten(2).transpose(1, 2)  # (B, L, C)
        lab = torch.stack([t["dense"][0].reshape(-1) > 0.5 for t in targets]).long().cpu().numpy()  # (B, L)
        rows = np.repeat(np.arange(b), lab.shape[1])
        labels = lab.reshape(-1).tolist()
        doms = [row_domain[r] for r in rows]
        sel = self._balanced(labels, doms)
        bi = torch.as_tensor(rows[sel], device=feats.device, dtype=torch.long)
        li = torch.as_tensor(np.tile(np.arange(lab.shape[1]), b)[sel], device=feats.device, dtype=torch.long)
        z = self.pixel_proj(cells[bi, li])
        y = torch.as_tensor(np.asarray(labels)[sel], device=feats.device)
        d = torch.as_tensor(np.asarray(doms)[sel], device=feats.device)
        return supcon_loss(z, y, d, self.temperature)


# ------------------------------------------------------------------ gradient reversal
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-lam`` in the backward pass."""
    return _GradReverse.apply(x, lam)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The DANN ramp ``2 / (1 + exp(-gamma p)) - 1`` from 0 (start) to ~1 (end of training)."""
    return float(2.0 / (1.0 + np.exp(-gamma * min(max(progress, 0.0), 1.0))) - 1.0)


class AdversarialAlignment(nn.Module):
    """Image-level (backbone features) and graph-level (decoder tokens) domain discriminators behind a GRL."""

    def __init__(self, ndim: int, feat_channels: int, hidden: int, width: int = 64):
        super().__init__()
        Conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.image_disc = nn.Sequential(Conv(feat_channels, width, 1), nn.ReLU(), Conv(width, 1, 1))
        self.graph_disc = nn.Sequential(nn.Linear(hidden, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(
        self, feats: torch.Tensor, tokens: torch.Tensor, rln: torch.Tensor, row_domain: list[int], lam: float
    ) -> tuple[torch.Tensor, dict]:
        dom = torch.as_tensor(row_domain, dtype=torch.float32, device=tokens.device)
        img_logits = self.image_disc(grad_reverse(feats, lam)).float()  # (B, 1, *feat)
        img_t = dom.view(-1, *([1] * (img_logits.ndim - 1))).expand_as(img_logits)
        l_img = F.binary_cross_entropy_with_logits(img_logits, img_t)
        toks = torch.cat([tokens, rln.unsqueeze(1)], dim=1)  # (B, N + 1, d)
        g_logits = self.graph_disc(grad_reverse(toks, lam)).squeeze(-1).float()
        l_graph = F.binary_cross_entropy_with_logits(g_logits, dom[:, None].expand_as(g_logits))
        with torch.no_grad():
            acc = 0.5 * (
                ((img_logits > 0).float() == img_t).float().mean()
                + ((g_logits > 0).float() == dom[:, None]).float().mean()
            )
        return l_img + l_graph, {
            "adv_image": float(l_img.detach()),
            "adv_graph": float(l_graph.detach()),
            "disc_acc": float(acc),
        }
