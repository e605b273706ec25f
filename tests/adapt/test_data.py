import numpy as np
import pytest

from napari_vesselgraph.adapt import AdaptConfig
from napari_vesselgraph.adapt.data import SHOT_POOL, TargetSampler, load_target, n_heldout_for, prepare
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.preprocess import input_meta


def _ids(cfg):
    d = load_target(AdaptConfig.from_dict(cfg), 2)
    return d.ids(d.shots), d.ids(d.heldout), d


def test_synthetic_shots_reproducible_and_disjoint():
    cfg = {"target_domain": "vessel2d-fundus", "shots": 5, "shot_seed": 3}
    a, ha, d = _ids(cfg)
    b, hb, _ = _ids(cfg)
    c, _, _ = _ids({**cfg, "shot_seed": 4})
    assert a == b and ha == hb and a != c
    assert len(a) == 5 == len(set(a)) and all(0 <= s < SHOT_POOL for s in a)
    assert len(ha) == 2 and all(20_000_000 <= s < 30_000_000 for s in ha)  # val split, never test seeds
    assert not set(a) & set(ha)
    assert d.synthetic and d.shots[0].image.shape == (128, 128, 3) and d.shots[0].graph.n_nodes > 0


@pytest.mark.parametrize("k, n", [(1, 1), (5, 2), (10, 3)])
def test_synthetic_heldout_count(k, n):
    assert len(_ids({"target_domain": "vessel2d-fundus", "shots": k})[1]) == n
    assert len(_ids({"target_domain": "vessel2d-fundus", "shots": k, "val_fraction": 0})[1]) == 0


def test_folder_shots(fundus_folder):
    cfg = {"target": str(fundus_folder), "shots": 3, "shot_seed": 1}
    a, ha, _ = _ids(cfg)
    b, hb, _ = _ids(cfg)
    assert a == b and ha == hb and len(a) == 3 and len(ha) == 1 and not set(a) & set(ha)
    assert all(s.startswith("train_") for s in a + ha)
    others = {tuple(_ids({**cfg, "shot_seed": s})[0]) for s in range(6)}
    assert len(others) > 1  # the shot seed matters
    allk, hall, _ = _ids({"target": str(fundus_folder), "shots": None})
    assert len(allk) == 5 and len(hall) == 1 and sorted(allk + hall) == sorted(set(allk + hall))
    with pytest.raises(VesselGraphError, match="6 shots asked for but only 5"):
        _ids({"target": str(fundus_folder), "shots": 6})
    assert len(_ids({"target": str(fundus_folder), "shots": 6, "val_fraction": 0})[0]) == 6


def test_folder_errors(tmp_path, fundus_folder):
    with pytest.raises(VesselGraphError, match="does not exist"):
        _ids({"target": str(tmp_path / "nope"), "shots": 1})
    with pytest.raises(VesselGraphError, match="3D"):
        load_target(AdaptConfig.from_dict({"target": str(fundus_folder), "shots": 1}), 3)


def test_heldout_rule():
    assert [n_heldout_for(n, 0.2) for n in (0, 1, 2, 5, 10, 20)] == [0, 0, 1, 1, 2, 4]
    assert n_heldout_for(10, 0.0) == 0


def test_target_sampler_patches(fundus_folder):
    d = load_target(AdaptConfig.from_dict({"target": str(fundus_folder), "shots": 2}), 2)
    meta = input_meta(2, 1)
    s = TargetSampler(d.shots, meta, (32, 32), np.random.default_rng(0))
    batch = s.batch(4)
    assert all(p.shape == (1, 32, 32) and p.dtype == np.float32 for p, _ in batch)
    assert all(
        g.ndim == 2 and (g.nodes.size == 0 or (g.nodes.min() >= -0.5 and g.nodes.max() <= 31.5)) for _, g in batch
    )
    small = prepare(np.random.default_rng(0).random((20, 40, 3)), meta, (32, 32))
    assert small.shape == (1, 32, 40)


def test_zoom_number_resamples_samples_and_records_reference(fundus_folder):
    """A numeric zoom brings every target sample to the model's scale: images shrunk, graphs scaled and
    re-spaced, and a scale reference that makes predict's automatic zoom pick about that factor."""
    cfg = AdaptConfig.from_dict({"target": str(fundus_folder), "shots": 2, "zoom": 0.5})
    ref = load_target(AdaptConfig.from_dict({"target": str(fundus_folder), "shots": 2, "zoom": 1}), 2, meta={})
    d = load_target(cfg, 2, meta={"postprocess": {"spacing": 10.0}})
    assert not ref.zoomed and d.zoomed
    for a, b in zip(ref.shots + ref.heldout, d.shots + d.heldout):
        assert a.id == b.id and b.image.shape[:2] == (32, 32) and b.image.shape[2:] == a.image.shape[2:]
        assert b.graph.nodes.max() <= 32 and b.graph.nodes.min() >= -0.5
        # lengths halve (re-spacing keeps the paths within 1 px)
        la, lb = a.graph.edge_lengths(False).sum(), b.graph.edge_lengths(False).sum()
        assert lb == pytest.approx(la / 2, rel=0.15)
    assert {k for k, _ in d.zoom} == {s.id for s in d.shots + d.heldout} and all(z == 0.5 for _, z in d.zoom)


def test_zoom_auto_needs_a_scale_reference(fundus_folder):
    cfg = AdaptConfig.from_dict({"target": str(fundus_folder), "shots": 2})
    assert cfg.zoom == "auto" and cfg.selection == "graph"
    assert not load_target(cfg, 2, meta={}).zoomed  # no reference: the images as they are
    # a tiny reference radius: structures look wide, so the images are shrunk as predict would shrink them
    d = load_target(cfg, 2, meta={"scale_reference": {"radius_p90": 0.3}})
    assert d.zoomed and any(z < 1 for _, z in d.zoom) and all(z <= 1 for _, z in d.zoom)


@pytest.mark.parametrize("bad", [0, -1, 9, "half", True])
def test_zoom_and_select_by_validated(fundus_folder, bad):
    with pytest.raises(VesselGraphError, match="zoom"):
        AdaptConfig.from_dict({"target": str(fundus_folder), "zoom": bad})
    with pytest.raises(VesselGraphError, match="select_by"):
        AdaptConfig.from_dict({"target": str(fundus_folder), "select_by": "best"})
    assert AdaptConfig.from_dict({"target_domain": "vessel2d-fundus", "shots": 1}).selection == "f1"
