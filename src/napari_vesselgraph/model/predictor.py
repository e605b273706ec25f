"""Patch-level prediction: a loaded checkpoint that turns normalised patches into candidate graphs.

The sliding-window / stitching code in :mod:`napari_vesselgraph.inference` builds on :class:`PatchPredictor`.
Every candidate above a low floor is returned with its score, so thresholds can be changed afterwards
without running the model again.

What the relation head scores (the costly part: it is quadratic in the node candidates of a patch):

* node candidates scoring below the *node floor* are dropped first (default :data:`NODE_FLOOR`; a checkpoint
  may record a higher one in ``meta["candidates"]["node_floor"]``, e.g. the lowest node threshold that
  threshold selection tries, ``model.thresholds.THRESHOLD_GRID``, for a model whose queries mostly score high);
* pairs of kept candidates farther apart than the *pair radius* (patch pixels,
  ``meta["candidates"]["pair_radius"]``; default: none) are not scored: training graphs have no edge longer than
  about 12 px, so such pairs only ever give shortcut edges that the clean-up removes;
* edges scoring below the *edge floor* (:data:`EDGE_FLOOR`) are not returned.

``predict`` lowers the node floor to a threshold asked for below it, so a lower threshold still sees its nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from .preprocess import normalize_image
from .refine import RefineSettings, refine_nodes_batch

NODE_FLOOR = 0.05
EDGE_FLOOR = 0.05


def select_device(device="auto"):
    """``"auto"`` → cuda, then mps, then cpu. Other values (``"cpu"``, ``"cuda:1"``, a torch.device) are
    checked and returned as a ``torch.device``."""
    import torch

    if isinstance(device, torch.device):
        dev = device
    else:
        name = "auto" if device is None else str(device).lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise VesselGraphError(f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VesselGraphError("device 'cuda' was asked for but no CUDA GPU is available (use 'auto' or 'cpu')")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise VesselGraphError("device 'mps' was asked for but Apple MPS is not available (use 'auto' or 'cpu')")
    return dev


class PatchPredictor:
    """A model + its metadata on a device.

    Attributes: ``ndim``, ``patch_size`` (tuple), ``channels``, ``meta``, ``device`` (torch.device), ``model``.
    """

    def __init__(
        self, model, meta: dict[str, Any], device="cpu", batch_size: int | None = None, refine=None, candidates=None
    ):
        import torch

        self.device = select_device(device)
        self.model = model.to(self.device).eval()
        self.meta = dict(meta)
        cfg = model.cfg
        self.ndim = cfg.ndim
        self.patch_size = tuple(int(p) for p in cfg.patch_size)
        self.channels = cfg.in_channels
        self.input_meta = dict(self.meta.get("input") or {})
        self.input_meta.setdefault("ndim", self.ndim)
        self.input_meta.setdefault("channels", self.channels)
        if batch_size is None:
            batch_size = 64 if self.device.type != "cpu" else (16 if self.ndim == 2 else 4)
        self.batch_size = int(batch_size)
        from ..checkpoints.meta import checkpoint_thresholds

        #: score thresholds the checkpoint records (defaults 0.5)
        self.node_threshold, self.edge_threshold = map(float, checkpoint_thresholds(self.meta))
        #: node refinement on the patch intensities (:mod:`.refine`): ``refine`` if given, else the checkpoint's
        #: ``meta["node_refinement"]`` (a dict of settings, or false), else the defaults
        self.refine = RefineSettings.from_any(self.meta.get("node_refinement") if refine is None else refine)
        from ..checkpoints.meta import checkpoint_candidates

        #: candidate selection (see the module doc): the checkpoint's ``meta["candidates"]``, with ``candidates``
        #: (a dict with ``node_floor`` / ``pair_radius``) over it; ``pair_radius`` None: every pair is scored
        cand = checkpoint_candidates(self.meta)
        cand.update(candidates or {})
        nf, pr = cand.get("node_floor"), cand.get("pair_radius")
        self.node_floor = NODE_FLOOR if nf is None else float(nf)
        self.pair_radius = None if pr is None or not np.isfinite(float(pr)) else float(pr)
        self._amp_dtype = None
        if self.device.type == "cuda":
            self._amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def __repr__(self) -> str:
        return (
            f"PatchPredictor({self.ndim}D, patch {self.patch_size}, {self.channels} channel(s), "
            f"domain={self.meta.get('domain')!r}, device={self.device})"
        )

    # ------------------------------------------------------------------
    def prepare(self, image) -> np.ndarray:
        """Normalise a whole image the way the model was trained: float32 ``(C, *spatial)``."""
        return normalize_image(image, self.input_meta)

    def predict_batch(
        self, patches: np.ndarray, node_floor: float | None = None, edge_floor: float = EDGE_FLOOR
    ) -> list[dict]:
        """Candidates for each patch of ``patches`` ``(B, C, *patch_size)`` (already normalised).

        Returns one dict per patch: ``nodes`` (K, D) patch pixel coordinates, ``node_score`` (K,),
        ``radius`` (K,), ``edges`` (M, 2) indices into ``nodes``, ``edge_score`` (M,). Node positions are
        refined on the patch intensities when ``self.refine`` is enabled (edges are scored before).
        ``node_floor``: ``None`` for the predictor's (:attr:`node_floor`); pairs farther apart than
        :attr:`pair_radius` get no edge (see the module doc).
        """
        patches = np.asarray(patches, dtype=np.float32)
        want = (self.channels, *self.patch_size)
        if patches.ndim != self.ndim + 2 or tuple(patches.shape[1:]) != want:
            raise VesselGraphError(f"patches must have shape (B, {', '.join(map(str, want))}), got {patches.shape}")
        nf = self.node_floor if node_floor is None else float(node_floor)
        out = []
        for s in range(0, len(patches), self.batch_size):
            out.extend(self._predict_chunk(patches[s : s + self.batch_size], nf, edge_floor))
        return out

    def _pairs(self, pix, keep):
        """Index pairs ``(i, j)``, ``i < j``, into ``keep`` (the kept candidates of one patch) to score:
        all of them, or those at most :attr:`pair_radius` apart."""
        import torch

        k = len(keep)
        iu, ju = torch.triu_indices(k, k, 1, device=pix.device)
        if self.pair_radius is not None and len(iu):
            p = pix[keep]
            near = (p[iu] - p[ju]).square().sum(-1) <= self.pair_radius**2
            iu, ju = iu[near], ju[near]
        return iu, ju

    def _predict_chunk(self, patches: np.ndarray, node_floor: float, edge_floor: float) -> list[dict]:
        import torch

        model = self.model
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device)
            if self._amp_dtype is not None:
                with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                    o = model(x, aux=False)
            else:
                o = model(x, aux=False)
            prob = o["logits"].float().softmax(-1)[..., 1]
            pix = model.to_pixels(o["pos"].float())
            rad = o["radius"].float()
            # the kept candidates of every patch, then the pairs to score, all patches in one relation call
            keeps = [torch.nonzero(prob[b] >= node_floor).flatten() for b in range(len(patches))]
            pairs = [self._pairs(pix[b], keep) for b, keep in enumerate(keeps)]
            counts = [len(iu) for iu, _ in pairs]
            ps_all = None
            if sum(counts):
                bi = torch.cat([torch.full_like(iu, b) for b, (iu, _) in enumerate(pairs)])
                gi = torch.cat([keeps[b][iu] for b, (iu, _) in enumerate(pairs)])
                gj = torch.cat([keeps[b][ju] for b, (_, ju) in enumerate(pairs)])
                if self._amp_dtype is not None:
                    with torch.autocast(device_type="cuda", dtype=self._amp_dtype):
                        lg = model.relation_logits(o["tokens"], o["rln"], bi, gi, gj, o)
                else:
                    lg = model.relation_logits(o["tokens"], o["rln"], bi, gi, gj, o)
                ps_all = torch.sigmoid(lg.float()).cpu().numpy().astype(np.float64)
            prob_np = prob.cpu().numpy().astype(np.float64)
            pix_np = pix.cpu().numpy().astype(np.float64)
            rad_np = rad.cpu().numpy().astype(np.float64)
            results = []
            at = 0
            for b, keep in enumerate(keeps):
                kn = keep.cpu().numpy()
                res = {
                    "nodes": pix_np[b, kn],
                    "node_score": prob_np[b, kn],
                    "radius": rad_np[b, kn],
                    "edges": np.zeros((0, 2), dtype=np.int64),
                    "edge_score": np.zeros(0, dtype=np.float64),
                }
                n = counts[b]
                if n:
                    ps = ps_all[at : at + n]
                    sel = ps >= edge_floor
                    iu, ju = pairs[b]
                    res["edges"] = np.stack([iu.cpu().numpy()[sel], ju.cpu().numpy()[sel]], 1).astype(np.int64)
                    res["edge_score"] = ps[sel]
                at += n
                results.append(res)
        if self.refine.enabled:
            refined = refine_nodes_batch(
                patches, [r["nodes"] for r in results], [r["node_score"] for r in results], self.refine
            )
            for r, nodes in zip(results, refined):
                r["nodes"] = nodes
        return results

    def predict_patch_graph(self, patch: np.ndarray, node_threshold: float | None = None, edge_threshold=None):
        """One normalised patch ``(C, *patch_size)`` → a :class:`VesselGraph` (thresholded; defaults: the
        checkpoint's thresholds)."""
        nt = self.node_threshold if node_threshold is None else node_threshold
        et = self.edge_threshold if edge_threshold is None else edge_threshold
        return candidates_to_graph(self.predict_batch(patch[None])[0], nt, et, ndim=self.ndim)

    def close(self) -> None:
        """Move the model off the GPU and free its memory."""
        from .loop import free_device

        if self.device.type != "cpu":
            self.model.to("cpu")
            free_device(self.device)


def candidates_to_graph(cand: dict, node_threshold: float = 0.5, edge_threshold: float = 0.5, ndim: int | None = None):
    """Keep candidates above the thresholds; an edge needs both ends kept. Returns a :class:`VesselGraph`."""
    from ..graph import VesselGraph

    nodes = np.asarray(cand["nodes"], dtype=float)
    d = nodes.shape[1] if nodes.ndim == 2 and nodes.shape[1] else (ndim or 2)
    keep = np.asarray(cand["node_score"]) >= node_threshold
    index = np.full(len(nodes), -1, dtype=np.int64)
    index[keep] = np.arange(int(keep.sum()))
    e = np.asarray(cand["edges"], dtype=np.int64).reshape(-1, 2)
    es = np.asarray(cand["edge_score"], dtype=float)
    ek = es >= edge_threshold
    if len(e):
        ek &= keep[e[:, 0]] & keep[e[:, 1]]
    return VesselGraph(
        nodes[keep].reshape(-1, d),
        index[e[ek]].reshape(-1, 2),
        node_attrs={
            "radius": np.asarray(cand["radius"], float)[keep],
            "score": np.asarray(cand["node_score"], float)[keep],
        },
        edge_attrs={"score": es[ek]},
    )


def make_predictor(
    checkpoint: str | Path | None = None, device="auto", batch_size: int | None = None, refine=None, candidates=None
) -> PatchPredictor:
    """Load a checkpoint (name, path, or ``None`` for the default bundled model) onto a device (a segmentation
    checkpoint gives a :class:`~napari_vesselgraph.model.segment.Segmenter`, which :func:`predict` also takes).

    ``refine``: node refinement settings (``False`` off, a dict, ``None``: the checkpoint's, else the defaults).
    ``candidates``: ``node_floor`` / ``pair_radius`` over the checkpoint's (see the module doc)."""
    from ..checkpoints import load_checkpoint, read_metadata, resolve
    from .segment import is_segmentation, load_segmenter

    dev = select_device(device)
    if is_segmentation(read_metadata(resolve(checkpoint))):
        return load_segmenter(checkpoint, device=dev)  # predict() runs it whole-image, not window by window
    model, meta = load_checkpoint(checkpoint, device="cpu")
    return PatchPredictor(model, meta, device=dev, batch_size=batch_size, refine=refine, candidates=candidates)
