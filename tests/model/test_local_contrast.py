"""Local-contrast input normalisation (preprocess method 'local')."""

import numpy as np

from napari_vesselgraph.model.preprocess import input_meta, local_contrast, normalize_image


def _photo(shape=(200, 220), dark=True, rim=True):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    light = 0.4 + 0.5 * xx / shape[1]  # strong illumination gradient
    img = np.stack([light * 0.9, light * 0.45, light * 0.25], -1)
    vessel = np.abs(yy - 100) < 2.5
    if dark:
        img[vessel] *= 0.6
    else:
        img[vessel] = np.minimum(img[vessel] * 1.6, 1)
    if rim:
        r = np.hypot(yy - 100, xx - 110)
        img[r > 90] = 0.01
    return img, vessel, (np.hypot(yy - 100, xx - 110) <= 90) if rim else np.ones(shape, bool)


def test_local_contrast_removes_illumination_and_rim_and_keeps_polarity():
    img, vessel, fov = _photo()
    out = normalize_image(img, input_meta(2, 1, method="local"))[0]
    assert out.shape == img.shape[:2] and out.dtype == np.float32
    bg = fov & ~vessel & (np.abs(np.mgrid[:200, :220][0] - 100) > 20)
    inner = fov & (np.hypot(*(np.mgrid[:200, :220] - np.array([100, 110])[:, None, None])) < 75)
    # background flat around 0.5 from the dark left to the bright right
    left, right = bg & inner & (np.mgrid[:200, :220][1] < 80), bg & inner & (np.mgrid[:200, :220][1] > 140)
    assert abs(out[left].mean() - out[right].mean()) < 0.05
    assert abs(out[bg & inner].mean() - 0.5) < 0.05
    # the dark vessel stays darker than the background, the rim disappears (set to 0.5)
    assert out[vessel & inner].mean() < out[bg & inner].mean() - 0.15
    assert np.allclose(out[~fov][:100], 0.5)
    # a bright vessel comes out bright
    img2, vessel2, fov2 = _photo(dark=False, rim=False)
    out2 = local_contrast(img2.mean(-1))
    assert out2[vessel2].mean() > 0.65


def test_percentile_recipe_unchanged_by_default():
    img = np.linspace(0, 1, 100 * 100, dtype=np.float32).reshape(100, 100)
    a = normalize_image(img, input_meta(2, 1))
    assert abs(float(a.min())) < 1e-6 and abs(float(a.max()) - 1) < 1e-6
