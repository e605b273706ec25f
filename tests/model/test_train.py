import json
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
synth = pytest.importorskip("napari_vesselgraph.synth")
if not hasattr(synth, "make_sample"):
    pytest.skip("synth not available", allow_module_level=True)

from napari_vesselgraph import checkpoints as ck
from napari_vesselgraph.model import train as T

TINY = {"patch_size": [32, 32], "backbone_channels": [8, 16, 32], "stride": 4, "hidden": 32, "heads": 2,
        "ffn": 64, "query_grid": [4, 4], "enc_layers": 1, "dec_layers": 2}  # fmt: skip


def _cfg(tmp_path, **kw):
    d = dict(
        domain="vessel2d-fluo",
        out=str(tmp_path / "run"),
        model=TINY,
        image_shape=[64, 64],
        batch_size=2,
        max_steps=3,
        pool_size=2,
        val_images=1,
        val_patches=2,
        val_every=2,
        log_every=1,
        threads=1,
        warmup_steps=2,
        stats_patches=10,
    )
    d.update(kw)
    return d


def test_train_resume_and_checkpoint(tmp_path):
    logs = []
    calls = []
    path = T.train(_cfg(tmp_path), progress=lambda d, t, i: calls.append((d, t)), log=logs.append)
    assert path.name == "best.safetensors" and path.exists()
    assert calls[-1] == (3, 3)
    state = tmp_path / "run" / "state.safetensors"
    assert state.exists()
    model, meta = ck.load_checkpoint(path)
    assert meta["domain"] == "vessel2d-fluo" and meta["seed"] == 0 and "node_f1" in meta["validation"]
    assert meta["training"]["config"]["max_steps"] == 3
    # resume: continues at step 3 up to 5
    T.train(_cfg(tmp_path, max_steps=5), log=logs.append)
    assert any("resumed" in s and "step 3" in s for s in logs)
    info = ck.read_metadata(state)
    assert info["step"] == 5
    hist = [json.loads(s) for s in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert max(h["step"] for h in hist) == 5


def test_cancel_stops_cleanly(tmp_path):
    ev = threading.Event()
    ev.set()
    path = T.train(_cfg(tmp_path, max_steps=100), cancel=ev, log=lambda s: None)
    assert path.exists()
    assert ck.read_metadata(tmp_path / "run" / "state.safetensors")["step"] == 0


def test_optimizer_round_trip():
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m(torch.rand(4, 3)).sum().backward()
    opt.step()
    tensors, info = T.optimizer_to_tensors(opt)
    json.dumps(info)
    opt2 = torch.optim.AdamW(m.parameters(), lr=5.0)
    T.optimizer_from_tensors(opt2, tensors, json.loads(json.dumps(info)))
    a, b = opt.state_dict(), opt2.state_dict()
    assert b["param_groups"][0]["lr"] == 1e-3
    for k in a["state"]:
        for name, v in a["state"][k].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][k][name]))


def test_cli_args(tmp_path):
    cfgfile = tmp_path / "c.json"
    cfgfile.write_text(json.dumps({"_comment": "x", "batch_size": 4, "model": TINY, "max_minutes": 50}))
    argv = ["--domain", "road-clean", "--config", str(cfgfile), "-o", str(tmp_path / "o"), "--seed", "7"]
    cfg = T.config_from_args(T.build_parser().parse_args(argv), argv)
    assert cfg.domain == "road-clean" and cfg.seed == 7 and cfg.batch_size == 4 and cfg.max_minutes == 50
    assert cfg.command.startswith("python -m napari_vesselgraph.model.train --domain road-clean")
    assert T.domain_defaults("road-clean") == (2, 3)
    assert T.domain_defaults("vessel3d-lightsheet")[0] == 3


def test_seeds_disjoint():
    assert T.TRAIN_SEED_MAX <= T.VAL_SEED_BASE < T.TEST_SEED_BASE
    assert T.VAL_SEED_BASE + 1000 < T.TEST_SEED_BASE
    np.testing.assert_equal(T._lr_factor(0, 0.0, T.TrainConfig(warmup_steps=10)), 0.1)


def test_train_3d_relation_line_channels_last(tmp_path):
    """The 3D recipe of the bundled model (relation head sampling the volume, channels-last convolutions)
    trains, and its checkpoint predicts."""
    from napari_vesselgraph.model.predictor import make_predictor

    model = {"patch_size": [16, 16, 16], "backbone_channels": [4, 8, 16], "stride": 4, "hidden": 32, "heads": 2,
             "ffn": 64, "query_grid": [2, 2, 2], "enc_layers": 1, "dec_layers": 1, "relation_line": 4}  # fmt: skip
    cfg = _cfg(tmp_path, domain="vessel3d-lightsheet", model=model, image_shape=[32, 32, 32], channels_last=True,
               loss={"near_neg_frac": 0.5, "unmatched_neg_ratio": 0.5})  # fmt: skip
    path = T.train(cfg, log=lambda s: None)
    m, meta = ck.load_checkpoint(path)
    assert meta["model"]["relation_line"] == 4 and meta["training"]["config"]["channels_last"] is True
    out = make_predictor(path, device="cpu").predict_batch(np.random.default_rng(0).random((2, 1, 16, 16, 16)))
    assert len(out) == 2


