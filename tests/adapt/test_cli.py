import os
import signal

import pytest

torch = pytest.importorskip("torch")

from napari_vesselgraph import checkpoints as ck
from napari_vesselgraph import cli as top_cli
from napari_vesselgraph.adapt import main
from napari_vesselgraph.adapt.cli import _SigintCancel


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--method", "magic", "--target-domain", "vessel2d-fundus"], "invalid choice"),
        (["--target-domain", "vessel2d-fundus", "--target", "x"], "not allowed with"),
        (["--method", "finetune"], "exactly one of target"),
        (["--target", "/no/such/folder", "--shots", "2"], "does not exist"),
        (["--target-domain", "vessel2d-fundus", "--shots", "0"], "shots must be at least 1"),
        (["--target-domain", "vessel2d-fundus", "--steps", "ten"], "invalid int value"),
        (["--target-domain", "vessel2d-fundus", "--shots", "1", "--checkpoint", "missing"], "no checkpoint"),
    ],
)
def test_bad_input_one_line_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vesselgraph adapt: error:") and words in err


def test_routed_from_vesselgraph_cli(capsys):
    assert top_cli.main(["adapt", "--method", "finetune"]) == 2
    assert "exactly one of target" in capsys.readouterr().err


def test_cli_run_records_command(tiny_checkpoint, fundus_folder, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    argv = [
        "--method",
        "finetune",
        "--checkpoint",
        str(tiny_checkpoint),
        "--target",
        str(fundus_folder),
        "--shots",
        "2",
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--seed",
        "3",
        "-o",
        str(out),
        "-q",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"adapted checkpoint: {out}" in captured.out and "adapt[finetune] [" in captured.err
    meta = ck.read_metadata(out)
    assert meta["command"].startswith("vesselgraph adapt --method finetune") and "--seed 3" in meta["command"]
    assert meta["adaptation"]["seed"] == 3 and meta["adaptation"]["shots"] == 2


def test_ctrl_c_keeps_last_good_checkpoint(tiny_checkpoint, fundus_folder, tmp_path, capsys, monkeypatch):
    class InterruptingBar:
        def __init__(self, label):
            self._last = 0.0

        def __call__(self, step, total, info):
            if step == 2:
                os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C during step 2

    import napari_vesselgraph.progress as progress_module

    monkeypatch.setattr(progress_module, "TextProgress", InterruptingBar)
    out = tmp_path / "ctrlc.safetensors"
    argv = [
        "--method",
        "contrastive",
        "--checkpoint",
        str(tiny_checkpoint),
        "--target",
        str(fundus_folder),
        "--shots",
        "2",
        "--steps",
        "40",
        "--batch-size",
        "1",
        "-o",
        str(out),
        "-q",
    ]
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when run in the background
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"cancelled; last good checkpoint: {out}" in err
    _, meta = ck.load_checkpoint(out)
    ad = meta["adaptation"]
    # no adapted step was measured yet: the last good checkpoint is the source, measured on the held-out sample
    assert ad["steps_trained"] == 2 and ad["cancelled"] is True and ad["source_weights"] is True
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored


def test_second_ctrl_c_aborts():
    c = _SigintCancel()
    c._handler(signal.SIGINT, None)
    assert c.is_set()
    with pytest.raises(KeyboardInterrupt):
        c._handler(signal.SIGINT, None)


def test_checkpoints_command_shows_adaptation(tiny_checkpoint, fundus_folder, home, capsys):
    argv = [
        "--method",
        "finetune",
        "--checkpoint",
        str(tiny_checkpoint),
        "--target",
        str(fundus_folder),
        "--shots",
        "1",
        "--steps",
        "1",
        "--batch-size",
        "1",
        "-q",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    assert top_cli.main(["checkpoints"]) == 0
    lines = capsys.readouterr().out.splitlines()
    mine = [s for s in lines if "tiny-fluo-finetune-fundus-k1" in s]
    assert len(mine) == 1 and "adaptation=finetune -> vessel2d-fundus  user" in mine[0]
    assert any("vessel2d-fluo" in s and "adaptation=none  bundled" in s for s in lines)


def _argv(ckpt, target, out):
    return ["--method", "finetune", "--checkpoint", str(ckpt), "--target", str(target), "--shots", "2",
            "--steps", "2", "--batch-size", "2", "--device", "cpu", "-q", "-o", str(out)]  # fmt: skip


def test_unwritable_output_refused_before_the_run(tiny_checkpoint, fundus_folder, tmp_path, capsys, monkeypatch):
    from napari_vesselgraph.adapt import loop

    monkeypatch.setattr(loop, "run", lambda *a, **k: pytest.fail("the run started"))
    (tmp_path / "afile").write_text("x")
    assert main(_argv(tiny_checkpoint, fundus_folder, tmp_path / "afile" / "out.safetensors")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a folder" in err


def test_final_write_failing_rescues_the_weights(tiny_checkpoint, fundus_folder, tmp_path, home, capsys, monkeypatch):
    from napari_vesselgraph.checkpoints import load_checkpoint, store

    out = tmp_path / "out.safetensors"
    real = store._atomic_write_bytes

    def disk_full(path, data):
        if path == out:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(store, "_atomic_write_bytes", disk_full)
    assert main(_argv(tiny_checkpoint, fundus_folder, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    err = err[err.index("vesselgraph adapt: error:"):]  # after the progress bar
    assert "No space left" in err and "saved to" in err
    rescued = list((home / "rescued").glob("*.safetensors"))
    assert len(rescued) == 1 and str(rescued[0]) in err
    _, meta = load_checkpoint(rescued[0])
    assert meta["adaptation"]["method"] == "finetune"


def test_sigterm_stops_like_the_first_ctrl_c_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    c = _SigintCancel()
    with c:
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. a batch system ending the job: stop after this step
        assert c.is_set()
        with pytest.raises(KeyboardInterrupt):
            c._handler(signal.SIGTERM, None)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_no_checkpoint_takes_the_one_that_suits_the_target_images(fundus_folder, tmp_path, capsys):
    """Without --checkpoint the source is the installed checkpoint that suits the target folder's images (not always
    vessel2d-fluo): a Relationformer for training methods, a segmentation checkpoint too for calibrate."""
    from napari_vesselgraph.adapt.cli import build_parser, config_from_args
    from napari_vesselgraph.checkpoints.meta import is_segmentation
    from napari_vesselgraph.checkpoints.suits import rank_checkpoints
    from napari_vesselgraph.synth import read_dataset, write_dataset

    if not ck.list_bundled():
        pytest.skip("no bundled checkpoints installed")

    def run(argv):
        cfg = config_from_args(build_parser().parse_args(argv), argv)
        return cfg, capsys.readouterr().err

    img = read_dataset(fundus_folder, split="train")[0].image
    best = rank_checkpoints(img)[0]
    cfg, err = run(["--target", str(fundus_folder)])
    assert cfg.checkpoint == (best["entry"].get("path") or best["name"]) and f"using '{best['name']}'" in err
    assert run(["--target", str(fundus_folder), "--checkpoint", "vessel2d-fluo"])[0].checkpoint == "vessel2d-fluo"
    stacks = write_dataset(tmp_path / "stacks", "vessel3d-twophoton", 2, shape=(24, 48, 48))
    first = rank_checkpoints(read_dataset(stacks, split="train")[0].image)[0]
    name = run(["--target", str(stacks), "--method", "finetune"])[1].split("using '")[1].split("'")[0]
    assert not is_segmentation(ck.read_metadata(ck.resolve(name)))
    name = run(["--target", str(stacks), "--method", "calibrate"])[1].split("using '")[1].split("'")[0]
    assert name == first["name"]


def test_python_adapt_without_a_checkpoint_takes_the_one_that_suits(fundus_folder, tmp_path):
    """``adapt({"target": ...})`` with no checkpoint starts from the checkpoint the picker chooses for the target's
    images and says so in its log (the dataclass default, vessel2d-fluo, finds nothing on photos)."""
    from napari_vesselgraph.adapt import adapt
    from napari_vesselgraph.adapt.data import choose_source

    if not ck.list_bundled():
        pytest.skip("no bundled checkpoints installed")
    said = []
    want = choose_source({"target": str(fundus_folder), "method": "calibrate"}, said.append)["checkpoint"]
    choice = {"checkpoint": said[0].split("'")[1]}
    lines = []
    out = adapt({"target": str(fundus_folder), "method": "calibrate", "out": str(tmp_path / "a.safetensors")},
                log=lines.append)  # fmt: skip
    assert any(f"using '{choice['checkpoint']}'" in line for line in lines)
    assert ck.read_metadata(out)["adaptation"]["config"]["checkpoint"] == want
