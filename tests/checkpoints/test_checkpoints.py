import json
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph import checkpoints as ck
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.model.config import ModelConfig
from napari_vesselgraph.model.network import Relationformer

TINY = dict(ndim=2, patch_size=32, backbone_channels=(8, 16, 32), hidden=32, heads=2, ffn=64, query_grid=4)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Relationformer(ModelConfig(**TINY)).eval()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))


def _save(model, path, **meta):
    return ck.save_checkpoint(path, model, {"domain": "vessel2d-fluo", "seed": 3, **meta})


def test_round_trip_identical_outputs(model, tmp_path):
    p = _save(model, tmp_path / "m.safetensors", validation={"edge_f1": 0.5})
    assert p.exists() and p.with_suffix(".json").exists()
    sidecar = json.loads(p.with_suffix(".json").read_text())
    assert sidecar["domain"] == "vessel2d-fluo" and sidecar["seed"] == 3
    m2, meta = ck.load_checkpoint(p)
    for key in (
        "format_version",
        "model",
        "ndim",
        "channels",
        "patch_size",
        "input",
        "domain",
        "adaptation",
        "command",
        "seed",
        "validation",
        "package_version",
        "created",
    ):
        assert key in meta
    assert meta["validation"] == {"edge_f1": 0.5}
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a, b = model(x), m2(x)
    for k in ("logits", "pos", "radius", "tokens", "dense"):
        assert torch.equal(a[k], b[k])
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file
    assert ck.read_metadata(p)["ndim"] == 2


def test_pickle_refused(model, tmp_path):
    for name in ("m.pt", "m.pth", "m.ckpt"):
        p = tmp_path / name
        torch.save(model.state_dict(), p)
        with pytest.raises(VesselGraphError, match="pickle"):
            ck.load_checkpoint(p)
    # a pickle in disguise
    p = tmp_path / "disguised.safetensors"
    torch.save(model.state_dict(), p)
    with pytest.raises(VesselGraphError, match="pickle"):
        ck.load_checkpoint(p)


def test_not_safetensors_refused(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"hello world, definitely not a checkpoint")
    with pytest.raises(VesselGraphError, match="not a valid safetensors"):
        ck.load_checkpoint(p)
    p.write_bytes(b"abc")
    with pytest.raises(VesselGraphError, match="not a valid safetensors"):
        ck.load_checkpoint(p)


def test_truncated_refused(model, tmp_path):
    p = _save(model, tmp_path / "m.safetensors")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 1000])
    with pytest.raises(VesselGraphError, match="truncated"):
        ck.load_checkpoint(p)
    p.write_bytes(data[:20])
    with pytest.raises(VesselGraphError):
        ck.load_checkpoint(p)


def test_metadata_mismatch_refused(model, tmp_path):
    p = _save(model, tmp_path / "m.safetensors", ndim=3)
    with pytest.raises(VesselGraphError, match="ndim"):
        ck.load_checkpoint(p)
    p = _save(model, tmp_path / "m2.safetensors", patch_size=[64, 64])
    with pytest.raises(VesselGraphError, match="patch_size"):
        ck.load_checkpoint(p)
    # weights that do not fit the architecture in the metadata
    tensors = {k: v for k, v in model.state_dict().items()}
    meta = json.loads((tmp_path / "m.json").read_text())
    meta.update(ndim=2, model={**meta["model"], "ndim": 2, "hidden": 64, "heads": 2})
    ck.save_tensors(tmp_path / "m3.safetensors", tensors, meta)
    with pytest.raises(VesselGraphError, match="do not match"):
        ck.load_checkpoint(tmp_path / "m3.safetensors")
    meta["format_version"] = 999
    ck.save_tensors(tmp_path / "m4.safetensors", tensors, meta)
    with pytest.raises(VesselGraphError, match="newer"):
        ck.load_checkpoint(tmp_path / "m4.safetensors")


def test_safetensors_without_metadata_refused(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(3)}, str(p))
    with pytest.raises(VesselGraphError, match="metadata"):
        ck.load_checkpoint(p)


