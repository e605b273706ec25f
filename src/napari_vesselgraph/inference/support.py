"""How much the image shows under each predicted edge: the edge attribute ``support``.

A model trained on synthetic images draws some edges where the image is dark (background texture, noise,
the rim of a photo). The image itself says which edges lie on something bright: ``support`` is the mean,
over ``N_SAMPLES`` points evenly spaced on the segment (end points included), of the brightest normalised
intensity within one pixel of each point (a 3-pixel maximum filter, so a thin fibre a pixel off the segment
still counts). "Normalised" is what the model saw: the checkpoint's own intensity stretch (about 0 for
background, 1 for the brightest structures), averaged over channels.

:func:`edge_support` is called by :func:`napari_vesselgraph.inference.predict` on the raw stitched graph,
tile by tile with the same :class:`~napari_vesselgraph.inference.reader.PatchReader` the model read, so a
lazy image is not read whole. The clean-up setting ``min_support``
(:class:`napari_vesselgraph.inference.postprocess.CleanupSettings`, off by default) drops edges below it;
``adapt`` chooses it on held-out target samples (:func:`napari_vesselgraph.model.thresholds.select_thresholds`).
It suits images whose structures are brighter than their background after the checkpoint's normalisation
(fluorescence stacks, confocal neurons); on dark vessels (fundus photos) the held-out choice keeps it off.
"""

from __future__ import annotations

import numpy as np

#: points sampled on each edge
N_SAMPLES = 5
#: width (pixels) of the maximum filter applied before sampling
FILTER_SIZE = 3
#: value given to an edge no tile holds (cannot happen for edges the model drew; kept, never dropped)
UNKNOWN = 1.0


def sample_support(image: np.ndarray, a: np.ndarray, b: np.ndarray, offset=None) -> np.ndarray:
    """Support of segments ``a[i] -> b[i]`` (pixel coordinates; ``image`` starts at pixel ``offset``) in a normalised ``image``
    (spatial axes only): mean over ``N_SAMPLES`` points of the ``FILTER_SIZE`` maximum-filtered image."""
    from scipy import ndimage as ndi

    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if len(a) == 0:
        return np.zeros(0)
    img = ndi.maximum_filter(np.asarray(image, np.float32), size=FILTER_SIZE, mode="nearest")
    t = np.linspace(0.0, 1.0, N_SAMPLES)[None, :, None]
    pts = np.rint(a[:, None, :] * (1.0 - t) + b[:, None, :] * t).astype(np.int64)  # rounded in image pixels
    if offset is not None:
        pts -= np.asarray(offset, np.int64)
    idx = np.clip(pts, 0, np.array(img.shape) - 1)
    return img[tuple(idx[..., k] for k in range(img.ndim))].mean(axis=1).astype(np.float64)


def edge_support(graph, reader, boxes) -> np.ndarray | None:
    """``support`` of every edge of ``graph`` (image pixel coordinates), read box by box through ``reader``
    (``boxes``: ``((lo, hi), ...)`` per box, covering the predicted windows, e.g. the plan's tiles).

    Each edge is measured in the first box holding its midpoint. ``None`` when the reader normalises window
    by window (no image-wide intensity scale to compare edges with)."""
    if getattr(reader, "per_window", False):
        return None
    e = np.asarray(graph.edges, np.int64)
    out = np.full(len(e), np.nan)
    if len(e) == 0:
        return out
    nodes = np.asarray(graph.nodes, float)
    a, b = nodes[e[:, 0]], nodes[e[:, 1]]
    mid = np.rint((a + b) / 2.0)
    shape = np.array([int(n) for n in reader.source.shape])
    pad = FILTER_SIZE // 2
    for box in boxes:
        lo = np.array([int(x) for x, _ in box])
        hi = np.array([int(y) for _, y in box])
        sel = np.isnan(out) & np.all((mid >= lo) & (mid < hi), axis=1)
        if not sel.any():
            continue
        # read what these edges cover, one filter radius more (inside the image): the same values as the
        # whole image gives, whatever the tiling
        ends = np.rint(np.concatenate([a[sel], b[sel]]))
        rlo = np.clip(ends.min(axis=0).astype(np.int64) - pad, 0, shape - 1)
        rhi = np.clip(ends.max(axis=0).astype(np.int64) + pad + 1, rlo + 1, shape)
        data = np.asarray(reader.read_box(tuple(zip(rlo.tolist(), rhi.tolist()))), np.float32)
        data = data.mean(axis=0) if data.ndim == len(lo) + 1 else data
        out[sel] = sample_support(data, a[sel], b[sel], offset=rlo)
    out[np.isnan(out)] = UNKNOWN
    return out


def drop_unsupported(graph, min_support: float):
    """``graph`` without the edges whose ``support`` is below ``min_support``, and without the nodes that
    lost every edge that way (nodes that had none are kept). No ``support`` column or ``min_support <= 0``:
    ``graph`` unchanged."""
    s = graph.edge_attrs.get("support")
    if s is None or min_support <= 0 or graph.n_edges == 0:
        return graph
    keep = np.asarray(s, float) >= float(min_support)
    if keep.all():
        return graph
    n = graph.n_nodes
    had = np.bincount(graph.edges.ravel(), minlength=n) > 0
    edges = graph.edges[keep]
    has = np.bincount(edges.ravel(), minlength=n) > 0 if len(edges) else np.zeros(n, bool)
    from ..graph import VesselGraph

    g = VesselGraph(
        graph.nodes,
        edges,
        dict(graph.node_attrs),
        {k: np.asarray(v)[keep] for k, v in graph.edge_attrs.items()},
        graph.scale,
        dict(graph.metadata or {}),
    )
    return g.subgraph(has | ~had)
