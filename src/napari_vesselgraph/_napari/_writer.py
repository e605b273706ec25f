"""npe2 writer: a graph's Points layer with its Vectors or Shapes layer to a graph file."""

from __future__ import annotations

import os
from typing import Any, Sequence


def write_graph_layers(path: str, layer_data: Sequence[tuple[Any, dict, str]]) -> list[str]:
    """Write the graph shown by one Points layer and one Vectors and/or Shapes layer.

    The format follows the file suffix (``.graphml``, ``.json``, ``.csv`` -> ``X_nodes.csv`` and
    ``X_edges.csv``, ``.swc``, ``.vtk``); returns the paths written. Edits made in napari are applied
    as :mod:`napari_vesselgraph._napari.layers` describes.
    """
    from ..io import write_graph
    from .layers import layer_tuples_to_graph

    graph = layer_tuples_to_graph(layer_data)
    written = write_graph(graph, os.fspath(path))
    return [os.fspath(p) for p in written]
