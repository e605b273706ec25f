"""npe2 sample data."""

from __future__ import annotations


def retina() -> list[tuple]:
    """Fundus photograph of a human retina (scikit-image's ``data.retina()``, RGB, 1411 x 1411)."""
    from skimage import data

    image = data.retina()
    return [(image, {"name": "Retina (fundus photo)", "rgb": True}, "image")]


# Synthetic samples (one per ``synth.DOMAINS`` entry, built with ``synth.make_sample(domain, seed)``
# and shown as image + graph layers) are to be added here by the lead, with a sample_data entry each
# in napari.yaml.
