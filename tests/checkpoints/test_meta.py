"""CheckpointMeta: the typed, validated checkpoint metadata (no torch needed)."""

from __future__ import annotations

import json

import pytest

from napari_vesselgraph import checkpoints as ck
from napari_vesselgraph.checkpoints import CheckpointMeta, checkpoint_ndim, checkpoint_patch_size, describe_checkpoint
from napari_vesselgraph.checkpoints.meta import checkpoint_thresholds
from napari_vesselgraph.errors import VesselGraphError

ALL_BUNDLED = sorted(ck.bundled_dir().glob("*.json"))
#: Relationformer checkpoints (segmentation checkpoints have metadata of their own: model.segment)
BUNDLED = [p for p in ALL_BUNDLED if json.loads(p.read_text()).get("kind") != "segmentation"]
SEGMENTATION = [p for p in ALL_BUNDLED if p not in BUNDLED]


def _minimal(**over) -> dict:
    meta = {
        "format_version": 1,
        "architecture": "relationformer",
        "model": {"ndim": 2, "in_channels": 1, "patch_size": [64, 64]},
        "ndim": 2,
        "channels": 1,
        "patch_size": [64, 64],
        "input": {"ndim": 2, "channels": 1, "method": "percentile"},
        "domain": "vessel2d-fluo",
        "adaptation": {"method": "none"},
    }
    meta.update(over)
    return meta


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_metadata_loads_and_round_trips(path):
    raw = json.loads(path.read_text())
    m = CheckpointMeta.from_dict(raw, str(path))
    assert m.ndim == raw["ndim"] and m.channels == raw["channels"] and list(m.patch_size) == raw["patch_size"]
    assert m.to_dict() == raw  # nothing lost, nothing added (suits, scale_reference, adaptation, ... kept)
    assert CheckpointMeta.from_dict(m.to_dict()).to_dict() == raw
    header = ck.read_metadata(path.with_suffix(".safetensors"))
    assert CheckpointMeta.from_dict(header).to_dict() == header
    assert m.node_threshold == raw["thresholds"]["node"] and m.edge_threshold == raw["thresholds"]["edge"]
    text = " · ".join(m.describe())
    assert f"{raw['ndim']}D" in text and raw["domain"] in text
    ad = raw.get("adaptation") or {}
    if ad.get("method") in (None, "none"):
        assert "adaptation: none" in text
    else:  # a bundled adapted checkpoint says how it was adapted
        assert f"adaptation: {ad['method']}" in text


@pytest.mark.parametrize("path", SEGMENTATION, ids=lambda p: p.stem)
def test_bundled_segmentation_metadata_says_how_it_was_made(path):
    """A bundled segmentation checkpoint loads through its own loader and records what it suits, the commands
    that made it and its source (a fine-tune), and its test-split figures beside the skeleton's."""
    from napari_vesselgraph.checkpoints.suits import model_purpose
    from napari_vesselgraph.model.segment import load_segmenter

    raw = json.loads(path.read_text())
    assert ck.read_metadata(path.with_suffix(".safetensors")) == raw
    s = load_segmenter(path.stem)
    assert s.meta["name"] == path.stem and s.cfg.ndim == raw["ndim"]
    assert raw["command"].startswith("vesselgraph ") and raw["seed"] is not None
    p = model_purpose(raw)
    assert p["from"] == "suits" and p["ndim"] == raw["ndim"] and p["images"]
    ad = raw.get("adaptation") or {}
    if ad.get("method") not in (None, "none"):
        assert raw["source_checkpoint"]["command"].startswith("vesselgraph ")
        assert raw["init"]["sha256"] == raw["source_checkpoint"]["sha256"]
        rows = ad["test"]["rows"]
        assert {"skeleton", "adapted"} <= set(rows) and ad["test"]["split"] == "test"


def test_unknown_keys_round_trip():
    raw = _minimal(suits={"ndim": 2, "kinds": ["fundus"]}, scale_reference={"radius_p90": 3.0}, anything=[1, 2])
    raw["adaptation"] = {"method": "contrastive", "target": "my-images", "k": 5}
    m = CheckpointMeta.from_dict(raw)
    assert m.extra["suits"] == raw["suits"] and m.extra["scale_reference"] == {"radius_p90": 3.0}
    assert m.adaptation_method == "contrastive" and m.adaptation_target == "my-images"
    assert m.to_dict() == raw


