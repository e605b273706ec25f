"""`vesselgraph` command line: the same Python API the napari widgets call.

Every user-facing problem ends the command with one readable line on stderr and exit code 2;
Ctrl-C ends it with exit code 130 (long jobs save their last good state first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import Cancelled, VesselGraphError


class TextProgress:
    """A progress callback that draws a one-line bar on stderr."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        extra = ""
        if info:
            extra = " " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total} {now - self.t0:6.1f}s{extra[:60]}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


# --------------------------------------------------------------------------- commands
def _cmd_predict(args) -> int:
    from .inference import predict
    from .io import load_image, write_graph

    image, scale = load_image(args.image)
    if args.scale:
        scale = tuple(args.scale)
    graph = predict(
        image,
        checkpoint=args.checkpoint,
        method=args.method,
        device=args.device,
        scale=scale,
        node_threshold=args.node_threshold,
        edge_threshold=args.edge_threshold,
        overlap=args.overlap,
        channel=args.channel,
        progress=TextProgress("predict"),
    )
    graph.metadata["source_image"] = str(args.image)
    paths = write_graph(graph, args.output)
    print(f"{graph.n_nodes} nodes, {graph.n_edges} edges -> {', '.join(paths)}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(args.output, sample=args.sample, method=args.method, device=args.device,
                      progress=TextProgress("demo"))
    for line in result["summary"]:
        print(line)
    return 0


def _cmd_evaluate(args) -> int:
    from .io import read_graph
    from .metrics import DENSITY_DEPENDENT, evaluate

    pred, gt = read_graph(args.pred), read_graph(args.gt)
    if pred.ndim != gt.ndim:
        raise VesselGraphError(f"prediction is {pred.ndim}D but ground truth is {gt.ndim}D")
    scores = evaluate(pred, gt, radius=args.radius)
    if args.json:
        print(json.dumps(scores, indent=2, default=float))
    else:
        width = max(len(k) for k in scores)
        for k, v in scores.items():
            note = "  (depends on node density)" if k in DENSITY_DEPENDENT else ""
            print(f"{k:<{width}}  {v:.4f}{note}" if isinstance(v, float) else f"{k:<{width}}  {v}{note}")
    return 0


def _cmd_info(args) -> int:
    from .graph import graph_statistics
    from .io import read_graph

    g = read_graph(args.graph)
    stats = graph_statistics(g)
    stats["ndim"] = g.ndim
    stats["scale"] = list(g.scale)
    if args.json:
        print(json.dumps(stats, indent=2, default=float))
    else:
        for k, v in stats.items():
            print(f"{k:<20} {v:.4g}" if isinstance(v, float) else f"{k:<20} {v}")
    return 0


def _cmd_convert(args) -> int:
    from .io import read_graph, write_graph

    g = read_graph(args.input)
    paths = write_graph(g, args.output)
    print(f"{g.n_nodes} nodes, {g.n_edges} edges -> {', '.join(paths)}")
    return 0


def _cmd_synth(args) -> int:
    from .synth import write_dataset

    out = write_dataset(args.output, args.domain, args.n, seed=args.seed, split=args.split)
    print(f"wrote {args.n} {args.domain} samples to {out}")
    return 0


def _cmd_train(args, rest) -> int:
    from .model.train import main as train_main

    return int(train_main(rest) or 0)


def _cmd_adapt(args, rest) -> int:
    try:
        from .adapt import main as adapt_main
    except ImportError:
        raise VesselGraphError("adaptation is not available in this version yet") from None
    return int(adapt_main(rest) or 0)


def _cmd_checkpoints(args) -> int:
    from .checkpoints import list_bundled

    entries = list_bundled()
    if not entries:
        print("no checkpoints found")
    for e in entries:
        meta = e.get("meta", {})
        print(
            f"{e['name']:<28} {meta.get('ndim', '?')}D  domain={meta.get('training', {}).get('domain', meta.get('domain', '?'))}"
            f"  adaptation={meta.get('adaptation', {}).get('kind', meta.get('adaptation', 'none')) if isinstance(meta.get('adaptation'), dict) else meta.get('adaptation', 'none')}"
            f"  {e.get('path', '')}"
        )
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vesselgraph", description="Turn images of networks into graphs.")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("predict", help="predict the graph of an image (TIFF, PNG, JPG, zarr, npy)")
    pr.add_argument("image")
    pr.add_argument("-o", "--output", required=True, help="graph file: .graphml .json .csv .swc .vtk")
    pr.add_argument("--checkpoint", default=None, help="bundled checkpoint name or a .safetensors file")
    pr.add_argument("--method", choices=["model", "skeleton"], default="model")
    pr.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    pr.add_argument("--node-threshold", type=float, default=None, help="default: the checkpoint's (else 0.5)")
    pr.add_argument("--edge-threshold", type=float, default=None, help="default: the checkpoint's (else 0.5)")
    pr.add_argument("--overlap", type=float, default=0.25)
    pr.add_argument("--channel", type=int, default=None, help="channel of a multichannel image to use")
    pr.add_argument("--scale", type=float, nargs="+", default=None, help="pixel size per axis (overrides file)")
    pr.set_defaults(func=_cmd_predict)

    de = sub.add_parser("demo", help="run the bundled default on a sample image; writes a graph and an overlay PNG")
    de.add_argument("-o", "--output", default="vesselgraph-demo", help="output folder")
    de.add_argument("--sample", default=None, help="sample image (default: the bundled model's sample)")
    de.add_argument("--method", choices=["model", "skeleton"], default=None)
    de.add_argument("--device", default="auto")
    de.set_defaults(func=_cmd_demo)

    ev = sub.add_parser("evaluate", help="compare a predicted graph with a ground-truth graph")
    ev.add_argument("--pred", required=True)
    ev.add_argument("--gt", required=True)
    ev.add_argument("--radius", type=float, default=3.0, help="matching radius in pixels")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)

    inf = sub.add_parser("info", help="statistics of a graph file (lengths in physical units)")
    inf.add_argument("graph")
    inf.add_argument("--json", action="store_true")
    inf.set_defaults(func=_cmd_info)

    cv = sub.add_parser("convert", aliases=["export"], help="convert a graph file to another format")
    cv.add_argument("input")
    cv.add_argument("output")
    cv.set_defaults(func=_cmd_convert)

    sy = sub.add_parser("synth", help="write a synthetic dataset folder")
    sy.add_argument("--domain", required=True)
    sy.add_argument("-n", type=int, default=20)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--split", default="train")
    sy.add_argument("-o", "--output", required=True)
    sy.set_defaults(func=_cmd_synth)

    ck = sub.add_parser("checkpoints", help="list bundled and user checkpoints")
    ck.set_defaults(func=_cmd_checkpoints)

    sub.add_parser("train", help="train a model (see `vesselgraph train --help`)", add_help=False)
    sub.add_parser("adapt", help="adapt a model to a target domain (see `vesselgraph adapt --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ("train", "adapt"):
            fn = _cmd_train if argv[0] == "train" else _cmd_adapt
            return fn(None, argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except VesselGraphError as e:
        print(f"vesselgraph: error: {e}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("\nvesselgraph: cancelled", file=sys.stderr)
        return 130
    except FileNotFoundError as e:
        print(f"vesselgraph: error: file not found: {e.filename or e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print("vesselgraph: error: out of memory; try a smaller --region or a smaller batch", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
