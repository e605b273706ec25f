"""Domain-randomised synthetic vessels (synth.randomize)."""

import numpy as np
import pytest

from napari_vesselgraph import synth
from napari_vesselgraph.synth.randomize import make_random_sample


def _polarity(image, graph):
    """Mean intensity on the graph's nodes minus the image median (grey)."""
    grey = image.mean(-1) if image.ndim == 3 and image.shape[-1] == 3 else image
    idx = np.clip(np.rint(graph.nodes).astype(int), 0, np.asarray(grey.shape) - 1)
    return float(grey[tuple(idx.T)].mean() - np.median(grey))


def test_random_2d_varies_appearance_and_keeps_graph_on_vessels():
    pol, levels, fovs = [], [], 0
    for seed in range(16):
        img, g = synth.make_sample("vessel2d-random", seed)
        assert img.shape == (256, 256, 3) and img.dtype == np.float32
        assert 0 <= img.min() and img.max() <= 1
        assert g.n_nodes > 5 and g.scale == (1.0, 1.0)
        pol.append(_polarity(img, g))
        levels.append(float(np.median(img)))
        fovs += int(np.mean(img.max(-1) < 0.06) > 0.1)  # a dark field-of-view surround
    # both polarities, a wide range of background levels, and some field-of-view rims
    assert min(pol) < -0.02 and max(pol) > 0.02
    assert max(levels) - min(levels) > 0.3
    assert fovs >= 1


def test_random_sample_is_deterministic_per_seed():
    a, ga = synth.make_sample("vessel2d-random", 7)
    b, gb = synth.make_sample("vessel2d-random", 7)
    c, _ = synth.make_sample("vessel2d-random", 8)
    assert np.array_equal(a, b) and ga.same_as(gb)
    assert not np.array_equal(a, c)


def test_random_3d_anisotropic_graph_stays_inside_the_volume():
    spec = synth.DOMAINS["vessel3d-random"]
    seen = set()
    for seed in range(8):
        img, g = make_random_sample(spec, seed, (24, 64, 64))
        assert img.shape == (24, 64, 64)
        if g.n_nodes:
            assert g.nodes[:, 0].min() >= -0.5 and g.nodes[:, 0].max() <= 23.5
        seen.add(g.metadata["z_anisotropy"] > 1)
    assert seen == {True, False}


def test_random_domain_rejects_bad_seed():
    with pytest.raises(Exception, match="seed"):
        synth.make_sample("vessel2d-random", -3)


def test_random_roads_have_clutter_and_no_fundus_rim():
    for seed in range(4):
        img, g = synth.make_sample("road-random", seed)
        assert img.shape == (256, 256, 3)
        assert g.n_nodes > 10 and g.metadata["kind"] == "road2d"
        assert np.mean(img.max(-1) < 0.02) < 0.1  # no dark field-of-view surround
