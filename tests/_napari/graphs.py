"""Small graphs used by the napari glue tests."""

import numpy as np

from napari_vesselgraph.graph import VesselGraph


def make_graph_2d(scale=(1.0, 1.0)) -> VesselGraph:
    """A small 2D graph with node/edge attributes of every kind (float, int, bool, text)."""
    nodes = np.array([[10.0, 10.0], [10.0, 40.0], [40.0, 40.0], [40.0, 10.0], [70.0, 25.0], [25.0, 70.0]])
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [2, 4], [1, 5]])
    return VesselGraph(
        nodes,
        edges,
        node_attrs={
            "radius": np.array([1.5, 2.0, 2.5, 1.0, 3.0, 1.2]),
            "confidence": np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]),
            "label": np.array(["a", "b", "c", "d", "e", "f"], dtype=object),
        },
        edge_attrs={
            "confidence": np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
            "kind": np.array([1, 2, 3, 1, 2, 3]),
            "artery": np.array([True, False, True, False, True, False]),
        },
        scale=scale,
        metadata={"source": "test", "image_shape": [80, 80]},
    )


def make_graph_3d(scale=(2.0, 0.5, 0.5)) -> VesselGraph:
    rng = np.random.default_rng(3)
    nodes = rng.uniform(0, 30, size=(12, 3))
    edges = np.array([[i, i + 1] for i in range(11)] + [[0, 5], [3, 9]])
    return VesselGraph(
        nodes,
        edges,
        node_attrs={"radius": rng.uniform(0.5, 2, 12)},
        edge_attrs={"confidence": rng.uniform(0, 1, len(edges))},
        scale=scale,
        metadata={"model": "test-3d"},
    )
