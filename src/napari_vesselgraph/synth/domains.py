"""Domain styles: named, reproducible appearance models applied to shared geometry.

A domain is a geometry kind (``vessel2d``, ``vessel3d``, ``road2d``) plus an appearance model.
The two domains of a pair in :data:`DOMAIN_PAIRS` share the geometry kind, so the same seed gives
the same centrelines and the same graph (node positions and edges; the ``radius`` attribute is
multiplied by the domain's ``radius_scale``, 0.7 for ``vessel3d-twophoton``). The second domain
of each pair (the *target*) is clearly harder: lower contrast, structured background, stronger
noise and blur.

The noise/appearance stream of a sample depends on ``(seed, domain)``; the geometry stream on the
seed only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from ..errors import VesselGraphError
from ..graph.core import VesselGraph
from .geometry import DEFAULT_SHAPES, Geometry, as_rng, make_geometry, stable_code, with_radius_scale
from .render import blur, radial, rasterize_tubes, smooth_field

SYNTH_VERSION = 1


@dataclass(frozen=True)
class DomainSpec:
    """Appearance model of one synthetic domain.

    Intensities are in [0, 1]; colours are one value per channel. ``contrast`` is a per-sample
    factor range on the structure/background difference (on the absorption for ``fundus``).
    Noise: ``noise_gaussian`` (std), ``noise_poisson`` (photons at intensity 1, 0 = off),
    ``noise_speckle`` (multiplicative std). ``blur`` is the PSF sigma per axis in pixels.
    """

    name: str
    kind: str
    style: str  # "fluorescence" | "fundus" | "aerial"
    ndim: int
    channels: int
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    description: str = ""
    target: bool = False
    radius_scale: float = 1.0
    polarity: str = "bright"  # structures brighter ("bright") or darker ("dark") than background
    background: tuple[float, ...] = (0.06,)
    foreground: tuple[float, ...] = (0.9,)
    contrast: tuple[float, float] = (0.85, 1.0)
    tube: float = 0.0
    structure_variation: float = 0.1
    texture: float = 0.0
    texture_sigma: float = 16.0
    fine_texture: float = 0.0
    fine_sigma: float = 1.5
    vignetting: float = 0.0
    illumination: float = 0.0
    depth_attenuation: float = 0.0
    haze: float = 0.0
    haze_colour: tuple[float, ...] = (0.8, 0.8, 0.8)
    colour_shift: tuple[float, ...] = (1.0, 1.0, 1.0)
    colour_jitter: float = 0.0
    blur: tuple[float, ...] = (0.0,)
    noise_gaussian: float = 0.0
    noise_poisson: float = 0.0
    noise_speckle: float = 0.0
    extras: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.shape + ((self.channels,) if self.channels > 1 else ())


DOMAINS: dict[str, DomainSpec] = {
    d.name: d
    for d in [
        DomainSpec(
            "vessel2d-fluo", "vessel2d", "fluorescence", 2, 1, DEFAULT_SHAPES["vessel2d"], (1.0, 1.0),
            "grey fluorescence angiogram: bright vessels on a dark, clean background",
            background=(0.06,), foreground=(0.9,), contrast=(0.8, 1.0), tube=0.35, structure_variation=0.15,
            texture=0.25, texture_sigma=20.0, blur=(0.6, 0.6), noise_gaussian=0.015,
        ),
        DomainSpec(
            "vessel2d-fundus", "vessel2d", "fundus", 2, 3, DEFAULT_SHAPES["vessel2d"], (1.0, 1.0),
            "RGB fundus photograph: dark red vessels on an orange-red, vignetted, mottled background",
            target=True, polarity="dark", background=(0.86, 0.34, 0.22), foreground=(0.78, 0.5, 0.8),
            contrast=(0.55, 0.95), tube=0.25, structure_variation=0.35, texture=0.07, texture_sigma=18.0,
            fine_texture=0.035, fine_sigma=2.0, vignetting=0.45, illumination=0.12, colour_jitter=0.06,
            blur=(1.0, 1.0), noise_gaussian=0.02, noise_speckle=0.04, extras={"optic_disc_p": 0.3, "macula_p": 0.3},
        ),
        DomainSpec(
            "vessel3d-lightsheet", "vessel3d", "fluorescence", 3, 1, DEFAULT_SHAPES["vessel3d"], (1.0, 1.0, 1.0),
            "light-sheet volume: bright vessels, anisotropic (z) blur, mild noise",
            background=(0.05,), foreground=(0.85,), contrast=(0.8, 1.0), tube=0.3, structure_variation=0.15,
            texture=0.2, texture_sigma=12.0, blur=(1.6, 0.6, 0.6), noise_gaussian=0.02,
        ),
        DomainSpec(
            "vessel3d-twophoton", "vessel3d", "fluorescence", 3, 1, DEFAULT_SHAPES["vessel3d"], (1.0, 1.0, 1.0),
            "two-photon volume: thinner vessels, depth attenuation, Poisson shot noise, strong textured background",
            target=True, radius_scale=0.7, background=(0.12,), foreground=(1.0,), contrast=(0.7, 1.0), tube=0.2,
            structure_variation=0.3, texture=0.3, texture_sigma=8.0, fine_texture=0.1, fine_sigma=1.5,
            depth_attenuation=0.9, blur=(1.1, 0.6, 0.6), noise_poisson=60.0, noise_gaussian=0.01,
        ),
        DomainSpec(
            "road-clean", "road2d", "aerial", 2, 3, DEFAULT_SHAPES["road2d"], (1.0, 1.0),
            "aerial RGB: light grey roads on green/brown textured fields",
            polarity="bright", foreground=(0.78, 0.77, 0.74), contrast=(0.9, 1.0), structure_variation=0.06,
            texture=0.06, texture_sigma=4.0, fine_texture=0.03, fine_sigma=1.0, blur=(0.5, 0.5), noise_gaussian=0.01,
            extras={"tree_fraction": 0.08},
        ),
        DomainSpec(
            "road-hazy", "road2d", "aerial", 2, 3, DEFAULT_SHAPES["road2d"], (1.0, 1.0),
            "hazy aerial RGB: low contrast, colour cast, blur and sensor noise",
            target=True, polarity="bright", foreground=(0.7, 0.69, 0.66), contrast=(0.6, 0.85),
            structure_variation=0.15, texture=0.1, texture_sigma=4.0, fine_texture=0.05, fine_sigma=1.0,
            haze=0.5, haze_colour=(0.74, 0.77, 0.82), colour_shift=(1.08, 0.98, 0.8), colour_jitter=0.08,
            illumination=0.1, blur=(1.3, 1.3), noise_gaussian=0.035, noise_speckle=0.03,
            extras={"tree_fraction": 0.12},
        ),
        DomainSpec(
            "vessel2d-random", "vessel2d", "random", 2, 3, (256, 256), (1.0, 1.0),
            "domain-randomised 2D vessels (synth.randomize): either polarity, any colour, texture, blobs, "
            "illumination, vignetting, field-of-view rims, blur, noise and vessel widths",
        ),
        DomainSpec(
            "road-random", "road2d", "random", 2, 3, (256, 256), (1.0, 1.0),
            "domain-randomised roads (synth.randomize): grey or colour satellite/aerial tiles, roads brighter or "
            "darker than their surroundings, houses, trees and lots beside them, illumination, blur and noise",
        ),
        DomainSpec(
            "vessel3d-random", "vessel3d", "random", 3, 1, DEFAULT_SHAPES["vessel3d"], (1.0, 1.0, 1.0),
            "domain-randomised 3D vessels (synth.randomize): either polarity, texture, blobs, illumination, "
            "depth attenuation, anisotropic blur, noise and vessel widths",
        ),
    ]
}

#: (source, target) pairs; each pair shares its geometry generator
DOMAIN_PAIRS: list[tuple[str, str]] = [
    ("vessel2d-fluo", "vessel2d-fundus"),
    ("vessel3d-lightsheet", "vessel3d-twophoton"),
    ("road-clean", "road-hazy"),
]


def get_domain(domain) -> DomainSpec:
    if isinstance(domain, DomainSpec):
        return domain
    try:
        return DOMAINS[domain]
    except (KeyError, TypeError):
        raise VesselGraphError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}") from None


# --------------------------------------------------------------------------- rendering
def _group_values(geometry: Geometry, rng: np.random.Generator, variation: float, split: bool = False) -> np.ndarray:
    """One intensity factor per segment, constant per tree/road (``split``: two classes, like arteries/veins)."""
    groups = geometry.group
    if not len(groups):
        return np.ones(0, np.float32)
    ng = int(groups.max()) + 1
    if split:
        per = np.where(rng.random(ng) < 0.5, 1.0, 1.0 - variation)
    else:
        per = 1.0 - variation * rng.random(ng)
    return per[groups].astype(np.float32)


def _coverage(geometry: Geometry, spec: DomainSpec, rng: np.random.Generator, split: bool = False) -> np.ndarray:
    vals = _group_values(geometry, rng, spec.structure_variation, split)
    return rasterize_tubes(geometry.points, geometry.edges, geometry.seg_radius, geometry.shape, spec.tube, vals)


def _illumination(shape, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray | float:
    out: np.ndarray | float = 1.0
    if spec.vignetting:
        shape_a = np.asarray(shape, float)
        centre = (shape_a - 1) / 2 + rng.uniform(-0.35, 0.35, len(shape)) * shape_a
        r2 = radial(shape, centre, shape_a * 0.75)
        out = out * np.clip(1 - spec.vignetting * rng.uniform(0.7, 1.0) * r2, 0.15, 1)
    if spec.illumination:
        out = out * (1 + spec.illumination * smooth_field(shape, max(shape) / 3, rng))
    return out


def _noise(img: np.ndarray, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.noise_poisson:
        img = rng.poisson(np.clip(img, 0, None) * spec.noise_poisson).astype(np.float32) / spec.noise_poisson
    if spec.noise_speckle:
        img = img * (1 + spec.noise_speckle * rng.standard_normal(img.shape, np.float32))
    if spec.noise_gaussian:
        img = img + spec.noise_gaussian * rng.standard_normal(img.shape, np.float32)
    return img


def _render_fluorescence(geometry: Geometry, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    shape = geometry.shape
    cov = _coverage(geometry, spec, rng)
    bg = spec.background[0] * rng.uniform(0.7, 1.3)
    fg = spec.foreground[0] * rng.uniform(*spec.contrast)
    img = np.full(shape, bg, np.float32)
    if spec.texture:
        img *= np.clip(1 + spec.texture * smooth_field(shape, spec.texture_sigma, rng), 0, None)
    if spec.fine_texture:
        img += bg * spec.fine_texture * 4 * np.clip(smooth_field(shape, spec.fine_sigma, rng), 0, None)
    var = np.clip(1 + spec.structure_variation * 0.5 * smooth_field(shape, 8.0, rng), 0.3, None)
    img += (fg - bg) * cov * var
    img *= _illumination(shape, spec, rng)
    if spec.depth_attenuation and len(shape) == 3:
        z = np.arange(shape[0], dtype=np.float32) / max(shape[0] - 1, 1)
        img *= np.exp(-spec.depth_attenuation * z)[:, None, None]
    img = blur(img, spec.blur)
    img = _noise(img, spec, rng)
    if spec.polarity == "dark":
        img = 1 - img
    return img


def _render_fundus(geometry: Geometry, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    shape = geometry.shape
    cov = _coverage(geometry, spec, rng, split=True)
    base = np.asarray(spec.background, np.float32) * (1 + spec.colour_jitter * rng.standard_normal(3))
    tex = spec.texture * smooth_field(shape, spec.texture_sigma, rng)
    fine = spec.fine_texture * smooth_field(shape, spec.fine_sigma, rng)
    img = base * (1 + tex + fine)[..., None]
    shape_a = np.asarray(shape, float)
    if rng.random() < spec.extras.get("optic_disc_p", 0):
        # bright optic disc, preferably where a vessel tree starts inside the image
        roots = [np.asarray(r) for r in geometry.extras.get("roots", [])]
        roots = [r for r in roots if np.all((r >= 0) & (r < shape_a))]
        c = roots[0] if roots else rng.uniform(0, 1, 2) * shape_a
        r = rng.uniform(0.08, 0.13) * shape_a.mean()
        blob = np.exp(-radial(shape, c, (r, r)) / 2)
        img = img + blob[..., None] * (np.array([1.0, 0.88, 0.62], np.float32) - img) * 0.75
    if rng.random() < spec.extras.get("macula_p", 0):
        c = rng.uniform(0.2, 0.8, 2) * shape_a
        r = rng.uniform(0.08, 0.15) * shape_a.mean()
        img = img * (1 - 0.3 * np.exp(-radial(shape, c, (r, r)) / 2))[..., None]
    # ``foreground`` is the transmission of a thick vessel per channel (absorption model)
    absorb = (1 - np.asarray(spec.foreground, np.float32)) * rng.uniform(*spec.contrast)
    var = np.clip(1 + spec.structure_variation * 0.4 * smooth_field(shape, 10.0, rng), 0.3, 1.3)
    img = img * (1 - (cov * var)[..., None] * absorb)
    img = img * np.asarray(_illumination(shape, spec, rng), np.float32)[..., None]
    img = blur(img, spec.blur, channel_axis=True)
    return _noise(img, spec, rng)


_LAND = np.array(
    [
        [0.36, 0.45, 0.24],  # meadow
        [0.27, 0.36, 0.19],  # dark grass
        [0.52, 0.46, 0.32],  # bare soil
        [0.62, 0.58, 0.38],  # dry field
        [0.44, 0.38, 0.27],  # ploughed
        [0.42, 0.5, 0.3],  # crop
    ],
    np.float32,
)


def _parcels(shape, n: int, rng: np.random.Generator) -> np.ndarray:
    """Label image of ``n`` field parcels (Voronoi cells with wobbly borders)."""
    seeds = (rng.uniform(0, 1, (n, 2)) * np.asarray(shape)).astype(np.float32)
    y = np.arange(shape[0], dtype=np.float32)[:, None] + 4.0 * smooth_field(shape, 10.0, rng)
    x = np.arange(shape[1], dtype=np.float32)[None, :] + 4.0 * smooth_field(shape, 10.0, rng)
    if n * shape[0] * shape[1] <= 8_000_000:
        d2 = (y[..., None] - seeds[:, 0]) ** 2 + (x[..., None] - seeds[:, 1]) ** 2
        return d2.argmin(-1)
    from scipy.spatial import cKDTree

    return cKDTree(seeds).query(np.stack([y.ravel(), x.ravel()], 1))[1].reshape(shape)


def _render_aerial(geometry: Geometry, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    shape = geometry.shape
    cov = _coverage(geometry, spec, rng)
    area = float(np.prod(shape))
    n_parcels = max(3, int(rng.poisson(10 * area / 128**2)))
    colours = _LAND[rng.integers(len(_LAND), size=n_parcels)] * (
        1 + 0.08 * rng.standard_normal((n_parcels, 3), np.float32)
    )
    land = colours[_parcels(shape, n_parcels, rng)]
    tex = spec.texture * smooth_field(shape, spec.texture_sigma, rng)
    fine = spec.fine_texture * rng.standard_normal(shape, np.float32)
    land *= (1 + tex + fine)[..., None]
    trees = spec.extras.get("tree_fraction", 0.0)
    if trees:
        # clumps of trees: the top ``trees`` fraction of a two-scale random field (unit-normal threshold)
        f = (smooth_field(shape, 2.0, rng) + 0.8 * smooth_field(shape, 12.0, rng)) / 1.28
        thr = NormalDist().inv_cdf(1 - trees)
        m = np.clip((f - thr) * 3, 0, 1)[..., None]
        land = land * (1 - m) + m * np.array([0.16, 0.24, 0.12], np.float32)
    road = np.asarray(spec.foreground, np.float32) * rng.uniform(0.9, 1.05)
    k = rng.uniform(*spec.contrast)
    road = land.mean((0, 1)) + k * (road - land.mean((0, 1)))
    road_tex = 1 + 0.5 * spec.fine_texture * rng.standard_normal(shape, np.float32)
    img = land * (1 - cov[..., None]) + (road * road_tex[..., None]) * cov[..., None]
    if spec.haze:
        h = np.clip(spec.haze * rng.uniform(0.8, 1.1) * (1 + 0.3 * smooth_field(shape, 30.0, rng)), 0, 0.9)
        img = img * (1 - h[..., None]) + h[..., None] * np.asarray(spec.haze_colour, np.float32)
    shift = np.asarray(spec.colour_shift, np.float32) * (1 + spec.colour_jitter * rng.standard_normal(3))
    img = img * shift.astype(np.float32)
    img = img * np.asarray(_illumination(shape, spec, rng), np.float32)[..., None]
    img = blur(img, spec.blur, channel_axis=True)
    return _noise(img, spec, rng)


_STYLES = {"fluorescence": _render_fluorescence, "fundus": _render_fundus, "aerial": _render_aerial}


def render(geometry: Geometry, domain, seed=None) -> np.ndarray:
    """Render ``geometry`` in the appearance of ``domain``: float32 in [0, 1], (Y,X), (Y,X,3) or (Z,Y,X)."""
    spec = get_domain(domain)
    if geometry.kind != spec.kind:
        raise VesselGraphError(f"domain {spec.name!r} renders {spec.kind} geometry, got {geometry.kind}")
    if seed is None:
        seed = geometry.seed
    if seed is None:
        raise VesselGraphError("render needs a seed when the geometry was made from a Generator")
    if spec.style == "random":
        from .randomize import render_random

        rng = as_rng(seed, 1, stable_code(spec.name))
        return render_random(geometry, rng, spec.channels)[0]
    rng = as_rng(seed, 1, stable_code(spec.name))
    geometry = with_radius_scale(geometry, spec.radius_scale)
    img = _STYLES[spec.style](geometry, spec, rng)
    return np.clip(img, 0, 1).astype(np.float32, copy=False)


def sample_graph(geometry: Geometry, domain, seed=None) -> VesselGraph:
    """The ground-truth graph of ``geometry`` as seen in ``domain`` (radius scaled, scale and metadata set)."""
    spec = get_domain(domain)
    g = geometry.graph.copy()
    g.node_attrs["radius"] = g.node_attrs["radius"] * spec.radius_scale
    g.scale = tuple(float(s) for s in spec.scale)
    g.metadata.update(
        {
            "source": "napari_vesselgraph.synth",
            "synth_version": SYNTH_VERSION,
            "domain": spec.name,
            "kind": geometry.kind,
            "seed": geometry.seed if seed is None or isinstance(seed, np.random.Generator) else int(seed),
            "shape": list(geometry.shape),
            "radius_scale": spec.radius_scale,
        }
    )
    return g


def make_sample(domain, seed=0, shape=None) -> tuple[np.ndarray, VesselGraph]:
    """One synthetic ``(image, graph)``: float32 image in [0, 1] and its ground-truth graph (pixels).

    ``seed`` is a non-negative int (same seed -> same graph in both domains of a pair) or a numpy
    Generator (then ``graph.metadata['seed']`` is None). ``shape`` defaults to the domain's shape.
    """
    spec = get_domain(domain)
    shape = tuple(int(s) for s in (shape or spec.shape))
    if len(shape) != spec.ndim:
        raise VesselGraphError(f"domain {spec.name!r} is {spec.ndim}D, got shape {shape}")
    if spec.style == "random":
        from .randomize import make_random_sample

        if not isinstance(seed, np.random.Generator) and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise VesselGraphError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
        return make_random_sample(spec, seed, shape)
    if isinstance(seed, np.random.Generator):
        geom = make_geometry(spec.kind, seed, shape)
        image = render(geom, spec, seed)
        return image, sample_graph(geom, spec, None)
    geom = make_geometry(spec.kind, seed, shape)
    return render(geom, spec, seed), sample_graph(geom, spec, seed)


def structure_mask(geometry: Geometry, radius_scale: float = 1.0, threshold: float = 0.5) -> np.ndarray:
    """Boolean mask of the rendered structures (vessels/roads) without appearance effects."""
    g = with_radius_scale(geometry, radius_scale)
    return rasterize_tubes(g.points, g.edges, g.seg_radius, g.shape) >= threshold


def iter_samples(domain, seed: int = 0, n: int | None = None, shape=None):
    """Yield ``(image, graph)`` for seeds ``seed, seed + 1, ...`` (forever when ``n`` is None)."""
    i = 0
    while n is None or i < n:
        yield make_sample(domain, seed + i, shape)
        i += 1


def domain_info(domain) -> dict:
    """JSON-friendly summary of a domain (for manifests, checkpoints and the UI)."""
    spec = get_domain(domain)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "ndim": spec.ndim,
        "channels": spec.channels,
        "shape": list(spec.shape),
        "scale": list(spec.scale),
        "description": spec.description,
        "target": spec.target,
        "radius_scale": spec.radius_scale,
    }

