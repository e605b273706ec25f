"""How wide the structures of a 2D image are: the measurement behind the automatic zoom
(:mod:`napari_vesselgraph.inference.autozoom`) and the checkpoint picker's width check
(:mod:`napari_vesselgraph.checkpoints.suits`). Numpy and scipy only."""

from __future__ import annotations

import numpy as np

LOCAL_SIGMA = 32.0  # local-contrast window of the rough segmentation (wider than the vessels measured)
THRESHOLD = 0.12  # local contrast (after normalisation, background 0) that counts as structure


def structure_radius(image2d: np.ndarray) -> float | None:
    """90th percentile of the distance-transform radii along the centre lines of a rough 2D segmentation.

    ``image2d``: grey ``(Y, X)`` or colour ``(Y, X, C)``. The polarity (bright or dark structures) is the
    heavier tail of the local contrast. ``None`` when too little structure is found.
    """
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    from .preprocess import input_meta, normalize_image

    img = np.asarray(image2d)
    channels = img.shape[-1] if img.ndim == 3 and img.shape[-1] <= 4 else 1
    n = normalize_image(img, input_meta(2, channels, method="local", sigma=LOCAL_SIGMA))
    n = n.mean(0) - 0.5
    v = n[np.abs(n) > 1e-3]
    if v.size < 100:
        return None
    lo, hi = np.percentile(v, [2, 98])
    sign = -1.0 if -lo > hi else 1.0
    mask = ndi.binary_opening(n * sign > THRESHOLD)
    lab, count = ndi.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    mask = sizes[lab] >= 64
    skel = skeletonize(mask)
    if skel.sum() < 20:
        return None
    radii = ndi.distance_transform_edt(mask)[skel]
    return float(np.percentile(radii, 90))
