"""Turn patch graphs into training targets (numpy only) and batch them."""

from __future__ import annotations

import numpy as np


def graph_to_target(graph, patch_size, stride: int, default_radius: float = 1.5) -> dict:
    """Targets of one patch: normalised node positions, radii, edges and coarse heat maps.

    ``dense`` has two channels at the backbone resolution: cells a centreline passes through, and cells
    holding a node.
    """
    size = np.asarray(patch_size, dtype=np.float64)
    d = len(size)
    nodes = np.asarray(graph.nodes, dtype=np.float64).reshape(-1, d)
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    if edges.size:
        edges = np.sort(edges, axis=1)
        edges = edges[edges[:, 0] != edges[:, 1]]
        edges = np.unique(edges, axis=0)
    radius = graph.node_attrs.get("radius") if hasattr(graph, "node_attrs") else None
    if radius is None:
        radius = np.full(len(nodes), default_radius)
    radius = np.nan_to_num(np.asarray(radius, dtype=np.float64), nan=default_radius)
    feat = tuple(int(s) // stride for s in patch_size)
    dense = np.zeros((2,) + feat, dtype=np.float32)
    hi = np.asarray(feat) - 1
    if len(nodes):
        cells = np.clip(np.floor(nodes / stride).astype(int), 0, hi)
        dense[(1,) + tuple(cells.T)] = 1.0
    for a, b in edges:
        p, q = nodes[a], nodes[b]
        n = max(2, int(np.ceil(np.abs(q - p).max() * 2)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        pts = p + t * (q - p)
        cells = np.clip(np.floor(pts / stride).astype(int), 0, hi)
        dense[(0,) + tuple(cells.T)] = 1.0
    return {
        "pos": ((nodes + 0.5) / size).astype(np.float32),
        "pixels": nodes.astype(np.float32),
        "radius": radius.astype(np.float32),
        "edges": edges,
        "dense": dense,
    }


def collate(targets: list[dict], device=None) -> list[dict]:
    """Move the per-patch targets to torch tensors (a list: patches have different node counts)."""
    import torch

    out = []
    for t in targets:
        out.append(
            {
                "pos": torch.as_tensor(t["pos"], device=device),
                "radius": torch.as_tensor(t["radius"], device=device),
                "edges": torch.as_tensor(t["edges"], device=device, dtype=torch.long),
                "dense": torch.as_tensor(t["dense"], device=device),
            }
        )
    return out


# ------------------------------------------------------------ augmentation
def augment(patch: np.ndarray, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and axis swaps (square/cubic patches) of a ``(C, *S)`` patch and its ``(N, D)`` nodes."""
    d = nodes.shape[1] if nodes.ndim == 2 else patch.ndim - 1
    spatial = patch.shape[1:]
    nodes = nodes.copy()
    for ax in range(d):
        if rng.random() < 0.5:
            patch = np.flip(patch, axis=ax + 1)
            nodes[:, ax] = spatial[ax] - 1 - nodes[:, ax]
    if len(set(spatial)) == 1:
        perm = rng.permutation(d)
        patch = np.transpose(patch, (0, *(perm + 1)))
        nodes = nodes[:, perm]
    return np.ascontiguousarray(patch), nodes


def crop_graph(graph, origin, size):
    """The part of ``graph`` inside the box ``[origin, origin + size - 1]``, shifted to patch coordinates.

    Edges leaving the box end in a new node on the box border (radius interpolated). Used when
    ``synth.crop_patch`` is not available; same convention (border nodes inserted).
    """
    from ..graph import VesselGraph

    o = np.asarray(origin, dtype=float)
    hi = o + np.asarray(size, dtype=float) - 1.0
    nodes = np.asarray(graph.nodes, dtype=float)
    rad = np.asarray(graph.node_attrs.get("radius", np.full(len(nodes), 1.5)), dtype=float)
    inside = np.all((nodes >= o) & (nodes <= hi), axis=1)
    new_nodes = list(nodes[inside] - o)
    new_rad = list(rad[inside])
    index = np.full(len(nodes), -1, dtype=np.int64)
    index[inside] = np.arange(int(inside.sum()))
    edges = []
    for a, b in np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2):
        if inside[a] and inside[b]:
            edges.append((index[a], index[b]))
            continue
        p, q = nodes[a], nodes[b]
        d = q - p
        t0, t1 = 0.0, 1.0
        ok = True
        for k in range(len(o)):
            if abs(d[k]) < 1e-12:
                if p[k] < o[k] or p[k] > hi[k]:
                    ok = False
                    break
                continue
            ta, tb = (o[k] - p[k]) / d[k], (hi[k] - p[k]) / d[k]
            t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if not ok or t0 > t1 + 1e-9:
            continue
        ends = []
        for t, node in ((t0, a), (t1, b)):
            if inside[node]:
                ends.append(index[node])
            else:
                new_nodes.append(p + t * d - o)
                new_rad.append(rad[a] + t * (rad[b] - rad[a]))
                ends.append(len(new_nodes) - 1)
        if ends[0] != ends[1]:
            edges.append(tuple(ends))
    d = nodes.shape[1] if nodes.ndim == 2 else len(o)
    return VesselGraph(
        np.asarray(new_nodes, dtype=float).reshape(-1, d),
        np.asarray(edges, dtype=np.int64).reshape(-1, 2),
        node_attrs={"radius": np.asarray(new_rad, dtype=float)},
    ).canonical()
