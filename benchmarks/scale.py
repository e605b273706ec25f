"""Big inputs: peak memory and time of tiled prediction on lazily written Zarr images, 1 vs 2 dask workers.

    python benchmarks/scale.py [--quick] [--budget 1100] [--share2d 0.7] [--sizes2d 1024 2048 4096 8192]
                               [--sizes3d 96 128 192 256 384 512 1024] [--workers-size2d 2048]
                               [--workers-size3d 128] [--workers-tile3d 96] [--checkpoint3d PATH]
                               [--contrast-size 4096] [--no-write]
    python benchmarks/scale.py --largest3d 1024 [--checkpoint3d PATH]   # one volume, its own section

Images: a synthetic ``vessel2d-fluo`` 512 x 512 sample (``vessel3d-lightsheet`` 64 x 128 x 128 in 3D) tiled
(mirrored) to each size, written chunk by chunk into a Zarr store as uint16 (the full image is never in
memory, in this process or another). Every configuration runs in a fresh subprocess,
``predict(path.zarr, ...)`` with ``normalize="tiles"`` (global statistics from a strided sample; the
default for lazy images above 2^24 values): this process samples the resident memory (RSS) of the
subprocess and all its descendants (dask scheduler, nanny and worker processes) every 0.1 s, and the
subprocess reports its own exact peak (``getrusage``).

* 2D and 3D size sweeps in one process (the model with 1 torch thread), sizes in increasing order while
  the time predicted from the previous size fits in what is left of ``--budget``.
* 1 vs 2 dask workers (a LocalCluster of N single-threaded processes, what ``dask_workers=N`` starts;
  its start-up and the imports on the workers are reported apart) on the same image, in the same run.
* Contrast rows: the same image as a numpy array in memory (``predict(np.asarray(...))``, whole-image
  normalisation), and the classical skeleton baseline on the whole image (it is not tiled).

2D model: the bundled default checkpoint; 3D: a bundled 3D checkpoint, else ``--checkpoint3d``, else a
randomly initialised model (said in the report). Writes ``docs/benchmarks.md`` (section ``scale``;
``--largest3d``: section ``scale-largest``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from _report import cpu_name, write_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASE = {2: ("vessel2d-fluo", (512, 512)), 3: ("vessel3d-lightsheet", (64, 128, 128))}


# ------------------------------------------------------------------ the data, written lazily
def write_zarr(path: str, shape: tuple[int, ...]) -> int:
    """Write the mirrored-tiled synthetic image of ``shape`` as uint16 Zarr, one base-sized chunk at a time.
    Returns the size of the image in bytes (uint16, uncompressed)."""
    import zarr

    from napari_vesselgraph import synth

    ndim = len(shape)
    domain, base_shape = BASE[ndim]
    base, _ = synth.make_sample(domain, seed=0, shape=base_shape)
    base = np.clip(np.asarray(base, np.float32) * 60000 + 500, 0, 65535).astype(np.uint16)
    z = zarr.create_array(path, shape=shape, chunks=base_shape, dtype="u2", overwrite=True)
    counts = [-(-s // b) for s, b in zip(shape, base_shape)]
    for idx in np.ndindex(*counts):
        block = base
        for ax, k in enumerate(idx):
            if k % 2:
                block = np.flip(block, axis=ax)
        sl = tuple(slice(k * b, min((k + 1) * b, s)) for k, b, s in zip(idx, base_shape, shape))
        z[sl] = block[tuple(slice(0, q.stop - q.start) for q in sl)]
    return int(np.prod(shape)) * 2


# ------------------------------------------------------------------ one configuration, in a subprocess
def child(cfg: dict) -> dict:
    import resource

    import torch

    torch.set_num_threads(1)
    from napari_vesselgraph.inference import predict

    def cpu_now() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def worker_cpu(client) -> float:
        def f():
            import resource

            ru = resource.getrusage(resource.RUSAGE_SELF)
            return ru.ru_utime + ru.ru_stime

        return float(sum(client.run(f).values()))

    t0 = time.perf_counter()
    kw = {"keep_raw": False, "device": "cpu", "batch_size": 8}
    wcpu = 0.0
    if cfg["kind"] == "skeleton":
        import zarr

        img = np.asarray(zarr.open_array(cfg["path"], mode="r")[...])
        c0 = cpu_now()
        g = predict(img, method="skeleton")
        cpu = cpu_now() - c0
    else:
        kw["checkpoint"] = cfg.get("checkpoint")
        if cfg["input"] == "numpy":
            import zarr

            image = np.asarray(zarr.open_array(cfg["path"], mode="r")[...])
        else:
            image = cfg["path"]
            kw["normalize"] = "tiles"
        if cfg.get("tile_size"):
            kw["tile_size"] = int(cfg["tile_size"])
        if cfg.get("workers"):
            # start the cluster and import the libraries on the workers first, so that the timed call is the
            # prediction (model shipping and loading included); both reported apart
            from napari_vesselgraph.inference.distributed import cluster_client

            with cluster_client(dask_workers=int(cfg["workers"])) as (client, _):
                t_cluster = time.perf_counter()
                client.run(lambda: [__import__(m) for m in ("torch", "napari_vesselgraph.inference.predict", "zarr")])
                t_warm = time.perf_counter()
                c0, w0 = cpu_now(), worker_cpu(client)
                g = predict(image, scheduler=client, **kw)
                elapsed = time.perf_counter() - t_warm
                cpu, wcpu = cpu_now() - c0, worker_cpu(client) - w0
            extra = {"cluster_start_s": t_cluster - t0, "warmup_s": t_warm - t_cluster}
        else:
            c0 = cpu_now()
            g = predict(image, **kw)
            cpu = cpu_now() - c0
    if not cfg.get("workers"):
        elapsed = time.perf_counter() - t0
        extra = {"cluster_start_s": None, "warmup_s": None}
    md = g.metadata
    return {
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "worker_cpu_s": wcpu,
        "stitch_parts": md.get("stitch_parts"),
        **extra,
        "workers_used": md.get("workers_used"),
        "model_loads": md.get("model_loads"),
        "n_patches": md.get("n_patches"),
        "n_tiles": md.get("n_tiles"),
        "nodes": g.n_nodes,
        "edges": g.n_edges,
        "self_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "checkpoint": md.get("checkpoint"),
    }


def run_config(cfg: dict, log) -> dict:
    """Run ``cfg`` in a subprocess; sample the RSS of its process tree meanwhile."""
    import psutil

    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)
    peak = {"tree": 0, "procs": {}}
    stop = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                peak["procs"][p.pid] = max(peak["procs"].get(p.pid, 0), rss)
            peak["tree"] = max(peak["tree"], total)
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log(f"  FAILED ({proc.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}")
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}", **cfg}
    res = json.loads(out.strip().splitlines()[-1])
    res.update(cfg)
    res["wall_s"] = wall
    res["tree_peak_rss"] = peak["tree"]
    res["max_proc_peak_rss"] = max(peak["procs"].values()) if peak["procs"] else 0
    res["n_procs"] = len(peak["procs"])
    return res


# ------------------------------------------------------------------ report helpers
def mib(n) -> str:
    return f"{n / 2**20:,.0f}"


def shape_str(s: int, ndim: int) -> str:
    return "x".join([str(s)] * ndim)


def sweep(ndim, sizes, budget_s, data_dir, ckpt, log) -> tuple[list[dict], str | None]:
    rows: list[dict] = []
    stopped = None
    t_start = time.perf_counter()
    for s in sizes:
        shape = (s,) * ndim
        vox = float(np.prod(shape))
        if rows:
            last = rows[-1]
            est = last["wall_s"] * vox / last["voxels"]
            left = budget_s - (time.perf_counter() - t_start)
            if est > left:
                stopped = f"stopped before {shape_str(s, ndim)}: estimated {est:.0f} s > {max(left, 0):.0f} s left"
                log("  " + stopped)
                break
        path = os.path.join(data_dir, f"img{ndim}d_{s}.zarr")
        nbytes = write_zarr(path, shape)
        log(f"{ndim}D {shape_str(s, ndim)} ({mib(nbytes)} MiB uint16) ...")
        r = run_config({"kind": "model", "input": "zarr", "path": path, "checkpoint": ckpt, "ndim": ndim}, log)
        if "error" in r:
            stopped = f"{shape_str(s, ndim)} failed: {r['error']}"
            break
        r.update(size=s, voxels=vox, nbytes=nbytes)
        rows.append(r)
        log(f"  {r['elapsed_s']:.1f} s, peak RSS {mib(r['self_peak_rss'])} MiB, {r['nodes']:,} nodes")
    return rows, stopped


def growth(rows) -> str:
    if len(rows) < 2:
        return ""
    a, b = rows[0], rows[-1]
    k = np.log(b["cpu_s"] / a["cpu_s"]) / np.log(b["voxels"] / a["voxels"])
    kw = np.log(b["elapsed_s"] / a["elapsed_s"]) / np.log(b["voxels"] / a["voxels"])
    return (
        f"CPU time grows as (input size)^{k:.2f} from the smallest to the largest size ({b['voxels'] / a['voxels']:.0f}x "
        f"the pixels took {b['cpu_s'] / a['cpu_s']:.1f}x the CPU time; wall time: ^{kw:.2f}, but the load of the "
        f"shared machine changed between rows). Peak RSS went from {mib(a['self_peak_rss'])} to "
        f"{mib(b['self_peak_rss'])} MiB while the input grew from {mib(a['nbytes'])} to {mib(b['nbytes'])} MiB "
        f"({mib(2 * b['nbytes'])} MiB as float32)."
    )


def size_table(rows, ndim) -> list[str]:
    unit = "MP" if ndim == 2 else "MVox"
    lines = [
        (
            f"| image | {unit} | input uint16 / float32 (MiB) | patches | tiles | wall (s) | CPU (s) | {unit} per CPU-s | "
            "peak RSS (MiB) | RSS above the first row (MiB) | kept for stitching: nodes / edges (MiB) | graph (nodes / edges) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    first = rows[0]["self_peak_rss"] if rows else 0
    for r in rows:
        sp = r.get("stitch_parts") or [0, 0, 0]
        lines.append(
            f"| {shape_str(r['size'], ndim)} | {r['voxels'] / 1e6:.3g} | {mib(r['nbytes'])} / {mib(2 * r['nbytes'])} | "
            f"{r['n_patches']:,} | {r['n_tiles']} | {r['elapsed_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['voxels'] / 1e6 / r['cpu_s']:.3f} | {mib(r['self_peak_rss'])} | {mib(r['self_peak_rss'] - first)} | "
            f"{sp[0]:,} / {sp[1]:,} ({sp[2] / 2**20:.1f}) | {r['nodes']:,} / {r['edges']:,} |"
        )
    return lines


def worker_rows(label, rows) -> list[str]:
    out = []
    base = next((r for r in rows if r.get("workers") == 0 and "error" not in r), None)
    for r in rows:
        if "error" in r:
            out.append(f"| {label} | {r.get('workers')} | failed: {r['error']} | | | | | | |")
            continue
        start = "–" if r.get("cluster_start_s") is None else f"{r['cluster_start_s']:.1f} + {r['warmup_s']:.1f}"
        pred_s = r["elapsed_s"]
        speed = f"{base['elapsed_s'] / pred_s:.2f}x" if base and r.get("workers") else "1 (reference)"
        cpu = f"{r['cpu_s']:.1f}" + (f" + {r['worker_cpu_s']:.1f}" if r.get("workers") else "")
        out.append(
            f"| {label} | {r.get('workers') or 'none (in-process)'} | {start} | {pred_s:.1f} | {speed} | {cpu} | "
            f"{mib(r['self_peak_rss'])} | {mib(r['tree_peak_rss'])} ({r['n_procs']} processes) | "
            f"{r.get('model_loads') if r.get('model_loads') is not None else '–'} |"
        )
    return out


# ------------------------------------------------------------------ one large volume, its own section
def largest3d(args, argv) -> int:
    from napari_vesselgraph.checkpoints import read_metadata

    if not args.checkpoint3d:
        from napari_vesselgraph.checkpoints import list_bundled, resolve

        names = [e["name"] for e in list_bundled() if int((e.get("meta") or {}).get("ndim", 0)) == 3]
        if not names:
            raise SystemExit("--largest3d needs a 3D checkpoint: none is bundled, give --checkpoint3d PATH")
        args.checkpoint3d = str(resolve(names[0]))
    s = int(args.largest3d)
    meta3d = read_metadata(args.checkpoint3d)
    step = (meta3d.get("validation") or {}).get("step")
    data_dir = args.data or tempfile.mkdtemp(prefix="vg-scale-")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        path = os.path.join(data_dir, f"img3d_{s}.zarr")
        t_w = time.perf_counter()
        nbytes = write_zarr(path, (s, s, s))
        write_s = time.perf_counter() - t_w
        print(f"3D {shape_str(s, 3)} ({mib(nbytes)} MiB uint16) written in {write_s:.0f} s ...", flush=True)
        cfg = {"kind": "model", "input": "zarr", "path": path, "checkpoint": os.path.abspath(args.checkpoint3d)}
        r = run_config(cfg, print)
    finally:
        if not args.data:
            shutil.rmtree(data_dir, ignore_errors=True)
    if "error" in r:
        print(r["error"])
        return 1
    r.update(size=s, voxels=float(s) ** 3, nbytes=nbytes)
    load1 = os.getloadavg()
    cmd = "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = [
        f"## Big inputs: the largest volume, {shape_str(s, 3)}",
        "",
        (
            f"Command: `{cmd.strip()}` ({(time.perf_counter() - t0) / 60:.1f} min; writing the Zarr store took "
            f"{write_s:.0f} s of it). Same set-up as the 3D sweep of the previous section (one process, checkpoint "
            f"`{os.path.basename(args.checkpoint3d)}`, domain {meta3d.get('domain')}"
            f"{f', training step {step}' if step else ''}; tiles of 192 voxels); load average before / after: "
            f"{load0[0]:.1f} / {load1[0]:.1f}."
        ),
        "",
        *size_table([r], 3)[:2],
        *size_table([r], 3)[2:],
        "",
        (
            f"Peak RSS {mib(r['self_peak_rss'])} MiB for an input of {mib(nbytes)} MiB as uint16 "
            f"({mib(2 * nbytes)} MiB as the float32 the model reads): "
            f"{r['self_peak_rss'] / nbytes:.2f}x the uint16 size, {r['self_peak_rss'] / (2 * nbytes):.2f}x the float32 "
            "size. Of the peak, about 0.33 GiB is the interpreter, libraries and model and about 0.2 GiB two 192^3 "
            "tiles with their reads (the 256^3-512^3 rows of the sweep); the rest is the final merge of the parts "
            f"kept for stitching ({(r.get('stitch_parts') or [0])[0]:,} candidate nodes here: KD-tree pairs, sorts, "
            "the sparse graph of merged pairs), which grows with the number of candidates the model emits, not "
            "with the voxels."
        ),
        "",
    ]
    text = "\n".join(md)
    print()
    print(text)
    if not args.no_write:
        print(f"written to {write_section('scale-largest', text)}")
    return 0


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="small sizes only (a couple of minutes)")
    ap.add_argument("--budget", type=float, default=1100.0, help="seconds for the two size sweeps together")
    ap.add_argument("--share2d", type=float, default=0.7, help="fraction of --budget for the 2D sweep (default 0.7)")
    ap.add_argument("--sizes2d", type=int, nargs="*", default=[1024, 2048, 4096, 8192])
    ap.add_argument("--sizes3d", type=int, nargs="*", default=[96, 128, 192, 256, 384, 512, 1024])
    ap.add_argument("--workers-size2d", type=int, default=2048)
    ap.add_argument("--workers-size3d", type=int, default=128)
    ap.add_argument("--workers-tile2d", type=int, default=None, help="2D tile size of the workers comparison")
    ap.add_argument(
        "--workers-tile3d", type=int, default=96, help="3D tile size of the workers comparison (several tiles)"
    )
    ap.add_argument("--contrast-size", type=int, default=4096, help="2D size of the in-memory and skeleton rows")
    ap.add_argument("--checkpoint3d", default=None, help="3D checkpoint when none is bundled")
    ap.add_argument("--data", default=None, help="folder for the Zarr images (default: a temporary one)")
    ap.add_argument(
        "--largest3d",
        type=int,
        default=None,
        metavar="N",
        help="only run one N^3 volume in-process and write it as its own section (scale-largest)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    if args.largest3d:
        return largest3d(args, argv)
    if args.quick:
        args.sizes2d, args.sizes3d = [512, 1024], [64, 96]
        args.workers_size2d, args.workers_size3d, args.contrast_size = 1024, 64, 1024
        args.workers_tile2d, args.workers_tile3d = 512, 48
        args.budget = min(args.budget, 240.0)

    def log(line: str) -> None:
        print(line, flush=True)

    from napari_vesselgraph.checkpoints import DEFAULT_CHECKPOINT, list_bundled

    ckpt3d, what3d = None, None
    bundled3d = [
        e["name"] for e in list_bundled() if int((e.get("meta") or {}).get("ndim", 0)) == 3 and not e.get("error")
    ]
    if bundled3d:
        ckpt3d, what3d = bundled3d[0], f"bundled checkpoint `{bundled3d[0]}`"
    elif args.checkpoint3d:
        from napari_vesselgraph.checkpoints import read_metadata

        meta3d = read_metadata(args.checkpoint3d)
        step = (meta3d.get("validation") or {}).get("step")
        ckpt3d = os.path.abspath(args.checkpoint3d)
        what3d = (
            f"checkpoint file `{os.path.basename(args.checkpoint3d)}` (not bundled: domain "
            f"{meta3d.get('domain')}{f', a snapshot at training step {step}' if step else ''})"
        )
    else:
        import torch

        from napari_vesselgraph.checkpoints import save_checkpoint
        from napari_vesselgraph.model import ModelConfig
        from napari_vesselgraph.model.network import Relationformer

        torch.manual_seed(0)
        tmpck = os.path.join(tempfile.mkdtemp(prefix="vg-scale-ck-"), "random3d.safetensors")
        save_checkpoint(tmpck, Relationformer(ModelConfig(ndim=3, patch_size=(32, 32, 32), query_grid=(4, 4, 4))), {})
        ckpt3d, what3d = tmpck, "a randomly initialised model (no 3D checkpoint available): many weak candidates"

    data_dir = args.data or tempfile.mkdtemp(prefix="vg-scale-")
    os.makedirs(data_dir, exist_ok=True)
    load0 = os.getloadavg()
    t_all = time.perf_counter()
    try:
        # sweeps
        rows2, stop2 = sweep(2, args.sizes2d, args.share2d * args.budget, data_dir, DEFAULT_CHECKPOINT, log)
        left = args.budget - (time.perf_counter() - t_all)
        rows3, stop3 = sweep(3, args.sizes3d, max(left, 0.25 * args.budget), data_dir, ckpt3d, log)
        # 1 vs 2 workers, same image, same run
        workers: dict[str, list[dict]] = {}
        for ndim, s, ck, tile in (
            (2, args.workers_size2d, DEFAULT_CHECKPOINT, args.workers_tile2d),
            (3, args.workers_size3d, ckpt3d, args.workers_tile3d),
        ):
            path = os.path.join(data_dir, f"img{ndim}d_{s}.zarr")
            nbytes = write_zarr(path, (s,) * ndim)
            rows = []
            for n in (0, 1, 2):
                log(f"workers {n}: {ndim}D {shape_str(s, ndim)} ...")
                cfg = {
                    "kind": "model",
                    "input": "zarr",
                    "path": path,
                    "checkpoint": ck,
                    "workers": n,
                    "tile_size": tile,
                }
                r = run_config(cfg, log)
                r["workers"] = n
                rows.append(r)
                if "error" not in r:
                    log(
                        f"  {r['elapsed_s']:.1f} s (start + warm-up {(r['cluster_start_s'] or 0) + (r['warmup_s'] or 0):.1f} s)"
                    )
            tiles = next((r["n_tiles"] for r in rows if "error" not in r), "?")
            workers[f"{ndim}D {shape_str(s, ndim)} ({mib(nbytes)} MiB, {tiles} tiles)"] = rows
        # contrast: numpy in memory, whole-image skeleton
        s = args.contrast_size
        path = os.path.join(data_dir, f"img2d_{s}.zarr")
        nbytes = write_zarr(path, (s, s))
        contrast = []
        for cfg, what in (
            (
                {"kind": "model", "input": "zarr", "path": path, "checkpoint": DEFAULT_CHECKPOINT},
                "model, Zarr path, tiles",
            ),
            (
                {"kind": "model", "input": "numpy", "path": path, "checkpoint": DEFAULT_CHECKPOINT},
                "model, numpy array in memory",
            ),
            ({"kind": "skeleton", "path": path}, "skeleton baseline, numpy array (whole image)"),
        ):
            same = next((r for r in rows2 if r["size"] == s), None) if cfg.get("input") == "zarr" else None
            if same is not None:
                r = dict(same)
            else:
                log(f"contrast: {what} {s}x{s} ...")
                r = run_config(cfg, log)
            r["what"] = what
            contrast.append(r)
    finally:
        if not args.data:
            shutil.rmtree(data_dir, ignore_errors=True)
    total = time.perf_counter() - t_all
    load1 = os.getloadavg()

    import torch

    import napari_vesselgraph

    cmd = "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = [
        "## Big inputs: memory and time (tiled prediction, dask workers)",
        "",
        (
            f"Command: `{cmd.strip()}` ({total / 60:.1f} min in all). Machine: {cpu_name()}, {os.cpu_count()} CPU cores "
            f"visible and shared with other jobs (load average before / after: {load0[0]:.1f} / {load1[0]:.1f}), "
            f"torch {torch.__version__} with 1 thread per process, Python {platform.python_version()}, "
            f"napari-vesselgraph {napari_vesselgraph.__version__}."
        ),
        "",
        (
            'Each row is a fresh process running `predict("image.zarr", normalize="tiles")` on a synthetic image '
            "written chunk by chunk as uint16 Zarr (never whole in memory, here or in the writer). Peak RSS is the "
            "process's own peak (`getrusage`): about 0.33 GiB of it is the interpreter with numpy, scipy, dask, torch "
            'and the model, whatever the image; "RSS above the first row" is what the bigger images cost on top. '
            "What the prediction holds: the tile being predicted and the next one (read ahead), raw and as float32, "
            "one batch of patches, the strided sample for the statistics (at most 2 M values), and the parts of the "
            "window graphs kept for stitching (column; merged at the end). CPU time (user + system of the process) "
            "is what a free core needs; wall time also depends on the load of the shared machine. Thresholds: the "
            "checkpoint's."
        ),
        "",
        f"### 2D — bundled checkpoint `{DEFAULT_CHECKPOINT}` (64x64 patches, overlap 0.25, batch 8, tiles of 1024 px)",
        "",
        *size_table(rows2, 2),
        "",
        growth(rows2),
        "",
        f"2D sweep: {stop2 or 'all sizes ran'}.",
        "",
        f"### 3D — {what3d} (tiles of 192 voxels)",
        "",
        *size_table(rows3, 3),
        "",
        growth(rows3),
        "",
        f"3D sweep: {stop3 or 'all sizes ran'}.",
        "",
        "### 1 vs 2 dask workers (same image, same run)",
        "",
        (
            "A LocalCluster of N single-threaded worker processes (what `dask_workers=N` starts), then "
            '`predict("image.zarr", scheduler=client)`: the model is scattered once to every worker, each worker '
            'reads its own tiles from the Zarr path, the client stitches. "Start + warm-up" is the cluster start-up '
            'and importing torch and the package on the workers (paid once per cluster); "prediction" is the '
            "call itself (model shipping and loading included); the speed-up is against the in-process run. RSS: "
            "the client process's own peak, and the peak of the sum over the whole process tree (client, scheduler, "
            "nannies, workers) sampled every 0.1 s. With 2 cores shared with other jobs, 2 workers cannot run at twice "
            "the speed of one."
        ),
        "",
        (
            "| image | workers | start + warm-up (s) | prediction (s) | speed-up | CPU (s): client + workers | "
            "client peak RSS (MiB) | process tree peak RSS (MiB) | model loads |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *[line for label, rows in workers.items() for line in worker_rows(label, rows)],
        "",
        f"### Contrast: the same {args.contrast_size}x{args.contrast_size} image ({mib(nbytes)} MiB uint16) held in memory",
        "",
        "| how | wall (s) | CPU (s) | peak RSS (MiB) | graph (nodes / edges) |",
        "|---|---:|---:|---:|---|",
        *[
            (
                f"| {r['what']} | failed: {r['error']} | | | |"
                if "error" in r
                else f"| {r['what']} | {r['elapsed_s']:.1f} | {r['cpu_s']:.1f} | {mib(r['self_peak_rss'])} | "
                f"{r['nodes']:,} / {r['edges']:,} |"
            )
            for r in contrast
        ],
        "",
    ]
    text = "\n".join(line for line in md if line is not None)
    print()
    print(text)
    if not args.no_write:
        print(f"written to {write_section('scale', text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
