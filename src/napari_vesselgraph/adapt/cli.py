"""``vesselgraph adapt``: adapt a checkpoint to a target domain from the command line.

    vesselgraph adapt --method contrastive --checkpoint vessel2d-fluo --target my-annotations/ --shots 5 -o out.safetensors
    vesselgraph adapt --method translation --checkpoint vessel2d-fluo --target-domain vessel2d-fundus -o tr.safetensors

Bad input ends with one line on stderr and exit code 2. The first Ctrl-C stops the run at the end of the
current step and keeps the last good checkpoint (exit code 130); a second one aborts at once.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from typing import Any

from ..errors import VesselGraphError
from ..progress import CLI_ERRORS, exit_code, read_config
from .config import METHODS, SELECT_BY, TRAIN_LAYERS, AdaptConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one readable line instead of usage + message
        raise VesselGraphError(f"{message} (see `vesselgraph adapt --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vesselgraph adapt", description="Adapt a checkpoint to a target domain.")
    p.add_argument("--method", choices=METHODS, default=None, help="default: finetune")
    p.add_argument(
        "--checkpoint",
        help="source checkpoint: bundled name or .safetensors file (default: the one that suits the --target "
        "images, a Relationformer unless --method calibrate; vessel2d-fluo otherwise)",
    )
    tg = p.add_mutually_exclusive_group()
    tg.add_argument("--target", help="target dataset folder (synth.write_dataset layout / annotation store)")
    tg.add_argument("--target-domain", help="synthetic target domain (e.g. vessel2d-fundus)")
    p.add_argument("--source", help="source domain name or dataset folder (default: the checkpoint's domain)")
    p.add_argument("--shots", type=int, help="K labelled target samples (default: all of the folder's train split)")
    p.add_argument("--shot-seed", type=int, help="which K samples are drawn (default 0)")
    p.add_argument("--val-fraction", type=float, help="share of labelled target samples held out (default 0.2)")
    p.add_argument("--steps", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--temperature", type=float, help="contrastive temperature (default 0.1)")
    p.add_argument("--align-weight", type=float, help="weight of the contrastive / adversarial term (default 0.5)")
    p.add_argument("--train-layers", choices=TRAIN_LAYERS)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--threads", type=int, help="torch threads (default 1; 0: leave torch's default)")
    p.add_argument("--max-minutes", type=float, help="time budget")
    p.add_argument("--val-every", type=int, help="held-out validation every N steps (default: steps / 3)")
    p.add_argument(
        "--zoom",
        help="scale the target images are adapted at: 'auto' (default: as predict would shrink them), or a factor "
        "(e.g. 0.25 for 30 cm satellite tiles; recorded so that predict picks it on such images); 1: as they are",
    )
    p.add_argument(
        "--select-by",
        choices=SELECT_BY,
        help="held-out score choosing the step and thresholds: graph = (length quality + junction F1)/2, "
        "f1 = (node F1 + edge F1)/2, auto (default): graph for a target folder",
    )
    p.add_argument("--config", help="JSON file with AdaptConfig keys (command-line flags win)")
    p.add_argument("-o", "--out", help="output .safetensors (default: the user checkpoint folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="no log lines, only the progress bar")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> AdaptConfig:
    d: dict[str, Any] = {}
    if args.config:
        d.update(read_config(args.config))
    for key in (
        "method",
        "checkpoint",
        "target",
        "target_domain",
        "source",
        "shots",
        "shot_seed",
        "val_fraction",
        "steps",
        "lr",
        "batch_size",
        "temperature",
        "align_weight",
        "train_layers",
        "seed",
        "device",
        "threads",
        "max_minutes",
        "val_every",
        "zoom",
        "select_by",
        "out",
    ):
        val = getattr(args, key)
        if val is not None:
            d[key] = val
    if args.target is not None:
        d.pop("target_domain", None)
    if args.target_domain is not None:
        d.pop("target", None)
    from .data import choose_source

    d = choose_source(d, lambda line: print(f"vesselgraph adapt: {line}", file=sys.stderr))
    d["command"] = "vesselgraph adapt " + " ".join(shlex.quote(a) for a in argv)
    return AdaptConfig.from_dict(d)


class _SigintCancel:
    """First Ctrl-C (or SIGTERM: ``kill``, a batch system ending the job) sets the cancel event; a second one
    raises KeyboardInterrupt. The previous handlers come back on exit."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.event = threading.Event()
        self._old = {}

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handler(self, signum, frame):
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print("\nstopping after this step (Ctrl-C again to abort)…", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        old, self._old = self._old, {}
        for sig, handler in old.items():
            signal.signal(sig, handler)
        return False


def main(argv: list[str] | None = None) -> int:
    from ..progress import TextProgress
    from . import adapt

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        build_parser().print_help()
        return 0
    cancel = _SigintCancel()
    try:
        args = build_parser().parse_args(argv)
        cfg = config_from_args(args, argv)
        bar = TextProgress(f"adapt[{cfg.method}]")

        def log(s: str) -> None:
            if not args.quiet:
                print(("\n" if bar._last else "") + s, file=sys.stderr, flush=True)

        def progress(step, total, info):
            if "phase" in info:  # the log lines say what happens before the first step; the bar starts with it
                return
            show = {k: info[k] for k in ("loss",) if k in info}
            if "val" in info:
                show.update({k: float(v) for k, v in info["val"].items()})
            bar(step, total, show)

        with cancel:
            path = adapt(cfg, progress=progress, cancel=cancel, log=log)
    except CLI_ERRORS as e:
        return exit_code(e, "vesselgraph adapt", cancelled="aborted")
    if cancel.is_set():
        print(f"vesselgraph adapt: cancelled; last good checkpoint: {path}", file=sys.stderr)
        return 130
    print(f"adapted checkpoint: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
