"""checkpoints.suits: what a model is for, what an image looks like, and which checkpoint suits an image."""

from __future__ import annotations

import numpy as np
import pytest

from napari_vesselgraph.checkpoints import list_bundled
from napari_vesselgraph.checkpoints.suits import (
    CANNOT_RUN,
    image_traits,
    model_purpose,
    pick_checkpoint,
    rank_checkpoints,
    suitability,
)
from napari_vesselgraph.synth import make_sample


def _meta(ndim=2, channels=1, domain=None, **extra):
    return {"ndim": ndim, "input": {"ndim": ndim, "channels": channels}, "domain": domain,
            "adaptation": {"method": "none"}, **extra}  # fmt: skip


def _entry(name, meta):
    return {"name": name, "path": f"/nowhere/{name}.safetensors", "source": "bundled", "meta": {"name": name, **meta}}


#: today's bundled three, as their metadata describes them
TODAY = [
    _entry("road-clean", _meta(2, 3, "road-clean")),
    _entry("vessel2d-fluo", _meta(2, 1, "vessel2d-fluo")),
    _entry("vessel3d-lightsheet", _meta(3, 1, "vessel3d-lightsheet")),
]
#: what may be bundled later in the week
LATER = [
    _entry("neuron3d-confocal", _meta(3, 1, "neuron3d-confocal", suits={
        "ndim": 3, "images": "confocal stacks of fluorescent neurons", "rgb": False, "polarity": "bright",
        "kinds": ["confocal", "fluorescence"], "structures": "neurites"})),
    _entry("road-satellite", _meta(2, 3, "road-random")),
    _entry("vessel2d-fundus", _meta(2, 3, "vessel2d-fluo", suits={
        "ndim": 2, "images": "RGB fundus photographs of the retina", "rgb": True, "polarity": "dark",
        "kinds": ["fundus"], "structures": "vessels"})),
    _entry("vessel2d-random", _meta(2, 3, "vessel2d-random")),
    _entry("vessel3d-twophoton", _meta(3, 1, "vessel3d-lightsheet", target_domain="vessel3d-twophoton",
                                       adaptation={"method": "contrastive", "target": "vessel3d-twophoton"})),
]  # fmt: skip


