"""Domain-randomised synthetic images: wildly varied appearance on the shared vessel geometry.

The fixed domains of :mod:`.domains` each have one narrow look (bright vessels on a clean dark background, ...),
so a model trained on one of them finds nothing on a real photograph. Following domain randomisation for
segmentation (SynthSeg, Billot et al.; vesselFM, Wittmann et al.), a *random* domain draws every appearance
parameter per image from wide ranges, so that the only thing all training images share is the structure
itself:

- geometry: vessel radius scale (log-uniform 0.55–1.9×), tree density, taper; thin fibres in 3D;
- polarity: bright vessels on dark (fluorescence) or dark absorbing vessels on bright (photographs), 50/50;
- background: level, two scales of texture, blobs (optic disc, cells, exudates), smooth illumination,
  vignetting, a dark field-of-view rim (fundus cameras, 2D), depth attenuation (3D);
- contrast (including faint vessels), per-tree intensity, wall darkening (tube profile);
- blur (PSF, anisotropic in z for 3D), Gaussian / Poisson / speckle noise, gamma;
- colour (RGB domains): per-channel background colour and per-channel vessel absorption.

The ground-truth graph is the geometry's graph, radius scaled, with the nodes outside a field-of-view rim
removed (what the rim hides is not annotated in real data either).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..graph.core import VesselGraph
from .geometry import ROAD2D, VESSEL2D, VESSEL3D, as_rng, make_geometry, stable_code
from .render import blur, radial, rasterize_tubes, smooth_field

RANDOM_VERSION = 1


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_params(kind: str, rng: np.random.Generator):
    """Grower parameters with a random radius scale and density (vessels) or width and block size (roads)."""
    if kind == "road2d":
        s = _log_uniform(rng, 0.7, 1.7)
        b = ROAD2D
        return replace(
            b,
            spacing=tuple(v * max(1.0, s) * rng.uniform(0.8, 1.4) for v in b.spacing),
            street_radius=tuple(v * s for v in b.street_radius),
            avenue_radius=tuple(v * s for v in b.avenue_radius),
            curved_radius=tuple(v * s for v in b.curved_radius),
            drop_p=float(rng.uniform(0.05, 0.35)),
            gap=b.gap * max(1.0, s),
        ), s
    base = VESSEL2D if kind == "vessel2d" else VESSEL3D
    s = _log_uniform(rng, 0.55, 1.9) if kind == "vessel2d" else _log_uniform(rng, 0.4, 1.6)
    density = base.density * _log_uniform(rng, 0.45, 1.5) / max(s, 0.8)
    return replace(
        base,
        root_radius=(base.root_radius[0] * s, base.root_radius[1] * s),
        min_radius=max(0.6, base.min_radius * min(1.0, s) * rng.uniform(0.8, 1.2)),
        gap=base.gap * max(1.0, s),
        density=density,
        taper=(base.taper[0], base.taper[1] * rng.uniform(0.6, 1.4)),
    ), s


def _blobs(shape, rng: np.random.Generator, n: int, big: bool) -> np.ndarray:
    """Sum of soft discs/balls with random signs: optic discs, cells, exudates, haemorrhages."""
    out = np.zeros(shape, np.float32)
    shape_a = np.asarray(shape, float)
    for _ in range(n):
        c = rng.uniform(0, 1, len(shape)) * shape_a
        r = rng.uniform(0.06, 0.16) * shape_a.mean() if big else rng.uniform(1.5, 6.0)
        amp = rng.uniform(0.1, 0.4) * (1 if rng.random() < 0.6 else -1)
        out += amp * np.exp(-radial(shape, c, (r,) * len(shape)) / 2)
    return out


def _urban(shape, cov: np.ndarray, rng: np.random.Generator, back: np.ndarray) -> np.ndarray:
    """Satellite clutter off the roads: houses (bright or dark rectangles with shadows), trees, lots."""
    from scipy import ndimage as ndi

    h, w = shape
    out = back.copy()
    road = ndi.binary_dilation(cov > 0.3, iterations=2)
    lots = np.zeros(shape, np.float32)
    n = int(rng.poisson(rng.uniform(0.0, 1.6) * h * w / 1000.0))
    for _ in range(n):
        sy, sx = rng.uniform(3, 14, 2)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        a = rng.uniform(0, np.pi)
        yy, xx = np.ogrid[:h, :w]
        u = (yy - cy) * np.cos(a) + (xx - cx) * np.sin(a)
        v = -(yy - cy) * np.sin(a) + (xx - cx) * np.cos(a)
        box = (np.abs(u) < sy) & (np.abs(v) < sx)
        lots[box & ~road] = rng.uniform(-0.6, 0.8)
    out = out + lots
    if rng.random() < 0.7:  # trees: dark clumps, also over road edges
        f = smooth_field(shape, rng.uniform(1.5, 3.0), rng)
        thr = rng.uniform(1.0, 2.2)
        out = out * (1 - 0.6 * np.clip(f - thr, 0, 1))
    return np.clip(out, 0.05, None)


def _fov(shape, rng: np.random.Generator) -> np.ndarray:
    """A fundus-camera aperture: an ellipse (sometimes cut at the top and bottom), soft-edged weight in [0, 1]."""
    shape_a = np.asarray(shape, float)
    centre = shape_a / 2 + rng.uniform(-0.12, 0.12, 2) * shape_a
    radii = shape_a * rng.uniform(0.42, 0.75) * rng.uniform(0.92, 1.08, 2)
    r = np.sqrt(radial(shape, centre, radii))
    edge = rng.uniform(0.005, 0.03)
    w = np.clip((1.0 - r) / edge, 0, 1)
    if rng.random() < 0.3:  # flat cuts, as on many cameras
        yy = np.arange(shape[0], dtype=np.float32)[:, None]
        cut = rng.uniform(0.02, 0.1) * shape[0]
        w = w * ((yy > cut) & (yy < shape[0] - cut))
    return w.astype(np.float32)


def render_random(geometry, rng: np.random.Generator, channels: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Render ``geometry`` with randomly drawn appearance; returns ``(image in [0, 1], field-of-view weight)``.

    The image is ``(*shape)`` for ``channels == 1`` and ``(*shape, 3)`` otherwise.
    """
    shape = tuple(geometry.shape)
    nd = len(shape)
    groups = geometry.group
    ng = int(groups.max()) + 1 if len(groups) else 0
    per_tree = 1.0 - rng.uniform(0, 0.5) * rng.random(ng) if ng else np.ones(0)
    cov = rasterize_tubes(
        geometry.points, geometry.edges, geometry.seg_radius, shape, rng.uniform(0, 0.5),
        per_tree[groups].astype(np.float32) if ng else None,
    )
    cov *= np.clip(1 + rng.uniform(0, 0.5) * smooth_field(shape, rng.uniform(4, 20), rng), 0.2, None)

    # background: level, texture at two scales, blobs
    back = np.ones(shape, np.float32)
    back += rng.uniform(0, 0.25) * smooth_field(shape, rng.uniform(8, 48), rng)
    back += rng.uniform(0, 0.08) * smooth_field(shape, rng.uniform(1.0, 4.0), rng)
    if rng.random() < 0.5:
        back += _blobs(shape, rng, int(rng.integers(1, 3)), big=True)
    if rng.random() < 0.4:
        back += _blobs(shape, rng, int(rng.poisson(0.002 * float(np.prod(shape[-2:])))), big=False)
    back = np.clip(back, 0.05, None)

    if geometry.kind == "road2d":
        back = _urban(shape, cov, rng, back)
    dark = rng.random() < (0.5 if nd == 2 else 0.2)  # 3D stacks are mostly fluorescence
    n_ch = 3 if channels == 3 else 1
    grey = n_ch == 1 or rng.random() < 0.3
    if grey:
        bg_col = np.full(n_ch, rng.uniform(0.1, 0.8) if dark else rng.uniform(0.02, 0.5), np.float32)
        k_col = np.full(n_ch, _log_uniform(rng, 0.15, 0.9), np.float32)
    else:
        bg_col = rng.uniform(0.05, 0.9, 3).astype(np.float32)
        k_col = rng.uniform(0.4, 1.0, 3)
        k_col[rng.integers(3)] = 1.0
        k_col = (_log_uniform(rng, 0.15, 0.9) * k_col).astype(np.float32)
    b = back[..., None] * bg_col  # (*shape, C)
    if dark:  # absorbing vessels on a bright background
        img = b * (1 - np.clip(cov[..., None] * k_col, 0, 0.95))
    else:  # emitting vessels on a darker background
        img = b + cov[..., None] * k_col * rng.uniform(0.5, 1.2)

    # illumination and vignetting
    light = 1 + rng.uniform(0, 0.5) * smooth_field(shape, max(shape) / rng.uniform(2, 5), rng)
    if rng.random() < 0.5:
        shape_a = np.asarray(shape, float)
        c = (shape_a - 1) / 2 + rng.uniform(-0.3, 0.3, nd) * shape_a
        light = light * np.clip(1 - rng.uniform(0.2, 0.8) * radial(shape, c, shape_a * 0.75), 0.1, 1)
    if nd == 3 and rng.random() < 0.5:
        z = np.arange(shape[0], dtype=np.float32) / max(shape[0] - 1, 1)
        light = light * np.exp(-rng.uniform(0, 1.5) * z)[:, None, None]
    img = img * np.clip(light, 0.05, None)[..., None]

    fov = None
    if nd == 2 and geometry.kind != "road2d" and rng.random() < 0.3:
        fov = _fov(shape, rng)
        img = img * fov[..., None] + (1 - fov[..., None]) * rng.uniform(0, 0.04)

    # optics and sensor
    sig = rng.uniform(0, 1.2)
    sigma = [sig] * nd
    if nd == 3:
        sigma[0] = sig * rng.uniform(1.0, 2.5)
    img = blur(img, sigma, channel_axis=True)
    peak = max(float(img.max()), 1e-6)
    img = img / peak * rng.uniform(0.6, 1.0)
    if rng.random() < 0.35:
        photons = _log_uniform(rng, 20, 300)
        img = rng.poisson(np.clip(img, 0, None) * photons).astype(np.float32) / photons
    if rng.random() < 0.3:
        img = img * (1 + rng.uniform(0, 0.08) * rng.standard_normal(img.shape, np.float32))
    img = img + _log_uniform(rng, 0.003, 0.05) * rng.standard_normal(img.shape, np.float32)
    img = np.clip(img, 0, 1) ** _log_uniform(rng, 0.6, 1.6)
    img = np.clip(img, 0, 1).astype(np.float32)
    if n_ch == 1:
        img = img[..., 0]
    return img, fov


