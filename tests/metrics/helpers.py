"""Small graph builders for the metrics tests."""

import numpy as np

from napari_vesselgraph.graph import VesselGraph


def graph(nodes, edges=(), **kw) -> VesselGraph:
    nodes = np.asarray(nodes, dtype=float)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return VesselGraph(nodes, edges, **kw)


def square(side=10.0, origin=(0.0, 0.0)) -> VesselGraph:
    o = np.asarray(origin, dtype=float)
    return graph(o + np.array([[0, 0], [0, side], [side, side], [side, 0]]), [[0, 1], [1, 2], [2, 3], [3, 0]])


def polyline(points) -> VesselGraph:
    points = np.asarray(points, dtype=float)
    n = len(points)
    return graph(points, np.stack([np.arange(n - 1), np.arange(1, n)], axis=1))


def shifted(g: VesselGraph, d) -> VesselGraph:
    return VesselGraph(g.nodes + np.asarray(d, dtype=float), g.edges.copy(), scale=g.scale)


def grid_network(n_side=45, spacing=10.0, jitter=1.0, drop=0.2, seed=0, ndim=2) -> VesselGraph:
    """A jittered grid with some edges dropped: ~n_side**ndim nodes."""
    rng = np.random.default_rng(seed)
    axes = [np.arange(n_side) * spacing] * ndim
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, ndim)
    pts = pts + rng.normal(0, jitter, pts.shape)
    idx = np.arange(n_side**ndim).reshape((n_side,) * ndim)
    edges = []
    for ax in range(ndim):
        a = np.take(idx, np.arange(n_side - 1), axis=ax).ravel()
        b = np.take(idx, np.arange(1, n_side), axis=ax).ravel()
        edges.append(np.stack([a, b], axis=1))
    edges = np.concatenate(edges)
    edges = edges[rng.random(len(edges)) >= drop]
    return VesselGraph(pts, edges)
