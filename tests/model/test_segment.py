"""Segmentation checkpoints (model.segment, model.segtrain) and their route through predict() and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph.errors import Cancelled, VesselGraphError  # noqa: E402
from napari_vesselgraph.graph import VesselGraph  # noqa: E402
from napari_vesselgraph.model.segment import (  # noqa: E402
    SegConfig,
    build_unet,
    load_segmenter,
    mask_graph,
    probability,
    save_segmenter,
    seg_input,
    tube_target,
)
from napari_vesselgraph.model.segtrain import SegTrainConfig, train_segmenter, val_dice  # noqa: E402


def _line_graph(ndim=2):
    if ndim == 2:
        nodes = np.array([[32.0, 8.0], [32.0, 56.0]])
    else:
        nodes = np.array([[8.0, 32.0, 8.0], [8.0, 32.0, 56.0]])
    return VesselGraph(nodes=nodes, edges=np.array([[0, 1]]))


def _line_image(ndim=2, shape=None):
    shape = shape or ((64, 64) if ndim == 2 else (16, 64, 64))
    img = np.random.default_rng(0).normal(10, 1, shape).astype(np.float32)
    img[..., 31:34, 8:57] += 40
    return img


@pytest.fixture
def seg2d(tmp_path):
    torch.manual_seed(0)
    cfg = SegConfig(ndim=2, patch=(32, 32), channels=(4, 8, 8), min_size=4)
    net = build_unet(cfg)
    path = save_segmenter(tmp_path / "seg2d", net, cfg, {"seed": 0, "domain": "test"})
    return path, net, cfg


def test_config_checks():
    with pytest.raises(VesselGraphError, match="ndim"):
        SegConfig(ndim=4)
    with pytest.raises(VesselGraphError, match="patch"):
        SegConfig(ndim=3, patch=(30, 64, 64))
    with pytest.raises(VesselGraphError, match="threshold"):
        SegConfig(threshold=1.0)
    with pytest.raises(VesselGraphError, match="unknown segmentation setting"):
        SegConfig.from_dict({"ndim": 3, "depth": 9})
    assert SegConfig.from_dict(SegConfig(ndim=2, patch=(64, 64)).to_dict()) == SegConfig(ndim=2, patch=(64, 64))
    with pytest.raises(VesselGraphError, match="window"):
        SegConfig(window=(30, 96, 96))
    with pytest.raises(VesselGraphError, match="overlap"):
        SegConfig(overlap=1.0)
    # prediction windows: 1.5 x the training patch (multiple of 8) unless set; inference settings are not architecture
    assert SegConfig().infer_window() == (32, 96, 96) and SegConfig(window=(24, 64, 64)).infer_window() == (24, 64, 64)
    assert SegConfig(threshold=0.3, window=(16, 32, 32), overlap=0.5).architecture() == SegConfig().architecture()
    assert SegConfig(channels=(4, 8, 16)).architecture() != SegConfig().architecture()


def test_input_and_target():
    img = _line_image()
    x = seg_input(img, SegConfig(ndim=2, patch=(32, 32)))
    assert x.shape == (2, 64, 64) and x.dtype == np.float32
    assert x[0, 32, 30] > 0.9 and x[0, 10, 10] < 0.2  # the line is stretched to the top, the background near 0
    rgb = np.stack([img * 0, img, img * 0], -1)
    np.testing.assert_allclose(seg_input(rgb, SegConfig(ndim=2, patch=(32, 32))), x)  # the green channel
    with pytest.raises(VesselGraphError, match="3D grey image"):
        seg_input(img, SegConfig())
    t = tube_target(_line_graph(), (64, 64), SegConfig(ndim=2, patch=(32, 32), tube_radius=1.5))
    assert t[32, 30] == 1 and t[28, 30] == 0 and t[32, 2] == 0
    assert 2 <= t[:, 30].sum() <= 4


def test_mask_graph_follows_the_mask():
    prob = np.zeros((64, 64), np.float32)
    prob[31:34, 8:57] = 0.9
    prob[5, 5] = 0.9  # a speck: dropped by min_size
    g = mask_graph(prob, SegConfig(ndim=2, patch=(32, 32), min_size=4))
    assert g.n_nodes >= 2 and g.n_edges >= 1
    assert np.all(np.abs(g.nodes[:, 0] - 32) <= 1.5)
    assert g.nodes[:, 1].min() <= 12 and g.nodes[:, 1].max() >= 52
    assert mask_graph(prob, SegConfig(ndim=2, patch=(32, 32)), threshold=0.95).n_nodes == 0


def test_save_load_round_trip_and_refusals(seg2d, tmp_path):
    path, net, cfg = seg2d
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["kind"] == "segmentation" and side["segmentation"]["patch"] == [32, 32] and side["seed"] == 0
    s = load_segmenter(path)
    img = _line_image()
    np.testing.assert_allclose(s.probability(img), probability(net, img, cfg), atol=1e-6)
    # a Relationformer loader refuses it with a line that says what it is
    from napari_vesselgraph.checkpoints import load_checkpoint

    with pytest.raises(VesselGraphError, match="segmentation checkpoint"):
        load_checkpoint(path)
    # a header that does not match the architecture its metadata describes is refused before reading tensors
    from napari_vesselgraph.checkpoints.store import read_metadata, save_tensors

    meta = read_metadata(path)
    meta["segmentation"]["channels"] = [4, 8, 16]
    bad = save_tensors(tmp_path / "bad.safetensors", dict(build_unet(cfg).state_dict()), meta)
    with pytest.raises(VesselGraphError, match="e2|d1|u1"):
        load_segmenter(bad)
    with pytest.raises(VesselGraphError, match="not a segmentation checkpoint"):
        load_segmenter("vessel2d-random")


def test_probability_window_cover_and_cancel(seg2d):
    path, net, cfg = seg2d
    img = _line_image(shape=(70, 45))  # not a multiple of the patch, smaller than two patches in x
    calls = []
    p = probability(net, img, cfg, progress=lambda d, t, i: calls.append((d, t)))
    assert p.shape == (70, 45) and np.isfinite(p).all() and (0 <= p).all() and (p <= 1).all()
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1]
    # windows of about 48 (1.5 x 32) overlapping by 1/8: 2 x 1 windows cover 70 x 45 (45 rounds up to a 48 window),
    # fitted to 40 x 48; the graph records the size used
    assert calls[-1][1] == 2
    assert load_segmenter(path).graph(img).metadata["window"] == [40, 48]
    calls.clear()
    p32 = probability(net, img, cfg, window=(32, 32), overlap=0.25, progress=lambda d, t, i: calls.append((d, t)))
    assert calls[-1][1] == 3 * 2 and p32.shape == p.shape  # fitted: 3 windows of 32 in y, 2 of 28 in x
    with pytest.raises(VesselGraphError, match="window"):
        probability(net, img, cfg, window=(30, 30))

    class Stop:
        def is_set(self):
            return True

    with pytest.raises(Cancelled):
        probability(net, img, cfg, cancel=Stop())


def test_fitted_windows_cover_each_axis_with_fewer_voxels():
    from napari_vesselgraph.model.segment import WINDOW_STRETCH, fitted_windows

    # a 192^3 volume: two windows of 104 per side instead of three of 96 (the third adding 12 voxels)
    size, starts = fitted_windows((192, 192, 192), (32, 96, 96), 0.125)
    assert size == (32, 104, 104) and [len(s) for s in starts] == [7, 2, 2]
    rng = np.random.default_rng(0)
    for _ in range(300):
        w = int(rng.choice([8, 16, 32, 64, 96]))
        s = int(rng.integers(1, 700))
        ov = float(rng.choice([0.0, 0.125, 0.25, 0.5, 0.95]))
        (size,), (org,) = fitted_windows((s,), (w,), ov)
        cap = -(-s // 4) * 4
        assert size % 4 == 0 and size <= cap and size <= w * (1 + WINDOW_STRETCH)
        assert org[0] == 0 and org[-1] + size >= s and org[-1] + size <= max(s, size)  # covered, inside the axis
        assert (np.diff(org) <= size - min(round(w * ov), w - 4) + 1).all()  # neighbours overlap as asked (or more)
        # no more pixels than fixed windows of w (min(w, cap)) with the last one flush with the end, give or take
        # the stretch
        p = min(w, cap)
        step = max(1, round(p * (1 - ov)))
        fixed = len(set(range(0, max(1, s - p + 1), step)) | {max(0, s - p)})
        assert len(org) * size <= fixed * p * (1 + WINDOW_STRETCH)


def test_predict_routes_segmentation_checkpoints(seg2d):
    from napari_vesselgraph.inference import predict

    path, net, cfg = seg2d
    img = _line_image()
    g = predict(img, checkpoint=str(path), node_threshold=0.01, scale=(2.0, 2.0))
    assert g.metadata["kind"] == "segmentation" and g.metadata["checkpoint"] == "seg2d"
    assert g.metadata["threshold"] == 0.01 and tuple(g.scale) == (2.0, 2.0) and g.metadata["device"] == "cpu"
    with pytest.raises(VesselGraphError, match="device|cuda|CUDA"):  # the device asked for is used, not ignored
        predict(img, checkpoint=str(path), device="cuda:7")
    assert g.n_nodes > 0  # threshold 0.01 keeps most of an untrained net's output
    r = predict(img, checkpoint=str(path), node_threshold=0.01, region=((0, 32), (32, 64)))
    assert r.n_nodes > 0 and r.nodes[:, 1].min() >= 32 - 1e-6 and r.nodes[:, 0].max() < 32 + 1e-6
    with pytest.raises(VesselGraphError, match="2D segmentation model"):
        predict(np.zeros((16, 32, 32), np.float32), checkpoint=str(path))
    with pytest.raises(VesselGraphError, match="unknown option"):
        predict(img, checkpoint=str(path), merge_radius=3)
    import importlib

    predict_mod = importlib.import_module("napari_vesselgraph.inference.predict")  # the module, not the function

    monkey = pytest.MonkeyPatch()
    monkey.setattr(predict_mod, "SEGMENTATION_MAX_VOXELS", 1000)
    try:
        with pytest.raises(VesselGraphError, match="predict a region"):
            predict(img, checkpoint=str(path))
        assert predict(img, checkpoint=str(path), region=(slice(0, 30), slice(0, 30))).metadata["kind"] == "segmentation"
    finally:
        monkey.undo()
    with pytest.raises(VesselGraphError, match="one machine"):
        predict(img, checkpoint=str(path), dask_workers=1)
    # a loaded segmenter is taken as the predictor (kept open for the next call)
    from napari_vesselgraph.model.predictor import make_predictor

    s = make_predictor(str(path), device="cpu")
    assert predict(img, predictor=s, node_threshold=0.01).n_nodes == g.n_nodes
    assert s.net is not None


def _tiny_train_cfg(out, **kw):
    seg = SegConfig(ndim=2, patch=(32, 32), channels=(4, 8, 8), min_size=4)
    base = dict(out=str(out), domain="vessel2d-fluo", synthetic_p=1.0, synthetic_shape=(96, 96), pool=2,
                steps=6, val_every=3, val_patches=2, seg=seg)  # fmt: skip
    base.update(kw)
    return SegTrainConfig(**base)


def test_train_saves_checkpoints_and_resumes(tmp_path):
    logs = []
    cfg = _tiny_train_cfg(tmp_path / "run", steps=3)
    best = train_segmenter(cfg, log=logs.append)
    assert best.is_file() and (tmp_path / "run" / "last.safetensors").is_file()
    s = load_segmenter(best)
    assert s.meta["validation"]["step"] == 3 and s.meta["domain"] == "vessel2d-fluo"
    from napari_vesselgraph.checkpoints.store import load_tensors

    t3, info3 = load_tensors(tmp_path / "run" / "state.safetensors")
    assert info3["step"] == 3
    cfg6 = _tiny_train_cfg(tmp_path / "run", steps=6)
    train_segmenter(cfg6, log=logs.append)
    assert any("resumed" in line and "step 3" in line for line in logs)
    t6, info6 = load_tensors(tmp_path / "run" / "state.safetensors")
    assert info6["step"] == 6 and [h[0] for h in info6["history"]] == [3, 6]
    assert not torch.equal(t3["net.out.weight"], t6["net.out.weight"])  # it went on training
    # another architecture in the same folder is refused, not silently mixed
    other = _tiny_train_cfg(tmp_path / "run", seg=SegConfig(ndim=2, patch=(32, 32), channels=(4, 8, 16)))
    with pytest.raises(VesselGraphError, match="another architecture"):
        train_segmenter(other, log=logs.append)


def test_cancel_keeps_the_state(tmp_path):
    class After:
        def __init__(self, n):
            self.n = n

        def is_set(self):
            self.n -= 1
            return self.n < 0

    cfg = _tiny_train_cfg(tmp_path / "run", steps=50)
    with pytest.raises(Cancelled, match="resume"):
        train_segmenter(cfg, cancel=After(2), log=lambda s: None)
    from napari_vesselgraph.checkpoints.store import load_tensors

    _, info = load_tensors(tmp_path / "run" / "state.safetensors")
    assert info["step"] == 2 and (tmp_path / "run" / "best.safetensors").is_file()


def test_training_learns_a_simple_domain(tmp_path):
    """A few dozen steps on one 2D synthetic domain raise the validation Dice well above the untrained net's."""
    cfg = _tiny_train_cfg(tmp_path / "run", steps=60, val_every=60, val_patches=6, pool=4,
                          seg=SegConfig(ndim=2, patch=(64, 64), channels=(8, 16, 16), min_size=4))  # fmt: skip
    from napari_vesselgraph.model.data import make_synthetic
    from napari_vesselgraph.model.segtrain import _prepare, _val_patches

    torch.manual_seed(0)
    val = _val_patches(_prepare([make_synthetic("vessel2d-fluo", 9_000_000 + k, (96, 96)) for k in range(4)],
                                cfg.seg), cfg)  # fmt: skip
    before = val_dice(build_unet(cfg.seg), val, cfg.seg)
    best = train_segmenter(cfg, log=lambda s: None)
    after = load_segmenter(best).meta["validation"]["dice"]
    assert after > before + 0.2 and after > 0.4, (before, after)


