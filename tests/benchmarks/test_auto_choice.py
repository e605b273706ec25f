"""benchmarks/auto_choice.py: resampled stacks are scored in the recorded stack's pixels, every variant has the
automatic row and the skeleton, and a run with no real data says so and fails (no ../shared needed)."""

import numpy as np


def test_resample_maps_back_to_the_recorded_pixels(load_bench):
    bench = load_bench("auto_choice")
    img = np.zeros((5, 101, 17), np.float32)
    img[2, 95, 4] = 1.0
    big, back = bench.resample(img, 2)
    assert big.shape == (5, 202, 34)
    peak = np.array(np.unravel_index(np.argmax(big), big.shape), float)
    # corner-aligned: 201/100 per pixel, not 2 (which would put the peak half a pixel off here)
    np.testing.assert_allclose(peak / back, [2, 95, 4], atol=0.3)


def test_every_variant_has_the_automatic_choice_and_the_skeleton(load_bench):
    bench = load_bench("auto_choice")
    for name in ("drive", "spacenet", "vesselnn"):
        for _, make, rows in bench.variants(name):
            labels = [r[0] for r in rows]
            assert labels[0] == "auto" and "skeleton" in labels
            assert all(r[2] in (1, 2) for r in rows)


def test_no_real_data_is_one_line_and_a_failure(load_bench, monkeypatch, tmp_path, capsys):
    bench = load_bench("auto_choice")
    import real_data as rd

    monkeypatch.setattr(rd, "DATA", tmp_path)
    assert bench.main(["--sets", "drive", "--no-write"]) == 1
    assert "not found" in capsys.readouterr().out