@pytest.fixture(scope="module")
def fundus():
    image, _ = make_sample("vessel2d-fundus", 1, (192, 192))
    return (image * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fluo():
    image, _ = make_sample("vessel2d-fluo", 1, (192, 192))
    return image


@pytest.fixture(scope="module")
def stack():
    image, _ = make_sample("vessel3d-lightsheet", 1, (48, 64, 64))
    return image


# ------------------------------------------------------------------ model_purpose
def test_purpose_from_todays_metadata():
    p = model_purpose(_meta(2, 1, "vessel2d-fluo"))
    assert (p["ndim"], p["rgb"], p["polarity"], p["structures"], p["from"]) == (2, False, "bright", "vessels", "domain")
    assert "fluorescence" in p["kinds"] and "bright vessels" in p["images"] and "2D" in p["text"]
    road = model_purpose(_meta(2, 3, "road-clean"))
    assert road["rgb"] is True and road["structures"] == "roads" and "aerial" in road["kinds"]
    robust = model_purpose(_meta(2, 3, "vessel2d-random"))
    assert robust["polarity"] == "any" and robust["rgb"] is None and robust["kinds"] == ["any"]


def test_purpose_of_the_bundled_checkpoints_says_something():
    for e in list_bundled():
        p = model_purpose(e["meta"])
        assert p["ndim"] in (2, 3) and p["images"], e["name"]
        assert p["text"].startswith("For "), p["text"]


def test_suits_entry_wins_and_adaptation_to_a_domain_counts():
    p = model_purpose(LATER[2]["meta"])  # domain says fluorescence, suits says fundus
    assert (p["polarity"], p["rgb"], p["kinds"], p["from"]) == ("dark", True, ["fundus"], "suits")
    assert p["images"] == "RGB fundus photographs of the retina" and "fundus photographs" in p["text"]
    adapted = model_purpose(_meta(2, 1, "vessel2d-fluo", target_domain="vessel2d-fundus",
                                  adaptation={"method": "contrastive", "target": "vessel2d-fundus"}))  # fmt: skip
    assert adapted["polarity"] == "dark" and adapted["adapted"] and "Adapted (contrastive)" in adapted["text"]
    folder = model_purpose(_meta(2, 1, "vessel2d-fluo", target_domain="retina-annotations",
                                 adaptation={"method": "finetune", "target": "retina-annotations"}))  # fmt: skip
    assert folder["polarity"] is None and folder["adapted"] and "retina-annotations" in folder["text"]


def test_purpose_from_words_when_the_domain_is_unknown():
    p = model_purpose(_meta(3, 1, "neuron3d-confocal"))
    assert p["structures"] == "neurites" and "confocal" in p["kinds"] and p["polarity"] == "bright"
    assert model_purpose({})["text"].startswith("What images it suits is not recorded")


# ------------------------------------------------------------------ image_traits
def test_traits_of_a_fundus_photo_a_fluorescence_image_and_a_stack(fundus, fluo, stack):
    t = image_traits(fundus)
    assert (t["ndim"], t["rgb"], t["polarity"]) == (2, True, "dark") and "fundus" in t["kinds"]
    t = image_traits(fluo)
    assert (t["ndim"], t["rgb"], t["polarity"]) == (2, False, "bright") and "fluorescence" in t["kinds"]
    t = image_traits(stack)
    assert (t["ndim"], t["rgb"], t["polarity"]) == (3, False, "bright")
    assert image_traits(stack[10], ndim=2)["ndim"] == 2


def test_traits_of_the_real_retina_photo():
    from skimage.data import retina

    t = image_traits(retina())
    assert t["rgb"] and t["polarity"] == "dark" and t["black_surround"] and t["kinds"] == ["fundus"]


def test_a_grey_fundus_photo_gets_a_vessel_model():
    """A red-free (green-channel) fundus photo: grey, dark vessels in a black aperture. It is a fundus photo of
    vessels, so no road model is picked for it (a road model and the robust vessel model tied on grey images of
    unknown kind, and the road model came first in the listing)."""
    from skimage.data import retina

    green = retina()[..., 1]
    t = image_traits(green)
    assert not t["rgb"] and t["black_surround"] and t["polarity"] == "dark"
    assert t["kinds"] == ["fundus"] and t["structures"] == "vessels"
    if not list_bundled():
        pytest.skip("no bundled checkpoints installed")
    best = rank_checkpoints(t)[0]
    assert best["purpose"]["structures"] == "vessels", best["name"]
    # a camera's black is not always 0 (DRIVE's green channel sits at 6 of 255): still an aperture
    lifted = image_traits(np.clip(green.astype(np.float32) * 0.5 + 6, 0, 255))
    assert lifted["black_surround"] and lifted["kinds"] == ["fundus"]
    # a grey image without the aperture keeps no kind (nothing tells vessels from roads there)
    assert image_traits(green[400:1000, 400:1000])["kinds"] == []


class CountingArray:
    """An array-like that records how many elements each read asks for (a stand-in for a Zarr store)."""

    def __init__(self, shape, dtype=np.uint8):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
        self.read = 0

    def __getitem__(self, index):
        sizes = []
        for sl, n in zip(index, self.shape):
            if isinstance(sl, slice):
                sizes.append(len(range(*sl.indices(n))))
        out = np.random.default_rng(0).integers(0, 255, sizes, dtype=np.uint8)
        self.read += out.size
        return out


def test_traits_of_a_huge_lazy_image_read_only_small_pieces():
    big = CountingArray((200_000, 150_000, 3))
    t = image_traits(big)
    assert t["ndim"] == 2 and t["rgb"]
    assert big.read < 2_000_000, big.read  # crops, never the 9e10 pixels
    vol = CountingArray((5000, 4000, 4000))
    assert image_traits(vol)["ndim"] == 3 and vol.read < 2_000_000


def test_traits_of_a_dask_array_do_not_compute_it_whole():
    da = pytest.importorskip("dask.array")
    calls = []

    def block(x):
        calls.append(x.size)
        return x

    arr = da.zeros((8192, 8192), chunks=512, dtype=np.float32).map_blocks(block, dtype=np.float32)
    image_traits(arr)
    assert 0 < sum(calls) < 8192 * 8192 / 8


# ------------------------------------------------------------------ suitability
def test_a_2d_model_on_a_3d_stack_warns(stack):
    score, warnings = suitability(TODAY[1]["meta"], image_traits(stack), "vessel2d-fluo")
    assert score <= CANNOT_RUN and len(warnings) == 1
    assert "2D model" in warnings[0] and "3D stack" in warnings[0] and "vessel2d-fluo" in warnings[0]


def test_a_road_model_on_a_fundus_photo_and_a_bright_model_on_dark_vessels_warn(fundus):
    traits = image_traits(fundus)
    _, road = suitability(TODAY[0]["meta"], traits, "road-clean")
    assert any("roads" in w and "fundus photograph" in w for w in road)
    _, bright = suitability(TODAY[1]["meta"], traits, "vessel2d-fluo")
    assert len(bright) == 1 and "bright structures" in bright[0] and "darker" in bright[0]
    score, none = suitability(LATER[2]["meta"], traits, "vessel2d-fundus")
    assert none == [] and score > suitability(TODAY[1]["meta"], traits)[0]


def test_a_matching_model_gives_no_warning(fluo, stack):
    assert suitability(TODAY[1]["meta"], image_traits(fluo))[1] == []
    assert suitability(TODAY[2]["meta"], image_traits(stack))[1] == []


# ------------------------------------------------------------------ pick_checkpoint
def test_pick_among_todays_checkpoints(fundus, fluo, stack):
    # an RGB fundus photo: the vessel model, not the road model that comes first alphabetically
    assert pick_checkpoint(fundus, TODAY) == "vessel2d-fluo"
    assert pick_checkpoint(fluo, TODAY) == "vessel2d-fluo"
    assert pick_checkpoint(stack, TODAY) == "vessel3d-lightsheet"
    road, _ = make_sample("road-clean", 1, (128, 128))
    assert pick_checkpoint(road, TODAY) == "road-clean"


def test_pick_prefers_matching_then_robust_then_adapted(fundus, fluo, stack):
    everything = TODAY + LATER
    assert pick_checkpoint(fundus, everything) == "vessel2d-fundus"
    without_fundus = [e for e in everything if e["name"] != "vessel2d-fundus"]
    assert pick_checkpoint(fundus, without_fundus) == "vessel2d-random"
    assert pick_checkpoint(fluo, everything) == "vessel2d-fluo"
    ranked = rank_checkpoints(stack, everything)
    # a grey stack says nothing of neurites: a vessel model first, the neuron model only when it is alone
    assert ranked[0]["name"] in ("vessel3d-lightsheet", "vessel3d-twophoton")
    assert pick_checkpoint(stack, [e for e in everything if not e["name"].startswith("vessel3d")]) == "neuron3d-confocal"
    assert not [w for r in ranked if r["name"] == "neuron3d-confocal" for w in r["warnings"]]
    assert all(r["purpose"]["ndim"] == 3 for r in ranked[:3]) and ranked[3]["score"] <= CANNOT_RUN
    # the order of the candidates does not decide
    assert pick_checkpoint(fundus, list(reversed(everything))) == "vessel2d-fundus"


def test_pick_with_installed_checkpoints_and_no_candidates(fundus, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path))
    names = {e["name"] for e in list_bundled()}
    if {"vessel2d-fluo", "road-clean"} <= names and "vessel2d-fundus" not in names and "vessel2d-random" not in names:
        assert pick_checkpoint(fundus) == "vessel2d-fluo"
    assert pick_checkpoint(fundus, []) is None


