"""The adaptation benchmark's run cache: a finished run is read back, never reused for other settings."""

import json

import pytest


@pytest.fixture
def bench(load_bench):
    return load_bench("adaptation")


def _argv(cache, n_test=1):
    return ["--pairs", "vessel2d-fluo:vessel2d-fundus", "--methods", "skeleton", "--n-test", str(n_test),
            "--no-write", "--cache", str(cache)]  # fmt: skip


def test_a_cached_run_is_read_back_and_other_settings_run_again(bench, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "runs.jsonl"
    assert bench.main(_argv(cache)) == 0
    recs = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(recs) == 1 and recs[0]["result"]["method"] == "skeleton"
    first = capsys.readouterr().out

    calls = []
    real = bench.run_job
    monkeypatch.setattr(bench, "run_job", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert bench.main(_argv(cache)) == 0  # same settings: nothing runs, same table
    out = capsys.readouterr().out
    assert calls == [] and "[cached]" in out
    table = lambda s: [line for line in s.splitlines() if line.startswith("| vessel2d")]
    assert table(out) == table(first)

    assert bench.main(_argv(cache, n_test=2)) == 0  # other settings: a new run, appended
    assert len(calls) == 1
    assert len(cache.read_text().splitlines()) == 2

    lines = cache.read_text().splitlines()  # a run killed while writing its line: that job runs again
    cache.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    assert bench.main(_argv(cache, n_test=2)) == 0
    assert len(calls) == 2
    assert bench.main(_argv(cache, n_test=2)) == 0  # and its new line is read back
    assert len(calls) == 2


def test_the_key_names_the_source_checkpoint(bench):
    job = {"pair": "a:b", "source": "vessel2d-fluo", "target": "vessel2d-fundus", "method": "skeleton", "K": "-",
           "seed": "-", "n_test": 1, "threads": 1, "device": "cpu", "cost": 1}  # fmt: skip
    key = json.loads(bench.job_key(job))
    assert len(key["source_sha"]) == 16 and key["n_test"] == 1 and "cost" not in key
    other = json.loads(bench.job_key({**job, "source": "road-clean"}))
    assert other["source_sha"] != key["source_sha"]


def test_a_translation_key_names_the_translator_settings(bench, monkeypatch):
    from napari_vesselgraph.adapt import translate

    job = {"pair": "a:b", "source": "vessel2d-fluo", "target": "vessel2d-fundus", "method": "translation", "K": 0,
           "seed": 0, "steps": 10, "n_test": 1, "threads": 1, "device": "cpu", "cost": 1}  # fmt: skip
    key = bench.job_key(job)
    assert json.loads(key)["translator"] == translate.DEFAULT_TRANSLATOR
    monkeypatch.setitem(translate.DEFAULT_TRANSLATOR, "residual", not translate.DEFAULT_TRANSLATOR["residual"])
    assert bench.job_key(job) != key  # a run made with other translator defaults is not read back
    assert "translator" not in json.loads(bench.job_key({**job, "method": "finetune"}))
