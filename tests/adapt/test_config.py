import pytest

from napari_vesselgraph.adapt import METHODS, AdaptConfig
from napari_vesselgraph.errors import VesselGraphError


def test_methods_and_defaults():
    assert METHODS == ("contrastive", "finetune", "adversarial", "translation", "calibrate")
    cfg = AdaptConfig(target_domain="vessel2d-fundus").validate()
    assert cfg.method == "finetune" and cfg.checkpoint == "vessel2d-fluo" and cfg.steps == 300
    assert AdaptConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"target_domain": "vessel2d-fundus", "colour": 1}, "unknown adaptation config keys"),
        ({"target_domain": "vessel2d-fundus", "method": "magic"}, "unknown adaptation method"),
        ({}, "exactly one of target"),
        ({"target": "x", "target_domain": "vessel2d-fundus"}, "exactly one of target"),
        ({"target_domain": "mars"}, "unknown target domain"),
        ({"target_domain": "vessel2d-fundus", "steps": 0}, "steps must be at least 1"),
        ({"target_domain": "vessel2d-fundus", "shots": 0}, "shots must be at least 1"),
        ({"target_domain": "vessel2d-fundus", "shots": 2.5}, "shots must be an integer"),
        ({"target_domain": "vessel2d-fundus", "val_fraction": 1.0}, "val_fraction"),
        ({"target_domain": "vessel2d-fundus", "temperature": 0}, "temperature must be > 0"),
        ({"target_domain": "vessel2d-fundus", "lr": "fast"}, "lr must be a number"),
        ({"target_domain": "vessel2d-fundus", "train_layers": "backbone"}, "train_layers"),
        ({"target_domain": "vessel2d-fundus", "align_weight": -1}, "align_weight"),
    ],
)
def test_bad_values(bad, words):
    with pytest.raises(VesselGraphError, match=words):
        AdaptConfig.from_dict(bad)


def test_eval_every():
    assert AdaptConfig(target="x", steps=300).eval_every == 100
    assert AdaptConfig(target="x", steps=30).eval_every == 25
    assert AdaptConfig(target="x", steps=30, val_every=7).eval_every == 7