# ------------------------------------------------------------------ vesselgraph predict without --checkpoint
@pytest.fixture
def fake_predict(monkeypatch):
    """Replace inference.predict (the CLI imports it at call time) and the installed checkpoints."""
    import napari_vesselgraph.checkpoints as ckpts
    from napari_vesselgraph import inference
    from napari_vesselgraph.graph import VesselGraph

    calls = []

    def fake(image, **kwargs):
        calls.append(kwargs)
        return VesselGraph(np.zeros((2, 2)), np.array([[0, 1]]))

    monkeypatch.setattr(inference, "predict", fake)
    monkeypatch.setattr(ckpts, "list_checkpoints", lambda: list(TODAY))
    return calls


def test_cli_predict_picks_the_checkpoint_and_warns_on_a_mismatch(fundus, stack, tmp_path, fake_predict, capsys):
    from napari_vesselgraph.cli import main

    np.save(tmp_path / "fundus.npy", fundus)
    assert main(["predict", str(tmp_path / "fundus.npy"), "-o", str(tmp_path / "a.json")]) == 0
    assert fake_predict[-1]["checkpoint"].endswith("vessel2d-fluo.safetensors")
    err = capsys.readouterr().err
    assert "using 'vessel2d-fluo'" in err
    warnings = [line for line in err.splitlines() if line.startswith("vesselgraph: warning:")]
    assert len(warnings) == 1 and "darker" in warnings[0]

    np.save(tmp_path / "stack.npy", stack)
    assert main(["predict", str(tmp_path / "stack.npy"), "-o", str(tmp_path / "b.json")]) == 0
    assert fake_predict[-1]["checkpoint"].endswith("vessel3d-lightsheet.safetensors")
    assert "warning" not in capsys.readouterr().err
    # an explicit choice is kept, with no guessing
    assert main(["predict", str(tmp_path / "stack.npy"), "-o", str(tmp_path / "c.json"), "--checkpoint", "x"]) == 0
    assert fake_predict[-1]["checkpoint"] == "x" and "using" not in capsys.readouterr().err