def _squash_z(img: np.ndarray, g: VesselGraph, depth: int, factor: float) -> tuple[np.ndarray, VesselGraph]:
    """Resample an isotropic volume to ``depth`` slices ``factor`` pixels apart (slab average); graph z scaled."""
    from scipy import ndimage as ndi

    img = ndi.gaussian_filter1d(img, max(factor / 2.5, 0.5), axis=0, mode="nearest", truncate=3.0)
    z = (np.arange(depth, dtype=np.float32) + 0.5) * factor - 0.5
    coords = np.meshgrid(z, np.arange(img.shape[1]), np.arange(img.shape[2]), indexing="ij", sparse=True)
    out = ndi.map_coordinates(img, np.broadcast_arrays(*coords), order=1, mode="nearest").astype(np.float32)
    nodes = g.nodes.copy()
    nodes[:, 0] = (nodes[:, 0] + 0.5) / factor - 0.5
    g = VesselGraph(nodes, g.edges, g.node_attrs, g.edge_attrs, g.scale, g.metadata)
    inside = (nodes[:, 0] >= -0.5) & (nodes[:, 0] <= depth - 0.5)
    return out, g.subgraph(inside)


def make_random_sample(spec, seed, shape=None) -> tuple[np.ndarray, VesselGraph]:
    """One domain-randomised ``(image, graph)`` of the random domain ``spec`` (a ``DomainSpec``)."""
    shape = tuple(int(s) for s in (shape or spec.shape))
    if isinstance(seed, np.random.Generator):
        prng = seed
        geom_seed = seed
        seed_value = None
    else:
        prng = as_rng(int(seed), 5, stable_code(spec.name))
        geom_seed = int(seed)
        seed_value = int(seed)
    params, s = random_params(spec.kind, prng)
    aniso = 1.0
    gshape = shape
    if len(shape) == 3 and prng.random() < 0.65:  # anisotropic voxels: z steps 1.5-5x the x/y pixel size
        aniso = float(prng.uniform(1.5, 5.0))
        gshape = (int(round(shape[0] * aniso)),) + shape[1:]
    geom = make_geometry(spec.kind, geom_seed, gshape, params=params)
    img, fov = render_random(geom, prng, spec.channels)
    g = geom.graph.copy()
    if aniso != 1.0:
        img, g = _squash_z(img, g, shape[0], aniso)
    if fov is not None and g.n_nodes:
        idx = np.clip(np.rint(g.nodes).astype(int), 0, np.asarray(shape) - 1)
        g = g.subgraph(fov[tuple(idx.T)] > 0.5).remove_isolated()
    g.scale = tuple(float(v) for v in spec.scale)
    g.metadata.update(
        {
            "source": "napari_vesselgraph.synth.randomize",
            "random_version": RANDOM_VERSION,
            "domain": spec.name,
            "kind": spec.kind,
            "seed": seed_value,
            "shape": list(shape),
            "radius_scale": s,
            "z_anisotropy": aniso,
        }
    )
    return img, g
