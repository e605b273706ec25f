"""`vesselgraph` command line: the same Python API the napari widgets call.

Every user-facing problem ends the command with one readable line on stderr and exit code 2;
Ctrl-C ends it with exit code 130 (long jobs save their last good state first).
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import VesselGraphError
from .progress import CLI_ERRORS, exit_code
from .progress import TextProgress  # re-exported: the CLI's progress bar (tests and scripts use cli.TextProgress)

__all__ = ["TextProgress", "main"]


# --------------------------------------------------------------------------- commands
def _cmd_predict(args) -> int:
    from .inference import predict
    from .io import check_graph_output, write_graph

    check_graph_output(args.output)  # a bad -o is refused before the prediction, not after it
    # the path goes to predict as it is: Zarr/OME-Zarr (and large TIFFs) are read lazily, tile by tile, and
    # dask workers open the file themselves; the file's voxel size is the default scale
    distributed = {}
    if args.scheduler or args.dask_workers:
        if args.method != "model":
            raise VesselGraphError("--scheduler / --dask-workers run the model; the skeleton method runs in-process")
        distributed = {"scheduler": args.scheduler or None, "dask_workers": args.dask_workers}
    extra = {"tile_size": args.tile_size} if args.tile_size and args.method == "model" else {}
    if getattr(args, "zoom", None) is not None:
        extra["zoom"] = args.zoom[0] if len(args.zoom) == 1 else tuple(args.zoom)
    with _image_options(args):
        checkpoint = args.checkpoint
        if checkpoint is None and args.method == "model":
            checkpoint = _pick_checkpoint(args)
        graph = predict(
            args.image,
            checkpoint=checkpoint,
            method=args.method,
            device=args.device,
            scale=tuple(args.scale) if args.scale else None,
            node_threshold=args.node_threshold,
            edge_threshold=args.edge_threshold,
            overlap=args.overlap,
            channel=args.channel,
            batch_size=args.batch_size,
            progress=TextProgress("predict"),
            **distributed,
            **extra,
        )
    graph.metadata["source_image"] = str(args.image)
    paths = write_graph(graph, args.output)
    print(f"{graph.n_nodes} nodes, {graph.n_edges} edges -> {', '.join(paths)}")
    return 0


def _pick_checkpoint(args):
    """``vesselgraph predict`` without ``--checkpoint``: :func:`.cli_common.pick_and_say` for its image and options."""
    from .cli_common import pick_and_say

    tiled = bool(args.scheduler or args.dask_workers or args.tile_size)  # a segmentation checkpoint reads it whole
    return pick_and_say(args.image, args.channel, tiled)


def _image_options(args):
    """``--allow-large-image`` / ``--allow-missing-chunks`` for the image reads of one command, set in the
    environment (local dask workers started by the command inherit them) and restored afterwards."""
    import contextlib
    import os

    from .io.images import ALLOW_LARGE_ENV, ALLOW_MISSING_ENV

    wanted = [k for k, flag in ((ALLOW_LARGE_ENV, "allow_large_image"), (ALLOW_MISSING_ENV, "allow_missing_chunks"))
              if getattr(args, flag, False)]  # fmt: skip

    @contextlib.contextmanager
    def scope():
        old = {k: os.environ.get(k) for k in wanted}
        os.environ.update({k: "1" for k in wanted})
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return scope()


def _cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(args.output, sample=args.sample, method=args.method, device=args.device,
                      progress=TextProgress("demo"))
    for line in result["summary"]:
        print(line)
    return 0


def _evaluate_dataset(args) -> dict:
    """Predict every sample of a dataset folder (or annotation store) and score it against its graph; the mean
    and standard deviation of every metric over the samples, plus ``n`` and ``distance_unit`` (``px``, or with
    ``--physical`` the ground truths' length unit)."""
    from .graph import length_unit
    from .inference import predict
    from .metrics import aggregate, evaluate
    from .synth import iter_dataset, read_dataset

    records = read_dataset(args.dataset, split=args.split, load=False)  # checks the folder first
    if not records:
        raise VesselGraphError(
            f"dataset {args.dataset} has no samples" + (f" in split {args.split!r}" if args.split else "")
        )
    predictor = None
    if args.method == "model":
        from .cli_common import pick_and_say
        from .model.predictor import make_predictor

        checkpoint = args.checkpoint
        if checkpoint is None:  # the one that suits the folder's first image, as predict chooses
            checkpoint = pick_and_say(records[0].image_path)
        predictor = make_predictor(checkpoint, device=args.device)
    rows = []
    units = set()
    progress = TextProgress("evaluate")
    try:
        for i, rec in enumerate(iter_dataset(args.dataset, split=args.split)):
            pred = predict(rec.image, method=args.method, predictor=predictor, scale=rec.graph.scale)
            rows.append(evaluate(pred, rec.graph, radius=args.radius, physical=args.physical))
            units.add(length_unit(rec.graph) if args.physical else "px")
            progress(i + 1, len(records), {"sample": rec.id})
    finally:
        if predictor is not None:
            predictor.close()
    if len(units) > 1:
        print(f"vesselgraph: warning: the samples' graphs have different units ({', '.join(sorted(units))}); "
              "their mean mixes them", file=sys.stderr)
    return aggregate(rows) | {"distance_unit": "/".join(sorted(units)) or "px"}


def _cmd_evaluate(args) -> int:
    from .graph import length_unit
    from .io import read_graph
    from .metrics import DENSITY_DEPENDENT, evaluate, scale_mismatch

    unit = "px"
    if args.dataset:
        if args.pred or args.gt:
            raise VesselGraphError("give either --dataset or --pred and --gt, not both")
        scores = _evaluate_dataset(args)
        scores = {k: v for k, v in scores.items() if not k.endswith("_std")} | {
            k: v for k, v in scores.items() if k.endswith("_std")
        }
        unit = scores.pop("distance_unit")
    else:
        if not (args.pred and args.gt):
            raise VesselGraphError("evaluate needs --pred and --gt (two graph files), or --dataset DIR")
        pred, gt = read_graph(args.pred), read_graph(args.gt)
        if pred.ndim != gt.ndim:
            raise VesselGraphError(f"prediction is {pred.ndim}D but ground truth is {gt.ndim}D")
        warning = scale_mismatch(pred, gt, physical=args.physical)
        if warning:
            print(f"vesselgraph: warning: {warning}", file=sys.stderr)
        scores = evaluate(pred, gt, radius=args.radius, physical=args.physical)
        if args.physical:
            unit = length_unit(gt)
    if args.json:
        print(json.dumps(scores | {"distance_unit": unit}, indent=2, default=float))
        return 0
    width = max(len(k) for k in scores)
    print(f"{'distances':<{width}}  in {unit} (SMD, matching radius {args.radius:g} {unit})"
          f"{'' if args.physical else '; vesselgraph demo reports SMD divided by the image size'}")
    for k, v in scores.items():
        note = "  (depends on node density)" if k in DENSITY_DEPENDENT else ""
        if k in ("smd", "smd_std"):
            note = f" {unit}  (street mover distance in {'pixels' if unit == 'px' else unit}; lower is better)"
        print(f"{k:<{width}}  {v:.4f}{note}" if isinstance(v, float) else f"{k:<{width}}  {v}{note}")
    return 0


#: ``info`` keys that are lengths (printed with the graph's length unit)
_LENGTH_KEYS = ("total_length", "mean_segment_length", "mean_radius")


def _cmd_info(args) -> int:
    from .graph import graph_statistics, length_unit
    from .graph.morphometrics import mean_radius
    from .io import read_graph

    g = read_graph(args.graph)
    stats = graph_statistics(g)
    radius = mean_radius(g)
    if radius is not None:
        stats["mean_radius"] = radius
    unit = length_unit(g)
    stats["ndim"] = g.ndim
    stats["scale"] = list(g.scale)
    stats["length_unit"] = unit
    if args.json:
        print(json.dumps(stats, indent=2, default=float))
        return 0
    if unit == "px":
        where = "px (the graph has no voxel size, its scale is 1: lengths and radii are in pixels)"
    elif (g.metadata or {}).get("unit"):
        where = f"{unit} (the graph's unit; scale = {unit} per pixel)"
    else:
        where = f"{unit} (scale = µm per pixel)"
    for k, v in stats.items():
        if k == "length_unit":
            v = where
        elif k == "scale":
            v = f"{', '.join(f'{s:g}' for s in v)}" + ("" if unit == "px" else f" {unit} per pixel")
        elif k in _LENGTH_KEYS:
            v = f"{v:.4g} {unit}"
        elif isinstance(v, float):
            v = f"{v:.4g}"
        print(f"{k:<20} {v}")
    return 0


def _cmd_convert(args) -> int:
    from .io import check_graph_output, read_graph, write_graph

    fmt = check_graph_output(args.output)
    tree = {}
    if args.break_cycles or args.root is not None:
        if fmt != "swc":
            raise VesselGraphError("--break-cycles and --root apply to SWC output (.swc) only")
        tree = {"break_cycles": args.break_cycles, "root": args.root}
    g = read_graph(args.input)
    paths = write_graph(g, args.output, **tree)
    removed = 0
    if args.break_cycles:  # a forest keeps one edge fewer than nodes per connected component
        from .graph.morphometrics import connected_components

        removed = g.n_edges - (g.n_nodes - connected_components(g)[0])
    n_edges = g.n_edges - removed
    print(f"{g.n_nodes} nodes, {n_edges} edges -> {', '.join(paths)}"
          + (f" ({removed} edge{'s' if removed > 1 else ''} removed to break cycles)" if removed else ""))
    return 0


#: the most pixels (voxels) one synthetic image may have: 8192 x 8192, 406^3
MAX_SYNTH_PIXELS = 8192 * 8192


def _parse_shape(text: str, domain) -> tuple[int, ...]:
    """``--shape 256,256`` (or ``256x256``; 3D ``64,128,128``) for a domain: one readable error otherwise."""
    example = "256,256" if domain.ndim == 2 else "64,128,128"
    parts = [t.strip() for t in str(text).replace("x", ",").replace("X", ",").split(",")]
    try:
        shape = tuple(int(t) for t in parts)
    except ValueError:
        raise VesselGraphError(
            f"--shape {text!r}: give {domain.ndim} whole numbers separated by commas, e.g. --shape {example}"
        ) from None
    if len(shape) != domain.ndim:
        axes = "y,x" if domain.ndim == 2 else "z,y,x"
        raise VesselGraphError(
            f"--shape {text!r} has {len(shape)} size(s) but {domain.name} is {domain.ndim}D: give {axes}, "
            f"e.g. --shape {example}"
        )
    if min(shape) < 16:
        raise VesselGraphError(f"--shape {text!r}: every side must be at least 16 pixels")
    total = 1
    for n in shape:
        total *= n
    if total > MAX_SYNTH_PIXELS:
        raise VesselGraphError(
            f"--shape {text!r} is {total:,} pixels per image; at most {MAX_SYNTH_PIXELS:,} (e.g. 8192,8192 or "
            "400,400,400)"
        )
    return shape


def _cmd_synth(args) -> int:
    from .io import check_writable
    from .synth import get_domain, write_dataset

    shape = _parse_shape(args.shape, get_domain(args.domain)) if args.shape is not None else None
    check_writable(args.output, folder=True)
    out = write_dataset(args.output, args.domain, args.n, seed=args.seed, split=args.split, shape=shape)
    size = "x".join(str(n) for n in shape) + " " if shape else ""
    print(f"wrote {args.n} {size}{args.domain} samples to {out}")
    return 0


def _train_output(rest: list[str]) -> str | None:
    """The run folder ``vesselgraph train`` would write to (``-o`` or the config's ``out``), or None when the
    arguments are wrong: train itself reports that."""
    import contextlib
    import io

    from .model.train import build_parser, config_from_args

    if any(a in ("-h", "--help") for a in rest):
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            ns = build_parser().parse_args(rest)
            return str(config_from_args(ns, rest).out)
    except (SystemExit, VesselGraphError, TypeError, ValueError):
        return None


def _cmd_train(args, rest) -> int:
    from .io import check_writable
    from .model.train import main as train_main

    out = _train_output(rest)
    if out is not None:
        check_writable(out, folder=True)  # before hours of training, not after
    return int(train_main(rest) or 0)


def _cmd_adapt(args, rest) -> int:
    try:
        from .adapt import main as adapt_main
    except ImportError as e:  # a missing dependency of the adaptation code
        raise VesselGraphError(f"adaptation could not be loaded: {e}") from None
    return int(adapt_main(rest) or 0)


def _cmd_checkpoints(args) -> int:
    from .checkpoints import list_checkpoints
    from .checkpoints.meta import is_segmentation

    entries = list_checkpoints()
    if not entries:
        print("no checkpoints found")
    for e in entries:
        meta = e.get("meta", {})
        target = f" -> {meta['target_domain']}" if meta.get("target_domain") else ""
        target += "  kind=segmentation" if is_segmentation(meta) else ""
        print(
            f"{e['name']:<28} {meta.get('ndim', '?')}D  domain={meta.get('domain', '?')}"
            f"  adaptation={e.get('adaptation', 'none')}{target}  {e.get('source', '')}  {e.get('path', '')}"
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
    pr.add_argument("--overlap", type=float, default=None,
                    help="fraction of a window its neighbours share (default 0.25; a segmentation checkpoint: its own)")
    pr.add_argument("--channel", type=int, default=None, help="channel of a multichannel image to use")
    pr.add_argument("--scale", type=float, nargs="+", default=None, help="pixel size per axis (overrides file)")
    pr.add_argument("--batch-size", type=int, default=8, help="patches per model call")
    pr.add_argument("--zoom", type=float, nargs="+", default=None,
                    help="resample the image by this factor first (e.g. 0.25 for roads 25 px wide); graph in "
                         "the image's own pixels")  # fmt: skip
    pr.add_argument(
        "--tile-size", type=int, default=None, help="pixels per axis read at once / per cluster task (default 1024 2D, 192 3D)"
    )
    pr.add_argument(
        "--dask-workers", type=int, default=None, metavar="N",
        help="run the tiles on a local dask cluster of N single-threaded worker processes",
    )  # fmt: skip
    pr.add_argument(
        "--scheduler", default=None, metavar="tcp://HOST:PORT",
        help="run the tiles on an existing dask.distributed cluster (workers need napari-vesselgraph and the file)",
    )  # fmt: skip
    pr.add_argument(
        "--allow-large-image", action="store_true",
        help="read a TIFF that declares far more pixels than its file size holds, or more than the free memory",
    )  # fmt: skip
    pr.add_argument(
        "--allow-missing-chunks", action="store_true",
        help="read chunks missing from a Zarr store as its fill value (writers may skip empty chunks)",
    )  # fmt: skip
    pr.set_defaults(func=_cmd_predict)

    de = sub.add_parser("demo", help="run the bundled default on a sample image; writes a graph and an overlay PNG",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    de.add_argument("-o", "--output", default="vesselgraph-demo", help="output folder")
    de.add_argument("--sample", default=None,
                    help="sample image, one of those listed below (default: the bundled model's sample)")
    _list_samples_in_help(de)
    de.add_argument("--method", choices=["model", "skeleton"], default=None)
    de.add_argument("--device", default="auto")
    de.set_defaults(func=_cmd_demo)

    ev = sub.add_parser(
        "evaluate",
        help="compare a predicted graph with a ground-truth graph, or a model with a dataset folder's graphs",
    )
    ev.add_argument("--pred", help="predicted graph file")
    ev.add_argument("--gt", help="ground-truth graph file")
    ev.add_argument(
        "--dataset",
        help="a dataset folder or annotation store: predict each sample and report the mean of each metric",
    )
    ev.add_argument("--checkpoint", default=None, help="with --dataset: checkpoint name or .safetensors file "
                    "(default: the one that suits the folder's first image)")  # fmt: skip
    ev.add_argument("--method", choices=["model", "skeleton"], default="model", help="with --dataset")
    ev.add_argument("--split", default=None, help="with --dataset: only this split (train, val, test)")
    ev.add_argument("--device", default="auto", help="with --dataset: auto, cpu, cuda, mps")
    ev.add_argument("--radius", type=float, default=3.0, help="matching radius in pixels (µm with --physical)")
    ev.add_argument(
        "--physical", action="store_true",
        help="compare positions in physical units (pixels times each graph's voxel size): SMD and --radius in µm",
    )  # fmt: skip
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)

    inf = sub.add_parser(
        "info", help="statistics of a graph file (lengths in µm when the graph has a voxel size, else in pixels)"
    )
    inf.add_argument("graph")
    inf.add_argument("--json", action="store_true")
    inf.set_defaults(func=_cmd_info)

    cv = sub.add_parser("convert", aliases=["export"], help="convert a graph file to another format")
    cv.add_argument("input")
    cv.add_argument("output")
    cv.add_argument(
        "--break-cycles", action="store_true",
        help="SWC only: write the graph's spanning forest instead of refusing a graph with cycles; the removed "
             "edges are listed (warning line and the file's metadata)",
    )  # fmt: skip
    cv.add_argument(
        "--root", type=int, default=None, metavar="NODE",
        help="SWC only: node index the tree starts from (default: the node of largest radius in each component)",
    )  # fmt: skip
    cv.set_defaults(func=_cmd_convert)

    sy = sub.add_parser("synth", help="write a synthetic dataset folder")
    sy.add_argument("--domain", required=True)
    sy.add_argument("-n", type=int, default=20)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--split", default="train")
    sy.add_argument(
        "--shape", default=None, metavar="SIZES",
        help="image size in pixels, napari axis order: y,x (e.g. 256,256) or z,y,x (e.g. 64,128,128); "
             "default: the domain's (128,128 or 256,256 in 2D, 64,64,64 in 3D)",
    )  # fmt: skip
    sy.add_argument("-o", "--output", required=True)
    sy.set_defaults(func=_cmd_synth)

    ck = sub.add_parser("checkpoints", help="list bundled and user checkpoints")
    ck.set_defaults(func=_cmd_checkpoints)

    sub.add_parser("train", help="train a model (see `vesselgraph train --help`)", add_help=False)
    sub.add_parser("train-seg", help="train a segmentation model (U-Net + centre-line graph; see `vesselgraph "
                   "train-seg --help`)", add_help=False)
    sub.add_parser("adapt", help="adapt a model to a target domain (see `vesselgraph adapt --help`)", add_help=False)
    sub.add_parser("import", help="import annotated images (masks, SWC, GeoJSON) into a dataset folder "
                   "(see `vesselgraph import --help`)", add_help=False)
    sub.add_parser("annotate", help="propose the patches to annotate next (see `vesselgraph annotate propose "
                   "--help`)", add_help=False)
    return p


def _list_samples_in_help(parser: argparse.ArgumentParser) -> None:
    """``demo --help`` ends with the samples and what each is; listed only when the help is shown, so that
    building the parser does not import the generators."""
    plain = parser.format_help

    def format_help() -> str:
        from .samples import sample_descriptions

        rows = sample_descriptions()
        width = max(len(name) for name in rows)
        parser.epilog = "samples:\n" + "\n".join(f"  {name:<{width}}  {text}" for name, text in rows.items())
        return plain()

    parser.format_help = format_help


def main(argv: list[str] | None = None) -> int:
    with _sigterm_as_ctrl_c(), _graph_warnings_as_lines():
        return _main(argv)


def _sigterm_as_ctrl_c():
    """SIGTERM (``kill``, a batch system ending a job) handled as Ctrl-C while a command runs: long jobs stop
    cleanly and save what they have; the previous handler comes back afterwards. ``adapt`` installs its own
    handler for both signals while it trains (stop after the current step)."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def scope():
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
            yield
            return

        def handler(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, old)

    return scope()


def _graph_warnings_as_lines():
    """A :class:`GraphFileWarning` (e.g. self loops dropped from a file) as one ``vesselgraph: warning:`` line."""
    import contextlib
    import warnings

    from .errors import GraphFileWarning

    @contextlib.contextmanager
    def scope():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, GraphFileWarning):
                print(f"vesselgraph: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        with warnings.catch_warnings():
            warnings.simplefilter("always", GraphFileWarning)
            warnings.showwarning = show
            yield

    return scope()


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ("train", "adapt"):
            fn = _cmd_train if argv[0] == "train" else _cmd_adapt
            return fn(None, argv[1:])
        if argv and argv[0] == "train-seg":
            from .model.segtrain import main as segtrain_main

            return int(segtrain_main(argv[1:]) or 0)
        if argv and argv[0] == "import":
            from .importers.cli import main as import_main

            return int(import_main(argv[1:]) or 0)
        if argv and argv[0] == "annotate":
            from .annotations.cli import main as annotate_main

            return int(annotate_main(argv[1:]) or 0)
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except CLI_ERRORS as e:
        return exit_code(e, "vesselgraph")
    except BrokenPipeError:  # output piped into `head` and closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print("vesselgraph: error: out of memory; try a smaller --batch-size or --tile-size", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