def test_header_length_lies(tmp_path):
    p = tmp_path / "lie.safetensors"
    p.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(VesselGraphError):
        ck.read_metadata(p)


def test_registry_user_folder(model, tmp_path):
    udir = ck.user_dir()
    assert str(udir).startswith(str(tmp_path / "home"))
    _save(model, udir / "mine.safetensors")
    names = [e["name"] for e in ck.list_checkpoints()]
    assert "mine" in names
    assert ck.resolve("mine") == udir / "mine.safetensors"
    assert ck.resolve("mine.safetensors") == udir / "mine.safetensors"
    with pytest.raises(VesselGraphError, match="no checkpoint"):
        ck.resolve("does-not-exist")
    for e in ck.list_bundled():
        assert e["source"] == "bundled" and "meta" in e


def test_bundled_checkpoints_load():
    for e in ck.list_bundled():
        if (e.get("meta") or {}).get("kind") == "segmentation":  # a U-Net: its own loader, same checks
            from napari_vesselgraph.model.segment import load_segmenter

            s = load_segmenter(e["name"])
            assert s.meta["domain"] and s.meta["seed"] is not None and s.meta["command"]
            out = s.net(torch.rand(1, 2, *s.cfg.patch))
            assert out.shape[2:] == tuple(s.cfg.patch) and np.isfinite(out.detach().numpy()).all()
            continue
        m, meta = ck.load_checkpoint(e["name"])
        assert meta["domain"] and meta["seed"] is not None and meta["command"]
        cfg = m.cfg
        out = m(torch.rand(1, cfg.in_channels, *cfg.patch_size))
        assert np.isfinite(out["logits"].detach().numpy()).all()


def test_make_predictor_from_checkpoint(model, tmp_path):
    from napari_vesselgraph.model.predictor import make_predictor

    p = _save(model, tmp_path / "m.safetensors")
    pred = make_predictor(p, device="cpu")
    assert pred.patch_size == (32, 32) and pred.meta["domain"] == "vessel2d-fluo"
    out = pred.predict_batch(np.zeros((1, 1, 32, 32), np.float32))
    assert len(out) == 1


def test_thresholds_travel_with_checkpoint(model, tmp_path):
    from napari_vesselgraph.model.predictor import make_predictor

    p = _save(model, tmp_path / "t.safetensors", thresholds={"node": 0.4, "edge": 0.3})
    pred = make_predictor(p, device="cpu")
    assert (pred.node_threshold, pred.edge_threshold) == (0.4, 0.3)
    g = pred.predict_patch_graph(np.zeros((1, 32, 32), np.float32))
    assert g.ndim == 2


def test_default_checkpoint_is_bundled():
    names = [e["name"] for e in ck.list_bundled()]
    if ck.DEFAULT_CHECKPOINT in names:
        assert ck.resolve(None).parent == ck.bundled_dir()
    else:
        with pytest.raises(VesselGraphError):
            ck.resolve(None)


def test_relation_line_model_round_trip(tmp_path):
    """A model whose relation head samples the image travels through a checkpoint and predicts edges the same."""
    from napari_vesselgraph.model.predictor import make_predictor

    torch.manual_seed(1)
    m = Relationformer(ModelConfig(**{**TINY, "relation_line": 4})).eval()
    with torch.no_grad():  # confident nodes and edges, so the predictor returns some of both
        m.class_head.bias.copy_(torch.tensor([-3.0, 3.0]))
        m.relation_head.layers[-1].bias.fill_(3.0)
    p = _save(m, tmp_path / "line.safetensors")
    m2, meta = ck.load_checkpoint(p)
    assert meta["model"]["relation_line"] == 4 and m2.line_proj is not None
    x = np.random.default_rng(0).random((1, 1, 32, 32)).astype(np.float32)
    a = make_predictor(p, device="cpu").predict_batch(x)[0]
    with torch.no_grad():
        o = m(torch.from_numpy(x))
        ref = torch.sigmoid(m.relation_logits(o["tokens"], o["rln"], torch.tensor([0]), torch.tensor([0]),
                                              torch.tensor([1]), o))
    assert len(a["edges"]) > 0
    k = [n for n, (i, j) in enumerate(a["edges"]) if (i, j) == (0, 1)]
    assert k and abs(a["edge_score"][k[0]] - float(ref)) < 1e-5


