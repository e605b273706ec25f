"""The automatic field of view keeps the rim of a fundus-like aperture from becoming a false vessel."""

import numpy as np

from napari_vesselgraph.baseline import skeleton_graph
from napari_vesselgraph.baseline.pipeline import field_of_view
from napari_vesselgraph.synth import make_sample


def aperture_image(n=200):
    yy, xx = np.mgrid[:n, :n]
    disc = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (0.45 * n) ** 2
    img = np.zeros((n, n, 3), np.float32)
    img[disc] = (0.8, 0.35, 0.2)
    vessel = disc & (np.abs(yy - n / 2) < 2.5) & (np.abs(xx - n / 2) < 0.3 * n)
    img[vessel] = (0.45, 0.15, 0.1)  # a dark horizontal vessel through the middle
    return img, disc


def test_fov_is_found_for_an_aperture_and_not_for_dark_background_fluorescence():
    img, disc = aperture_image()
    fov = field_of_view(img, img.shape[:2], margin=5)
    assert fov is not None and fov.sum() < disc.sum() and not (fov & ~disc).any()
    fluo, _ = make_sample("vessel2d-fluo", 10_000_000)
    assert field_of_view(fluo, fluo.shape) is None


def test_rim_of_the_aperture_is_not_a_vessel():
    img, disc = aperture_image()
    r = 0.45 * 200
    g_auto = skeleton_graph(img, polarity="dark")
    g_none = skeleton_graph(img, polarity="dark", roi=None)
    dist_from_centre = lambda g: np.linalg.norm(g.nodes - 100, axis=1)  # noqa: E731
    # without a field of view the dark surround's edge yields nodes near the rim; with it none
    assert (np.abs(dist_from_centre(g_none) - r) < 4).sum() > 5
    assert (np.abs(dist_from_centre(g_auto) - r) < 4).sum() == 0
    # the real vessel is still found
    assert g_auto.n_edges >= 3 and np.all(np.abs(g_auto.nodes[:, 0] - 100) < 4)
