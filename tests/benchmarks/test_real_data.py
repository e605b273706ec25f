"""benchmarks/real_data.py: fixed splits, a clean skip without data, the cache, K capped by small shot splits,
and a tiny end-to-end run (skeleton, a bundled checkpoint, one adaptation) on a drawn DRIVE layout."""

import json

import numpy as np
import pytest


def test_splits_are_fixed_and_disjoint(load_bench):
    rd = load_bench("real_data")
    assert set(rd.SPLITS) == set(rd.SETS) == {"drive", "vesselnn", "diadem", "spacenet"}
    for name, (shot, test) in rd.SPLITS.items():
        assert shot and test and not set(shot) & set(test), name
    assert rd.SPLITS["drive"] == ([str(i) for i in range(21, 31)], [str(i) for i in range(31, 41)])
    assert rd.SPLITS["diadem"] == (["OP_1", "OP_2"], ["OP_3", "OP_4", "OP_5"])
    assert rd.SPLITS["vesselnn"] == (
        ["burgess2014_bbbDisruption", "burgess2014_tgMouse", "poon2015_BBB_Leakage"],
        ["burgess2014_lowerRes_hiSNR", "poon2015_plaqueVessels", "santos2015_lowContrastVessels"],
    )
    assert rd.SPLITS["spacenet"] == (["left"], ["right"])


