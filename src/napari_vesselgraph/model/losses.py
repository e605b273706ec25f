"""Hungarian matching and the Relationformer set losses (nodes, radii, relations, auxiliary maps)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class LossWeights:
    cost_class: float = 1.0
    cost_pos: float = 5.0
    cls: float = 1.0
    no_object: float = 0.2  # weight of the "no node" class in the class cross-entropy
    pos: float = 5.0  # L1 on normalised coordinates
    radius: float = 0.1  # L1 in pixels
    relation: float = 1.0
    neg_ratio: float = 3.0  # sampled non-adjacent pairs per positive edge
    min_neg: int = 4  # negatives per patch even when it has no edge
    near_neg_frac: float = 0.0  # share of negatives drawn from near pairs (hard negatives), rest uniform
    near_dist: float = 0.35  # "near": closer than this (normalised coordinates, L-inf)
    unmatched_neg_ratio: float = 0.0  # per positive edge: pairs (most confident unmatched query, nearest matched)
    dense: float = 1.0
    aux: float = 1.0  # weight of every earlier decoder layer's losses

    def to_dict(self):
        return asdict(self)


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, pos: torch.Tensor, targets: list[dict], cost_class=1.0, cost_pos=5.0):
    """Match predictions to ground-truth nodes, per patch.

    ``logits`` ``(B, N, 2)``, ``pos`` ``(B, N, D)`` normalised; each target has ``pos`` ``(M, D)``.
    Returns a list of ``(query_idx, target_idx)`` int64 tensors (on CPU), sorted by target index.
    """
    from scipy.optimize import linear_sum_assignment

    prob = logits.float().softmax(-1)[..., 1].cpu()
    pos = pos.float().cpu()
    out = []
    for b, t in enumerate(targets):
        tp = t["pos"].float().cpu()
        if len(tp) == 0:
            out.append((torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
            continue
        cost = cost_pos * torch.cdist(pos[b], tp, p=1) - cost_class * prob[b][:, None]
        qi, ti = linear_sum_assignment(cost.numpy())
        order = np.argsort(ti)
        out.append((torch.as_tensor(qi[order], dtype=torch.long), torch.as_tensor(ti[order], dtype=torch.long)))
    return out


class SetCriterion:
    def __init__(self, model, weights: LossWeights | None = None, rng: np.random.Generator | None = None):
        self.model = model
        self.w = weights or LossWeights()
        self.rng = rng or np.random.default_rng(0)

    def __call__(self, out: dict, targets: list[dict]) -> tuple[torch.Tensor, dict]:
        w = self.w
        layers = [out] + list(out.get("aux", []))
        total = 0.0
        logs: dict[str, float] = {}
        for k, o in enumerate(layers):
            losses = self._layer_losses(o, targets)
            scale = 1.0 if k == 0 else w.aux
            total = total + scale * (
                w.cls * losses["cls"] + w.pos * losses["pos"] + w.radius * losses["radius"] + w.relation * losses["rel"]
            )
            if k == 0:
                logs.update({key: float(v.detach()) for key, v in losses.items()})
        if out.get("dense") is not None and w.dense > 0:
            gt = torch.stack([t["dense"] for t in targets]).to(out["dense"].dtype)
            pw = torch.tensor([3.0, 10.0], device=gt.device).view(1, 2, *([1] * (gt.ndim - 2)))
            dl = F.binary_cross_entropy_with_logits(out["dense"], gt, pos_weight=pw)
            total = total + w.dense * dl
            logs["dense"] = float(dl.detach())
        logs["loss"] = float(total.detach())
        return total, logs

    def _layer_losses(self, o: dict, targets: list[dict]) -> dict:
        w = self.w
        logits, pos, radius = o["logits"], o["pos"], o["radius"]
        dev = logits.device
        match = hungarian_match(logits, pos, targets, w.cost_class, w.cost_pos)
        b, n = logits.shape[:2]
        cls_t = torch.zeros(b, n, dtype=torch.long, device=dev)
        bi, qi, ti = [], [], []
        for k, (q, t) in enumerate(match):
            cls_t[k, q.to(dev)] = 1
            bi.append(torch.full_like(q, k))
            qi.append(q)
            ti.append(t)
        bi_t = torch.cat(bi).to(dev)
        qi_t = torch.cat(qi).to(dev)
        n_nodes = max(1, len(qi_t))
        cls_w = torch.tensor([w.no_object, 1.0], device=dev, dtype=logits.dtype)
        l_cls = F.cross_entropy(logits.flatten(0, 1).float(), cls_t.flatten(), weight=cls_w.float())
        if len(qi_t):
            tpos = torch.cat([targets[k]["pos"][t.to(dev)] for k, t in enumerate(ti)]).to(pos.dtype)
            trad = torch.cat([targets[k]["radius"][t.to(dev)] for k, t in enumerate(ti)]).to(radius.dtype)
            l_pos = (pos[bi_t, qi_t] - tpos).abs().sum() / n_nodes
            l_rad = (radius[bi_t, qi_t] - trad).abs().sum() / n_nodes
        else:
            l_pos = pos.sum() * 0.0
            l_rad = radius.sum() * 0.0
        l_rel = self._relation_loss(o, targets, match)
        return {"cls": l_cls, "pos": l_pos, "radius": l_rad, "rel": l_rel}

    def _relation_loss(self, o: dict, targets: list[dict], match) -> torch.Tensor:
        """BCE over every positive edge plus ``neg_ratio`` times as many non-adjacent matched pairs."""
        w = self.w
        dev = o["tokens"].device
        pb, pi, pj, lab = [], [], [], []
        for k, (q, t) in enumerate(match):
            m = len(targets[k]["pos"])
            if len(t) < 2:
                continue
            # more ground-truth nodes than queries: only matched nodes take part
            q_of_t = np.full(m, -1, dtype=np.int64)
            q_of_t[t.numpy()] = q.numpy()
            edges = targets[k]["edges"].cpu().numpy().reshape(-1, 2)
            if len(t) < m:
                matched = q_of_t >= 0
                edges = edges[matched[edges[:, 0]] & matched[edges[:, 1]]] if len(edges) else edges
            adj = np.zeros((m, m), dtype=bool)
            if len(edges):
                adj[edges[:, 0], edges[:, 1]] = True
                adj[edges[:, 1], edges[:, 0]] = True
            iu, ju = np.triu_indices(m, 1)
            neg = np.flatnonzero(~adj[iu, ju] & (q_of_t[iu] >= 0) & (q_of_t[ju] >= 0))
            n_neg = min(len(neg), max(w.min_neg, int(round(w.neg_ratio * len(edges)))))
            neg = self._sample_negatives(neg, n_neg, targets[k]["pos"], iu, ju)
            a = np.concatenate([edges[:, 0], iu[neg]]) if len(edges) else iu[neg]
            c = np.concatenate([edges[:, 1], ju[neg]]) if len(edges) else ju[neg]
            if not len(a):
                continue
            qa, qc = q_of_t[a], q_of_t[c]
            labels = np.concatenate([np.ones(len(edges)), np.zeros(len(neg))])
            n_un = int(round(w.unmatched_neg_ratio * len(edges)))
            if n_un:
                ua, uc = self._unmatched_pairs(o, k, q.numpy(), n_un)
                qa, qc = np.concatenate([qa, ua]), np.concatenate([qc, uc])
                labels = np.concatenate([labels, np.zeros(len(ua))])
            pb.append(np.full(len(qa), k))
            pi.append(qa)
            pj.append(qc)
            lab.append(labels)
        if not pb:
            return o["tokens"].sum() * 0.0
        to = lambda x: torch.as_tensor(np.concatenate(x), device=dev)
        logits = self.model.relation_logits(o["tokens"], o["rln"], to(pb), to(pi), to(pj), o)
        return F.binary_cross_entropy_with_logits(logits.float(), to(lab).float())

    @torch.no_grad()
    def _unmatched_pairs(self, o: dict, k: int, matched_q: np.ndarray, n: int):
        """The ``n`` most confident unmatched queries, each paired with the nearest matched query: such
        would-be false nodes must not get edges."""
        nq = o["logits"].shape[1]
        un = np.setdiff1d(np.arange(nq), matched_q)
        if not len(un) or not len(matched_q):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        prob = o["logits"][k].float().softmax(-1)[:, 1].cpu().numpy()
        top = un[np.argsort(-prob[un])[:n]]
        pos = o["pos"][k].float().cpu().numpy()
        d = np.abs(pos[top][:, None] - pos[matched_q][None]).sum(-1)
        return top.astype(np.int64), matched_q[d.argmin(1)].astype(np.int64)

    def _sample_negatives(self, neg: np.ndarray, n_neg: int, pos, iu: np.ndarray, ju: np.ndarray) -> np.ndarray:
        if n_neg <= 0:
            return neg[:0]
        n_near = int(round(self.w.near_neg_frac * n_neg))
        chosen = np.zeros(0, dtype=neg.dtype)
        if n_near:
            p = pos.detach().cpu().numpy()
            dist = np.abs(p[iu[neg]] - p[ju[neg]]).max(axis=1)
            near = neg[dist < self.w.near_dist]
            if len(near):
                chosen = self.rng.choice(near, size=min(n_near, len(near)), replace=False)
        rest = np.setdiff1d(neg, chosen, assume_unique=True)
        k = min(len(rest), n_neg - len(chosen))
        if k > 0:
            chosen = np.concatenate([chosen, self.rng.choice(rest, size=k, replace=False)])
        return chosen
