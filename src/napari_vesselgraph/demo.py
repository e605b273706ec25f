"""`vesselgraph demo`: the main job on a bundled default, written to a folder.

Runs the bundled checkpoint that suits the sample image (``checkpoints.suits.pick_checkpoint``: the 2D vessel
model on the default synthetic sample, the robust 2D model on the retina photo), or the classical skeleton
baseline when no model is bundled, on a sample image, writes the graph (GraphML + JSON) and an overlay PNG, and, when the sample has a ground
truth, scores the model and the classical baseline side by side.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_CHECKPOINT = "vessel2d-fluo"


def _bundled_default():
    try:
        from .checkpoints import list_bundled
    except ImportError:
        return None
    for entry in list_bundled():
        if entry["name"] == DEFAULT_CHECKPOINT:
            return entry
    return None


def list_bundled_safe() -> list[dict]:
    try:
        from .checkpoints import list_bundled
    except ImportError:
        return []
    return [e for e in list_bundled() if not e.get("error")]


def render_overlay(image, graph, path, title: str = "", max_size: int = 1400) -> None:
    """Draw the graph over the image (3D: maximum projection along z) and save a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from .io import atomic_write

    img = np.asarray(image, dtype=float)
    nodes = graph.nodes
    if graph.ndim == 3:
        img = img.max(axis=0)
        nodes = nodes[:, 1:]
    lo, hi = np.percentile(img, [0.5, 99.5])
    img = np.clip((img - lo) / (hi - lo + 1e-9), 0, 1)
    h, w = img.shape[:2]
    dpi = 100
    fig_w = min(max_size, max(w, 400)) / dpi
    fig = plt.figure(figsize=(fig_w, fig_w * h / w), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    if graph.n_edges:
        segs = np.stack([nodes[graph.edges[:, 0]], nodes[graph.edges[:, 1]]], axis=1)[:, :, ::-1]
        ax.add_collection(LineCollection(segs, colors="#00ff66", linewidths=1.2))
    if graph.n_nodes:
        ax.scatter(nodes[:, 1], nodes[:, 0], s=6, c="#ff2255", linewidths=0)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    if title:
        ax.text(8, 20, title, color="white", fontsize=10, backgroundcolor=(0, 0, 0, 0.5), va="top")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)


def run_demo(output, sample=None, method=None, device="auto", progress=None) -> dict:
    from .inference import predict
    from .io import check_writable, write_graph
    from .samples import load_sample

    out = Path(output)
    check_writable(out, folder=True)
    out.mkdir(parents=True, exist_ok=True)
    bundled = _bundled_default()
    if method is None:
        method = "model" if bundled is not None else "skeleton"
    if method == "model" and bundled is None:
        from .errors import VesselGraphError

        raise VesselGraphError(f"no bundled checkpoint named {DEFAULT_CHECKPOINT!r}; use --method skeleton")
    if sample is None:
        sample = bundled["meta"].get("training", {}).get("domain", "vessel2d-fluo") if method == "model" else "retina"
    image, scale, gt = load_sample(sample)
    ckpt = DEFAULT_CHECKPOINT
    if method == "model":  # the bundled checkpoint that suits the sample (the retina photo: the robust 2D model)
        from .checkpoints.suits import pick_checkpoint

        ckpt = pick_checkpoint(image, names=[e["name"] for e in list_bundled_safe()]) or DEFAULT_CHECKPOINT
    summary = [f"sample: {sample} {image.shape}", f"method: {method}" + (f" ({ckpt})" if method == "model" else "")]
    runs = {}
    methods = [method] + (["skeleton"] if gt is not None and method != "skeleton" else [])
    for m in methods:
        t0 = time.perf_counter()
        params = {}
        if m == "skeleton" and gt is not None:  # the baseline's defaults for this domain, as in the benchmark
            from .baseline import preset

            params = preset(sample)
        g = predict(image, checkpoint=ckpt if m == "model" else None, method=m, device=device,
                    scale=scale, progress=progress if m == method else None, **params)
        runs[m] = (g, time.perf_counter() - t0)
    graph, seconds = runs[method]
    paths = write_graph(graph, out / f"{sample}_{method}.graphml") + write_graph(graph, out / f"{sample}_{method}.json")
    overlay = out / f"{sample}_{method}_overlay.png"
    render_overlay(image, graph, overlay, title=f"{sample} - {method}: {graph.n_nodes} nodes, {graph.n_edges} edges")
    paths.append(str(overlay))
    summary.append(f"graph: {graph.n_nodes} nodes, {graph.n_edges} edges in {seconds:.1f} s")
    scores = {}
    if gt is not None:
        from .metrics import evaluate, smd

        for m, (g, sec) in runs.items():
            scores[m] = evaluate(g, gt, image_shape=image.shape)
            s = scores[m]
            s["smd_px"] = smd(g, gt)  # the scale `vesselgraph evaluate` reports
            summary.append(
                f"{m:>9} vs ground truth: SMD {s['smd']:.4f} of the image side ({s['smd_px']:.2f} px)  "
                f"node F1 {s['node_f1']:.3f}  edge F1 {s['edge_f1']:.3f}  "
                f"length quality {s['length_quality']:.3f}  ({sec:.1f} s)"
            )
    summary.append("wrote: " + ", ".join(paths))
    return {"graph": graph, "paths": paths, "scores": scores, "summary": summary}