def test_missing_data_skips_with_one_line(load_bench, tmp_path, capsys):
    rd = load_bench("real_data")
    assert rd.main(["--data", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]
    # the data folder exists but not the set's folder: one line for that set, exit 0
    assert rd.main(["--data", str(tmp_path), "--sets", "drive", "diadem", "--work", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [s for s in out if "skipped" in s] == [s for s in out if s.startswith(("drive:", "diadem:"))]
    assert len(out) == 2


def test_cache_round_trip_and_half_written_line(load_bench, tmp_path):
    rd = load_bench("real_data")
    path = tmp_path / "c.jsonl"
    c = rd.Cache(path)
    key = rd.make_key(kind="image", set="drive", id="31", option={"sigmas": (1.0, 2.0)})
    c.put(key, {"length_quality": 0.5, "zoom_factor": None})
    with open(path, "a") as f:
        f.write('{"key": "b", "result": {"length_qu')  # killed mid-write
    c2 = rd.Cache(path)
    assert c2.get(key) == {"length_quality": 0.5, "zoom_factor": None} and c2.get("b") is None
    c2.put("c", {"length_quality": 0.25})
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1]) == {"key": "c", "result": {"length_quality": 0.25}}
    assert rd.Cache(path).get("c") == {"length_quality": 0.25}
    # rows of another layout (no "result") are ignored, not an error
    with open(path, "a") as f:
        f.write(json.dumps({"key": "old", "length_quality": 1.0}) + "\n")
    assert rd.Cache(path).get("old") is None


@pytest.mark.parametrize(
    ("pool", "shots", "expected"),
    [
        (10, [1, 5], [(1, [1]), (5, [5])]),  # DRIVE: 2 held out, K as asked
        (3, [1, 5], [(1, [1]), (2, [5])]),  # vesselNN: 1 held out, K=5 -> the 2 left
        (2, [1, 5], [(1, [1, 5])]),  # DIADEM: 1 held out, K=1 and K=5 are the same run
    ],
)
def test_k_is_capped_by_the_shot_split(load_bench, tmp_path, pool, shots, expected):
    rd = load_bench("real_data")
    args = rd.parse_args(["--shots", *map(str, shots), "--seeds", "0", "--methods", "finetune", "translation"])
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": []}))
    source = {"label": "m", "ckpt": "m.safetensors", "ckpt_sha": "x", "choice": "native", "choice_value": 1.0}
    jobs = rd.plan_adapt("set", pool, args, source, tmp_path, ["t1"])
    ft = [(j["K"], j["K_asked"]) for j in jobs if j["method"] == "finetune"]
    assert ft == expected
    (tr,) = [j for j in jobs if j["method"] == "translation"]
    assert tr["K"] == 0 and tr["unlabelled"] == pool - (2 if pool == 10 else 1)
    # the cache key does not depend on which K values were asked together
    keys = {rd.adapt_key({**j, "K_asked": [99]}) for j in jobs}
    assert keys == {rd.adapt_key(j) for j in jobs}



def test_translator_settings_other_than_the_defaults_are_keyed_and_labelled(load_bench, tmp_path):
    rd = load_bench("real_data")
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": []}))
    source = {"label": "m", "ckpt": "m.safetensors", "ckpt_sha": "x", "choice": "native", "choice_value": 1.0}
    plain = rd.parse_args(["--seeds", "0", "--methods", "translation"])
    res = rd.parse_args(["--seeds", "0", "--methods", "translation", "--translator", "residual=false", "features=8"])
    assert res.translator == {"residual": False, "features": 8}
    (a,) = rd.plan_adapt("set", 3, plain, source, tmp_path, ["t1"])
    (b,) = rd.plan_adapt("set", 3, res, source, tmp_path, ["t1"])
    assert b["translator"]["residual"] is False and b["translator"]["features"] == 8
    assert rd.adapt_key(a) != rd.adapt_key(b)  # cached apart
    assert rd.translator_label(a) == "" and rd.translator_label(b) == " (features=8, residual=False)"
    with pytest.raises(SystemExit):
        rd.parse_args(["--translator", "lr=0.1"])


def _drive_layout(root, ids):
    import imageio.v2 as imageio
    import tifffile

    for sub in ("images", "1st_manual", "mask"):
        (root / "drive-train" / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:96, :96]
    for k, i in enumerate(ids):
        # a dark cross of 3 px wide vessels (one junction) on a bright background, moved a little per image
        mask = (np.abs(yy - 30 - 3 * k) <= 1) | (np.abs(xx - 50 + 2 * k) <= 1)
        img = np.full((96, 96, 3), 180, np.uint8)
        img[mask] = 90
        tifffile.imwrite(root / "drive-train" / "images" / f"{i}_training.tif", img)
        imageio.imwrite(root / "drive-train" / "1st_manual" / f"{i}_manual1.gif", (mask * 255).astype(np.uint8))
        imageio.imwrite(root / "drive-train" / "mask" / f"{i}_training_mask.gif", np.full((96, 96), 255, np.uint8))


def test_tiny_run_on_drawn_drive_layout(load_bench, tmp_path, monkeypatch):
    rd = load_bench("real_data")
    monkeypatch.setitem(rd.SPLITS, "drive", (["21", "22"], ["31", "32"]))
    _drive_layout(tmp_path, ["21", "22", "31", "32"])
    cache = tmp_path / "cache.jsonl"
    argv = ["--data", str(tmp_path), "--work", str(tmp_path / "work"), "--cache", str(cache), "--sets", "drive",
            "--methods", "skeleton", "vessel2d-fluo", "finetune", "--shots", "1", "--seeds", "0", "--steps", "2",
            "--source", "drive=vessel2d-fluo", "--quick"]  # fmt: skip
    args = rd.parse_args(argv)
    logs = []
    results, notes = rd.benchmark(args, rd.Cache(cache), log=logs.append)
    assert not notes
    res = results["drive"]
    # the set went through the importers into a dataset folder with the fixed split
    from napari_vesselgraph.synth import read_dataset

    recs = read_dataset(tmp_path / "work" / "data" / "drive")
    assert sorted((r.id, r.split) for r in recs) == [("21", "train"), ("22", "train"), ("31", "test"), ("32", "test")]
    skel = res["rows"]["skeleton"]
    assert skel["choice"] == "defaults" and len(skel["per_image"]) == 2
    assert skel["per_image"][0]["length_completeness"] > 0.5  # a clean drawn cross: the skeleton finds it
    assert {"smd", "junction_f1", "length_quality", "node_f1"} <= set(skel["per_image"][0])
    assert res["rows"]["vessel2d-fluo"]["choice"] == "zoom auto"
    (run,) = res["adapt"]
    assert run["method"] == "finetune" and run["K"] == 1 and run["source"] == "vessel2d-fluo"
    # one shot image trained, the other held out; never a test image
    prov = run["provenance"]
    assert len(prov["shot_ids"]) == 1 and len(prov["heldout_ids"]) == 1
    assert set(prov["shot_ids"]) | set(prov["heldout_ids"]) == {"21", "22"}
    assert len(run["per_image"]) == 2 and run["train_s"] > 0
    text = rd.section(results, notes, "python benchmarks/real_data.py ...", args)
    assert "### drive" in text and "| skeleton |" in text and "finetune ← vessel2d-fluo" in text
    # everything comes back from the cache: nothing runs again, the report is the same
    logs2 = []
    again, _ = rd.benchmark(rd.parse_args([*argv, "--cached-only"]), rd.Cache(cache), log=logs2.append)
    assert not any("adapted in" in s or "LQ" in s for s in logs2)
    assert rd.section(again, [], "c", args) == rd.section(results, [], "c", args)


def test_a_source_chosen_at_a_resampled_scale_gets_its_native_row(load_bench, tmp_path, monkeypatch):
    """3D sources may be chosen at an isotropic zoom while adaptation starts at native scale: the report then
    carries the source's native test row too, read from the source's own cache keys (here faked in 2D)."""
    rd = load_bench("real_data")
    monkeypatch.setitem(rd.SPLITS, "drive", (["21", "22"], ["31", "32"]))
    # a 2D image has no voxel size: "isotropic" is native, so the first option wins the tie on the shots
    monkeypatch.setattr(rd, "model_options", lambda ndim, quick: [("isotropic", ["isotropic", 1.0]), ("native", 1.0)])
    _drive_layout(tmp_path, ["21", "22", "31", "32"])
    cache = tmp_path / "cache.jsonl"
    argv = ["--data", str(tmp_path), "--work", str(tmp_path / "work"), "--cache", str(cache), "--sets", "drive",
            "--methods", "vessel2d-fluo", "calibrate", "--shots", "1", "--seeds", "0",
            "--source", "drive=vessel2d-fluo", "--quick"]  # fmt: skip
    args = rd.parse_args(argv)
    results, _ = rd.benchmark(args, rd.Cache(cache), log=lambda s: None)
    rows = results["drive"]["rows"]
    assert rows["vessel2d-fluo"]["choice"] == "isotropic"
    native = rows["vessel2d-fluo (native)"]
    assert native["choice"] == "native" and native["shot_lq"].keys() == {"native"} and len(native["per_image"]) == 2
    (run,) = results["drive"]["adapt"]
    assert run["zoom"] == "native" and run["zoom_value"] == 1.0
    # the native row's cache keys are the source's own: no key carries the display label
    assert "(native)" not in cache.read_text()
    text = rd.section(results, [], "c", args)
    assert "| vessel2d-fluo (native) | - | 1 | native |" in text
    assert "start from it at native scale (row `vessel2d-fluo (native)`)" in text
    again, _ = rd.benchmark(rd.parse_args([*argv, "--cached-only"]), rd.Cache(cache), log=lambda s: None)
    assert rd.section(again, [], "c", args) == text


def test_a_candidate_checkpoint_is_measured_beside_the_bundled_ones(load_bench, tmp_path, monkeypatch):
    """--candidates NAME=PATH adds a checkpoint that is not bundled (a training run's best.safetensors) as a row;
    here a copy of vessel2d-fluo, so its figures equal the bundled row's."""
    import shutil
    from pathlib import Path

    from napari_vesselgraph.checkpoints.store import bundled_dir

    rd = load_bench("real_data")
    monkeypatch.setitem(rd.SPLITS, "drive", (["21", "22"], ["31", "32"]))
    _drive_layout(tmp_path, ["21", "22", "31", "32"])
    src = Path(bundled_dir()) / "vessel2d-fluo.safetensors"
    mine = tmp_path / "run" / "best.safetensors"
    mine.parent.mkdir()
    shutil.copy(src, mine)
    shutil.copy(src.with_suffix(".json"), mine.with_suffix(".json"))
    argv = ["--data", str(tmp_path), "--work", str(tmp_path / "work"), "--sets", "drive", "--quick",
            "--methods", "vessel2d-fluo", "mine", "--candidates", f"mine={mine}"]  # fmt: skip
    args = rd.parse_args(argv)
    assert args.candidates == {"mine": str(mine)}
    results, _ = rd.benchmark(args, rd.Cache(None), log=lambda s: None)
    rows = results["drive"]["rows"]
    assert set(rows) == {"vessel2d-fluo", "mine"}
    def figures(row):
        return [{k: v for k, v in im.items() if k != "seconds"} for im in row["per_image"]]

    assert figures(rows["mine"]) == figures(rows["vessel2d-fluo"])
    assert "| mine | - | 1 |" in rd.section(results, [], "c", args)
    with pytest.raises(SystemExit, match="already name bundled"):
        rd.checkpoints_for(2, {"vessel2d-fluo": str(mine)})
    with pytest.raises(SystemExit):
        rd.parse_args(["--candidates", "nothing"])
    with pytest.raises(SystemExit):
        rd.parse_args(["--candidates", f"x={tmp_path / 'missing.safetensors'}"])


def test_labelled_adaptation_jobs_key_on_the_brightness_grid(load_bench, tmp_path):
    """Rows cached before the min_brightness search (2026-12-04) are not read back for runs that search it;
    translation chooses nothing on labels and keeps its key; calibrate's choice is read from its checkpoint."""
    from napari_vesselgraph.model.thresholds import BRIGHTNESS_GRID

    rd = load_bench("real_data")
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": []}))
    source = {"label": "m", "ckpt": "m.safetensors", "ckpt_sha": "x", "choice": "native", "choice_value": 1.0}
    args = rd.parse_args(["--seeds", "0", "--methods", "calibrate", "translation", "--shots", "1"])
    jobs = rd.plan_adapt("set", 3, args, source, tmp_path, ["t1"])
    cal = next(j for j in jobs if j["method"] == "calibrate")
    tr = next(j for j in jobs if j["method"] == "translation")
    assert cal["brightness_grid"] == list(BRIGHTNESS_GRID) and "brightness_grid" not in tr
    old = {k: v for k, v in cal.items() if k != "brightness_grid"}
    assert rd.adapt_key(old) != rd.adapt_key(cal)
    assert rd.calibrated_settings(None) == "" and rd.calibrated_settings(tmp_path / "gone.safetensors") == ""


def test_calibrated_settings_read_what_calibrate_chose(load_bench, tmp_path):
    from napari_vesselgraph.checkpoints.store import save_tensors

    rd = load_bench("real_data")
    import torch

    path = tmp_path / "c.safetensors"
    save_tensors(path, {"w": torch.zeros(1)}, {"thresholds": {"node": 0.7, "edge": 0.5},
                                               "postprocess": {"min_support": 0.9, "min_brightness": 0.8}})  # fmt: skip
    assert rd.calibrated_settings(path) == "; chose node 0.7, edge 0.5, min_support 0.9, min_brightness 0.8"


def test_make_shot_folder_copies_the_shot_split_only(load_bench, tmp_path, capsys):
    from napari_vesselgraph.model.data import read_splits
    from napari_vesselgraph.synth import read_dataset, write_dataset

    msf = load_bench("make_shot_folder")
    work = tmp_path / "work"
    write_dataset(work / "toy", "vessel2d-fluo", 4, seed=0, split="train:3,test:1", shape=(48, 48))
    ids = sorted(r.id for r in read_dataset(work / "toy", split="train"))
    out = tmp_path / "shots"
    made = msf.make("toy", out, [ids[0]], work=work)
    assert sorted(made) == sorted([(ids[0], "val")] + [(i, "train") for i in ids[1:]])
    train, val = read_splits(out)
    assert (len(train), len(val)) == (2, 1)
    assert not read_dataset(out, split="test") and not (out.with_name(out.name + ".tmp")).exists()
    with pytest.raises(SystemExit, match="not in the shot split"):
        msf.make("toy", out, ["nope"], work=work)
    assert msf.main(["absent", str(tmp_path / "x")]) == 1
    assert "run benchmarks/real_data.py" in capsys.readouterr().err