def test_ema_weights_are_validated_saved_and_resumed(tmp_path):
    logs = []
    path = T.train(_cfg(tmp_path, ema_decay=0.9, max_steps=4, val_every=4), log=logs.append)
    state = tmp_path / "run" / "state.safetensors"
    tensors, _info = ck.load_tensors(state)
    trained = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    averaged = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    assert set(averaged) == set(trained)
    floats = [k for k, v in trained.items() if v.dtype.is_floating_point]
    # the average lags behind the trained weights, so some differ
    assert any(not torch.equal(trained[k], averaged[k]) for k in floats)
    # the best checkpoint holds the averaged weights (validated at step 4 = the last step)
    best, _ = ck.load_tensors(path)
    k = floats[0]
    assert torch.equal(best[k], averaged[k]) and not all(torch.equal(best[f], trained[f]) for f in floats)
    # resuming restores the average, not a copy of the trained weights
    T.train(_cfg(tmp_path, ema_decay=0.9, max_steps=5, val_every=4), log=logs.append)
    assert any("resumed" in s for s in logs)
    with pytest.raises(Exception, match="ema_decay"):
        T.train(_cfg(tmp_path / "bad", ema_decay=1.0), log=logs.append)


def test_ema_update_is_a_moving_average():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    w0, w1 = a.weight.detach().clone(), b.weight.detach().clone()
    T._ema_update(a, b, 0.75)
    torch.testing.assert_close(a.weight.detach(), 0.75 * w0 + 0.25 * w1)


def test_extra_data_is_mixed_in_and_init_loads_weights(tmp_path):
    from napari_vesselgraph.synth import write_dataset

    extra = tmp_path / "extra"
    write_dataset(extra, "vessel2d-fundus", 3, seed=0, split="train:2,val:1", shape=(64, 64))
    first = T.train(_cfg(tmp_path, out=str(tmp_path / "a"), max_steps=2), log=lambda s: None)
    logs = []
    cfg = _cfg(tmp_path, out=str(tmp_path / "b"), max_steps=1, extra_data=[str(extra)], extra_p=1.0,
               init=str(first), lr=0.0, input={"method": "local"})
    T.train(cfg, log=logs.append)
    assert any("extra data: 2 training / 1 validation images" in s for s in logs)
    assert any("initialised from" in s for s in logs)
    # the mixed sampler draws from the extra images only when p = 1 (fundus images are RGB, 64x64)
    mcfg = T.ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **TINY})
    c = T.TrainConfig.from_dict(cfg)
    rng = np.random.default_rng(0)
    tr, _, _ = T._read_folder(str(extra))
    meta = T.make_input_meta(2, 1, method="local")
    mixed = T.MixedSampler(T.PatchSampler(c, mcfg, meta, rng), T.PatchSampler(c, mcfg, meta, rng, tr), 1.0, rng)
    assert len(mixed.batch(3)) == 3
    with pytest.raises(Exception, match="extra_p"):
        T.train(_cfg(tmp_path, out=str(tmp_path / "c"), extra_data=[str(extra)], extra_p=1.5), log=lambda s: None)


def test_images_shallower_than_a_patch_are_padded_not_refused():
    """vesselNN stacks have 15 slices against 32-voxel patches: training pads them at the far end (with the
    median, the background) instead of failing, and the graph keeps its coordinates."""
    from napari_vesselgraph.graph import VesselGraph
    from napari_vesselgraph.model.data import validation_set

    img = np.zeros((6, 40, 40), np.float32)
    img[3, 20, 5:35] = 1.0
    g = VesselGraph(np.array([[3.0, 20, 5], [3, 20, 20], [3, 20, 34]]), np.array([[0, 1], [1, 2]]))
    mcfg = T.ModelConfig.from_dict({"ndim": 3, "in_channels": 1, **{**TINY, "patch_size": [16, 16, 16],
                                                                    "query_grid": [2, 2, 2]}})
    c = T.TrainConfig.from_dict({"domain": "vessel3d-lightsheet", "empty_patch_p": 0.0, "augment": False})
    meta = T.make_input_meta(3, 1, method="percentile")
    s = T.PatchSampler(c, mcfg, meta, np.random.default_rng(0), [(img, g)])
    pimg, pg = s.patch()
    assert pimg.shape == (1, 16, 16, 16)
    assert pg.n_nodes >= 1
    assert np.all(pg.nodes[:, 0] == 3.0)  # z of the line in the patch: the stack starts at the patch's top
    assert np.all(pimg[0, 6:] == np.median(pimg[0, 6:]))  # the padded slices are flat background
    val = validation_set(c, mcfg, meta, [(img, g)])
    assert val and val[0][0].shape == (1, 16, 16, 16)