def test_cli_train_seg_and_checkpoints(tmp_path, monkeypatch, capsys, seg2d):
    from napari_vesselgraph.cli import main

    assert main(["train-seg", "-o", str(tmp_path / "r"), "--data", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a dataset folder" in err[0]
    assert not (tmp_path / "r").exists()  # nothing written for a refused command
    (tmp_path / "file").write_text("x")
    assert main(["train-seg", "-o", str(tmp_path / "file" / "r"), "--steps", "1", "--synthetic-p", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create the output folder" in err[0]
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    path = seg2d[0]
    (tmp_path / "home" / "checkpoints" / "mine.safetensors").write_bytes(path.read_bytes())
    assert main(["checkpoints"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("mine")][0]
    assert "kind=segmentation" in line and "2D" in line


def test_fine_tune_starts_from_the_checkpoint(tmp_path, seg2d):
    """``init``: the run takes the checkpoint's architecture and weights, and records where it came from."""
    import hashlib

    from napari_vesselgraph.checkpoints.store import load_tensors

    path, net, cfg = seg2d
    # its own config asks for another architecture: the checkpoint's wins; lr 0 keeps the weights as they were
    run = _tiny_train_cfg(tmp_path / "ft", steps=2, val_every=2, lr=0.0, weight_decay=0.0, init=str(path),
                          seg=SegConfig(ndim=2, patch=(32, 32), channels=(8, 16, 32), threshold=0.3))  # fmt: skip
    logs = []
    best = train_segmenter(run, log=logs.append)
    s = load_segmenter(best)
    assert s.cfg.architecture() == cfg.architecture() and s.cfg.threshold == 0.3
    src = net.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in s.net.state_dict().items())
    ad = s.meta["adaptation"]
    assert ad["method"] == "finetune" and ad["source"] == f"{path.parent.name}/{Path(path).stem}" and ad["seed"] == 0
    assert s.meta["init"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert any("fine-tuning" in line for line in logs)
    # with a learning rate it moves away from the source
    moved = train_segmenter(_tiny_train_cfg(tmp_path / "ft2", steps=3, init=str(path)), log=lambda s: None)
    t, _ = load_tensors(moved)
    assert not torch.equal(t["out.weight"], src["out.weight"])
    with pytest.raises(VesselGraphError):
        train_segmenter(_tiny_train_cfg(tmp_path / "ft3", init=str(tmp_path / "missing.safetensors")))
    assert not (tmp_path / "ft3").exists()  # a refused run writes nothing
    # the command line takes the checkpoint's dimensionality (its default --ndim is 3; this one is 2D)
    from napari_vesselgraph.cli import main

    assert main(["train-seg", "-o", str(tmp_path / "ft4"), "--init", str(path), "--steps", "1",
                 "--synthetic-p", "1", "--domain", "vessel2d-fluo"]) == 0  # fmt: skip
    assert load_segmenter(tmp_path / "ft4" / "best.safetensors").cfg.ndim == 2


def _two_lines(bright_rows=(20, 23), dim_rows=(44, 47), dim=0.3):
    img = np.random.default_rng(1).normal(0.02, 0.01, (64, 64)).astype(np.float32)
    img[bright_rows[0] : bright_rows[1], 6:58] = 1.0
    img[dim_rows[0] : dim_rows[1], 6:58] = dim
    return img


def test_min_brightness_drops_the_dim_structure(seg2d, monkeypatch):
    """A segmenter that paints two fibres, one bright and one at 30 % of its brightness: ``min_brightness``
    keeps only the bright one (option, checkpoint setting, and off by default)."""
    from napari_vesselgraph.inference import predict

    path, net, cfg = seg2d
    s = load_segmenter(path)
    img = _two_lines()
    painted = np.zeros(img.shape, np.float32)
    painted[20:23, 6:58] = painted[44:47, 6:58] = 0.9
    monkeypatch.setattr(type(s), "probability", lambda self, image, *a, **k: painted)
    both = predict(img, predictor=s)
    assert sorted({round(float(y) / 10) for y in both.nodes[:, 0]}) == [2, 4]  # rows ~21 and ~45
    one = predict(img, predictor=s, min_brightness=0.5)
    assert one.n_edges > 0 and np.all(np.abs(one.nodes[:, 0] - 21) < 3)
    assert one.metadata["min_brightness"] == 0.5
    assert predict(img, predictor=s, min_brightness=0.2).n_edges == both.n_edges  # the dim fibre is at 0.3
    s.cfg = SegConfig.from_dict({**cfg.to_dict(), "min_brightness": 0.5})  # the checkpoint's own setting
    assert predict(img, predictor=s).n_edges == one.n_edges
    with pytest.raises(VesselGraphError, match="min_brightness"):
        SegConfig(min_brightness=2.0)


def test_adapt_calibrates_a_segmentation_checkpoint(seg2d, tmp_path, monkeypatch):
    """``adapt --method calibrate`` on a segmentation checkpoint: threshold and ``min_brightness`` chosen on the
    shots (ground truth: the bright fibre only), the weights kept; other methods are refused with a pointer."""
    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.importers._folder import DatasetFolder
    from napari_vesselgraph.model.segment import Segmenter

    path, net, cfg = seg2d
    folder = DatasetFolder(tmp_path / "target")
    gt = VesselGraph(nodes=np.array([[21.0, 6.0], [21.0, 32.0], [21.0, 57.0]]), edges=np.array([[0, 1], [1, 2]]))
    for k, dim in enumerate((0.2, 0.2, 0.2)):
        folder.add(f"s{k}", _two_lines(dim=dim), gt, "train")
    folder.close()
    painted = np.zeros((64, 64), np.float32)
    painted[20:23, 6:58], painted[44:47, 6:58] = 0.9, 0.75  # no threshold tried separates them
    monkeypatch.setattr(Segmenter, "probability", lambda self, image, *a, **k: painted)
    logs, calls = [], []
    cfg_d = {"checkpoint": str(path), "target": str(tmp_path / "target"), "method": "calibrate",
             "out": str(tmp_path / "cal.safetensors")}  # fmt: skip
    out = adapt(cfg_d, progress=lambda *a: calls.append(a), log=logs.append)
    s = load_segmenter(out)
    ad = s.meta["adaptation"]
    assert ad["method"] == "calibrate" and len(ad["shot_ids"]) == 2 and len(ad["heldout_ids"]) == 1
    # only the brightness drops the dim fibre (a fifth of the bright one's)
    assert 0.2 <= s.cfg.min_brightness <= 0.8 and s.cfg.threshold == 0.5, s.cfg
    assert ad["after"]["score"] > ad["before"]["score"]
    assert all(torch.equal(a, b) for a, b in zip(s.net.state_dict().values(), net.state_dict().values()))
    assert s.meta["kind"] == "segmentation" and s.meta["name"] == "cal"
    assert calls[0][2].get("phase") and calls[-1][0] == calls[-1][1]
    # the shots agree: the cut chosen on one shot serves the other as well as the source's own settings
    loo = ad["leave_one_out"]
    assert [r["id"] for r in loo] == ad["shot_ids"] and all(r["score"] >= r["own_score"] for r in loo), loo
    assert all(r["min_brightness"] > 0 for r in loo) and not any("warning" in line for line in logs)
    with pytest.raises(VesselGraphError, match="train-seg --init"):
        adapt({"checkpoint": str(path), "target": str(tmp_path / "target"), "method": "finetune"}, log=lambda s: None)


def test_calibrate_says_when_the_choice_does_not_carry_over(seg2d, tmp_path, monkeypatch):
    """Two shots that want opposite cuts (one traced only the bright fibre, the other both): scored with the
    settings chosen on the other shot, the second loses its dim fibre; calibrate records that per shot and warns."""
    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.importers._folder import DatasetFolder
    from napari_vesselgraph.model.segment import Segmenter

    path, net, cfg = seg2d
    folder = DatasetFolder(tmp_path / "target")
    bright = VesselGraph(nodes=np.array([[21.0, 6.0], [21.0, 32.0], [21.0, 57.0]]), edges=np.array([[0, 1], [1, 2]]))
    both = VesselGraph(nodes=np.array([[21.0, 6.0], [21.0, 32.0], [21.0, 57.0], [45.0, 6.0], [45.0, 32.0],
                                       [45.0, 57.0]]), edges=np.array([[0, 1], [1, 2], [3, 4], [4, 5]]))  # fmt: skip
    folder.add("only-bright", _two_lines(dim=0.2), bright, "train")
    folder.add("both", _two_lines(dim=0.2), both, "train")
    folder.close()
    painted = np.zeros((64, 64), np.float32)
    painted[20:23, 6:58], painted[44:47, 6:58] = 0.9, 0.75
    monkeypatch.setattr(Segmenter, "probability", lambda self, image, *a, **k: painted)
    logs = []
    out = adapt({"checkpoint": str(path), "target": str(tmp_path / "target"), "method": "calibrate",
                 "val_fraction": 0, "out": str(tmp_path / "cal.safetensors")}, log=logs.append)  # fmt: skip
    loo = {r["id"]: r for r in load_segmenter(out).meta["adaptation"]["leave_one_out"]}
    assert set(loo) == {"only-bright", "both"}
    # chosen on "only-bright", the cut drops the dim fibre "both" traced: lower than the source's settings there
    assert loo["both"]["min_brightness"] > 0 and loo["both"]["score"] < loo["both"]["own_score"], loo
    # chosen on "both", nothing is cut: "only-bright" keeps its untraced fibre, no better than before
    assert loo["only-bright"]["min_brightness"] == 0 and loo["only-bright"]["score"] == loo["only-bright"]["own_score"]
    warn = [line for line in logs if line.startswith("warning:")]
    assert len(warn) == 1 and "lower by more than 0.01 on both)" in warn[0], logs
