"""benchmarks/real_data.py: fixed splits, a clean skip without data, the cache, and a tiny run on drawn data."""

import json

import numpy as np


def test_splits_are_fixed_and_disjoint(load_bench):
    rd = load_bench("real_data")
    for name, (shot, test) in rd.SPLITS.items():
        assert shot and test and not set(shot) & set(test), name
    assert rd.SPLITS["drive"] == ([str(i) for i in range(21, 31)], [str(i) for i in range(31, 41)])
    assert rd.SPLITS["diadem"] == (["OP_1", "OP_2"], ["OP_3", "OP_4", "OP_5"])


def test_missing_data_skips_with_one_line(load_bench, tmp_path, capsys):
    rd = load_bench("real_data")
    assert rd.main(["--data", str(tmp_path / "nowhere"), "--no-write"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]
    assert rd.main(["--data", str(tmp_path), "--sets", "drive", "--no-write"]) == 0
    assert "drive: skipped" in capsys.readouterr().out


def test_cache_round_trip_and_half_written_line(load_bench, tmp_path):
    rd = load_bench("real_data")
    path = tmp_path / "c.jsonl"
    c = rd.Cache(path)
    c.put("a", {"length_quality": 0.5})
    with open(path, "a") as f:
        f.write('{"key": "b", "length_qu')  # killed mid-write
    c2 = rd.Cache(path)
    assert c2.get("a")["length_quality"] == 0.5 and c2.get("b") is None
    c2.put("c", {"length_quality": 0.25})
    rows = [json.loads(s) for s in path.read_text().splitlines() if s.startswith('{"key": "c"')]
    assert rows and rows[0]["length_quality"] == 0.25


def _drive_layout(root, ids):
    import imageio.v2 as imageio
    import tifffile

    for sub in ("images", "1st_manual", "mask"):
        (root / "drive-train" / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:96, :96]
    for k, i in enumerate(ids):
        mask = (np.abs(yy - 30 - k) < 2) | (np.abs(xx - 50) < 2)
        img = np.full((96, 96, 3), 180, np.uint8)
        img[mask] = 90
        tifffile.imwrite(root / "drive-train" / "images" / f"{i}_training.tif", img)
        imageio.imwrite(root / "drive-train" / "1st_manual" / f"{i}_manual1.gif", (mask * 255).astype(np.uint8))
        imageio.imwrite(root / "drive-train" / "mask" / f"{i}_training_mask.gif", np.full((96, 96), 255, np.uint8))


def test_tiny_run_on_drawn_drive_layout(load_bench, tmp_path, monkeypatch):
    rd = load_bench("real_data")
    monkeypatch.setitem(rd.SPLITS, "drive", (["21", "22"], ["31", "32"]))
    _drive_layout(tmp_path, ["21", "22", "31", "32"])
    results, notes = rd.benchmark(["drive"], tmp_path, rd.Cache(None), only=["skeleton"], log=lambda s: None)
    row = results["drive"]["rows"]["skeleton"]
    assert row["n"] == 2 and row["choice"]
    # a clean drawn cross: the skeleton finds most of it
    assert row["mean"]["length_completeness"] > 0.5
    text = rd.section(results, notes, "python benchmarks/real_data.py")
    assert "### drive" in text and "| skeleton |" in text