# ------------------------------------------------------------------ crafted metadata
def _crafted(model, tmp_path, name, **model_cfg):
    """A checkpoint holding ``model``'s (small) tensors whose metadata claims another architecture."""
    p = _save(model, tmp_path / "base.safetensors")
    meta = ck.read_metadata(p)
    meta["model"] = {**meta["model"], **model_cfg}
    return ck.save_tensors(tmp_path / name, dict(model.state_dict()), meta, sidecar=False)


@pytest.mark.parametrize(
    "cfg",
    [
        {"hidden": 1024, "heads": 4, "ffn": 65536},
        {"query_grid": [4000, 4000]},
        {"enc_layers": 100000},
        {"hidden": -4},
        {"heads": 0},
        {"hidden": 1e6},
        {"hidden": "32"},
    ],
    ids=["widths", "queries", "layers", "negative", "zero_heads", "float", "text"],
)
def test_crafted_architecture_refused_before_allocating(model, tmp_path, cfg, monkeypatch):
    p = _crafted(model, tmp_path, "evil.safetensors", **cfg)
    from napari_vesselgraph.model import network

    def no_model(*a, **k):
        raise AssertionError("the model must not be built from a bad config")

    monkeypatch.setattr(network.Relationformer, "__init__", no_model)
    with pytest.raises(VesselGraphError, match="invalid architecture config") as err:
        ck.load_checkpoint(p)
    assert "\n" not in str(err.value)


def test_shapes_checked_against_the_header_before_loading(model, tmp_path, monkeypatch):
    """Weights that do not fit the architecture are refused from the header alone: no tensor is read and no
    real model is allocated."""
    p = _crafted(model, tmp_path, "other.safetensors", hidden=64, heads=2)
    import safetensors.torch

    def no_read(*a, **k):
        raise AssertionError("tensors must not be read before the shapes are checked")

    monkeypatch.setattr(safetensors.torch, "load_file", no_read)
    with pytest.raises(VesselGraphError, match="do not match") as err:
        ck.load_checkpoint(p)
    assert "\n" not in str(err.value) and "shape mismatch" in str(err.value)


def test_crafted_translator_refused(model, tmp_path):
    p = _save(model, tmp_path / "base.safetensors")
    meta = ck.read_metadata(p)
    meta["adaptation"] = {"method": "translation"}
    for bad in (
        {"ndim": 2, "channels": 1, "features": 100000, "blocks": 3},
        {"ndim": 2, "channels": 1, "features": 16, "blocks": 10**6, "arch": "unet"},
        {"ndim": 3, "channels": 1, "features": 16, "blocks": 3},
        {"ndim": 2, "channels": "x", "features": 16, "blocks": 3},
    ):
        meta["translator"] = bad
        q = ck.save_tensors(tmp_path / "t.safetensors", dict(model.state_dict()), meta, sidecar=False)
        with pytest.raises(VesselGraphError, match="translator") as err:
            ck.load_checkpoint(q)
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------ weights are never lost to a failed write
def test_failed_checkpoint_write_rescues_the_weights(model, tmp_path):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "run" / "best.safetensors"  # its folder cannot be made
    with pytest.raises(VesselGraphError, match="saved to") as err:
        _save(model, target)
    msg = str(err.value)
    assert "\n" not in msg and str(target) in msg
    rescued = ck.rescue_dir() / msg.split("saved to ")[1].split(" instead")[0].split("/")[-1]
    assert rescued.is_file() and str(rescued) in msg
    again, meta = ck.load_checkpoint(rescued)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    assert meta["domain"] == "vessel2d-fluo"
