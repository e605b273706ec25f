"""The checkpoint comparison benchmark: validation images only, a copy of the bundled model is no better."""

import pytest

pytest.importorskip("torch")


@pytest.fixture
def bench(load_bench):
    return load_bench("compare_checkpoints")


def test_bad_input_exits_2(bench, tmp_path, capsys):
    assert bench.main(["--domain", "no-such-domain", str(tmp_path / "x.safetensors"), "--no-write"]) == 2
    assert "unknown domain" in capsys.readouterr().err
    assert bench.main(["--domain", "vessel2d-fluo", str(tmp_path / "missing.safetensors"), "--no-write"]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_the_bundled_model_against_itself_is_not_better(bench, capsys):
    from napari_vesselgraph.checkpoints import list_bundled

    path = next(e["path"] for e in list_bundled() if e["name"] == "vessel2d-fluo")
    assert bench.main(["--domain", "vessel2d-fluo", path, "--n", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "Validation seeds 20000000" in out and "| skeleton |" in out
    # identical weights and settings: the same graph, so no image where it is better
    assert "| 0/1 | 0/1 |" in out and "not better than the bundled checkpoint" in out
