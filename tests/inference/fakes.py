"""Test doubles for inference: synthetic ground-truth graphs and a predictor that returns their crops.

The fake predictor knows where each patch comes from because the test image *encodes* its pixel
coordinates: pixel value = flat index of the pixel (exact in float32 for the small test images), and
``prepare`` is the identity. The centre pixel of every window lies inside the image (the sliding window
centres images smaller than a patch), so it gives the window's origin even when the rest is padded.
Stitching is thereby tested independently of any model's quality.
"""

from __future__ import annotations

import numpy as np

from napari_vesselgraph.graph import VesselGraph


# ------------------------------------------------------------------ synthetic graphs
def _point_segment_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances from points p (P, D) to segments a->b (S, D): (P, S)."""
    ab = b - a
    denom = np.maximum((ab * ab).sum(1), 1e-12)
    t = np.clip(((p[:, None, :] - a[None]) * ab[None]).sum(-1) / denom[None], 0, 1)
    proj = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(p[:, None, :] - proj, axis=-1)


def random_tree(shape, seed=0, n_vessels=6, step=(7.0, 14.0), clearance=5.0, margin=3.0, max_steps=60):
    """A branching, non-self-touching vessel graph inside ``shape`` (2D or 3D), nodes >= 5 px apart and
    segments of different branches >= ``clearance`` apart (so no two distinct vessels can be confused)."""
    rng = np.random.default_rng(seed)
    d = len(shape)
    lo = np.full(d, margin)
    hi = np.asarray(shape, float) - 1 - margin
    nodes: list[np.ndarray] = []
    edges: list[tuple[int, int]] = []

    def ok(a_idx, q):
        if np.any(q < lo) or np.any(q > hi):
            return False
        if nodes:
            P = np.asarray(nodes)
            if np.min(np.linalg.norm(P - q, axis=1)) < 5.0:
                return False
        segs = [(i, j) for i, j in edges if a_idx not in (i, j)]
        if segs:
            A = np.asarray([nodes[i] for i, _ in segs])
            B = np.asarray([nodes[j] for _, j in segs])
            a = nodes[a_idx]
            samples = a + np.linspace(0, 1, 25)[:, None] * (q - a)
            if _point_segment_dist(samples, A, B).min() < clearance:
                return False
        return True

    def unit(v):
        return v / np.linalg.norm(v)

    for v in range(n_vessels):
        # start: a fresh point, or a branch off an existing degree-2 node
        deg = np.bincount(np.asarray(edges, int).ravel(), minlength=len(nodes)) if edges else np.zeros(len(nodes), int)
        cands = np.flatnonzero(deg == 2)
        if v > 0 and len(cands) and rng.random() < 0.6:
            cur = int(rng.choice(cands))
        else:
            for _ in range(100):
                p = lo + rng.random(d) * (hi - lo)
                if not nodes or np.min(np.linalg.norm(np.asarray(nodes) - p, axis=1)) > 12:
                    break
            nodes.append(p)
            cur = len(nodes) - 1
        direction = unit(rng.normal(size=d))
        for _ in range(max_steps):
            placed = False
            for _try in range(12):
                dv = unit(direction + 0.35 * rng.normal(size=d))
                q = nodes[cur] + rng.uniform(*step) * dv
                if ok(cur, q):
                    nodes.append(q)
                    edges.append((cur, len(nodes) - 1))
                    cur, direction, placed = len(nodes) - 1, dv, True
                    break
            if not placed:
                break
    n = len(nodes)
    rng2 = np.random.default_rng(seed + 1)
    return VesselGraph(
        np.asarray(nodes).reshape(-1, d),
        np.asarray(edges, np.int64).reshape(-1, 2),
        node_attrs={"radius": rng2.uniform(1.0, 4.0, n)},
    )


def long_vessel(shape, spacing=30.0, amplitude=8.0, seed=0):
    """One sinuous vessel from the left border to the right one, nodes every ``spacing`` px (so its edges
    are longer than the overlap of neighbouring patches)."""
    d = len(shape)
    xs = np.arange(1.0, shape[-1] - 1.5, spacing)
    if xs[-1] < shape[-1] - 2:
        xs = np.append(xs, shape[-1] - 2.0)
    pts = np.zeros((len(xs), d))
    pts[:, -1] = xs
    centre = (np.asarray(shape[:-1], float) - 1) / 2
    for k in range(d - 1):
        pts[:, k] = centre[k] + amplitude * np.sin(xs / (23.0 + 7 * k) + k)
    edges = np.stack([np.arange(len(xs) - 1), np.arange(1, len(xs))], 1)
    return VesselGraph(pts, edges, node_attrs={"radius": np.full(len(xs), 2.0)})


# ------------------------------------------------------------------ cropping (the training-crop convention)
def crop_graph(graph: VesselGraph, origin, size):
    """Part of ``graph`` inside the box ``[origin, origin + size - 1]`` in patch pixels; a node is inserted
    where an edge crosses the box border (as training crops have)."""
    origin = np.asarray(origin, float)
    lo = origin
    hi = origin + np.asarray(size, float) - 1
    P = graph.nodes
    inside = np.all((P >= lo) & (P <= hi), axis=1)
    rad = graph.node_attrs.get("radius", np.full(graph.n_nodes, 2.0))
    idx = {int(i): k for k, i in enumerate(np.flatnonzero(inside))}
    pos = [P[i] - origin for i in np.flatnonzero(inside)]
    r = [rad[i] for i in np.flatnonzero(inside)]
    edges = []
    for a, b in graph.edges.tolist():
        pa, pb = P[a], P[b]
        # segment part inside the box: brute force on the parameter (independent of the package's clipper)
        t0, t1 = 0.0, 1.0
        dvec = pb - pa
        empty = False
        for ax in range(len(lo)):
            if abs(dvec[ax]) < 1e-12:
                if pa[ax] < lo[ax] or pa[ax] > hi[ax]:
                    empty = True
                continue
            ta, tb = (lo[ax] - pa[ax]) / dvec[ax], (hi[ax] - pa[ax]) / dvec[ax]
            t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if empty or t0 >= t1:
            continue
        ends = []
        for node, t in ((a, t0), (b, t1)):
            if inside[node]:
                ends.append(idx[node])
            else:
                pos.append(pa + t * dvec - origin)
                r.append(rad[a] + t * (rad[b] - rad[a]))
                ends.append(len(pos) - 1)
        edges.append(ends)
    d = graph.ndim
    return (
        np.asarray(pos, float).reshape(-1, d),
        np.asarray(r, float),
        np.asarray(edges, np.int64).reshape(-1, 2),
    )


def coordinate_image(shape) -> np.ndarray:
    """Image whose pixel values are their flat indices (exact in float32 up to 2**24 pixels)."""
    n = int(np.prod(shape))
    assert n < 2**24
    return np.arange(n, dtype=np.float32).reshape(shape)


class GTPredictor:
    """A predictor with the PatchPredictor interface that returns ground-truth crops.

    ``junk``: add low-score nodes/edges (scores < 0.45) and give the true ones scores in [0.6, 1], all
    deterministic per window, to exercise thresholds.
    """

    def __init__(self, graph: VesselGraph, image_shape, patch_size, junk: bool = False, crop=None):
        self.graph = graph
        self.image_shape = tuple(image_shape)
        self.ndim = graph.ndim
        self.patch_size = tuple(int(p) for p in patch_size)
        self.channels = 1
        self.meta = {"name": "fake-gt", "domain": "test"}
        self.device = "cpu"
        self.junk = junk
        self.crop = crop
        self.batches: list[int] = []
        self.origins: list[tuple[int, ...]] = []

    def prepare(self, image):
        return np.asarray(image, dtype=np.float32)[None]

    def origin_of(self, patch: np.ndarray) -> np.ndarray:
        centre = tuple(p // 2 for p in self.patch_size)
        v = round(float(patch[0][centre]))
        return np.asarray(np.unravel_index(v, self.image_shape)) - np.asarray(centre)

    def predict_batch(self, patches):
        patches = np.asarray(patches)
        assert patches.shape[1:] == (self.channels, *self.patch_size), patches.shape
        self.batches.append(len(patches))
        out = []
        for p in patches:
            origin = self.origin_of(p)
            self.origins.append(tuple(int(o) for o in origin))
            if self.crop is not None:
                nodes, radius, edges = self.crop(self.graph, origin, self.patch_size)
            else:
                nodes, radius, edges = crop_graph(self.graph, origin, self.patch_size)
            k, m = len(nodes), len(edges)
            ns, es = np.full(k, 0.9), np.full(m, 0.9)
            if self.junk:
                rng = np.random.default_rng(abs(hash(tuple(int(o) for o in origin))) % 2**32)
                ns = rng.uniform(0.6, 1.0, k)
                es = rng.uniform(0.6, 1.0, m)
                nj = 4
                jn = rng.uniform(0, np.asarray(self.patch_size) - 1, size=(nj, self.ndim))
                nodes = np.concatenate([nodes, jn])
                radius = np.concatenate([radius, np.full(nj, 1.0)])
                ns = np.concatenate([ns, rng.uniform(0.05, 0.45, nj)])
                # weak edges between true nodes and junk, and between true nodes
                extra = []
                if k >= 2:
                    extra.append([0, k - 1])
                if k >= 1:
                    extra.append([0, k])
                extra.append([k, k + 1])
                extra = np.asarray(extra, np.int64).reshape(-1, 2)
                edges = np.concatenate([edges, extra])
                es = np.concatenate([es, rng.uniform(0.05, 0.45, len(extra))])
            out.append({"nodes": nodes, "node_score": ns, "radius": radius, "edges": edges, "edge_score": es})
        return out


# ------------------------------------------------------------------ comparison
def match_report(pred: VesselGraph, gt: VesselGraph, tol: float = 1.5, path_slack: float = 3.0) -> list[str]:
    """Problems found when comparing a prediction to the ground truth (empty list: they agree).

    - every GT node has a predicted node within ``tol`` px;
    - every GT edge (u, v) is a path in the prediction between the nodes matched to u and v, no longer
      than |u - v| + ``path_slack``;
    - every predicted node lies within ``tol`` px of the GT geometry (nodes or edges).
    """
    import networkx as nx
    from scipy.spatial import cKDTree

    problems = []
    if pred.n_nodes == 0:
        return ["prediction is empty"] if gt.n_nodes else []
    dist, m = cKDTree(pred.nodes).query(gt.nodes)
    far = np.flatnonzero(dist > tol)
    if len(far):
        problems.append(f"{len(far)} GT nodes without a predicted node within {tol}px, e.g. {gt.nodes[far[0]]}")
    g = nx.Graph()
    g.add_nodes_from(range(pred.n_nodes))
    for a, b in pred.edges.tolist():
        g.add_edge(a, b, w=float(np.linalg.norm(pred.nodes[a] - pred.nodes[b])))
    missing = 0
    for u, v in gt.edges.tolist():
        a, b = int(m[u]), int(m[v])
        if a == b:
            continue
        try:
            length = nx.shortest_path_length(g, a, b, weight="w")
        except nx.NetworkXNoPath:
            missing += 1
            continue
        if length > np.linalg.norm(gt.nodes[u] - gt.nodes[v]) + path_slack:
            missing += 1
    if missing:
        problems.append(f"{missing} of {gt.n_edges} GT edges are not a short path in the prediction")
    if gt.n_edges:
        dseg = _point_segment_dist(pred.nodes, gt.nodes[gt.edges[:, 0]], gt.nodes[gt.edges[:, 1]]).min(1)
    else:
        dseg = np.full(pred.n_nodes, np.inf)
    dnode = cKDTree(gt.nodes).query(pred.nodes)[0]
    off = np.flatnonzero(np.minimum(dseg, dnode) > tol)
    if len(off):
        problems.append(f"{len(off)} predicted nodes are off the GT graph, e.g. {pred.nodes[off[0]]}")
    return problems
