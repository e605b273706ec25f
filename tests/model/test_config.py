"""ModelConfig refuses configs that cannot be built, or would take absurd memory, with one clear line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.config import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
TINY2 = {
    "ndim": 2,
    "patch_size": 32,
    "backbone_channels": (8, 16, 32),
    "hidden": 32,
    "heads": 2,
    "ffn": 64,
    "query_grid": 4,
}
TINY3 = {
    "ndim": 3,
    "patch_size": 16,
    "backbone_channels": (8, 16, 32),
    "hidden": 32,
    "heads": 2,
    "ffn": 64,
    "query_grid": 2,
}


def _bundled_model_configs():
    out = []
    for p in sorted((ROOT / "configs").glob("*.json")):
        out.append(pytest.param(json.loads(p.read_text())["model"], id=p.name))
    for p in sorted((ROOT / "src/napari_vesselgraph/checkpoints/bundled").glob("*.json")):
        meta = json.loads(p.read_text())
        if meta.get("kind") != "segmentation":  # a U-Net: its config is model.segment.SegConfig (tests/model/test_segment)
            out.append(pytest.param(meta["model"], id=p.name))
    assert len(out) >= 8
    return out


@pytest.mark.parametrize("d", _bundled_model_configs())
def test_every_bundled_config_is_accepted(d):
    cfg = ModelConfig.from_dict(d)
    assert cfg.estimated_parameters() < ModelConfig.MAX_PARAMETERS // 10


BAD = {
    "huge_widths": {"hidden": 1024, "heads": 4, "ffn": 65536},
    "hidden_16384": {"hidden": 16384, "ffn": 65536},
    "query_grid_4000": {"query_grid": [4000, 4000]},
    "enc_layers_100000": {"enc_layers": 100000},
    "negative_hidden": {"hidden": -4},
    "zero_heads": {"heads": 0},
    "hidden_float_1e6": {"hidden": 1e6},
    "hidden_fraction": {"hidden": 32.5},
    "hidden_text": {"hidden": "128"},
    "hidden_bool": {"hidden": True},
    "hidden_not_divisible": {"hidden": 30, "heads": 4},
    "in_channels_0": {"in_channels": 0},
    "in_channels_9": {"in_channels": 9},
    "ndim_4": {"ndim": 4},
    "patch_4096": {"patch_size": 4096},
    "patch_zero": {"patch_size": 0},
    "channels_wide": {"backbone_channels": [8, 16, 5000]},
    "channels_zero": {"backbone_channels": [8, 0, 32]},
    "channels_not_list": {"backbone_channels": 32},
    "blocks_1000": {"blocks_per_stage": 1000},
    "dec_layers_0": {"dec_layers": 0},
    "dropout_2": {"dropout": 2.0},
    "max_offset_nan": {"max_offset": float("nan")},
    "max_radius_negative": {"max_radius": -1.0},
    "relation_line_huge": {"relation_line": 100000},
    "relation_line_channels_huge": {"relation_line": 8, "relation_line_channels": 100000},
    "query_grid_negative": {"query_grid": [-2, 4]},
    "query_grid_text": {"query_grid": "44"},
    "dense_head_text": {"dense_head": "yes"},
    "too_many_parameters": {"hidden": 1024, "heads": 8, "ffn": 4096, "enc_layers": 24, "dec_layers": 24},
    "too_many_tokens_3d": {"ndim": 3, "patch_size": 128, "backbone_channels": (8, 16), "stride": 2, "query_grid": 2},
}


@pytest.mark.parametrize("bad", BAD.values(), ids=list(BAD))
def test_bad_config_is_one_clear_line(bad):
    t0 = time.perf_counter()
    with pytest.raises(VesselGraphError) as err:
        ModelConfig.from_dict({**TINY2, **bad})
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 300
    assert time.perf_counter() - t0 < 1.0


def test_estimated_parameters_match_the_model():
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.model.network import Relationformer, count_parameters

    cases = [
        TINY2,
        TINY3,
        {**TINY2, "relation_line": 4, "relation_line_channels": 4, "blocks_per_stage": 2},
        {**TINY3, "dense_head": False, "in_channels": 3},
    ]
    cases += [c.values[0] for c in _bundled_model_configs()]
    for d in cases:
        cfg = ModelConfig.from_dict(dict(d))
        with torch.device("meta"):
            m = Relationformer(cfg)
        assert cfg.estimated_parameters() == count_parameters(m), d


@pytest.mark.parametrize("bad", [{"enc_layers": 100000}, {"heads": 0}, {"hidden": 1e6}], ids=str)
def test_train_with_a_bad_model_config_exits_with_one_line(bad, tmp_path, capsys):
    from napari_vesselgraph.cli import main

    cfg = json.loads((ROOT / "configs" / "vessel2d.json").read_text())
    cfg["model"].update(bad)
    cfg.update(max_steps=1, threads=1)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    t0 = time.perf_counter()
    rc = main(["train", "--config", str(path), "-o", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "model config" in err and len(err.splitlines()) == 1
    assert time.perf_counter() - t0 < 20
