"""Synthetic generators: determinism, ground-truth accuracy, domains and pairs."""

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt, map_coordinates
from scipy.spatial import cKDTree

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.synth import (
    DOMAIN_PAIRS,
    DOMAINS,
    make_geometry,
    make_sample,
    render,
    structure_mask,
)

KINDS = {"vessel2d": range(6), "road2d": range(6), "vessel3d": range(2)}


@pytest.fixture(scope="module")
def geometries():
    return {(k, s): make_geometry(k, s) for k, seeds in KINDS.items() for s in seeds}


def _edge_samples(graph, per_edge=9):
    t = np.linspace(0, 1, per_edge)[None, :, None]
    a = graph.nodes[graph.edges[:, 0]][:, None, :]
    b = graph.nodes[graph.edges[:, 1]][:, None, :]
    return (a + t * (b - a)).reshape(-1, graph.ndim)


def test_domains_and_pairs_declared():
    assert DOMAIN_PAIRS == [
        ("vessel2d-fluo", "vessel2d-fundus"),
        ("vessel3d-lightsheet", "vessel3d-twophoton"),
        ("road-clean", "road-hazy"),
    ]
    for src, tgt in DOMAIN_PAIRS:
        assert DOMAINS[src].kind == DOMAINS[tgt].kind
        assert not DOMAINS[src].target and DOMAINS[tgt].target
    # the 3D geometry is drawn isotropic in voxels, so its scale must be isotropic too (the light-sheet
    # anisotropy is in the PSF: a stronger z blur)
    assert DOMAINS["vessel3d-lightsheet"].scale == (1.0, 1.0, 1.0)
    assert DOMAINS["vessel2d-fundus"].channels == 3 and DOMAINS["vessel2d-fluo"].channels == 1
    assert DOMAINS["vessel3d-twophoton"].radius_scale < 1


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_sample_is_deterministic_and_well_formed(domain):
    spec = DOMAINS[domain]
    im1, g1 = make_sample(domain, 3)
    im2, g2 = make_sample(domain, 3)
    assert np.array_equal(im1, im2)
    assert g1.same_as(g2)
    assert im1.dtype == np.float32 and im1.shape == spec.image_shape
    assert 0.0 <= im1.min() and im1.max() <= 1.0
    assert g1.ndim == spec.ndim and g1.scale == spec.scale
    assert g1.metadata["domain"] == domain and g1.metadata["seed"] == 3
    assert g1.n_nodes > 10 and g1.n_edges > 5
    im3, g3 = make_sample(domain, 4)
    assert not np.array_equal(im1, im3)
    assert not g1.same_as(g3)


def test_generator_seed_and_errors():
    im, g = make_sample("vessel2d-fluo", np.random.default_rng(5))
    assert im.shape == (128, 128) and g.metadata["seed"] is None
    with pytest.raises(VesselGraphError, match="unknown domain"):
        make_sample("no-such-domain", 0)
    with pytest.raises(VesselGraphError, match="2D"):
        make_sample("vessel2d-fluo", 0, shape=(32, 32, 32))
    with pytest.raises(VesselGraphError, match="seed"):
        make_sample("vessel2d-fluo", -1)
    with pytest.raises(VesselGraphError, match="unknown geometry"):
        make_geometry("tree", 0)


@pytest.mark.parametrize("kind,shape", [("vessel2d", (96, 160)), ("road2d", (64, 200)), ("vessel3d", (24, 48, 40))])
def test_custom_shapes(kind, shape):
    g = make_geometry(kind, 2, shape).graph
    assert g.n_nodes > 0
    assert np.all(g.nodes >= 0) and np.all(g.nodes <= np.asarray(shape) - 1)


def test_nodes_inside_and_border_nodes(geometries):
    border_nodes = 0
    for (kind, seed), geom in geometries.items():
        g = geom.graph
        hi = np.asarray(geom.shape) - 1
        assert np.all(g.nodes >= 0) and np.all(g.nodes <= hi), (kind, seed)
        on_border = np.any((g.nodes == 0) | (g.nodes == hi), 1)
        border_nodes += int(on_border.sum())
        # a centreline that leaves the image ends in a degree-1 node on the border
        assert np.all(g.degree()[on_border] <= 2)
    assert border_nodes > 20


def test_graph_structure(geometries):
    for (kind, seed), geom in geometries.items():
        g = geom.graph
        assert g.canonical().n_edges == g.n_edges, "duplicate edges or self loops"
        assert g.degree().min() >= 1, "isolated nodes"
        assert g.degree().max() <= 4
        assert g.edge_lengths(physical=False).max() <= 12.0 + 1e-6, "edges longer than max_edge"
        assert np.all(g.node_attrs["radius"] > 0)
        # no two nodes on top of each other
        d, _ = cKDTree(g.nodes).query(g.nodes, k=2)
        assert d[:, 1].min() > 0.05, (kind, seed)


