"""Classical baseline: vesselness -> threshold -> skeleton -> graph (numpy/scipy/scikit-image, skan for
the skeleton's pixel graph and paths).

``skeleton_graph(image, scale=None, **params)`` is what a user can do today without deep learning;
``PRESETS`` holds per-domain defaults for the synthetic domains (picked on validation seeds).
"""

from .pipeline import DEFAULT_SIGMAS, skeleton_graph
from .presets import PRESETS, preset
from .skeleton import skeleton_to_graph

__all__ = ["skeleton_graph", "skeleton_to_graph", "PRESETS", "preset", "DEFAULT_SIGMAS"]
