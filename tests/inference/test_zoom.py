"""predict(zoom=...): resample the image so structures have the width the model knows, graph mapped back."""

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.inference import predict


def _line_image(width=400, half=6.0):
    yy, xx = np.mgrid[:width, :width].astype(np.float32)
    img = np.clip(half + 0.5 - np.abs(yy - 200.0), 0, 1) * (xx > 40) * (xx < 360)
    return img.astype(np.float32)


def test_zoom_maps_the_graph_back_to_original_pixels():
    img = _line_image()
    g = predict(img, method="skeleton", zoom=0.5, scale=(2.0, 2.0))
    assert g.metadata["zoom_factor"] == [0.5, 0.5]
    assert g.scale == (2.0, 2.0)
    assert g.n_nodes >= 2
    # nodes on the line y = 200, spanning most of it, in full-resolution pixels
    inner = (g.nodes[:, 1] > 80) & (g.nodes[:, 1] < 320)
    assert inner.sum() >= 3 and np.all(np.abs(g.nodes[inner, 0] - 200) < 2.5)
    assert g.nodes[:, 1].max() - g.nodes[:, 1].min() > 250


def test_zoom_with_region_keeps_full_image_coordinates():
    img = _line_image()
    g = predict(img, method="skeleton", zoom=0.5, region=(slice(150, 250), slice(0, 400)))
    inner = (g.nodes[:, 1] > 80) & (g.nodes[:, 1] < 320)
    assert inner.sum() >= 3 and np.all(np.abs(g.nodes[inner, 0] - 200) < 2.5)


@pytest.mark.parametrize("bad", [0, -1, 20, float("nan"), (1.0, 1.0, 1.0)])
def test_bad_zoom_is_one_clear_error(bad):
    with pytest.raises(VesselGraphError, match="zoom"):
        predict(_line_image(), method="skeleton", zoom=bad)


def test_zoom_radius_is_in_original_pixels():
    img = _line_image(half=8.0)
    g = predict(img, method="skeleton", zoom=0.5)
    if "radius" in g.node_attrs:
        inner = (g.nodes[:, 1] > 100) & (g.nodes[:, 1] < 300)
        assert abs(float(np.median(g.node_attrs["radius"][inner])) - 8.0) < 2.5
    assert isinstance(g, VesselGraph)


def _grid_image(half):
    img = np.zeros((400, 400), np.float32)
    yy, xx = np.mgrid[:400, :400]
    for c in (80, 200, 320):
        img = np.maximum(img, np.clip(half + 0.5 - np.abs(yy - c), 0, 1))
        img = np.maximum(img, np.clip(half + 0.5 - np.abs(xx - c), 0, 1))
    return img


def test_estimate_zoom_shrinks_wide_structures_only():
    from napari_vesselgraph.inference.autozoom import estimate_zoom

    wide = estimate_zoom(_grid_image(9.0), reference_radius=3.0)
    thin = estimate_zoom(_grid_image(2.5), reference_radius=3.0)
    assert 0.25 <= wide < 0.6
    assert thin == 1.0
    assert estimate_zoom(np.zeros((8, 40, 40), np.float32), reference_radius=3.0) == 1.0  # 3D: never


def test_auto_zoom_uses_the_checkpoint_reference():
    from napari_vesselgraph.inference.predict import _auto_zoom

    class P:
        meta = {"scale_reference": {"radius_p90": 3.0}}

    assert _auto_zoom(_grid_image(9.0), None, "model", P(), None, None, explicit=False) < 0.6
    assert _auto_zoom(_grid_image(9.0), None, "skeleton", P(), None, None, explicit=False) is None

    class Q:
        meta = {}

    assert _auto_zoom(_grid_image(9.0), None, "model", Q(), None, None, explicit=False) is None
    with pytest.raises(VesselGraphError, match="auto"):
        _auto_zoom(_grid_image(9.0), None, "model", Q(), None, None, explicit=True)


def test_isotropic_zoom_makes_cubic_voxels():
    from napari_vesselgraph.inference.autozoom import isotropic_zoom

    assert isotropic_zoom((5.0, 1.0, 1.0)) == (5.0, 1.0, 1.0)
    assert isotropic_zoom((5.0, 2.0, 2.0), 0.5) == (1.25, 0.5, 0.5)
    assert isotropic_zoom(None, 0.5) == (0.5,)
    for bad in [(0.0, 1.0, 1.0), (1.0, float("nan"), 1.0)]:
        with pytest.raises(VesselGraphError, match="voxel size"):
            isotropic_zoom(bad)
    with pytest.raises(VesselGraphError, match="positive"):
        isotropic_zoom((1.0, 1.0, 1.0), 0)


def test_predict_isotropic_resamples_z_by_the_voxel_size():
    """A tube along x in a stack of 3-µm steps with 1-µm pixels: zoom='isotropic' triples z, maps back."""
    vol = np.zeros((12, 40, 60), np.float32)
    zz, yy = np.mgrid[:12, :40]
    tube = ((zz - 6.0) * 3.0) ** 2 + (yy - 20.0) ** 2 <= 16.0  # radius 4 µm in physical units
    vol[:, :, 8:52] = tube[:, :, None]
    g = predict(vol, method="skeleton", zoom="isotropic", scale=(3.0, 1.0, 1.0))
    assert g.metadata["zoom_factor"] == [3.0, 1.0, 1.0] and g.scale == (3.0, 1.0, 1.0)
    inner = (g.nodes[:, 2] > 15) & (g.nodes[:, 2] < 45)
    assert inner.sum() >= 2 and np.all(np.abs(g.nodes[inner, 0] - 6.0) < 1.0)
    assert np.all(np.abs(g.nodes[inner, 1] - 20.0) < 1.5)
    with pytest.raises(VesselGraphError, match="voxel size"):
        predict(vol, method="skeleton", zoom="isotropic")
