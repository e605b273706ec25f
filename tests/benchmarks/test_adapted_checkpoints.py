"""benchmarks/adapted_checkpoints.py --report: result files become one table with each candidate beside its source
and the skeleton, and the differences to the skeleton say who wins (no ../shared needed)."""

import json


def _row(lq, smd, choice="native"):
    return {"choice": choice, "n": 3, "length_quality": lq, "length_quality_std": 0.1, "smd": smd, "smd_std": 2.0,
            "length_completeness": 0.8, "length_correctness": 0.7, "junction_f1": 0.5, "seconds_per_image": 4.0}


def test_report_puts_the_candidate_beside_its_source_and_the_skeleton(load_bench, tmp_path, capsys):
    bench = load_bench("adapted_checkpoints")
    res = {"set": "diadem", "command": "python benchmarks/adapted_checkpoints.py --set diadem ...",
           "date": "2026-12-04", "seconds": 61.0, "candidate": "runs/x/neuron3d-confocal.safetensors",
           "rows": {"skeleton": _row(0.7, 30.0, "defaults"), "source seg": _row(0.5, 70.0),
                    "adapted": _row(0.75, 25.0)}}  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    assert bench.main(["--report", str(path), "--section", "s", "--title", "Adapted"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Adapted") and res["command"] in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| diadem")]
    assert [r.split("|")[2].strip() for r in rows] == ["skeleton", "source seg", "neuron3d-confocal"]
    assert "-0.200 (loses)" in rows[1] and "+40.0 (loses)" in rows[1]
    assert "+0.050 |" in rows[2] and "-5.0 |" in rows[2] and "loses" not in rows[2]
