"""The `vesselgraph` command line: exit codes, one-line errors, and the commands that need no model."""

import json

import numpy as np
import pytest

from napari_vesselgraph.cli import main
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.io import read_graph, write_graph


@pytest.fixture
def graph_file(tmp_path):
    g = VesselGraph(
        np.array([[0, 0], [0, 10], [10, 10], [20, 10]], float),
        [[0, 1], [1, 2], [2, 3]],
        node_attrs={"radius": np.array([1.0, 2.0, 2.0, 1.0])},
        scale=(0.5, 0.5),
    )
    path = tmp_path / "g.graphml"
    write_graph(g, path)
    return g, path


def test_info_reports_physical_lengths(graph_file, capsys):
    g, path = graph_file
    assert main(["info", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["nodes"] == 4 and stats["edges"] == 3
    assert stats["total_length"] == pytest.approx(15.0)  # 30 px at 0.5 µm/px
    assert stats["endpoints"] == 2


@pytest.mark.parametrize("suffix", [".json", ".csv", ".swc", ".vtk", ".graphml"])
def test_convert_to_every_format_round_trips(graph_file, tmp_path, suffix, capsys):
    g, path = graph_file
    out = tmp_path / f"out{suffix}"
    assert main(["convert", str(path), str(out)]) == 0
    back = read_graph(out)
    assert np.allclose(back.nodes, g.nodes) and back.n_edges == 3 and back.scale == g.scale


def test_evaluate_identical_graphs_is_perfect(graph_file, capsys):
    _, path = graph_file
    assert main(["evaluate", "--pred", str(path), "--gt", str(path), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["node_f1"] == 1.0 and scores["edge_f1"] == 1.0 and scores["smd"] == pytest.approx(0.0)


def test_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.graphml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vesselgraph: error:") and "nope.graphml" in err and "\n" not in err


def test_malformed_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph><node id='0'>")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.graphml" in err and "Traceback" not in err and "\n" not in err


def test_unknown_format_is_one_line_error(graph_file, tmp_path, capsys):
    _, path = graph_file
    assert main(["convert", str(path), str(tmp_path / "x.docx")]) == 2
    assert "graphml" in capsys.readouterr().err.lower()


def test_failed_write_keeps_existing_file(graph_file, tmp_path, capsys):
    g, path = graph_file
    target = tmp_path / "cyclic.swc"
    target.write_text("# precious\n")
    cyc = VesselGraph(np.array([[0, 0], [0, 5], [5, 5]], float), [[0, 1], [1, 2], [2, 0]])
    src = tmp_path / "cyc.json"
    write_graph(cyc, src)
    assert main(["convert", str(src), str(target)]) == 2
    assert "cycle" in capsys.readouterr().err
    assert target.read_text() == "# precious\n"


def test_synth_predict_skeleton_evaluate_pipeline(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["synth", "--domain", "vessel2d-fluo", "-n", "2", "-o", str(ds)]) == 0
    manifest = json.loads((ds / "manifest.json").read_text())
    assert len(manifest["samples"]) == 2
    img = ds / manifest["samples"][0]["image"]
    gt = ds / manifest["samples"][0]["graph"]
    out = tmp_path / "pred.json"
    assert main(["predict", str(img), "-o", str(out), "--method", "skeleton"]) == 0
    pred = read_graph(out)
    assert pred.n_edges > 10 and pred.metadata["method"] == "skeleton"
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(out), "--gt", str(gt), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    # the classical baseline finds most of a clean synthetic vessel tree
    assert scores["length_completeness"] > 0.8


def test_unknown_checkpoint_is_one_line_error(tmp_path, capsys):
    img = tmp_path / "img.npy"
    np.save(img, np.zeros((64, 64), np.float32))
    assert main(["predict", str(img), "-o", str(tmp_path / "o.json"), "--checkpoint", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vesselgraph: error:") and "no-such-model" in err


# --------------------------------------------------------------------------- outputs checked before the work
@pytest.fixture
def no_work(monkeypatch):
    """Make the expensive step fail loudly: the output must be refused before it runs."""
    from napari_vesselgraph import inference, synth

    def boom(*a, **k):
        raise AssertionError("the work ran although its output cannot be written")

    monkeypatch.setattr(inference, "predict", boom)
    monkeypatch.setattr(synth, "write_dataset", boom)


def _bad_outputs(tmp_path):
    (tmp_path / "afile").write_text("x")
    return {
        "suffix": tmp_path / "out.txt",
        "no_folder": tmp_path / "nonexistent" / "dir" / "x.graphml",
        "parent_is_file": tmp_path / "afile" / "x.graphml",
        "long_name": tmp_path / ("n" * 242 + ".graphml"),
    }


@pytest.mark.parametrize("kind", ["suffix", "no_folder", "parent_is_file", "long_name"])
def test_predict_refuses_an_unwritable_output_before_predicting(tmp_path, kind, no_work, capsys):
    img = tmp_path / "img.npy"
    np.save(img, np.zeros((32, 32), np.float32))
    out = _bad_outputs(tmp_path)[kind]
    assert main(["predict", str(img), "-o", str(out), "--method", "skeleton"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vesselgraph: error:") and "\n" not in err


def test_predict_refuses_a_read_only_folder(tmp_path, no_work, monkeypatch, capsys):
    import os

    real = os.access
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if os.fspath(p) == str(ro) else real(p, m))
    img = tmp_path / "img.npy"
    np.save(img, np.zeros((32, 32), np.float32))
    assert main(["predict", str(img), "-o", str(ro / "x.json"), "--method", "skeleton"]) == 2
    assert "not writable" in capsys.readouterr().err


def test_convert_checks_the_output_first(graph_file, tmp_path, capsys):
    _, path = graph_file
    assert main(["convert", str(path), str(_bad_outputs(tmp_path)["no_folder"])]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err


@pytest.mark.parametrize("command", ["synth", "demo"])
def test_synth_and_demo_refuse_an_unwritable_folder(tmp_path, command, no_work, monkeypatch, capsys):
    from napari_vesselgraph import demo

    monkeypatch.setattr(demo, "load_sample", lambda *a, **k: pytest.fail("demo ran"), raising=False)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub"
    argv = ["synth", "--domain", "vessel2d-fluo", "-n", "1", "-o", str(out)] if command == "synth" else [
        "demo", "-o", str(out), "--method", "skeleton"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vesselgraph: error:") and "not a folder" in err and "\n" not in err


def test_train_refuses_an_unwritable_run_folder_before_training(tmp_path, capsys, monkeypatch):
    from napari_vesselgraph.model import train

    monkeypatch.setattr(train, "train", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "afile").write_text("x")
    rc = main(["train", "--domain", "vessel2d-fluo", "-o", str(tmp_path / "afile" / "run"), "--max-steps", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not a folder" in err and "\n" not in err


# --------------------------------------------------------------------------- damaged or absurd images
def test_predict_on_a_tiff_declaring_absurd_size_is_one_line(tmp_path, capsys):
    import os
    import time

    import tifffile

    bomb = tmp_path / "bomb.tif"
    tifffile.imwrite(bomb, shape=(100000, 100000), dtype=np.uint8)
    os.truncate(bomb, 1024)
    t0 = time.perf_counter()
    assert main(["predict", str(bomb), "-o", str(tmp_path / "o.json"), "--method", "skeleton"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vesselgraph: error:") and "bomb.tif" in err and "\n" not in err
    assert time.perf_counter() - t0 < 5


def test_predict_missing_zarr_chunk_needs_the_flag(tmp_path, capsys):
    import os

    import zarr

    rng = np.random.default_rng(0)
    z = zarr.create_array(str(tmp_path / "img.zarr"), shape=(64, 64), chunks=(32, 32), dtype="f4", zarr_format=2)
    z[:] = rng.random((64, 64), dtype=np.float32) + 0.1
    (tmp_path / "img.zarr" / "1.1").unlink()
    argv = ["predict", str(tmp_path / "img.zarr"), "-o", str(tmp_path / "o.json"), "--method", "skeleton"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing" in err and "--allow-missing-chunks" in err
    assert main([*argv, "--allow-missing-chunks"]) == 0
    assert "NAPARI_VESSELGRAPH_ALLOW_MISSING_CHUNKS" not in os.environ  # restored after the command


# --------------------------------------------------------------------------- graph invariants, signals
def test_info_on_a_graph_with_a_loop_drops_it_and_says_so(tmp_path, capsys):
    path = tmp_path / "loop.json"
    g = VesselGraph(np.array([[0, 0], [0, 10], [0, 20]], float), [[0, 1], [1, 2], [2, 2], [1, 0]])
    write_graph(g, path)
    assert main(["info", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["edges"] == 2 and stats["endpoints"] == 2 and stats["branch_points"] == 0
    assert "vesselgraph: warning:" in captured.err and "self loop" in captured.err


def test_nan_coordinates_are_one_line_error(tmp_path, capsys):
    path = tmp_path / "nan.json"
    write_graph(VesselGraph(np.array([[0, 0], [np.nan, 10]], float), [[0, 1]]), path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nan.json" in err and "NaN" in err and "\n" not in err


def test_sigterm_ends_a_command_like_ctrl_c_and_handlers_are_restored(monkeypatch, capsys):
    import os
    import signal
    import time

    from napari_vesselgraph import cli

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def slow(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(cli, "_cmd_checkpoints", slow)
    assert main(["checkpoints"]) == 130
    assert "cancelled" in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# ------------------------------------------------------------------ issue 19 items 11-13
def _square_file(tmp_path, scale=(1.0, 1.0)):
    g = VesselGraph(np.array([[0, 0], [0, 10], [10, 10], [10, 0], [20, 0]], float),
                    [[0, 1], [1, 2], [2, 3], [3, 0], [3, 4]],
                    node_attrs={"radius": np.array([1, 1, 4, 1, 1.0])}, scale=scale)
    path = tmp_path / "square.graphml"
    write_graph(g, path)
    return path


def test_export_swc_break_cycles(tmp_path, capsys):
    src = _square_file(tmp_path)
    assert main(["export", str(src), str(tmp_path / "a.swc")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--break-cycles" in err
    assert main(["export", str(src), str(tmp_path / "a.swc"), "--break-cycles"]) == 0
    out, err = capsys.readouterr()
    assert "4 edges" in out and "1 edge removed" in out
    warning = err.strip()
    assert warning.startswith("vesselgraph: warning:") and "\n" not in warning and "3-0" in warning
    back = read_graph(tmp_path / "a.swc")
    assert back.n_edges == 4 and back.metadata["swc_removed_edges"] == [[3, 0]]
    assert main(["export", str(src), str(tmp_path / "b.swc"), "--break-cycles", "--root", "4"]) == 0
    assert read_graph(tmp_path / "b.swc").metadata["swc_roots"] == [4]
    capsys.readouterr()
    for extra, needle in ((["--root", "9"], "root node 9"), (["--break-cycles"], "SWC output")):
        target = "c.swc" if "--root" in extra else "c.json"
        assert main(["export", str(src), str(tmp_path / target), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vesselgraph: error:") and needle in err and "\n" not in err


def test_info_prints_lengths_with_their_unit(graph_file, tmp_path, capsys):
    _, path = graph_file  # scale 0.5 µm per pixel
    assert main(["info", str(path)]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["total_length"] == "15 µm" and rows["mean_segment_length"] == "15 µm"
    assert rows["mean_radius"] == "0.75 µm"  # mean radius 1.5 px at 0.5 µm per pixel
    assert rows["scale"] == "0.5, 0.5 µm per pixel" and rows["length_unit"].startswith("µm")
    plain = _square_file(tmp_path)  # no voxel size
    assert main(["info", str(plain)]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["total_length"] == "50 px" and rows["length_unit"].startswith("px (the graph has no voxel size")
    assert main(["info", str(plain), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["length_unit"] == "px"


def test_evaluate_labels_the_smd_unit(graph_file, capsys):
    _, path = graph_file
    assert main(["evaluate", "--pred", str(path), "--gt", str(path)]) == 0
    out = capsys.readouterr().out
    smd_line = next(line for line in out.splitlines() if line.startswith("smd "))
    assert "px" in smd_line and "pixels" in smd_line
    assert "demo reports SMD divided by the image size" in out
    assert main(["evaluate", "--pred", str(path), "--gt", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["distance_unit"] == "px"
    assert main(["evaluate", "--pred", str(path), "--gt", str(path), "--physical", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["distance_unit"] == "µm"


def test_evaluate_warns_when_the_voxel_sizes_differ(graph_file, tmp_path, capsys):
    g, path = graph_file  # 0.5 µm per pixel
    other = tmp_path / "other.graphml"
    write_graph(VesselGraph(g.nodes, g.edges, scale=(1.0, 1.0)), other)
    assert main(["evaluate", "--pred", str(other), "--gt", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["node_f1"] == 1.0  # same pixels: a perfect score, but now with a warning
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vesselgraph: warning:") and "voxel size" in lines[0]
    assert "--physical" in lines[0]
    half = tmp_path / "half.graphml"  # the same curves in µm: positions at twice the pixels, half the voxel size
    write_graph(VesselGraph(g.nodes * 2, g.edges, scale=(0.25, 0.25)), half)
    assert main(["evaluate", "--pred", str(half), "--gt", str(path), "--physical", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["smd"] == pytest.approx(0.0, abs=1e-6) and err == ""
    assert main(["evaluate", "--pred", str(path), "--gt", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_synth_shape(tmp_path, capsys):
    from napari_vesselgraph.io import load_image

    out = tmp_path / "ds"
    assert main(["synth", "--domain", "vessel2d-fluo", "-n", "1", "--shape", "48,80", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    image, _ = load_image(out / manifest["samples"][0]["image"])
    assert image.shape[:2] == (48, 80)
    for bad, needle in (("64,64,64", "is 2D"), ("64;x", "whole numbers"), ("8,64", "at least 16"),
                        ("100000,100000", "at most")):
        assert main(["synth", "--domain", "vessel2d-fluo", "-n", "1", "--shape", bad, "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vesselgraph: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_demo_help_lists_the_samples(capsys):
    from napari_vesselgraph.samples import sample_names

    with pytest.raises(SystemExit) as done:
        main(["demo", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "samples:" in out and all(name in out for name in sample_names())


def test_demo_output_says_which_scale_its_smd_is_on(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--sample", "vessel2d-fluo", "--method", "skeleton"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "SMD" in x)
    assert "of the image side" in line and " px)" in line


def test_demo_output_folder_is_git_ignored():
    from pathlib import Path

    ignore = Path(__file__).resolve().parents[1] / ".gitignore"
    assert "vesselgraph-demo/" in ignore.read_text().split()


def test_evaluate_a_folder_without_a_checkpoint_takes_the_one_that_suits(tmp_path, capsys):
    """``evaluate --dataset`` of a folder of stacks, no --checkpoint: a 3D checkpoint chosen for the images (it was
    the 2D default, which fails on a stack)."""
    from napari_vesselgraph.checkpoints import list_bundled
    from napari_vesselgraph.checkpoints.suits import rank_checkpoints
    from napari_vesselgraph.synth import read_dataset, write_dataset

    if not list_bundled():
        pytest.skip("no bundled checkpoints installed")
    folder = write_dataset(tmp_path / "stacks", "vessel3d-twophoton", 2, shape=(24, 48, 48))
    want = rank_checkpoints(read_dataset(folder, split="train")[0].image)[0]["name"]
    assert main(["evaluate", "--dataset", str(folder), "--json", "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert f"using '{want}'" in out.err and json.loads(out.out)["n"] == 2
