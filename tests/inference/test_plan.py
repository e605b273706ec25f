"""The prediction plan and its options: PredictOptions, CleanupSettings, PredictionPlan (no model needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.inference import CleanupSettings, PredictionPlan, PredictOptions, finish_graph
from napari_vesselgraph.inference import postprocess as pp
from napari_vesselgraph.inference.plan import MODEL_PARAMS

from .fakes import GTPredictor, coordinate_image, random_tree


def test_defaults_are_the_documented_ones():
    assert pp.DEFAULTS == {
        "link_threshold": 0.1, "flat": 2.0, "min_length": 0.0, "dedupe_radius": 5.0, "min_support": 0.0,
        "min_brightness": 0.0, "spacing": 11.0, "spacing_tol": 2.0,
    }  # fmt: skip
    assert pp.OFF == {
        "link_threshold": None, "flat": 1.0, "min_length": 0.0, "dedupe_radius": 0.0, "min_support": 0.0,
        "min_brightness": 0.0, "spacing": 0.0, "spacing_tol": 2.0,
    }  # fmt: skip
    assert MODEL_PARAMS == (
        "merge_radius", "pad_mode", "normalize", "skip_empty", "drop_isolated", "prefetch", "tile_size",
        "postprocess", "link_threshold", "flat", "min_length", "dedupe_radius", "min_support", "min_brightness",
        "spacing", "spacing_tol",
    )  # fmt: skip
    o = PredictOptions.from_call()
    assert (o.node_threshold, o.edge_threshold, o.overlap, o.batch_size, o.merge_radius) == (None, None, 0.25, 8, 3.0)
    assert (o.pad_mode, o.normalize, o.skip_empty, o.drop_isolated, o.prefetch, o.tile_size) == (
        "reflect", "auto", True, False, True, None,
    )  # fmt: skip


def test_every_clean_up_setting_follows_from_the_fields():
    """Adding a clean-up step is one field (and its call in apply): every list of settings is derived."""
    names = CleanupSettings.names()
    assert tuple(pp.DEFAULTS) == tuple(pp.OFF) == names
    assert set(names) < set(MODEL_PARAMS)
    for f in dataclasses.fields(CleanupSettings):
        assert {"off", "doc"} <= set(f.metadata)
    g = random_tree((60, 60), seed=0, n_vessels=3)
    g.node_attrs["confidence"] = np.ones(g.n_nodes)
    g.edge_attrs["confidence"] = np.ones(g.n_edges)
    out = finish_graph(g, 0.5, 0.5)
    assert tuple(out.metadata["postprocess"]) == names
    assert CleanupSettings.from_record(out.metadata["postprocess"]) == CleanupSettings()


def test_cleanup_settings_are_checked_and_resolved():
    assert CleanupSettings.resolve() == CleanupSettings()
    meta = {"postprocess": {"flat": 1.5, "spacing": 10}}
    assert CleanupSettings.resolve(None, meta).flat == 1.5
    assert CleanupSettings.resolve({"flat": 3.0, "spacing": None}, meta).to_dict() == {
        **pp.DEFAULTS, "flat": 3.0, "spacing": 10.0,
    }  # fmt: skip
    off = CleanupSettings.resolve({"postprocess": False, "min_length": 4}, meta)
    assert off == CleanupSettings.off().replace(min_length=4.0)
    assert CleanupSettings.from_record({"flat": 2.5, "future_step": 1}) == CleanupSettings.off().replace(flat=2.5)
    for bad, what in (({"flat": "x"}, "flat"), ({"link_threshold": 2}, "link_threshold"), ({"bogus": 1}, "bogus")):
        with pytest.raises(VesselGraphError, match=what):
            CleanupSettings.resolve(bad)
    with pytest.raises(VesselGraphError, match="checkpoint metadata"):
        CleanupSettings.resolve(None, {"postprocess": {"bogus": 1}})
    with pytest.raises(VesselGraphError, match="must be a number"):
        CleanupSettings(spacing=float("nan"))


def test_predict_options_are_checked():
    o = PredictOptions.from_call(0.3, None, overlap="0.5", batch_size="4", flat=1.5, postprocess=True, tile_size=96)
    assert (o.node_threshold, o.overlap, o.batch_size, o.tile_size) == (0.3, 0.5, 4, 96)
    assert o.cleanup == {"flat": 1.5, "postprocess": True}
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.overlap = 0.1
    for kw, what in (
        ({"node_threshold": 2}, "node_threshold"),
        ({"edge_threshold": "x"}, "edge_threshold"),
        ({"overlap": 1.0}, "overlap"),
        ({"batch_size": 0}, "batch_size"),
        ({"pad_mode": "wrap"}, "pad_mode"),
        ({"normalize": "global"}, "normalize"),
        ({"merge_radius": "far"}, "merge_radius"),
        ({"flat": "x"}, "flat"),
        ({"sigma": 3}, "unknown option.*sigma.*known: merge_radius"),
    ):
        with pytest.raises(VesselGraphError, match=what):
            PredictOptions.from_call(**kw)


def test_plan_resolves_thresholds_and_cleanup_from_the_checkpoint():
    shape, patch = (100, 120), (48, 48)
    pred = GTPredictor(random_tree(shape, seed=1, n_vessels=4), shape, patch)
    pred.meta = {"name": "fake", "thresholds": {"node": 0.7}, "postprocess": {"flat": 1.5}}
    img = coordinate_image(shape)
    plan = PredictionPlan.build(img, shape, pred, None, (0.5, 0.5), None, None, PredictOptions.from_call(spacing=0))
    assert (plan.node_threshold, plan.edge_threshold) == (0.7, 0.5)
    assert plan.cleanup == CleanupSettings(flat=1.5, spacing=0.0)
    assert plan.meta["postprocess"] == plan.cleanup.to_dict() and plan.meta["checkpoint"] == "fake"
    assert plan.patch == patch and plan.scale == (0.5, 0.5) and len(plan.grid) == plan.meta["n_patches"]
    assert sorted(w for t in plan.tiles for w in t.windows) == list(range(len(plan.grid)))
    plan2 = PredictionPlan.build(img, shape, pred, None, None, None, None, PredictOptions.from_call(0.2, 0.9))
    assert (plan2.node_threshold, plan2.edge_threshold) == (0.2, 0.9)
    with pytest.raises(VesselGraphError, match="3D"):
        PredictionPlan.build(np.zeros((4, 100, 120)), (4, 100, 120), pred, None, None, None, None, PredictOptions())