def test_background_workers_make_the_patches_of_seeded_images(tmp_path):
    """With ``workers`` > 0 (the GPU recipes) other processes synthesise the images and cut their patches: each
    block is the patches of one drawn seed, the same as ``synthesize_patches`` makes for it here; refreshing
    takes finished blocks without waiting, and ``close`` stops the processes."""
    import time

    from napari_vesselgraph.model.data import synthesize_patches

    c = T.TrainConfig.from_dict(_cfg(tmp_path, workers=1, worker_patches=4, pool_size=2, empty_patch_p=0.0))
    mcfg = T.ModelConfig.from_dict({"ndim": 2, "in_channels": 1, **TINY})
    meta = T.make_input_meta(2, 1, method="local")
    s = T.PatchSampler(c, mcfg, meta, np.random.default_rng(0))
    try:
        assert len(s.pool) == 2 and all(len(block) == 4 for block in s.pool)
        first = s.used_seeds[0]
        mine = synthesize_patches(c.domain, first, c.image_shape, meta, (32, 32), 4, 0.0, True)
        for (a, ga), (b, gb) in zip(s.pool[0], mine):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ga.nodes, gb.nodes)
        assert all(g.n_nodes for _, g in s.pool[0])  # empty_patch_p 0: every patch has nodes (within 20 tries)
        pimg, pg = s.patch()
        assert pimg.shape == (1, 32, 32)
        n_seeds = len(s.used_seeds)
        before = [id(block) for block in s.pool]
        for _ in range(200):  # the blocks in flight finish in the background
            s.refresh()
            if [id(block) for block in s.pool] != before:
                break
            time.sleep(0.05)
        assert [id(block) for block in s.pool] != before
        assert len(s.used_seeds) > n_seeds  # every block taken is replaced by a new seed in flight
        assert len(s.batch(3)) == 3
    finally:
        s.close()
    assert s._executor is None
    s.close()  # a second close is harmless
    bad = T.TrainConfig.from_dict(_cfg(tmp_path, workers=1, worker_patches=0))
    with pytest.raises(Exception, match="worker_patches"):
        T.PatchSampler(bad, mcfg, meta, np.random.default_rng(0))


def test_train_with_background_workers(tmp_path):
    logs = []
    path = T.train(_cfg(tmp_path, workers=1, worker_patches=4, max_steps=2), log=logs.append)
    assert path.exists()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["training"]["config"]["workers"] == 1
    args = T.build_parser().parse_args(["--workers", "3"])
    assert T.config_from_args(args, ["--workers", "3"]).workers == 3


def test_extra_data_can_be_resampled_to_the_models_scale(tmp_path):
    """``extra_zoom``: wide structures of imported tiles (30 cm satellite roads) are shrunk as ``predict --zoom``
    shrinks them, graphs scaled with the images; a bad factor is refused."""
    from napari_vesselgraph.model.data import read_splits
    from napari_vesselgraph.synth import write_dataset

    extra = tmp_path / "extra"
    write_dataset(extra, "vessel2d-fluo", 3, seed=0, split="train:2,val:1", shape=(64, 64))
    (tr1, va1), (tr, va) = read_splits(extra), read_splits(extra, zoom=0.5)
    assert len(tr) == 2 and len(va) == 1
    assert tr[0][0].shape[:2] == (32, 32) and tr1[0][0].shape[:2] == (64, 64)
    lo, hi = np.asarray(tr1[0][1].nodes).min(0), np.asarray(tr1[0][1].nodes).max(0)
    zl, zh = np.asarray(tr[0][1].nodes).min(0), np.asarray(tr[0][1].nodes).max(0)
    np.testing.assert_allclose(zh - zl, (hi - lo) * 0.5, atol=3.0)  # same extent, half the size (re-spaced)
    assert np.all(np.asarray(tr[0][1].nodes) <= 32)
    with pytest.raises(Exception, match="positive"):
        read_splits(extra, zoom=0.0)
    logs = []
    cfg = _cfg(tmp_path, out=str(tmp_path / "z"), max_steps=1, extra_data=[str(extra)], extra_p=0.5, extra_zoom=0.5)
    T.train(cfg, log=logs.append)
    assert any("resampled by 0.5" in s for s in logs)
