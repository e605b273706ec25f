"""Relationformer (Shit et al., ECCV 2022) for 2D and 3D patches, in plain PyTorch.

image ─► CNN backbone (stride 4/8) ─► transformer encoder (sine positions) ─► memory
                                                                            │ cross-attention (object tokens only)
N object queries (anchored on a grid of reference points) + 1 [rln] token ──► decoder (self-attention over all N+1)
object tokens ─► class (node / no node), position (reference + bounded offset), radius
[obj_i ‖ obj_j ‖ rln] ─► relation MLP ─► edge logit, averaged over (i, j) and (j, i)
  (optional, ``relation_line``: the MLP also reads K samples of a learned stride-2 feature map taken on the
  segment from node i to node j, and the displacement j - i: whether a vessel runs between the two nodes)

Coordinates inside the network are normalised to [0, 1] per axis: ``u = (pixel + 0.5) / patch_size``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


# ------------------------------------------------------------------ helpers
def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(ch: int) -> nn.GroupNorm:
    groups = 8 if ch % 8 == 0 else (4 if ch % 4 == 0 else 1)
    return nn.GroupNorm(groups, ch)


def sine_embedding(coords: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine/cosine embedding of normalised coordinates ``(..., D)`` into ``(..., dim)`` features."""
    d = coords.shape[-1]
    per_axis = max(2, (dim // d) // 2 * 2)
    n_freq = per_axis // 2
    i = torch.arange(n_freq, device=coords.device, dtype=coords.dtype)
    freqs = temperature ** (2 * i / per_axis)
    x = coords.unsqueeze(-1) * (2 * math.pi) / freqs  # (..., D, F)
    emb = torch.cat([x.sin(), x.cos()], dim=-1).flatten(-2)  # (..., D * 2F)
    if emb.shape[-1] < dim:
        emb = F.pad(emb, (0, dim - emb.shape[-1]))
    return emb[..., :dim]


def grid_centres(shape: tuple[int, ...], device=None) -> torch.Tensor:
    """Normalised centres of the cells of a regular grid, ``(prod(shape), D)`` in row-major order."""
    axes = [(torch.arange(s, dtype=torch.float32, device=device) + 0.5) / s for s in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


class MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int, layers: int = 2):
        super().__init__()
        dims = [d_in] + [d_hidden] * (layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.relu(x)
        return x


# ------------------------------------------------------------------ backbone
class BasicBlock(nn.Module):
    def __init__(self, ndim: int, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        Conv = _conv(ndim)
        self.conv1 = Conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.n1 = _norm(c_out)
        self.conv2 = Conv(c_out, c_out, 3, padding=1, bias=False)
        self.n2 = _norm(c_out)
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(Conv(c_in, c_out, 1, stride=stride, bias=False), _norm(c_out))

    def forward(self, x):
        y = F.relu(self.n1(self.conv1(x)))
        y = self.n2(self.conv2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class Backbone(nn.Module):
    """A small ResNet: a full-resolution stem, then one stride-2 stage per further width."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        Conv = _conv(cfg.ndim)
        ch = cfg.backbone_channels
        self.stem = nn.Sequential(Conv(cfg.in_channels, ch[0], 3, padding=1, bias=False), _norm(ch[0]), nn.ReLU())
        stages = []
        for c_prev, c in zip(ch[:-1], ch[1:]):
            blocks = [BasicBlock(cfg.ndim, c_prev, c, stride=2)]
            blocks += [BasicBlock(cfg.ndim, c, c) for _ in range(cfg.blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_channels = ch[-1]

    def forward(self, x, return_stride2: bool = False):
        x = self.stem(x)
        if not return_stride2:
            return self.stages(x)
        s2 = self.stages[0](x)
        return self.stages[1:](s2), s2


# ------------------------------------------------------------------ transformer
class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.n1 = nn.LayerNorm(d)
        self.n2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, pos):
        h = self.n1(x)
        q = h + pos
        x = x + self.drop(self.attn(q, q, h, need_weights=False)[0])
        return x + self.drop(self.ff(self.n2(x)))


class DecoderLayer(nn.Module):
    """Self-attention over object tokens + [rln]; cross-attention to the image for object tokens only."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.n1 = nn.LayerNorm(d)
        self.n2 = nn.LayerNorm(d)
        self.n3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, pos, memory, mem_pos, n_obj: int):
        h = self.n1(x)
        q = h + pos
        x = x + self.drop(self.self_attn(q, q, h, need_weights=False)[0])
        obj, rln = x[:, :n_obj], x[:, n_obj:]
        h = self.n2(obj)
        obj = obj + self.drop(self.cross_attn(h + pos[:, :n_obj], memory + mem_pos, memory, need_weights=False)[0])
        x = torch.cat([obj, rln], dim=1)
        return x + self.drop(self.ff(self.n3(x)))


# ------------------------------------------------------------------ the model
class Relationformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        self.backbone = Backbone(cfg)
        Conv = _conv(cfg.ndim)
        self.input_proj = Conv(self.backbone.out_channels, d, 1)
        self.dense_head = Conv(self.backbone.out_channels, 2, 1) if cfg.dense_head else None
        self.encoder = nn.ModuleList(EncoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.enc_layers))
        self.enc_norm = nn.LayerNorm(d)
        self.decoder = nn.ModuleList(DecoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.dec_layers))
        self.dec_norm = nn.LayerNorm(d)
        n = cfg.n_queries
        self.query_content = nn.Parameter(torch.randn(n, d) * 0.02)
        self.rln_token = nn.Parameter(torch.randn(1, d) * 0.02)
        self.rln_pos = nn.Parameter(torch.zeros(1, d))
        self.query_pos_mlp = MLP(d, d, d, 2)
        self.class_head = nn.Linear(d, 2)
        self.pos_head = MLP(d, d, cfg.ndim, 3)
        self.radius_head = MLP(d, d // 2, 1, 2)
        self.line_proj = None
        rel_in = 3 * d
        if cfg.relation_line:
            self.line_proj = Conv(cfg.backbone_channels[1], cfg.relation_line_channels, 1)
            rel_in += cfg.relation_line * cfg.relation_line_channels + cfg.ndim + 1
        self.relation_head = MLP(rel_in, d, 1, 3)
        # fixed geometry (buffers travel with .to(device) but are not saved: rebuilt from the config)
        self.register_buffer("reference", grid_centres(cfg.query_grid), persistent=False)
        self.register_buffer("cell", torch.tensor([1.0 / g for g in cfg.query_grid]), persistent=False)
        feat = grid_centres(cfg.feature_shape)
        self.register_buffer("memory_pos", sine_embedding(feat, d), persistent=False)
        self._init()

    def _init(self):
        nn.init.zeros_(self.pos_head.layers[-1].weight)
        nn.init.zeros_(self.pos_head.layers[-1].bias)
        # start with a low node probability (focal-style prior) so early training is not swamped by false nodes
        with torch.no_grad():
            self.class_head.bias.copy_(torch.tensor([1.0, -1.0]))

    # ------------------------------------------------------------------ parameter groups
    def module_groups(self) -> dict[str, list]:
        """The model's parts by stage, as module / parameter references (not names):

        ``backbone`` (the CNN), ``input_proj``, ``encoder`` (layers and final norm), ``decoder`` (layers, final
        norm, query contents, the [rln] token and its position, the query-position MLP), ``heads`` (node class,
        position, radius, relation, the relation head's line map, the dense head) and, when a translator is
        attached (adaptation by translation), ``translator``. Absent optional parts are left out.
        """
        groups = {
            "backbone": [self.backbone],
            "input_proj": [self.input_proj],
            "encoder": [self.encoder, self.enc_norm],
            "decoder": [
                self.decoder, self.dec_norm, self.query_content, self.rln_token, self.rln_pos, self.query_pos_mlp,
            ],
            "heads": [
                self.class_head, self.pos_head, self.radius_head, self.relation_head, self.line_proj, self.dense_head,
            ],
        }  # fmt: skip
        translator = self._modules.get("translator")
        if translator is not None:
            groups["translator"] = [translator]
        return {k: [m for m in v if m is not None] for k, v in groups.items()}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters of each group of :meth:`module_groups`, each list in ``self.parameters()`` order.

        Raises ``RuntimeError`` when a parameter is in no group or in two, or a group has no parameters, so that
        a new or renamed layer cannot silently change what a stage (training's backbone learning rate,
        adaptation's ``train_layers``) covers.
        """
        owner: dict[int, str] = {}
        for name, parts in self.module_groups().items():
            for part in parts:
                for p in [part] if isinstance(part, nn.Parameter) else part.parameters():
                    if id(p) in owner and owner[id(p)] != name:
                        raise RuntimeError(f"a parameter is in two groups: {owner[id(p)]} and {name}")
                    owner[id(p)] = name
        out: dict[str, list[nn.Parameter]] = {name: [] for name in self.module_groups()}
        missing = []
        for pname, p in self.named_parameters():
            if id(p) in owner:
                out[owner[id(p)]].append(p)
            else:
                missing.append(pname)
        if missing:
            raise RuntimeError(f"parameters in no group of Relationformer.module_groups: {missing}")
        empty = [k for k, v in out.items() if not v]
        if empty:
            raise RuntimeError(f"empty parameter group(s): {empty}")
        return out

    # ------------------------------------------------------------------
    def forward(self, images: torch.Tensor, aux: bool = True) -> dict:
        """``images``: ``(B, C, *patch_size)``. Returns the last decoder layer's outputs plus ``aux`` (a list,
        one dict per earlier layer), ``dense`` (backbone heat maps or None) and ``tokens``/``rln`` per layer.

        ``aux=False`` (prediction): the heads run on the last decoder layer only (and on the others only when
        ``cfg.refine`` needs their positions), ``aux`` is empty and ``dense`` is None."""
        cfg = self.cfg
        b = images.shape[0]
        translator = self._modules.get("translator")  # adaptation by translation: attached by load_checkpoint
        if translator is not None:
            images = translator(images)
        line = None
        if self.line_proj is not None:
            feats, s2 = self.backbone(images, return_stride2=True)
            line = self.line_proj(s2)
        else:
            feats = self.backbone(images)
        dense = self.dense_head(feats) if self.dense_head is not None and aux else None
        mem = self.input_proj(feats).flatten(2).transpose(1, 2)  # (B, L, d)
        mem_pos = self.memory_pos.unsqueeze(0).to(mem.dtype)
        for layer in self.encoder:
            mem = layer(mem, mem_pos)
        mem = self.enc_norm(mem)

        n = cfg.n_queries
        cur = self.reference.unsqueeze(0).expand(b, -1, -1)  # current position estimate of every query
        rln_pos = self.rln_pos.unsqueeze(0).expand(b, -1, -1)
        x = torch.cat([self.query_content, self.rln_token], dim=0).unsqueeze(0).expand(b, -1, -1).to(mem.dtype)
        pos = None
        outs = []
        for k, layer in enumerate(self.decoder):
            if pos is None or cfg.refine:
                qpos = self.query_pos_mlp(sine_embedding(cur, cfg.hidden))
                pos = torch.cat([qpos, rln_pos], dim=1).to(mem.dtype)
            x = layer(x, pos, mem, mem_pos, n)
            if not (aux or cfg.refine or k == len(self.decoder) - 1):
                continue
            o = self._heads(self.dec_norm(x), n, cur)
            o["line"] = line
            outs.append(o)
            if cfg.refine:
                cur = o["pos"].detach()
        last = outs[-1]
        last["aux"] = outs[:-1] if aux else []
        last["dense"] = dense
        return last

    def _heads(self, x: torch.Tensor, n: int, ref: torch.Tensor) -> dict:
        obj, rln = x[:, :n], x[:, n]
        off = torch.tanh(self.pos_head(obj)) * (self.cfg.max_offset * self.cell)
        radius = torch.sigmoid(self.radius_head(obj).squeeze(-1)) * self.cfg.max_radius
        return {
            "logits": self.class_head(obj),  # (B, N, 2): [no node, node]
            "pos": ref + off,  # (B, N, D) normalised
            "radius": radius,  # (B, N) pixels
            "tokens": obj,
            "rln": rln,  # (B, d)
        }

    def relation_inputs(self, tokens: torch.Tensor, rln: torch.Tensor, bi, i, j, out: dict | None = None):
        """The relation MLP's inputs for the pairs ``(i, j)`` and ``(j, i)`` of batch rows ``bi``.

        ``out``: the forward output (or one decoder layer's) holding ``pos`` and ``line``; needed when the
        model samples the segment between the nodes (``cfg.relation_line``)."""
        oi, oj, r = tokens[bi, i], tokens[bi, j], rln[bi]
        a, b = [oi, oj, r], [oj, oi, r]
        if self.line_proj is not None:
            if out is None or out.get("line") is None:
                raise ValueError("this model's relation head samples the image: pass the forward output as `out`")
            samples, disp = self._line_features(out["line"], out["pos"], bi, i, j)
            length = disp.norm(dim=-1, keepdim=True)
            a += [samples.flatten(1), disp, length]
            b += [samples.flip(1).flatten(1), -disp, length]
        return torch.cat(a, dim=-1), torch.cat(b, dim=-1)

    def relation_logits(self, tokens: torch.Tensor, rln: torch.Tensor, bi, i, j, out: dict | None = None):
        """Edge logits for the pairs ``(tokens[bi, i], tokens[bi, j])``; symmetric in ``i`` and ``j``.

        The same function as :meth:`relation_logits_reference` (the relation MLP on :meth:`relation_inputs`, for
        ``(i, j)`` and ``(j, i)``, averaged), computed faster: the MLP's first layer is linear, so its part on the
        two object tokens and on the [rln] token is computed once per token and gathered per pair, and only the
        line samples and the displacement (when the model samples the segment) go through a per-pair product.
        That first layer held most of the work (3 of its ~3.5 inputs per pair are tokens). A relation head that
        is not a plain :class:`MLP` falls back to the reference."""
        head = self.relation_head
        first = head.layers[0] if isinstance(head, MLP) and len(head.layers) >= 2 else None
        d = tokens.shape[-1]
        if not isinstance(first, nn.Linear) or first.in_features < 3 * d:
            return self.relation_logits_reference(tokens, rln, bi, i, j, out)
        w = first.weight
        h = w.shape[0]
        nb, nq = tokens.shape[0], tokens.shape[1]
        # per token: its first-layer term as the pair's i (plus the [rln] term and the bias) and as its j
        proj = tokens @ torch.cat([w[:, :d], w[:, d : 2 * d]], 0).t().to(tokens.dtype)  # (B, N, 2H)
        r = rln @ w[:, 2 * d : 3 * d].t().to(rln.dtype)
        if first.bias is not None:
            r = r + first.bias.to(r.dtype)
        proj = torch.cat([proj[..., :h] + r[:, None, :], proj[..., h:]], -1).reshape(nb * nq, 2 * h)
        bi_t = torch.as_tensor(bi, device=tokens.device)
        fi = bi_t * nq + torch.as_tensor(i, device=tokens.device)
        fj = bi_t * nq + torch.as_tensor(j, device=tokens.device)
        gi, gj = proj.index_select(0, fi), proj.index_select(0, fj)
        p = gi.shape[0]
        u = wa = wb = None
        if self.line_proj is not None:
            if out is None or out.get("line") is None:
                raise ValueError("this model's relation head samples the image: pass the forward output as `out`")
            samples, disp = self._line_features(out["line"], out["pos"], bi, i, j)
            length = disp.norm(dim=-1, keepdim=True)
            k, c = samples.shape[1], samples.shape[2]
            ws, wd, wl = w[:, 3 * d : 3 * d + k * c], w[:, 3 * d + k * c : -1], w[:, -1:]
            # (j, i) reads the samples in reverse and the displacement negated: the same weights, permuted
            wa = w[:, 3 * d :]
            wb = torch.cat([ws.reshape(h, k, c).flip(1).reshape(h, k * c), -wd, wl], 1)
            u = torch.cat([samples.flatten(1), disp, length], 1)
            wa, wb = wa.t().to(u.dtype), wb.t().to(u.dtype)
        if torch.is_grad_enabled():
            ha, hb = gi[:, :h] + gj[:, h:], gj[:, :h] + gi[:, h:]
            if u is not None:
                ha, hb = torch.addmm(ha, u, wa), torch.addmm(hb, u, wb)
            x = F.relu(torch.cat([ha, hb], 0))
        else:  # inference: the same sums, written in place (this part is bound by memory traffic)
            x = torch.empty((2 * p, h), dtype=gi.dtype, device=gi.device)
            torch.add(gi[:, :h], gj[:, h:], out=x[:p])
            torch.add(gj[:, :h], gi[:, h:], out=x[p:])
            del gi, gj
            if u is not None:
                x[:p].addmm_(u, wa)
                x[p:].addmm_(u, wb)
            x.relu_()
        rest = head.layers[1:]
        for n, layer in enumerate(rest):
            x = layer(x)
            if n < len(rest) - 1:
                x = F.relu(x) if torch.is_grad_enabled() else x.relu_()
        x = x.squeeze(-1)
        return 0.5 * (x[:p] + x[p:])

    def relation_logits_reference(self, tokens: torch.Tensor, rln: torch.Tensor, bi, i, j, out: dict | None = None):
        """:meth:`relation_logits` the direct way: the relation MLP on the concatenated inputs of each pair."""
        a, b = self.relation_inputs(tokens, rln, bi, i, j, out)
        return 0.5 * (self.relation_head(a).squeeze(-1) + self.relation_head(b).squeeze(-1))

    def _line_features(self, line: torch.Tensor, pos: torch.Tensor, bi, i, j):
        """``(P, K, C)`` samples of ``line`` on the segments ``pos[bi, i] -> pos[bi, j]`` and the ``(P, D)``
        displacements (patch-normalised; positions are not differentiated through)."""
        k, nd = self.cfg.relation_line, self.cfg.ndim
        pi, pj = pos[bi, i].detach(), pos[bi, j].detach()
        t = torch.linspace(0.0, 1.0, k, device=pos.device, dtype=pos.dtype)
        pts = pi[:, None, :] + t[None, :, None] * (pj - pi)[:, None, :]  # (P, K, D)
        grid = (pts * 2.0 - 1.0).flip(-1).to(line.dtype)  # grid_sample wants (x, y[, z])
        p = grid.shape[0]
        samples = line.new_zeros((p, k, line.shape[1]))
        if p:
            bi_t = torch.as_tensor(bi, device=line.device)
            for b in torch.unique(bi_t).tolist():
                sel = torch.nonzero(bi_t == b).flatten()
                g = grid[sel].reshape((1, len(sel), k) + (1,) * (nd - 2) + (nd,))
                v = F.grid_sample(line[b : b + 1], g, mode="bilinear", padding_mode="border", align_corners=False)
                samples[sel] = v.reshape(line.shape[1], len(sel), k).permute(1, 2, 0)
        return samples, (pj - pi).to(line.dtype)

    def to_pixels(self, pos: torch.Tensor) -> torch.Tensor:
        size = torch.tensor(self.cfg.patch_size, dtype=pos.dtype, device=pos.device)
        return pos * size - 0.5


def build_model(cfg: ModelConfig | dict) -> Relationformer:
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return Relationformer(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