def test_edges_follow_centrelines(geometries):
    """Straight ground-truth edges stay within ~1 px of the dense centreline and of the rendered mask."""
    for (kind, seed), geom in geometries.items():
        g = geom.graph
        samples = _edge_samples(g)
        dist, _ = cKDTree(geom.points).query(samples)
        # centreline points are 1 px apart: 1 px tolerance + half the spacing
        assert dist.max() <= 1.0 + 0.5 + 1e-6, (kind, seed, dist.max())
        mask = structure_mask(geom)
        out_dist = distance_transform_edt(~mask)
        d_mask = map_coordinates(out_dist, samples.T, order=1)
        assert d_mask.max() <= 1.0, (kind, seed, d_mask.max())
        # radius attribute matches the rendered width: node +- 0.5 radius is inside the mask
        assert mask[tuple(np.rint(g.nodes).astype(int).T)].mean() > 0.97


def test_crossings_are_degree_four_nodes():
    found = 0
    for seed in range(30):
        geom = make_geometry("vessel2d", seed)
        deg = geom.graph.degree()
        for i in np.flatnonzero(deg == 4):
            found += 1
            # the crossing node lies on centrelines of two different trees
            d = np.linalg.norm(geom.points - geom.graph.nodes[i], axis=1)
            near = d < 1e-6
            assert near.any()
    assert found >= 1


def test_road_junctions():
    degs = np.concatenate([make_geometry("road2d", s).graph.degree() for s in range(8)])
    assert (degs == 3).sum() > 5 and (degs == 4).sum() > 5


@pytest.mark.parametrize("src,tgt", DOMAIN_PAIRS)
def test_pairs_share_geometry(src, tgt):
    for seed in (7, 8):
        im_s, g_s = make_sample(src, seed)
        im_t, g_t = make_sample(tgt, seed)
        assert np.array_equal(g_s.nodes, g_t.nodes)
        assert np.array_equal(g_s.edges, g_t.edges)
        scale = DOMAINS[tgt].radius_scale / DOMAINS[src].radius_scale
        assert np.allclose(g_s.node_attrs["radius"] * scale, g_t.node_attrs["radius"])
        assert g_s.metadata["domain"] == src and g_t.metadata["domain"] == tgt


def _contrast_to_noise(image, mask, ndim):
    """Best per-channel |mean(structure) - mean(background)| / std(local background)."""
    from scipy.ndimage import binary_dilation, gaussian_filter

    far = ~binary_dilation(mask, iterations=3)
    chans = [image] if image.ndim == ndim else [image[..., c] for c in range(image.shape[-1])]
    best = 0.0
    for ch in chans:
        hp = ch - gaussian_filter(ch, 8)  # remove slow illumination changes
        noise = hp[far].std()
        best = max(best, abs(ch[mask].mean() - ch[far].mean()) / noise)
    return best


@pytest.mark.parametrize("src,tgt", DOMAIN_PAIRS)
def test_target_style_is_different_and_harder(src, tgt):
    seed = 11
    kind = DOMAINS[src].kind
    geom = make_geometry(kind, seed)
    im_s, im_t = render(geom, src, seed), render(geom, tgt, seed)
    assert im_s.shape != im_t.shape or not np.allclose(im_s, im_t, atol=0.05)
    cnr_s = _contrast_to_noise(im_s, structure_mask(geom, DOMAINS[src].radius_scale), DOMAINS[src].ndim)
    cnr_t = _contrast_to_noise(im_t, structure_mask(geom, DOMAINS[tgt].radius_scale), DOMAINS[tgt].ndim)
    assert cnr_t < 0.7 * cnr_s, (cnr_s, cnr_t)
    assert cnr_t > 0.5, "target structures must stay visible"


def test_polarity_matches_domain():
    """Vessels are bright in fluorescence and dark (in green) on the fundus; roads brighter than land."""
    seed = 5
    geom = make_geometry("vessel2d", seed)
    mask = structure_mask(geom)
    bg = ~mask
    fluo = render(geom, "vessel2d-fluo", seed)
    assert fluo[mask].mean() > 3 * fluo[bg].mean()
    fundus = render(geom, "vessel2d-fundus", seed)
    assert fundus[..., 1][mask].mean() < 0.85 * fundus[..., 1][bg].mean()
    assert fundus[..., 0][bg].mean() > fundus[..., 1][bg].mean() > fundus[..., 2][bg].mean()  # orange-red
    rgeom = make_geometry("road2d", seed)
    rmask = structure_mask(rgeom)
    road = render(rgeom, "road-clean", seed)
    assert road[rmask].mean() > road[~rmask].mean() + 0.15
