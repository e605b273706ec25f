"""napari-vesselgraph: image-to-graph for vessels, neurons and roads, in napari and from Python.

Heavy libraries (torch, scipy, skimage, napari) are imported lazily so that napari starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["VesselGraph", "predict", "read_graph", "write_graph", "__version__"]


def __getattr__(name):
    if name == "VesselGraph":
        from .graph import VesselGraph

        return VesselGraph
    if name in ("read_graph", "write_graph"):
        from . import io

        return getattr(io, name)
    if name == "predict":
        from .inference import predict

        return predict
    raise AttributeError(f"module 'napari_vesselgraph' has no attribute {name!r}")
