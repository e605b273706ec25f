"""napari glue: widgets (predict, annotation, fine-tuning, inspector), layer conversion, reader, writer, sample data.

This package is the only place in napari-vesselgraph that imports napari or Qt. Its modules keep
their module-level imports light because napari imports them while it starts; anything heavy is
imported inside the functions that need it.
"""

from __future__ import annotations

__all__ = [
    "add_graph_to_viewer",
    "find_graph_layers",
    "graph_to_layer_data",
    "layer_data_to_graph",
    "layer_tuples_to_graph",
    "layers_to_graph",
    "link_graph_layers",
]


def __getattr__(name):
    if name in __all__:
        from . import layers

        return getattr(layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
