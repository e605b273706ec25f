import sys


def test_smooth_field_cache_is_bounded_and_does_not_change_fields():
    """The randomised domains draw a new sigma per image: the spectral-envelope cache must not grow with them (it
    reached 23 GB in a 3D training run), and a field is the same whether its envelope was cached or not."""
    import numpy as np

    import napari_vesselgraph.synth.render  # noqa: F401  (synth re-exports a function named render)

    render = sys.modules["napari_vesselgraph.synth.render"]

    first = render.smooth_field((16, 24), 3.0, np.random.default_rng(0))
    for k in range(3 * render.AMPLITUDE_CACHE_SIZE):
        render.smooth_field((16, 24), 1.0 + 0.01 * k, np.random.default_rng(k))
    assert len(render._AMPLITUDES) <= render.AMPLITUDE_CACHE_SIZE
    again = render.smooth_field((16, 24), 3.0, np.random.default_rng(0))  # evicted, recomputed
    np.testing.assert_array_equal(first, again)
