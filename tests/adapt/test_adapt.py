import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph import checkpoints as ck
from napari_vesselgraph.adapt import METHODS, adapt
from napari_vesselgraph.adapt.config import TRAINING_METHODS
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.inference import predict
from napari_vesselgraph.synth import read_dataset

from .conftest import base_config


class CancelAfter:
    """A cancel token that becomes set after ``n`` checks."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.n


@pytest.mark.parametrize("method", TRAINING_METHODS)
def test_each_method_writes_a_loadable_checkpoint(method, tiny_checkpoint, fundus_folder, home):
    calls = []
    path = adapt(
        base_config(tiny_checkpoint, fundus_folder, method=method),
        progress=lambda *a: calls.append(a),
        log=lambda s: None,
    )
    assert path.exists() and path.parent == ck.user_dir()  # no out: the user checkpoint folder
    assert method in path.name
    steps = [c for c in calls if "phase" not in c[2]]  # phase updates (step 0) come before the first step
    assert sorted({c[0] for c in steps}) == [1, 2] and {c[1] for c in calls} == {2}
    assert all(isinstance(c[2]["loss"], float) for c in steps)
    model, meta = ck.load_checkpoint(path)
    ad = meta["adaptation"]
    assert ad["method"] == method and ad["target"] == str(fundus_folder) and ad["source"] == "vessel2d-fluo"
    assert ad["steps"] == 2 and ad["train_layers"] == "all" and ad["seed"] == 0 and ad["temperature"] == 0.1
    assert len(ad["heldout_ids"]) == 1 and set(ad["heldout_ids"]).isdisjoint(ad["shot_ids"])
    assert meta["domain"] == "vessel2d-fluo" and meta["target_domain"] == "vessel2d-fundus"
    assert meta["name"] == path.stem and meta["command"].startswith("napari_vesselgraph.adapt.adapt(")
    assert meta["source_checkpoint"]["name"] == "tiny-fluo" and meta["source_validation"] == {"node_f1": 0.5}
    assert set(ad["before"]) >= {"node_f1", "edge_f1", "smd"} and set(ad["after"]) >= {"node_f1", "edge_f1", "smd"}
    if method == "translation":
        assert ad["shots"] is None and ad["shot_ids"] == [] and len(ad["unlabelled_ids"]) == 5
        assert meta["translator"]["ndim"] == 2 and hasattr(model, "translator")
        assert meta["thresholds"] == {"node": 0.5, "edge": 0.5}  # no labels used: the source's thresholds
    else:
        assert ad["shots"] == 3 and len(ad["shot_ids"]) == 3 and all(i.startswith("train_") for i in ad["shot_ids"])
        assert "held-out" in meta["thresholds"]["source"]
        assert any("val" in c[2] for c in calls)
    # the adapted checkpoint runs through the normal predict path (RGB target image into a grey model)
    rec = read_dataset(fundus_folder, split="train")[0]
    g = predict(rec.image, checkpoint=str(path), device="cpu")
    assert g.ndim == 2 and g.metadata["checkpoint"] == path.stem
    entry = next(e for e in ck.list_checkpoints() if e["path"] == str(path))
    assert entry["adaptation"] == method
    # bundled checkpoints say what they are: adapted ones carry their method, and their description says so
    for e in ck.list_bundled():
        ad = (e.get("meta") or {}).get("adaptation") or {}
        assert e["adaptation"] == (ad.get("method") if ad.get("method") not in (None, "none") else "none")


@pytest.mark.parametrize("method", TRAINING_METHODS)
def test_each_method_adapts_a_model_whose_relation_head_samples_the_image(method, tiny_line_checkpoint, fundus_folder,
                                                                         tmp_path):  # fmt: skip
    path = adapt(base_config(tiny_line_checkpoint, fundus_folder, method=method, out=str(tmp_path / "a.safetensors")),
                 log=lambda s: None)  # fmt: skip
    model, meta = ck.load_checkpoint(path)
    assert meta["model"]["relation_line"] == 4 and meta["adaptation"]["method"] == method
    base, _ = ck.load_checkpoint(tiny_line_checkpoint)
    if method != "translation":  # the relation head's line map trains with the rest
        assert not torch.equal(model.line_proj.weight, base.line_proj.weight)
    rec = read_dataset(fundus_folder, split="train")[0]
    assert predict(rec.image, checkpoint=str(path), device="cpu").ndim == 2


def test_explicit_out_and_synthetic_target(tiny_checkpoint, tmp_path):
    out = tmp_path / "sub" / "adapted"
    cfg = {
        "checkpoint": str(tiny_checkpoint),
        "target_domain": "vessel2d-fundus",
        "shots": 1,
        "steps": 1,
        "batch_size": 1,
        "val_fraction": 0,
        "method": "finetune",
        "out": str(out),
    }
    path = adapt(cfg, log=lambda s: None)
    assert path == tmp_path / "sub" / "adapted.safetensors"
    meta = ck.read_metadata(path)
    ad = meta["adaptation"]
    assert isinstance(ad["shot_ids"][0], int) and ad["heldout_ids"] == [] and ad["after"] is None
    assert ad["target"] == "vessel2d-fundus" and meta["thresholds"] == {"node": 0.5, "edge": 0.5}


def test_cancel_mid_run_returns_a_loadable_checkpoint(tiny_checkpoint, fundus_folder, tmp_path):
    out = tmp_path / "c.safetensors"
    cancel = CancelAfter(3)  # steps 1..3 run, the 4th check stops
    path = adapt(base_config(tiny_checkpoint, fundus_folder, steps=50, out=str(out)), cancel=cancel, log=lambda s: None)
    assert path == out and cancel.calls == 4
    _, meta = ck.load_checkpoint(path)
    assert meta["adaptation"]["after"]["step"] <= 3 and meta["adaptation"]["steps_done"] <= 3
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left behind


@pytest.mark.parametrize("method", ["contrastive", "translation"])
def test_cancel_before_any_checkpoint_writes_the_current_state(method, tiny_checkpoint, fundus_folder, tmp_path):
    out = tmp_path / f"{method}.safetensors"
    path = adapt(
        base_config(tiny_checkpoint, fundus_folder, method=method, steps=50, val_every=40, out=str(out)),
        cancel=CancelAfter(1),
        log=lambda s: None,
    )
    _, meta = ck.load_checkpoint(path)
    if method == "translation":
        assert meta["adaptation"]["cancelled"] is True and meta["adaptation"]["steps_done"] == 1
    else:  # the source, measured on the held-out samples first, is the last good checkpoint
        assert meta["adaptation"]["source_weights"] is True and meta["adaptation"]["steps_done"] == 0
        assert meta["adaptation"]["after"]["step"] == 0


def test_source_is_kept_when_no_step_beats_it(tiny_checkpoint, fundus_folder, tmp_path):
    """The source model (with thresholds chosen on the held-out samples) is the first candidate: an adaptation
    that only gets worse returns it, and says so."""
    src_model, _ = ck.load_checkpoint(tiny_checkpoint)
    lines = []
    path = adapt(
        base_config(tiny_checkpoint, fundus_folder, steps=2, lr=5.0, val_every=1, out=str(tmp_path / "w.safetensors")),
        log=lines.append,
    )
    model, meta = ck.load_checkpoint(path)
    ad = meta["adaptation"]
    scores = [h["score"] for h in ad["history"] if h["kind"] == "val"]
    assert ad["before"]["score"] is not None and len(scores) == 2
    if max(scores) <= ad["before"]["score"]:
        assert ad["after"]["step"] == 0 and ad["source_weights"] is True
        a, b = src_model.state_dict(), model.state_dict()
        assert all((a[k] == b[k]).all() for k in a)
        assert any("keeps the source weights" in s for s in lines)
    else:  # a step beat the source: that step is kept
        assert ad["after"]["step"] in (1, 2) and ad["after"]["score"] == max(scores)


def test_translation_applies_the_generator_at_inference(tiny_checkpoint, fundus_folder, tmp_path):
    from napari_vesselgraph.model.predictor import make_predictor

    logs: list[str] = []
    path = adapt(
        base_config(
            tiny_checkpoint, fundus_folder, method="translation", steps=6, lr=5e-2, out=str(tmp_path / "t.safetensors")
        ),
        log=logs.append,
    )
    # the held-out samples are measured before and after; a translation that scores lower says so in the log
    ad = ck.read_metadata(path)["adaptation"]
    b, a = ad["before"]["score"], ad["after"]["score"]
    assert any("WARNING the translated model scores" in s for s in logs) == (a < b)
    base, _ = ck.load_checkpoint(tiny_checkpoint)
    adapted, _ = ck.load_checkpoint(path)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        translated = adapted.translator(x)
        assert (translated - x).abs().max() > 1e-3  # trained: not the identity
        # the model runs the translator first: same as the base model on translated input
        assert torch.allclose(adapted(x)["logits"], base(translated)["logits"], atol=1e-5)
        assert not torch.allclose(adapted(x)["logits"], base(x)["logits"], atol=1e-4)
        # an identity translator gives the base model back
        from napari_vesselgraph.adapt.translate import Translator, attach_translator

        attach_translator(adapted, Translator(2, 1, features=4, blocks=1, residual=True))
        assert torch.allclose(adapted(x)["logits"], base(x.clamp(1e-3, 1 - 1e-3))["logits"], atol=1e-5)
    pred = make_predictor(path, device="cpu")
    assert pred.model._modules.get("translator") is not None
    rec = read_dataset(fundus_folder, split="train")[0]
    g1 = predict(rec.image, predictor=pred, keep_raw=True)
    g0 = predict(rec.image, checkpoint=str(tiny_checkpoint), device="cpu", keep_raw=True)
    assert g1.n_nodes != g0.n_nodes or not np.allclose(g1.nodes, g0.nodes)


def test_translator_architecture_can_be_chosen(tiny_checkpoint, fundus_folder, tmp_path):
    path = adapt(
        base_config(tiny_checkpoint, fundus_folder, method="translation", steps=2, out=str(tmp_path / "r.safetensors"),
                    translator={"residual": True, "features": 8}),
        log=lambda s: None,
    )  # fmt: skip
    meta = ck.read_metadata(path)
    assert meta["translator"]["residual"] is True and meta["translator"]["features"] == 8
    adapted, _ = ck.load_checkpoint(path)
    assert adapted.translator.residual
    with pytest.raises(VesselGraphError, match="unknown translator keys"):
        adapt(base_config(tiny_checkpoint, fundus_folder, method="translation", translator={"depth": 3}))


def test_translation_starts_inverted_when_the_polarities_differ(tiny_checkpoint, fundus_folder, tmp_path):
    """The tiny source is a vessel2d-fluo model (bright vessels); synthetic fundus images have dark vessels: the
    translator starts from the inverted image (no labels used). A source of either polarity starts from the
    identity, and the setting can be forced."""
    from types import SimpleNamespace

    from napari_vesselgraph.adapt.translate import Translator, polarity_differs
    from napari_vesselgraph.model.translator import build_translator

    logs: list[str] = []
    path = adapt(base_config(tiny_checkpoint, fundus_folder, method="translation", steps=1,
                             out=str(tmp_path / "i.safetensors")), log=logs.append)  # fmt: skip
    assert ck.read_metadata(path)["translator"]["invert"] is True
    assert any("starts from the inverted image" in s for s in logs)
    rec = read_dataset(fundus_folder, split="train")
    images = [SimpleNamespace(image=r.image) for r in rec]
    assert polarity_differs({"domain": "vessel2d-random"}, images, 2, log=lambda s: None) is False  # polarity any
    assert polarity_differs({"domain": "vessel2d-fundus"}, images, 2, log=lambda s: None) is False  # dark, as they
    forced = adapt(base_config(tiny_checkpoint, fundus_folder, method="translation", steps=1,
                               translator={"invert": False}, out=str(tmp_path / "n.safetensors")),
                   log=lambda s: None)  # fmt: skip
    assert ck.read_metadata(forced)["translator"]["invert"] is False
    x = torch.rand(1, 1, 16, 16)
    t = Translator(2, 1, features=4, blocks=1, residual=True, invert=True)
    assert torch.allclose(t(x), 1 - x.clamp(1e-3, 1 - 1e-3), atol=1e-5)  # the inversion at the start
    assert build_translator({**t.config})(x).shape == x.shape and build_translator({**t.config}).invert
    assert not Translator(2, 1, features=4, blocks=1, residual=False, invert=True).invert  # residual only


def test_translator_missing_config_is_refused(tiny_checkpoint, tmp_path):
    tensors, meta = ck.load_tensors(tiny_checkpoint)
    meta["adaptation"] = {"method": "translation"}
    bad = ck.save_tensors(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(VesselGraphError, match="without its translator config"):
        ck.load_checkpoint(bad)


def test_translator_3d():
    from napari_vesselgraph.adapt.translate import PatchDiscriminator, Translator

    x = torch.rand(1, 1, 12, 16, 18)
    y = Translator(3, 1, features=4, blocks=1, residual=True)(x)
    assert y.shape == x.shape and torch.allclose(y, x.clamp(1e-3, 1 - 1e-3), atol=1e-6)
    y = Translator(3, 1, features=4, blocks=1)(x).detach()
    assert y.shape == x.shape and 0 < float(y.min()) and float(y.max()) < 1
    assert PatchDiscriminator(3, 1, 4)(x).ndim == 5


def test_bad_inputs(tiny_checkpoint, fundus_folder):
    with pytest.raises(VesselGraphError, match="no checkpoint"):
        adapt(base_config("nope-not-a-checkpoint", fundus_folder), log=lambda s: None)
    with pytest.raises(VesselGraphError, match="give shots"):
        adapt({"checkpoint": str(tiny_checkpoint), "target_domain": "vessel2d-fundus"}, log=lambda s: None)
    with pytest.raises(VesselGraphError, match="2D"):
        adapt(
            {"checkpoint": str(tiny_checkpoint), "target_domain": "vessel3d-twophoton", "shots": 1}, log=lambda s: None
        )


def test_3d_contrastive_and_translation(tmp_path):
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.model.config import ModelConfig
    from napari_vesselgraph.model.network import Relationformer
    from napari_vesselgraph.model.preprocess import input_meta
    from napari_vesselgraph.synth import write_dataset

    torch.manual_seed(0)
    tiny3d = {
        "ndim": 3,
        "in_channels": 1,
        "patch_size": [16, 16, 16],
        "backbone_channels": [4, 8, 16],
        "stride": 4,
        "hidden": 16,
        "heads": 2,
        "ffn": 32,
        "query_grid": [2, 2, 2],
        "enc_layers": 1,
        "dec_layers": 1,
    }
    meta = {
        "domain": "vessel3d-lightsheet",
        "input": input_meta(3, 1),
        "training": {"config": {"domain": "vessel3d-lightsheet", "image_shape": [24, 24, 24]}},
    }
    src = save_checkpoint(tmp_path / "t3.safetensors", Relationformer(ModelConfig.from_dict(tiny3d)), meta)
    tgt = write_dataset(tmp_path / "twophoton", "vessel3d-twophoton", 3, shape=(24, 24, 24))
    volume = read_dataset(tgt)[0].image
    for method in ("contrastive", "translation"):
        cfg = {
            "method": method,
            "checkpoint": str(src),
            "target": str(tgt),
            "shots": 2,
            "steps": 2,
            "batch_size": 1,
            "val_every": 1,
            "out": str(tmp_path / f"{method}.safetensors"),
        }
        path = adapt(cfg, log=lambda s: None)
        model, meta = ck.load_checkpoint(path)
        assert (
            meta["adaptation"]["method"] == method
            and meta["ndim"] == 3
            and meta["target_domain"] == "vessel3d-twophoton"
        )
        assert (meta.get("translator") or {}).get("ndim", 3) == 3
        assert (model._modules.get("translator") is not None) == (method == "translation")
        assert predict(volume, checkpoint=str(path), device="cpu").ndim == 3


@pytest.mark.parametrize("method", ["contrastive", "translation"])
def test_progress_says_what_happens_before_the_first_step(method, tiny_checkpoint, fundus_folder, tmp_path):
    """The first progress updates come before any step (reading, preparing, measuring the source), each at
    step 0 with a phase text, so a widget shows activity within seconds, not after the first step."""
    calls = []
    adapt(
        base_config(tiny_checkpoint, fundus_folder, method=method, steps=2, out=str(tmp_path / "p.safetensors")),
        progress=lambda step, total, info: calls.append((step, total, dict(info))),
        log=lambda s: None,
    )
    phases = [c for c in calls if "phase" in c[2]]
    assert [c[0] for c in phases] == [0] * len(phases) and len(phases) >= 3
    assert calls[: len(phases)] == phases  # they come first
    assert "reading" in phases[0][2]["phase"] and "measuring the source" in phases[-1][2]["phase"]
    assert any(c[0] == 2 for c in calls)


def test_calibrate_keeps_the_weights_and_chooses_thresholds_on_the_shots(tiny_checkpoint, fundus_folder, tmp_path):
    assert "calibrate" in METHODS and "calibrate" not in TRAINING_METHODS
    calls = []
    out = tmp_path / "cal.safetensors"
    path = adapt(base_config(tiny_checkpoint, fundus_folder, method="calibrate", out=str(out)),
                 progress=lambda *a: calls.append(a), log=lambda s: None)  # fmt: skip
    assert path == out
    model, meta = ck.load_checkpoint(path)
    base, base_meta = ck.load_checkpoint(tiny_checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
    ad = meta["adaptation"]
    assert ad["method"] == "calibrate" and ad["steps_done"] == 0 and ad["source"] == "vessel2d-fluo"
    assert len(ad["shot_ids"]) == 3 and len(ad["heldout_ids"]) == 1
    chosen = ad["chosen_on_shots"]
    # what was chosen on the shots is what the checkpoint now predicts with
    assert meta["thresholds"]["node"] == chosen["node_threshold"] and meta["thresholds"]["edge"] == chosen["edge_threshold"]
    assert "labelled target" in meta["thresholds"]["source"]
    assert meta["postprocess"]["min_support"] == chosen["min_support"]
    assert ad["before"]["score"] is not None and ad["after"]["score"] is not None
    assert calls[-1][0] == calls[-1][1] == 3 and "val" in calls[-1][2]
    rec = read_dataset(fundus_folder, split="train")[0]
    g = predict(rec.image, checkpoint=str(path), device="cpu")
    assert g.metadata["postprocess"]["min_support"] == chosen["min_support"]
    assert g.metadata["node_threshold"] == chosen["node_threshold"]


def test_calibrate_leave_one_out_scores_each_shot_as_a_checkpoint_with_those_settings_would(tmp_path):
    """Leave one out in the Relationformer calibrate: each shot scored with what was chosen on the other shots
    (the same score a checkpoint carrying those settings gets on it) and with the source's own settings."""
    from napari_vesselgraph.adapt.loop import evaluate_heldout, record_selection
    from napari_vesselgraph.synth import write_dataset

    folder = write_dataset(tmp_path / "fluo", "vessel2d-fluo", 5, shape=(128, 128))
    out = adapt({"checkpoint": "vessel2d-fluo", "target": str(folder), "method": "calibrate", "shots": 3,
                 "out": str(tmp_path / "cal.safetensors")}, log=lambda s: None)  # fmt: skip
    base, base_meta = ck.load_checkpoint("vessel2d-fluo")
    ad = ck.load_checkpoint(out)[1]["adaptation"]
    loo = ad["leave_one_out"]
    assert [r["id"] for r in loo] == ad["shot_ids"] and len(loo) == 3
    assert all(r["own_score"] > 0.2 for r in loo), loo  # the bundled model finds its own domain's vessels
    shots = {r.id: r for r in read_dataset(folder, split="train")}
    for r in loo:
        settings = {"node_threshold": r["node_threshold"], "edge_threshold": r["edge_threshold"],
                    "min_support": r["min_support"], "min_brightness": r["min_brightness"]}  # fmt: skip
        with_loo = evaluate_heldout(base, record_selection(dict(base_meta), settings, "test"), [shots[r["id"]]],
                                    "cpu", sweep=False, select_by="graph")  # fmt: skip
        own = evaluate_heldout(base, base_meta, [shots[r["id"]]], "cpu", sweep=False, select_by="graph")
        assert r["score"] == pytest.approx(with_loo["score"], abs=1e-4), (r, with_loo["score"])
        assert r["own_score"] == pytest.approx(own["score"], abs=1e-4)
        assert r["length_quality"] == pytest.approx(with_loo["length_quality"], abs=1e-4)


def test_translation_warns_when_it_scores_below_the_source():
    from napari_vesselgraph.adapt.translate import warn_if_worse

    logs = []
    assert warn_if_worse({"score": 0.39}, {"score": 0.29}, logs.append)
    assert "0.290" in logs[0] and "0.390" in logs[0] and "source" in logs[0]
    logs.clear()
    assert not warn_if_worse({"score": 0.3}, {"score": 0.3}, logs.append)
    assert not warn_if_worse({"score": 0.3}, {"score": 0.4}, logs.append)
    assert not warn_if_worse(None, {"score": 0.4}, logs.append)  # nothing held out: nothing to compare
    assert not warn_if_worse({"score": 0.3}, None, logs.append)  # cancelled before the final measurement
    assert logs == []
