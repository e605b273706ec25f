"""benchmarks/fewshot_speed.py: the first update, first step and the time-left check at 10 % come from the progress
reports as the widget gets them; the report; a clean skip without the real data."""

import argparse

import pytest


def test_recorder_times_the_first_update_first_step_and_the_estimate_at_ten_percent(load_bench, monkeypatch):
    fs = load_bench("fewshot_speed")
    clock = {"t": 100.0}
    monkeypatch.setattr(fs.time, "perf_counter", lambda: clock["t"])
    rec = fs.Recorder()
    clock["t"] = 102.0
    rec(0, 100, {"phase": "measuring the source on the held-out samples"})
    for step in range(1, 101):  # 20 s of set-up, then 1 s per step
        clock["t"] = 120.0 + step
        rec(step, 100, {"loss": 1.0})
    s = rec.summary(end_s=clock["t"] - 100.0)
    assert s["first_update_s"] == pytest.approx(2.0)
    assert s["first_step_s"] == pytest.approx(21.0)
    assert s["eta_at_step"] == 10
    assert s["eta_ratio_10pct"] == pytest.approx(1.0)  # constant pace after the first step: the estimate is exact
    assert s["phases"] == ["measuring the source on the held-out samples"]


def test_recorder_reports_a_wrong_estimate_as_such(load_bench, monkeypatch):
    fs = load_bench("fewshot_speed")
    clock = {"t": 0.0}
    monkeypatch.setattr(fs.time, "perf_counter", lambda: clock["t"])
    rec = fs.Recorder()
    for step in range(1, 101):  # 1 s per step for the first 10 steps, then 3 s per step
        clock["t"] = step if step <= 10 else 10 + 3 * (step - 10)
        rec(step, 100, {})
    s = rec.summary(end_s=clock["t"])
    assert s["eta_ratio_10pct"] == pytest.approx(90 / 270)


def test_skips_without_the_real_data(load_bench, tmp_path, capsys):
    fs = load_bench("fewshot_speed")
    args = fs.parse_args(["--data", str(tmp_path / "none"), "--work", str(tmp_path / "w"), "--quick"])
    assert isinstance(args, argparse.Namespace) and args.steps == 20
    res = fs.benchmark(args, fs.rd.Cache(None), log=print)
    assert "skipped" in res
    assert "drive" in capsys.readouterr().out.lower()
