"""What a checkpoint is for, what an image looks like, and which checkpoint suits an image best.

No Qt, no torch: the widgets and ``vesselgraph predict`` call these to choose a default model for an image and
to say in plain words when the chosen model does not fit it.

* :func:`model_purpose` reads a checkpoint's metadata: its optional ``"suits"`` entry (written by
  ``scripts/bundle_checkpoint.py``)::

      "suits": {"ndim": 2, "images": "RGB fundus photographs", "rgb": true, "polarity": "dark",
                "kinds": ["fundus"], "structures": "vessels"}

  and, for whatever it leaves out, what every checkpoint already records: ``ndim``, ``input.channels``,
  ``domain`` (a :data:`napari_vesselgraph.synth.DOMAINS` name: its style, polarity and description), the
  adaptation it carries (``target_domain``), and as a last resort words in the domain and the name
  (``fundus``, ``road``, ``random``, ...).
* :func:`image_traits` looks at a few small pieces of an image (a central crop, a strided overview of an
  in-memory array, corner crops of a lazy one; never a whole dask/Zarr array): 2D or 3D, RGB or grey, whether
  thin structures are brighter or darker than their surroundings, a black surround like a fundus photo.
* :func:`suitability` scores one checkpoint for those traits and returns plain-language warnings on a
  mismatch (a 2D model on a 3D stack, a road model on a fundus photo, a bright-vessel model on dark vessels).
* :func:`rank_checkpoints` / :func:`pick_checkpoint` order the installed checkpoints by that score. The score
  comes only from the metadata, so a checkpoint bundled later slots in by what it says it suits.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

import numpy as np

from .meta import CheckpointMeta, is_segmentation

#: score of a checkpoint that cannot run on the image at all (wrong dimensionality)
CANNOT_RUN = -100.0
#: a 2D checkpoint known only by its synthetic training domain ranks lower (:data:`TOO_WIDE_PENALTY`, with a
#: warning) on an image whose structures are more than this many times wider than the domain's
TOO_WIDE = 1.5
TOO_WIDE_PENALTY = 3.0
#: image kinds recognised in a domain name / model name when the metadata says nothing else
_KIND_WORDS = {
    "fundus": "fundus",
    "retina": "fundus",
    "fluo": "fluorescence",
    "fluorescence": "fluorescence",
    "lightsheet": "light-sheet",
    "light-sheet": "light-sheet",
    "twophoton": "two-photon",
    "two-photon": "two-photon",
    "2p": "two-photon",
    "confocal": "confocal",
    "aerial": "aerial",
    "satellite": "satellite",
    "ct": "ct",
    "mra": "mra",
    "brightfield": "bright-field",
}
#: kinds that are all fluorescence microscopy (a grey image with bright structures looks like any of them)
FLUORESCENCE_KINDS = {"fluorescence", "light-sheet", "two-photon", "confocal"}
#: kinds of colour photographs taken from above
AERIAL_KINDS = {"aerial", "satellite"}
_STRUCTURE_WORDS = {"vessel": "vessels", "road": "roads", "neuron": "neurites", "neurite": "neurites"}
_STYLE_KINDS = {"fluorescence": ["fluorescence"], "fundus": ["fundus"], "aerial": ["aerial", "satellite"]}
_GEOMETRY_STRUCTURES = {"vessel2d": "vessels", "vessel3d": "vessels", "road2d": "roads"}


# ---------------------------------------------------------------------------------------------- models
def _int_or_none(value) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _words(*texts) -> list[str]:
    out = []
    for t in texts:
        if t:
            out += [w for w in re.split(r"[^a-z0-9]+", str(t).lower()) if w]
    return out


def _domain_spec(name):
    if not name:
        return None
    try:
        from ..synth import DOMAINS
    except ImportError:  # pragma: no cover
        return None
    return DOMAINS.get(str(name))


def _from_domain(spec) -> dict[str, Any]:
    """Purpose fields of a synthetic domain."""
    random = spec.style == "random"
    out: dict[str, Any] = {
        "ndim": spec.ndim,
        "images": spec.description,
        "polarity": "any" if random else spec.polarity,
        "rgb": None if random else spec.channels == 3,
        "structures": _GEOMETRY_STRUCTURES.get(spec.kind),
    }
    kinds = list(_STYLE_KINDS.get(spec.style, []))
    for w in _words(spec.name):
        if _KIND_WORDS.get(w) and _KIND_WORDS[w] not in kinds:
            kinds.append(_KIND_WORDS[w])
    out["kinds"] = ["any"] if random else kinds
    return out


def _from_words(*texts) -> dict[str, Any]:
    """Purpose fields guessed from words of a domain or checkpoint name (``road-satellite``, ``vessel2d-random``)."""
    words = _words(*texts)
    out: dict[str, Any] = {}
    kinds = []
    for w in words:
        k = _KIND_WORDS.get(w)
        if k and k not in kinds:
            kinds.append(k)
        for stem, structure in _STRUCTURE_WORDS.items():
            if w.startswith(stem):
                out.setdefault("structures", structure)
    if any(w in ("random", "robust", "any") for w in words):
        out["polarity"] = "any"
        out["rgb"] = None
        kinds = kinds or ["any"]
    elif "fundus" in kinds:
        out["polarity"] = "dark"
    elif FLUORESCENCE_KINDS & set(kinds):
        out["polarity"] = "bright"
    if kinds:
        out["kinds"] = kinds
    return out


def model_purpose(meta: dict | None) -> dict[str, Any]:
    """What images a checkpoint suits, from its metadata.

    Returns ``{"name", "ndim", "rgb", "polarity", "kinds", "structures", "images", "adapted", "adaptation",
    "target", "from", "text"}``:

    * ``ndim``: 2 or 3 (None: unknown); ``rgb``: True (colour images), False (grey images), None (either);
    * ``polarity``: ``"bright"`` (structures brighter than their surroundings), ``"dark"``, ``"any"``, or None
      (unknown); ``kinds``: image kinds (``"fundus"``, ``"fluorescence"``, ``"aerial"``, ``"any"``, ...);
      ``structures``: ``"vessels"``, ``"roads"``, ``"neurites"`` or None;
    * ``images``: plain-language text of the images it suits; ``text``: one line for a widget;
    * ``adapted``: whether it carries an adaptation; ``target``: what it was adapted to;
    * ``from``: where the answer came from (``"suits"``, ``"domain"``, ``"target domain"``, ``"name"``,
      ``"unknown"``).
    """
    meta = meta if isinstance(meta, dict) else {}
    cm = CheckpointMeta.peek(meta)
    ndim, channels = cm.ndim, cm.channels
    ad = cm.adaptation
    method = cm.adaptation_method
    adapted = method not in ("none", "None", "")
    target = None
    if adapted:
        target = meta.get("target_domain") or ad.get("target_domain") or ad.get("target")

    purpose: dict[str, Any] = {
        "name": meta.get("name"),
        "ndim": ndim,
        "rgb": None if channels is None else channels == 3,
        "polarity": None,
        "kinds": [],
        "structures": None,
        "images": None,
        "adapted": adapted,
        "adaptation": method,
        "target": target,
        "from": "unknown",
    }
    domain = meta.get("domain")
    spec = _domain_spec(domain)
    target_spec = _domain_spec(target) if adapted else None
    if target_spec is not None:  # adapted to a synthetic domain: it now suits that domain's images
        purpose.update(_from_domain(target_spec))
        purpose["from"] = "target domain"
    elif adapted and target:  # adapted to a folder of images: their look is not recorded
        if spec is not None:
            purpose["structures"] = _GEOMETRY_STRUCTURES.get(spec.kind)
            purpose["ndim"] = purpose["ndim"] or spec.ndim
        purpose["images"] = f"images like those in {target}"
        purpose["from"] = "adaptation"
    elif spec is not None:
        purpose.update(_from_domain(spec))
        purpose["from"] = "domain"
    else:
        guessed = _from_words(domain, meta.get("name"))
        if guessed:
            purpose.update(guessed)
            purpose["from"] = "name"
    if ndim is not None:  # the architecture has the last word on dimensionality
        purpose["ndim"] = ndim

    suits = meta.get("suits")
    if isinstance(suits, dict):
        purpose["from"] = "suits"
        if _int_or_none(suits.get("ndim")) in (2, 3):
            purpose["ndim"] = int(suits["ndim"])
        if "rgb" in suits:
            rgb = suits["rgb"]
            purpose["rgb"] = None if rgb in (None, "any") else bool(rgb) if not isinstance(rgb, str) else rgb == "yes"
        if suits.get("polarity") in ("bright", "dark", "any"):
            purpose["polarity"] = suits["polarity"]
        if isinstance(suits.get("kinds"), (list, tuple)):
            purpose["kinds"] = [str(k).lower() for k in suits["kinds"]]
        if suits.get("structures"):
            purpose["structures"] = str(suits["structures"]).lower()
        if suits.get("images"):
            purpose["images"] = str(suits["images"])
    if not purpose["images"] and meta.get("description"):
        purpose["images"] = str(meta["description"])
    purpose["text"] = _purpose_text(purpose, domain)
    return purpose


def describe_checkpoint(entry: dict, purpose: bool = False) -> str:
    """One paragraph (HTML) about a listed checkpoint (``list_checkpoints()`` entry) for a widget: name and
    source, then :meth:`CheckpointMeta.describe`; with ``purpose``, first a line saying what images it suits
    (:func:`model_purpose`). An entry whose file could not be read says why."""
    if entry.get("error"):
        return escape(f"⚠ {entry['error']}")
    raw = entry.get("meta") or {}
    head = ""
    if purpose:
        head = escape(model_purpose(raw)["text"]) + "<br>"
    parts = [f"{head}<b>{escape(str(entry.get('name', '?')))}</b> ({entry.get('source', 'file')})"]
    parts += [escape(p) for p in CheckpointMeta.peek(raw).describe()]
    return " · ".join(parts)


def _purpose_text(p: dict, domain) -> str:
    parts = []
    if p["images"]:
        parts.append(f"For {p['images'][0].lower() + p['images'][1:]}")
    elif domain:
        parts.append(f"Trained on '{domain}' images; what else it suits is not recorded")
    else:
        parts.append("What images it suits is not recorded")
    facts = []
    if p["ndim"]:
        facts.append(f"{p['ndim']}D")
    if p["rgb"] is True:
        facts.append("colour")
    elif p["rgb"] is False:
        facts.append("grey")
    if p["polarity"] == "bright":
        facts.append("bright structures")
    elif p["polarity"] == "dark":
        facts.append("dark structures")
    elif p["polarity"] == "any":
        facts.append("bright or dark structures")
    text = parts[0] + (f" ({', '.join(facts)})" if facts else "")
    if p["adapted"]:
        text += f". Adapted ({p['adaptation']})" + (f" to {p['target']}" if p["target"] else "")
    return text + "."


# ---------------------------------------------------------------------------------------------- images
def _looks_rgb(shape) -> bool:
    return len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4


def _is_lazy(arr) -> bool:
    return not isinstance(arr, np.ndarray) or isinstance(arr, np.memmap)


def _pick_level(image):
    """A multiscale image (list of levels): the smallest level that still has 512 px per side, else level 0."""
    if isinstance(image, (list, tuple)) or type(image).__name__ == "MultiScaleData":
        levels = list(image)
        for lvl in reversed(levels):
            if max(int(n) for n in lvl.shape) >= 512:
                return lvl
        return levels[0]
    return image


def _read(arr, index) -> np.ndarray:
    out = arr[index]
    if hasattr(out, "compute") and not isinstance(out, np.ndarray):
        out = out.compute()
    return np.asarray(out)


def _central(shape, size) -> tuple[slice, ...]:
    return tuple(slice(max(0, (n - s) // 2), max(0, (n - s) // 2) + min(n, s)) for n, s in zip(shape, size))


def image_traits(image, rgb: bool | None = None, ndim: int | None = None, channel: int | None = None) -> dict[str, Any]:
    """Cheap facts about an image that decide which checkpoint suits it.

    ``image``: a numpy, dask or Zarr array (or a multiscale list of them), channels last for colour;
    ``rgb``: whether the last axis holds colour (None: guessed from the shape); ``ndim``: its spatial
    dimensionality when known (None: 3 for a grey array of three or more axes, else 2); ``channel``: use this
    entry of the last axis (a multichannel image that is not RGB). Only a central crop
    (384 px, 96³ voxels), a strided overview of an in-memory 2D array and four corner crops of a lazy one are
    read.

    Returns ``{"ndim", "rgb", "shape", "polarity", "polarity_ratio", "red_dominant", "black_surround",
    "dark_background", "kinds", "structures", "mean_rgb", "radius"}`` (``radius``: 2D only,
    :func:`napari_vesselgraph.model.scale.structure_radius` of the central crop, None when unclear):
    ``polarity`` is ``"bright"``/``"dark"`` when
    thin structures are clearly brighter/darker than their surroundings, else None; ``kinds`` is a guess
    (``"fundus"`` for a red colour photo, ``"fluorescence"`` for a grey image of bright structures on a dark
    background, ``"photo"`` for other colour images).
    """
    arr = _pick_level(image)
    shape = tuple(int(n) for n in arr.shape)
    if channel is not None and len(shape) >= 3 and 0 <= int(channel) < shape[-1]:
        arr = _Channel(arr, int(channel))  # reads crops of one channel, never the whole array
        shape = shape[:-1]
        rgb = False
    rgb = _looks_rgb(shape) if rgb is None else bool(rgb)
    if rgb and (len(shape) < 3 or shape[-1] not in (3, 4)):
        rgb = False
    grey_axes = len(shape) - (1 if rgb else 0)
    if ndim is None:
        ndim = 2 if rgb or grey_axes <= 2 else 3
    ndim = int(min(max(ndim, 2), max(grey_axes, 2)))
    lead = grey_axes - ndim
    spatial = shape[lead : lead + ndim]
    traits: dict[str, Any] = {
        "ndim": ndim,
        "rgb": rgb,
        "shape": spatial,
        "polarity": None,
        "polarity_ratio": None,
        "red_dominant": False,
        "black_surround": False,
        "dark_background": None,
        "kinds": [],
        "structures": None,
        "mean_rgb": None,
        "radius": None,
    }
    if min(spatial or (0,)) < 4:
        return traits
    lead_idx = tuple(n // 2 for n in shape[:lead])  # a time point / channel slider: the middle one
    size = (96,) * 3 if ndim == 3 else (384, 384)
    crop = _read(arr, lead_idx + _central(spatial, size))
    crop = np.nan_to_num(crop.astype(np.float32, copy=False))
    if rgb:
        crop = crop[..., :3]
    overview = None
    if ndim == 2 and not _is_lazy(arr):
        step = max(1, int(np.ceil(max(spatial) / 512)))
        overview = np.asarray(arr[lead_idx + (slice(None, None, step), slice(None, None, step))], dtype=np.float32)
        if rgb:
            overview = overview[..., :3]

    # colour
    if rgb:
        look = overview if overview is not None else crop
        pix = look.reshape(-1, 3)
        level = pix.max(axis=1)
        hi = float(np.percentile(level, 99)) if level.size else 0.0
        inside = pix[level > 0.1 * hi] if hi > 0 else pix
        mean = inside.mean(axis=0) if len(inside) else pix.mean(axis=0)
        scale = max(float(np.percentile(pix, 99.5)), 1e-12)
        traits["mean_rgb"] = [float(v) for v in np.clip(mean / scale, 0, 1)]
        r, g, b = (float(v) for v in mean)
        traits["red_dominant"] = r > 1.5 * g + 1e-12 and r > 1.5 * b + 1e-12

    # a black surround (fundus camera aperture)
    if ndim == 2:
        traits["black_surround"] = _black_surround(arr, overview, spatial, lead_idx, rgb)

    # how wide the structures are (2D): the 90th percentile of their centre-line radii in the central crop
    if ndim == 2 and min(crop.shape[:2]) >= 32:
        from ..model.scale import structure_radius

        try:
            traits["radius"] = structure_radius(crop)
        except Exception:  # noqa: BLE001 - an odd dtype or range: no width, not an error
            traits["radius"] = None

    # polarity of thin structures
    grey = _grey(crop, rgb)
    if grey is not None:
        traits["polarity"], traits["polarity_ratio"] = _polarity(grey)
        lo, med, hi = np.percentile(grey, [1, 50, 99])
        traits["dark_background"] = bool(hi > lo and (med - lo) / (hi - lo) < 0.3)

    kinds = []
    if rgb and traits["red_dominant"]:
        kinds.append("fundus")
        traits["structures"] = "vessels"
    elif rgb:
        kinds.append("photo")
    elif traits["polarity"] == "bright" and traits["dark_background"]:
        kinds.append("fluorescence")
    elif ndim == 2 and traits["black_surround"] and traits["polarity"] == "dark":
        # a grey photo of dark vessels inside a black camera aperture: a red-free (green-channel) fundus photo
        kinds.append("fundus")
        traits["structures"] = "vessels"
    traits["kinds"] = kinds
    return traits


class _Channel:
    """One entry of the last axis of an array, read lazily: ``view[index]`` reads ``arr[index + (channel,)]``."""

    def __init__(self, arr, channel: int):
        self.arr, self.channel = arr, channel
        self.shape = tuple(arr.shape[:-1])
        self.dtype = arr.dtype

    def __getitem__(self, index):
        return self.arr[tuple(index) + (self.channel,)]


def _grey(crop: np.ndarray, rgb: bool) -> np.ndarray | None:
    from ..baseline.vesselness import to_grey

    try:
        grey, _ = to_grey(crop, "auto", rgb=rgb)
    except Exception:  # noqa: BLE001 - an odd dtype or shape: no polarity, not an error
        return None
    return grey if np.ptp(grey) > 0 else None


def _polarity(grey: np.ndarray) -> tuple[str | None, float | None]:
    """``(polarity, bright/dark ratio)`` of the thin structures of a small grey crop; None when it is unclear."""
    from ..baseline.vesselness import choose_polarity, vesselness

    sigmas = (1.0, 2.0) if grey.ndim == 3 else (1.0, 2.0, 3.0)
    try:
        _, _, ev = vesselness(grey, sigmas, evidence=True)
        polarity, ratio = choose_polarity(*ev)
    except (ValueError, MemoryError):  # pragma: no cover
        return None, None
    if not np.isfinite(ratio) or ratio <= 0:  # nothing of one polarity at all
        return polarity, None
    if 1 / 1.15 < ratio < 1.15:  # about as much of either: edges, noise, flat
        return None, float(ratio)
    return polarity, float(ratio)


def _black_surround(arr, overview, spatial, lead_idx, rgb) -> bool:
    """A bright aperture in a black surround: the field of view found in the whole overview of an in-memory array,
    or black corners around a brighter centre (corner crops; all a lazy array is read for). The corners catch the
    green channel of a fundus photo, whose dimmer aperture the field-of-view search can miss."""
    if overview is not None:
        try:
            from ..baseline.pipeline import field_of_view

            if field_of_view(overview, overview.shape[:2], margin=0.0) is not None:
                return True
        except ImportError:  # pragma: no cover
            pass
    h, w = spatial
    k = max(4, min(32, h // 10, w // 10))
    corners = []
    for y in (slice(0, k), slice(h - k, h)):
        for x in (slice(0, k), slice(w - k, w)):
            c = _read(arr, lead_idx + (y, x)).astype(np.float32)
            corners.append(c.max(axis=-1) if rgb else c)
    centre = _read(arr, lead_idx + _central(spatial, (128, 128))).astype(np.float32)
    centre = centre.max(axis=-1) if rgb else centre
    hi = float(np.percentile(centre, 99))
    med = float(np.median(centre))
    dark = max(0.04 * hi, 0.2 * med)  # a camera's black is not always 0 (DRIVE's green channel: 6 of 255)
    return hi > 0 and all(float(np.median(c)) <= dark for c in corners) and med > 0.1 * hi


# ---------------------------------------------------------------------------------------------- matching
def _label(purpose: dict, name: str | None) -> str:
    return f"'{name or purpose.get('name') or 'this model'}'"


def _kind_text(kinds) -> str:
    names = {"fundus": "fundus photographs", "fluorescence": "fluorescence images", "aerial": "aerial images",
             "satellite": "satellite images", "light-sheet": "light-sheet volumes", "two-photon": "two-photon images",
             "confocal": "confocal images", "photo": "colour photographs"}  # fmt: skip
    out = [names.get(k, f"{k} images") for k in kinds if k != "any"]
    return " or ".join(out[:2]) if out else "other images"


def _image_kind_text(kinds) -> str:
    names = {"fundus": "a fundus photograph", "fluorescence": "a fluorescence image", "photo": "a colour photograph"}
    out = [names.get(k, f"a {k} image") for k in kinds]
    return out[0] if out else "something else"


def _overlap(model_kinds, image_kinds) -> bool:
    m, i = set(model_kinds), set(image_kinds)
    if m & i:
        return True
    if "fluorescence" in i and m & FLUORESCENCE_KINDS:
        return True
    return "photo" in i and bool(m & AERIAL_KINDS)


def suitability(meta: dict | None, traits: dict, name: str | None = None) -> tuple[float, list[str]]:
    """``(score, warnings)``: how well a checkpoint (its metadata) suits an image (its :func:`image_traits`).

    Higher is better; :data:`CANNOT_RUN` or less means it cannot run on the image at all. ``warnings`` are plain
    sentences for each real mismatch (none when the model fits as far as can be told).
    """
    p = model_purpose(meta)
    label = _label(p, name)
    score, warnings = 0.0, []
    nd = traits.get("ndim")
    if p["ndim"] is not None and nd is not None:
        if p["ndim"] != nd:
            score += CANNOT_RUN
            if p["ndim"] == 2:
                warnings.append(
                    f"{label} is a 2D model but this image is a 3D stack: it cannot predict the whole stack. "
                    "Choose a 3D model, or predict one 2D slice at a time."
                )
            else:
                warnings.append(f"{label} is a 3D model but this image is 2D: choose a 2D model.")
            return score, warnings
        score += 10.0
    if is_segmentation(meta) and traits.get("shape"):
        from .meta import SEGMENTATION_MAX_VOXELS

        n = int(np.prod([int(s) for s in traits["shape"]]))
        if n > SEGMENTATION_MAX_VOXELS:  # it reads the image whole: a tiled model or the skeleton must do it
            warnings.append(
                f"{label} reads the image whole and this one has {n / 1e6:.0f} million pixels (its limit is "
                f"{SEGMENTATION_MAX_VOXELS / 1e6:.0f} million): predict a region with it, or use a Relationformer "
                "checkpoint or the skeleton."
            )
            return float(CANNOT_RUN), warnings

    # what the image shows (a road model on a fundus photo)
    image_kinds = [k for k in traits.get("kinds") or []]
    structures = traits.get("structures")
    model_kinds = p["kinds"] or []
    if structures and p["structures"] and p["structures"] != structures:
        score -= 6.0
        warnings.append(
            f"{label} was made to trace {p['structures']} in {_kind_text(model_kinds)}, but this image looks like "
            f"{_image_kind_text(image_kinds)} of {structures}."
        )
    elif structures is None and p["structures"] == "neurites":
        # nothing in a grey stack tells neurites from vessels: a model made for one traced neuron (it may drop
        # dim branches) is picked only when no vessel model fits as well; named, it runs without a warning
        score -= 0.75
        if image_kinds and model_kinds and _overlap(model_kinds, image_kinds):
            score += 3.0
    elif image_kinds and model_kinds:
        if "any" in model_kinds:
            score += 1.0
        elif _overlap(model_kinds, image_kinds):
            score += 3.0
        else:
            score -= 1.0

    # colour
    if p["rgb"] is True and not traits.get("rgb"):
        score -= 2.0
        warnings.append(f"{label} was made for colour (RGB) images; this image is grey.")
    elif p["rgb"] is False and traits.get("rgb"):
        score -= 1.0  # it turns colour into grey itself: a small cost, no warning on its own
    elif p["rgb"] is None:
        score += 0.5
    else:
        score += 1.0

    # bright or dark structures
    pol = traits.get("polarity")
    if p["polarity"] == "any":
        score += 1.5
    elif p["polarity"] in ("bright", "dark") and pol in ("bright", "dark"):
        if p["polarity"] == pol:
            score += 2.0
        else:
            score -= 4.0
            want = "bright structures on a darker background" if p["polarity"] == "bright" else (
                "dark structures on a brighter background")  # fmt: skip
            seen = "darker" if pol == "dark" else "brighter"
            warnings.append(
                f"{label} expects {want}, but the thin structures in this image look {seen} than their "
                "surroundings: it will likely miss most of them. A model for this kind of image, a robust one, "
                "or fine-tuning on a few annotated patches fits better."
            )

    # structures far wider than a synthetic-only model has seen (a 30 cm satellite tile for a model of roads a
    # few pixels wide): it finds nothing there at any zoom, while the models that record real images shrink them
    if p["from"] == "domain" and nd == 2 and traits.get("radius"):
        ref = domain_radius(str((meta or {}).get("domain") or ""))
        if ref and float(traits["radius"]) > TOO_WIDE * ref:
            score -= TOO_WIDE_PENALTY
            warnings.append(
                f"{label} was trained on synthetic images only, with structures about {2 * ref:.0f} px wide; this "
                f"image's look about {2 * float(traits['radius']):.0f} px wide: it will likely miss them. A model "
                "that records the real images it suits, or fine-tuning on a few annotated patches, fits better."
            )

    if p["adapted"]:
        score += 0.5
    return score, warnings


_DOMAIN_RADIUS: dict[str, float | None] = {}


def domain_radius(domain: str) -> float | None:
    """The structure radius (:func:`napari_vesselgraph.model.scale.structure_radius`) of a 256 x 256 sample
    of a 2D synthetic domain (seed 0), computed once per process; None for an unknown or 3D domain."""
    if domain not in _DOMAIN_RADIUS:
        r = None
        try:
            from .. import synth
            from ..model.scale import structure_radius

            if domain in synth.DOMAINS:
                img, _ = synth.make_sample(domain, seed=0, shape=(256, 256))
                img = np.asarray(img, np.float32)
                if img.ndim in (2, 3) and (img.ndim == 2 or img.shape[-1] in (3, 4)):
                    r = structure_radius(img)
        except Exception:  # noqa: BLE001 - a domain that cannot make a 2D sample: no reference, not an error
            r = None
        _DOMAIN_RADIUS[domain] = r
    return _DOMAIN_RADIUS[domain]


def _entries(names=None) -> list[dict]:
    """Installed checkpoints (``list_checkpoints``) or the given names/paths/entries, with their metadata."""
    from . import list_checkpoints, read_metadata, resolve

    if names is None:
        return [e for e in list_checkpoints() if not e.get("error")]
    installed = {e["name"]: e for e in list_checkpoints() if not e.get("error")}
    out = []
    for n in names:
        if isinstance(n, dict):
            out.append(n)
        elif str(n) in installed:
            out.append(installed[str(n)])
        else:
            path = resolve(n)
            out.append({"name": str(n), "path": str(path), "source": "file", "meta": read_metadata(path)})
    return out


def rank_checkpoints(image_or_traits, entries=None, rgb: bool | None = None, ndim: int | None = None) -> list[dict]:
    """Checkpoints ordered from best to worst suited: ``[{"name", "entry", "score", "warnings", "purpose"}]``.

    ``image_or_traits``: an image (see :func:`image_traits`) or the traits of one; ``entries``: checkpoint entries
    (``list_checkpoints()`` items), names or paths (None: every installed checkpoint). Ties keep the listing
    order (bundled first, then the user's), after preferring a checkpoint that carries an adaptation.
    """
    traits = image_or_traits if _is_traits(image_or_traits) else image_traits(image_or_traits, rgb=rgb, ndim=ndim)
    ranked = []
    for i, e in enumerate(_entries(entries)):
        if e.get("error"):
            continue
        score, warnings = suitability(e.get("meta") or {}, traits, e.get("name"))
        ranked.append({"name": e.get("name"), "entry": e, "score": score, "warnings": warnings,
                       "purpose": model_purpose(e.get("meta")), "_order": i})  # fmt: skip
    ranked.sort(key=lambda r: (-r["score"], r["_order"]))
    for r in ranked:
        r.pop("_order")
    return ranked


def _is_traits(x) -> bool:
    return isinstance(x, dict) and "ndim" in x and "kinds" in x


def pick_checkpoint(image, names=None, rgb: bool | None = None, ndim: int | None = None) -> str | None:
    """The name of the checkpoint that suits ``image`` best (None when none is installed).

    ``names``: the candidates (names, paths or ``list_checkpoints()`` entries; None: all installed). An RGB photo
    with dark vessels gets a fundus or robust 2D vessel model when one is installed, a 3D stack a 3D model, a
    grey image of bright vessels a fluorescence model. Check :func:`suitability` of the result for warnings: the
    best available may still be a poor fit.
    """
    ranked = rank_checkpoints(image, names, rgb=rgb, ndim=ndim)
    return ranked[0]["name"] if ranked else None