def test_a_segmentation_model_is_not_picked_for_a_stack_it_cannot_read_whole(stack):
    """A segmentation checkpoint reads the image whole (up to SEGMENTATION_MAX_VOXELS): on a bigger stack it cannot
    run, says why, and the tiled Relationformer is picked instead; on a normal stack it may win."""
    from napari_vesselgraph.checkpoints.meta import SEGMENTATION_MAX_VOXELS

    seg = _entry("vessel3d-seg", {"kind": "segmentation", "ndim": 3, "domain": "vessel3d-random", "suits": {
        "ndim": 3, "images": "two-photon stacks of vessels", "rgb": False, "polarity": "bright",
        "kinds": ["two-photon", "fluorescence"], "structures": "vessels"},
        "adaptation": {"method": "finetune", "target": ["vesselnn-shots"]}, "target_domain": "vesselnn-shots"})  # fmt: skip
    entries = TODAY + [seg]
    traits = image_traits(stack)
    assert pick_checkpoint(traits, entries) == "vessel3d-seg"
    big = dict(traits, shape=(1024, 1024, SEGMENTATION_MAX_VOXELS // (1024 * 1024) + 1))
    score, warnings = suitability(seg["meta"], big, "vessel3d-seg")
    assert score <= CANNOT_RUN and len(warnings) == 1 and "region" in warnings[0]
    assert pick_checkpoint(big, entries) == "vessel3d-lightsheet"


def test_cli_predict_on_tiles_does_not_pick_a_segmentation_model(stack, tmp_path, fake_predict, monkeypatch, capsys):
    """With dask workers, a scheduler or a tile size the picked checkpoint must be one that predicts tile by tile."""
    import napari_vesselgraph.checkpoints as ckpts
    from napari_vesselgraph.cli import main

    seg = _entry("vessel3d-seg", {"kind": "segmentation", "ndim": 3, "domain": "vessel3d-random", "suits": {
        "ndim": 3, "images": "two-photon stacks of vessels", "rgb": False, "polarity": "bright",
        "kinds": ["two-photon", "fluorescence"], "structures": "vessels"},
        "adaptation": {"method": "finetune"}, "target_domain": "vesselnn-shots"})  # fmt: skip
    monkeypatch.setattr(ckpts, "list_checkpoints", lambda: [*TODAY, seg])
    np.save(tmp_path / "stack.npy", stack)
    assert main(["predict", str(tmp_path / "stack.npy"), "-o", str(tmp_path / "a.json")]) == 0
    assert fake_predict[-1]["checkpoint"].endswith("vessel3d-seg.safetensors")
    for extra in (["--dask-workers", "2"], ["--tile-size", "64"]):
        assert main(["predict", str(tmp_path / "stack.npy"), "-o", str(tmp_path / "b.json"), *extra]) == 0
        assert fake_predict[-1]["checkpoint"].endswith("vessel3d-lightsheet.safetensors"), extra
    capsys.readouterr()


def test_road_satellite_takes_single_band_tiles():
    """road-satellite was adapted on single-band (grey) SpaceNet tiles: it suits grey and colour tiles, and a grey
    tile of unknown kind gets it (with its automatic zoom) rather than a model without a scale reference."""
    entries = {e["name"]: e for e in list_bundled()}
    if "road-satellite" not in entries:
        pytest.skip("road-satellite is not bundled")
    meta = entries["road-satellite"]["meta"]
    assert model_purpose(meta)["rgb"] is None and "single-band" in meta["description"]
    assert meta["scale_reference"]["radius_p90"] > 0 and meta["bundled_history"]  # the first bundling is kept
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
    chip = shared / "spacenet-vegas" / "road_mask_input.tif"
    if not chip.is_file():
        pytest.skip("the shared SpaceNet chip is not here (../shared/realdata)")
    import tifffile

    tile = tifffile.imread(chip)[:325, :325]
    assert pick_checkpoint(tile) == "road-satellite"


def test_a_synthetic_only_model_is_not_picked_for_structures_far_wider_than_its_domain():
    """road-clean knows roads a few pixels wide (its synthetic domain only). On its own samples it stays the choice;
    on the same scene enlarged 2.5x (roads as wide as in a 30 cm satellite tile, where it finds nothing) it ranks
    below road-satellite, which records the real tiles it suits, and says why."""
    from scipy import ndimage as ndi

    from napari_vesselgraph.checkpoints.suits import TOO_WIDE, domain_radius

    names = {e["name"] for e in list_bundled()}
    if not {"road-clean", "road-satellite"} <= names:
        pytest.skip("road-clean and road-satellite are not both bundled")
    image, _ = make_sample("road-clean", 2, (256, 256))
    image = np.asarray(image, np.float32)
    ref = domain_radius("road-clean")
    assert ref and image_traits(image)["radius"] <= TOO_WIDE * ref
    assert pick_checkpoint(image) == "road-clean"
    wide = np.clip(ndi.zoom(image, (2.5, 2.5, 1), order=1), 0, 1)
    assert image_traits(wide)["radius"] > TOO_WIDE * ref
    ranked = {r["name"]: r for r in rank_checkpoints(wide)}
    assert pick_checkpoint(wide) != "road-clean"
    assert ranked["road-clean"]["score"] < ranked["road-satellite"]["score"]
    assert any("synthetic images only" in w for w in ranked["road-clean"]["warnings"])
    assert not any("synthetic images only" in w for w in ranked["road-satellite"]["warnings"])
    assert domain_radius("no-such-domain") is None and domain_radius("vessel3d-lightsheet") is None
