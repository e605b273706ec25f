"""benchmarks/patch_selection.py: the held-out image is the one adapt holds out, random selections are seeded and
never overlap, the report, and a clean skip without the real data (none of these need ../shared)."""

import argparse

import numpy as np
import pytest


def fake_records(n=4, side=96):
    from napari_vesselgraph.synth import make_sample

    recs = {}
    for i in range(n):
        img, g = make_sample("vessel2d-fundus", 10 + i, (side, side))
        fov = np.ones((side, side), bool)
        fov[:, : side // 4] = False
        recs[str(21 + i)] = {"image": np.asarray(img, np.float32), "graph": g, "fov": fov, "gt": f"g{i}"}
    return recs


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_the_heldout_image_is_what_adapt_holds_out(load_bench, tmp_path, seed):
    ps = load_bench("patch_selection")
    from napari_vesselgraph.adapt.config import AdaptConfig
    from napari_vesselgraph.adapt.data import _from_folder
    from napari_vesselgraph.synth import read_dataset

    recs = fake_records()
    boxes = [{"id": "21", "origin": [0, 30], "size": [32, 32]}, {"id": "22", "origin": [40, 40], "size": [32, 32]},
             {"id": "22", "origin": [0, 60], "size": [32, 32]}]  # fmt: skip
    held, ids = ps.write_target(tmp_path / "t", recs, boxes, "24", seed)
    assert len(ids) == 3 and held not in ids
    recs_out = {r.id: r for r in read_dataset(tmp_path / "t")}
    assert recs_out[held].image.shape == (96, 96, 3) and recs_out[ids[0]].image.shape == (32, 32, 3)
    assert np.allclose(recs_out[ids[1]].image, recs["22"]["image"][40:72, 40:72], atol=1e-6)
    cfg = AdaptConfig(method="finetune", checkpoint="x", target=str(tmp_path / "t"), shots=3, shot_seed=seed,
                      val_fraction=ps.val_fraction_for(3))  # fmt: skip
    data = _from_folder(cfg, 2)
    assert [s.id for s in data.heldout] == [held]
    assert sorted(s.id for s in data.shots) == sorted(ids)


def test_random_selection_is_seeded_and_never_overlaps(load_bench):
    ps = load_bench("patch_selection")
    recs = fake_records()
    pool = ["21", "22", "23"]
    a = ps.choose_random(recs, pool, 5, 32, seed=0)
    assert a == ps.choose_random(recs, pool, 5, 32, seed=0) != ps.choose_random(recs, pool, 5, 32, seed=1)
    assert len(a) == 5 and {b["id"] for b in a} <= set(pool)
    for i, x in enumerate(a):
        assert (
            recs[x["id"]]["fov"][x["origin"][0] : x["origin"][0] + 32, x["origin"][1] : x["origin"][1] + 32].mean()
            >= 0.5
        )
        for y in a[i + 1 :]:
            if x["id"] == y["id"]:
                assert not all(p < q + 32 and q < p + 32 for p, q in zip(x["origin"], y["origin"]))


def test_report_rows_and_paired_differences(load_bench):
    ps = load_bench("patch_selection")

    def per(lq):
        return [{"length_quality": lq, "junction_f1": 0.4, "smd": 20.0, "length_completeness": 0.9,
                 "length_correctness": 0.7, "node_f1": 0.5, "edge_f1": 0.3, "seconds": 2.0}]  # fmt: skip

    def run(sel, seed, lq, kept=False):
        return {"selection": sel, "seed": seed, "K": 5, "patch_size": 128, "method": "finetune", "train_s": 60.0,
                "per_image": per(lq), "boxes": [{"id": "21", "origin": [0, 0], "size": [128, 128], "score": 3.0}],
                "provenance": {"before": {"score": 0.5}, "after": {"score": 0.55}, "best_adapted": 0.55,
                               "source_weights": kept}}  # fmt: skip

    res = {"rows": {"skeleton": {"choice": "road-hazy/dark", "per_image": per(0.6)},
                    "vessel2d-random": {"choice": "zoom auto", "per_image": per(0.7)}},
           "runs": [run("uncertainty", 0, 0.75), run("random", 0, 0.72), run("uncertainty", 1, 0.71, kept=True),
                    run("random", 1, 0.73)],
           "missing": [{"selection": "random", "seed": 2}], "notes": [], "pool": ["21", "22"], "test_ids": ["31"],
           "uncertainty_s": 12.0}  # fmt: skip
    args = argparse.Namespace(checkpoint="vessel2d-random", threads=1, jobs=1, device="cpu", heldout="30", k=5,
                              patch_size=128, method="finetune", steps=200)  # fmt: skip
    text = ps.section(res, args, "python benchmarks/patch_selection.py", 600.0)
    rows = [line for line in text.splitlines() if line.startswith("| finetune")]
    assert len(rows) == 2 and "uncertainty" in rows[0] and "random" in rows[1]
    assert "0.730 ± 0.020" in rows[0] and "+0.030" in rows[0] and "1 of 2" in rows[0]  # LQ mean ± std over seeds
    assert "LQ 3 px +0.005 (+0.030, -0.020; uncertainty better in 1 of 2)" in text
    assert "Held-out score of the best adapted step, uncertainty minus random, paired by seed: +0.000" in text
    assert "Every adaptation run kept the source weights" not in text
    assert "Not run yet: random seed 2" in text and "wall time 10.0 min" in text
    assert "source weights were kept" in text
    assert "0.500 / 0.550 ± 0.000" in rows[0]  # held-out: source / best adapted step
    again = ps.section(res, args, "python benchmarks/patch_selection.py --cached-only", 1.0,
                       computed={"command": "python benchmarks/patch_selection.py", "wall_s": 900.0})  # fmt: skip
    assert "computed by `python benchmarks/patch_selection.py` in 15.0 min wall" in again


def test_skips_without_the_data(load_bench, tmp_path, capsys):
    ps = load_bench("patch_selection")
    assert ps.main(["--data", str(tmp_path / "nowhere"), "--dataset", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]