def test_dimensions_are_read_in_one_place():
    # the architecture config first, then the top-level keys, then the input normalisation
    assert checkpoint_ndim({"model": {"ndim": 3}, "ndim": 3}) == 3
    assert checkpoint_ndim({"ndim": "2"}) == 2
    assert checkpoint_ndim({"input": {"ndim": 3}}) == 3
    assert checkpoint_ndim({}) is None and checkpoint_ndim({"ndim": "two"}) is None
    assert checkpoint_patch_size({"model": {"ndim": 3, "patch_size": 32}}) == (32, 32, 32)
    assert checkpoint_patch_size({"patch_size": [48, 64]}) == (48, 64)
    assert checkpoint_patch_size({"patch_size": ["x"]}) is None
    assert checkpoint_thresholds({}) == (0.5, 0.5)
    assert checkpoint_thresholds({"thresholds": {"node": 0.7}}) == (0.7, 0.5)
    m = CheckpointMeta.from_dict(_minimal(ndim=None, channels=None, patch_size=None, input={}))
    assert (m.ndim, m.channels, m.patch_size) == (2, 1, (64, 64))
    assert m.input_meta["ndim"] == 2 and m.input_meta["channels"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": None}, "no format_version"),
        ({"format_version": 99}, "newer"),
        ({"architecture": "unet"}, "unknown architecture"),
        ({"model": None}, "architecture config"),
        ({"ndim": 3}, "ndim=3"),
        ({"channels": 3}, "channels=3"),
        ({"patch_size": [32, 32]}, "patch_size"),
        ({"input": {"ndim": 3}, "ndim": 2}, "input normalisation"),
        ({"ndim": "two"}, "invalid checkpoint metadata"),
        ({"thresholds": {"node": 1.5}}, "node threshold"),
        ({"thresholds": [0.5]}, "thresholds"),
        ({"adaptation": {"method": "translation"}}, "translator config"),
    ],
)
def test_invalid_metadata_is_one_clear_line(change, message):
    with pytest.raises(VesselGraphError, match=message) as err:
        CheckpointMeta.from_dict(_minimal(**change), "x.safetensors")
    assert str(err.value).startswith("x.safetensors: ") and "\n" not in str(err.value)
    CheckpointMeta.peek(_minimal(**change))  # never raises
    with pytest.raises(VesselGraphError, match=message):
        ck.check_metadata(_minimal(**change), "x.safetensors")


def test_peek_reads_broken_entries():
    for junk in (None, [], {"ndim": []}, {"model": "x", "input": 3, "adaptation": "contrastive"}):
        m = CheckpointMeta.peek(junk)
        assert m.describe()
    assert CheckpointMeta.peek({"adaptation": "contrastive"}).adaptation_method == "contrastive"


def test_describe_checkpoint_for_widgets():
    entry = {"name": "a<b", "source": "user", "meta": _minimal(validation={"edge_f1": 0.81234, "smd": 0.5})}
    text = describe_checkpoint(entry)
    assert text.startswith("<b>a&lt;b</b> (user)")
    assert "domain: vessel2d-fluo" in text and "2D" in text and "patch 64×64" in text and "edge_f1 0.812" in text
    assert describe_checkpoint(entry, purpose=True).count("<br>") == 1
    assert describe_checkpoint({"name": "x", "error": "bad <file>"}) == "⚠ bad &lt;file&gt;"
    assert "dimensionality unknown" in describe_checkpoint({"name": "y", "meta": {}})


def test_describe_says_whether_a_calibration_carries_over():
    """A calibrated checkpoint's line says what its leave-one-out check found; broken records say nothing."""
    rows = [{"id": "a", "score": 0.70, "own_score": 0.60}, {"id": "b", "score": 0.55, "own_score": 0.57}]
    def line(loo):
        ad = {"method": "calibrate", "leave_one_out": loo}
        return " · ".join(CheckpointMeta.peek(_minimal(adaptation=ad)).describe())

    over = line(rows)
    assert "calibration carries over from shot to shot (0.625 vs 0.585 with the source's settings, 2 shots" in over
    rows[0]["score"] = 0.58
    text = line(rows)
    assert "does not carry over from shot to shot (0.565 vs 0.585" in text
    for junk in ("x", [], [{"score": None, "own_score": 1}], [{"id": "a"}]):
        text = line(junk)
        assert "carr" not in text and "adaptation: calibrate" in text


def test_new_checkpoint_metadata_comes_from_the_config():
    from napari_vesselgraph.model.config import ModelConfig

    cfg = ModelConfig(ndim=3, in_channels=1, patch_size=(32, 32, 32), query_grid=(4, 4, 4))
    m = CheckpointMeta.for_model(cfg)
    d = m.to_dict()
    assert d["ndim"] == d["model"]["ndim"] == d["input"]["ndim"] == 3
    assert d["patch_size"] == [32, 32, 32] and d["adaptation"] == {"method": "none"}
    assert CheckpointMeta.from_dict(d).to_dict() == d
