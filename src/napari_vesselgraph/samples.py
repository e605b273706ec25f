"""Sample images shipped with the plugin (no downloads): the real retina photo and synthetic domains.

Used by the CLI demo and by napari's *File > Open Sample* entries.
"""

from __future__ import annotations


from .errors import VesselGraphError

#: seed of the synthetic samples: the first image of every domain's test split
SAMPLE_SEED = 10_000_000
#: synthetic 2D samples are larger than the generators' training-size default, so there is a network to see
SAMPLE_SHAPE_2D = (256, 256)


def sample_names() -> list[str]:
    from .synth import DOMAINS

    return ["retina", *DOMAINS]


def sample_descriptions() -> dict[str, str]:
    """Every sample name with a short description of the image (for ``vesselgraph demo --help``)."""
    from .synth import DOMAINS
    from .synth.domains import domain_info

    out = {"retina": "real retina (fundus) photograph from scikit-image, no ground truth"}
    for name, spec in DOMAINS.items():
        shape = SAMPLE_SHAPE_2D if spec.ndim == 2 else spec.shape
        desc = domain_info(spec)["description"].split(" (synth.randomize)")[0].split(":")[0]
        out[name] = f"synthetic {'x'.join(map(str, shape))}, with ground truth: {desc}"
    return out


def load_sample(name: str, shape=None):
    """Return ``(image, scale, ground_truth_graph_or_None)`` for a sample name."""
    if name == "retina":
        from skimage.data import retina

        return retina(), (1.0, 1.0), None
    from .synth import DOMAINS, make_sample

    if name not in DOMAINS:
        raise VesselGraphError(f"unknown sample {name!r}; choose one of: {', '.join(sample_names())}")
    if shape is None and DOMAINS[name].ndim == 2:
        shape = SAMPLE_SHAPE_2D
    image, graph = make_sample(name, SAMPLE_SEED, shape=shape)
    return image, tuple(graph.scale), graph
