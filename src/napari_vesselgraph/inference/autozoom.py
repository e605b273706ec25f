"""How much to shrink an image so that its structures have the width a model knows best.

A model sees fixed-size patches and was trained on structures of a range of widths; a fundus photo of
1411 px has vessels 2-3 times wider than the 565 px DRIVE photos, and a 30 cm satellite tile has roads
25 px wide. :func:`structure_radius` measures the width of the widest structures of an image (the 90th
percentile of the centre-line radii of a rough segmentation) and :func:`estimate_zoom` turns it into a
zoom factor for :func:`napari_vesselgraph.inference.predict` (``zoom=None``/``"auto"``), from the
reference a checkpoint records (``meta["scale_reference"]["radius_p90"]``: the same measurement on the
images it does best on).
"""

from __future__ import annotations

import numpy as np

# the width measurement lives in model.scale (below inference and checkpoints: the checkpoint picker uses it too);
# re-exported here, where the zoom is decided
from ..model.scale import LOCAL_SIGMA, THRESHOLD, structure_radius  # noqa: F401

AUTO_ZOOM_MIN = 0.25
AUTO_ZOOM_SIDE = 1024  # measured on a central crop of at most this many pixels per side


def isotropic_zoom(scale, factor: float = 1.0) -> tuple[float, ...]:
    """Per-axis zoom making the voxels cubic at ``1 / factor`` times the finest pixel size of ``scale``
    (physical size per axis): ``(5, 1, 1)`` for a (5, 1, 1) µm stack, ``(2.5, 0.5, 0.5)`` with ``factor=0.5``.

    Models trained on isotropic volumes see a stack with thick z steps as flat slabs; resampled, its vessels
    are tubes again. ``scale=None`` (no voxel size known): ``factor`` on every axis."""
    from ..errors import VesselGraphError

    f = float(factor)
    if not np.isfinite(f) or f <= 0:
        raise VesselGraphError(f"the isotropic zoom factor must be positive, got {factor!r}")
    if scale is None:
        return (f,)
    s = np.asarray(scale, float)
    if s.ndim != 1 or not len(s) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise VesselGraphError(f"an isotropic zoom needs a positive voxel size per axis, got {scale!r}")
    return tuple(float(x) for x in s / s.min() * f)


def estimate_zoom(source, reference_radius: float, tolerance: float = 1.3) -> float:
    """Zoom (<= 1) bringing the structures of a 2D image to ``reference_radius`` px; 1 for 3D images.

    ``source``: an :class:`~napari_vesselgraph.inference.reader.ImageSource` (read on a central crop of at
    most ``AUTO_ZOOM_SIDE`` px per side) or a numpy image. Returns 1 when the structures are at most
    ``tolerance`` times wider than the reference, else ``reference / radius``, at least ``AUTO_ZOOM_MIN``.
    """
    if isinstance(source, np.ndarray):
        from .reader import ImageSource

        rgb = source.ndim == 3 and source.shape[-1] in (3, 4)
        source = ImageSource(source, source.ndim - (1 if rgb else 0), rgb)
    if source.spatial_ndim != 2:
        return 1.0
    box = []
    for n in source.shape:
        lo = max(0, (n - AUTO_ZOOM_SIDE) // 2)
        box.append((lo, min(n, lo + AUTO_ZOOM_SIDE)))
    r = structure_radius(np.asarray(source.read(tuple(box)), dtype=np.float32))
    if r is None or r <= tolerance * reference_radius:
        return 1.0
    return float(max(AUTO_ZOOM_MIN, reference_radius / r))


def zoom_image(image: np.ndarray, zoom, spatial_ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(resampled image, factors actually applied per spatial axis)``: ``image`` (channels last, if any)
    resampled by ``zoom`` (one factor or one per spatial axis) with linear interpolation, smoothed first when
    shrinking (anti-aliasing), as :func:`napari_vesselgraph.inference.predict` resamples with ``zoom``."""
    from scipy import ndimage as ndi

    img = np.asarray(image, dtype=np.float32)
    spatial = img.shape[:spatial_ndim]
    z = np.broadcast_to(np.asarray(zoom, dtype=float), (spatial_ndim,))
    new_shape = tuple(max(1, round(n * f)) for n, f in zip(spatial, z))
    real = np.asarray(new_shape, float) / np.asarray(spatial, float)
    extra = (1.0,) * (img.ndim - spatial_ndim)
    if np.all(real < 1):
        sig = [max(0.0, (1 / f - 1) / 2) for f in real] + [0.0] * len(extra)
        img = ndi.gaussian_filter(img, sig, mode="nearest")
    out = ndi.zoom(img, tuple(real) + extra, order=1, mode="nearest", grid_mode=True)
    return out, real


def zoom_graph(graph, factors, spacing: float | None = None):
    """``graph`` in the pixels of an image resampled by ``factors`` (:func:`zoom_image`): node positions and
    radii scaled, the voxel size divided; with ``spacing`` the nodes are re-spaced about ``spacing`` px apart
    along the paths (as the training graphs are)."""
    from ..graph.core import VesselGraph

    f = np.asarray(factors, float)
    nodes = (np.asarray(graph.nodes, float) + 0.5) * f - 0.5
    attrs = dict(graph.node_attrs)
    if "radius" in attrs:
        attrs["radius"] = np.asarray(attrs["radius"], float) * float(np.mean(f[-2:]))
    scale = None if graph.scale is None else tuple(float(s) / float(k) for s, k in zip(graph.scale, f))
    out = VesselGraph(nodes, graph.edges, attrs, dict(graph.edge_attrs), scale, dict(graph.metadata))
    if spacing:
        from ..importers._resample import resample

        out = resample(out, float(spacing))
    return out
