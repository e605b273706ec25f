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

``brightness`` is the same measure on the raw image stretched image-wide: 0 at the median (the background
of a sparse image) and 1 at the ``BRIGHT_PERCENTILE`` percentile (the brightest structures), both from a
strided sample of the whole image (:func:`brightness_stats`). A checkpoint whose normalisation is local
(``"local"``: every structure as bright as its neighbourhood allows) draws dim fibres as confidently as the
bright neuron a DIADEM tracer followed; ``support`` cannot tell them apart, ``brightness`` can. The clean-up
setting ``min_brightness`` (off by default) drops edges below it; ``adapt`` chooses it on held-out target
samples too. Chosen on the DIADEM shot stacks (OP_1-2) over this median/percentile stretch and an Otsu-based
one, see docs/benchmarks.md.
"""

from __future__ import annotations

import numpy as np

from .reader import BRIGHT_PERCENTILE, _strided_sample, brightness_reference  # noqa: F401 (measured as it reads)

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

    def read(box):
        data = np.asarray(reader.read_box(box), np.float32)
        return data.mean(axis=0) if data.ndim == len(box) + 1 else data

    return _sample_boxes(graph, reader.source.shape, boxes, read)


def brightness_stats(source) -> tuple[float, float]:
    """``(median, BRIGHT_PERCENTILE percentile)`` of an :class:`~napari_vesselgraph.inference.reader.ImageSource`'s
    raw values (channels averaged), from a strided sample of the whole image (as the tiled reader's statistics;
    the :class:`~napari_vesselgraph.inference.reader.PatchReader` keeps them from its own read as
    ``brightness_stats``)."""
    return brightness_reference(_strided_sample(source), source)


def edge_brightness(graph, source, boxes, stats: tuple[float, float] | None = None) -> np.ndarray:
    """``brightness`` of every edge of ``graph``: :func:`sample_support` on the raw image of ``source`` stretched
    by ``stats`` (:func:`brightness_stats` when None) to [0, 1], read box by box as :func:`edge_support` reads."""
    lo, hi = brightness_stats(source) if stats is None else stats
    span = max(float(hi) - float(lo), 1e-12)

    def read(box):
        data = np.asarray(source.read(box), np.float32)
        if source.has_channels and source.channel is None:
            data = data.mean(axis=-1)
        return np.clip((data - float(lo)) / span, 0.0, 1.0)

    return _sample_boxes(graph, source.shape, boxes, read)


def _sample_boxes(graph, image_shape, boxes, read) -> np.ndarray:
    """:func:`sample_support` of every edge, in the first box holding its midpoint; ``read(box)``: that box of
    the image (spatial axes only) on the scale to sample."""
    e = np.asarray(graph.edges, np.int64)
    out = np.full(len(e), np.nan)
    if len(e) == 0:
        return out
    nodes = np.asarray(graph.nodes, float)
    a, b = nodes[e[:, 0]], nodes[e[:, 1]]
    mid = np.rint((a + b) / 2.0)
    shape = np.array([int(n) for n in image_shape])
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
        data = read(tuple(zip(rlo.tolist(), rhi.tolist())))
        out[sel] = sample_support(data, a[sel], b[sel], offset=rlo)
    out[np.isnan(out)] = UNKNOWN
    return out


def drop_unsupported(graph, min_support: float, column: str = "support"):
    """``graph`` without the edges whose ``column`` (``support`` or ``brightness``) is below ``min_support``,
    and without the nodes that lost every edge that way (nodes that had none are kept). No such column or
    ``min_support <= 0``: ``graph`` unchanged."""
    s = graph.edge_attrs.get(column)
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


def graph_brightness(grey: np.ndarray, graph) -> np.ndarray:
    """The image-wide brightness under each edge of ``graph`` (pixel coordinates of the grey image ``grey``):
    ``grey`` stretched from its median (0) to its ``BRIGHT_PERCENTILE`` percentile (1), both from a strided
    sample, then :func:`sample_support`. A segmentation checkpoint's ``min_brightness`` clean-up
    (:func:`drop_dim`); the Relationformer's is measured tile by tile as it predicts."""
    x = np.asarray(grey, np.float32)
    if graph.n_edges == 0:
        return np.zeros(0)
    step = [max(1, n // 64) for n in x.shape]
    lo, hi = np.percentile(x[tuple(slice(None, None, k) for k in step)], [50.0, BRIGHT_PERCENTILE])
    nodes = np.asarray(graph.nodes, float)
    return sample_support((x - lo) / max(float(hi - lo), 1e-6), nodes[graph.edges[:, 0]], nodes[graph.edges[:, 1]])


def drop_dim(grey: np.ndarray, graph, min_brightness: float):
    """``graph`` without the edges on structures dimmer than ``min_brightness`` of the image-wide brightness
    (:func:`graph_brightness`; 0: off), and without the nodes left with no edge: for images where only the
    brightest structure is wanted (one dye-filled neuron among dim fibres)."""
    if min_brightness <= 0 or graph.n_edges == 0:
        return graph
    graph.edge_attrs["brightness"] = graph_brightness(grey, graph)
    return drop_unsupported(graph, float(min_brightness), column="brightness")
