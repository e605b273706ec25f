"""benchmarks/seg_speed.py: one run times the segmentation checkpoint, the 3D Relationformer and the skeleton on
the same volume and reports their throughput and ratios; a checkpoint of the wrong kind is one line and a
non-zero exit (no ../shared needed)."""

import pytest

torch = pytest.importorskip("torch")


def _tiny_seg(path):
    from napari_vesselgraph.model.segment import SegConfig, build_unet, save_segmenter

    torch.manual_seed(0)
    cfg = SegConfig(channels=(4, 8, 8), patch=(16, 32, 32))
    return save_segmenter(path, build_unet(cfg), cfg, {"domain": "test"})


def test_one_row_per_volume_with_all_three_methods(load_bench, tmp_path, capsys):
    bench = load_bench("seg_speed")
    from napari_vesselgraph.checkpoints import list_bundled

    rf = [e["name"] for e in list_bundled() if (e.get("meta") or {}).get("ndim") == 3
          and (e.get("meta") or {}).get("kind") != "segmentation"]  # fmt: skip
    if not rf:
        pytest.skip("no bundled 3D Relationformer in this checkout")
    path = _tiny_seg(tmp_path / "seg.safetensors")
    assert bench.main([str(path), "--relationformer", rf[0], "--sizes", "32", "--no-write"]) == 0
    out = capsys.readouterr().out
    row = [ln for ln in out.splitlines() if ln.startswith("| synthetic 32^3 |")]
    assert len(row) == 1 and len(row[0].split("|")) == 14
    assert "windows of about 24x48x48 fitted to the volume, overlapping by at least 0.125" in out


def test_refuses_a_relationformer_checkpoint(load_bench):
    bench = load_bench("seg_speed")
    with pytest.raises(SystemExit, match="not a segmentation checkpoint"):
        bench.main(["vessel3d-lightsheet", "--no-write"])
