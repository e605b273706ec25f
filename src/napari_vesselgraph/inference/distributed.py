"""Prediction on a dask.distributed cluster: tiles run on the workers, stitching happens here.

``predict_distributed(image, checkpoint, scheduler="tcp://host:8786")`` (or ``dask_workers=N`` for a local
cluster of N single-threaded worker processes, or ``client=`` an existing ``distributed.Client``) does what
:func:`napari_vesselgraph.inference.predict` does, with the tiles of the sliding window
(:func:`~napari_vesselgraph.inference.grid.make_tiles`) as tasks:

* **The model goes to each worker once.** The checkpoint file's bytes (a few MB) are scattered to every
  worker with ``broadcast=True`` before the first task, and each worker process keeps the predictor it
  builds from them in a small cache keyed by the bytes' SHA-256 (:data:`LOADS` lists what it loaded), so
  a task never carries the model and a worker never loads it twice. A ``predictor=`` object is scattered
  the same way (it must pickle).
* **Workers read their own pixels.** When the image is a path (Zarr, OME-Zarr, TIFF, ...), each worker
  opens it itself (once per process) and reads only the boxes of its tiles; a zarr/dask array is pickled
  once (its graph and store location, not its pixels) and broadcast. Only a numpy array in this
  process's memory is sent tile by tile. Paths must be readable by the workers under the same name.
* **The client stitches.** A worker returns, per window, only the part of its graph inside the
  window's core (:func:`~napari_vesselgraph.inference.stitch.core_part`); the client adds these to a
  :class:`~napari_vesselgraph.inference.stitch.StreamingStitcher` as tiles complete, in whatever order.
  At most ``max_in_flight`` tiles are submitted at a time, so cancel is quick and nothing piles up.

Normalisation: tiles are normalised with global statistics computed here from a strided subsample of
the image (``normalize="tiles"`` of the single-process path; ``"whole"`` is not available on a cluster).
With the same options the graph equals the single-process result with ``normalize="tiles"`` and the
same ``tile_size`` (the same windows in the same batches; on CPU, with the same number of torch threads).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VesselGraphError
from .plan import (
    PredictionPlan,
    PredictOptions,
    as_array,
    check_cancel,
    default_checkpoint,
    image_layout,
    open_image,
    tile_batches,
    tile_order,
)

#: checkpoint keys this worker process loaded a predictor for, in order (one entry per load)
LOADS: list[str] = []
_CACHE: OrderedDict[str, Any] = OrderedDict()
_SOURCES: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()
_CACHE_SIZE = 2


# ------------------------------------------------------------------ client side: what the workers need
@dataclass
class CheckpointInfo:
    """What the client needs to know about a checkpoint without loading the model (no torch)."""

    ndim: int
    patch_size: tuple[int, ...]
    channels: int
    meta: dict
    input_meta: dict
    device: str = "cluster"

    @classmethod
    def from_path(cls, path: Path) -> CheckpointInfo:
        from ..checkpoints import CheckpointMeta, read_metadata

        raw = read_metadata(path)
        info = CheckpointMeta.from_dict(raw, str(path))
        ndim = info.ndim or 2
        patch = info.patch_size or ()
        if len(patch) == 1:
            patch = patch * ndim
        channels = info.channels or 1
        meta = dict(raw, path=str(path))
        inp = info.input_meta
        inp.setdefault("ndim", ndim)
        inp.setdefault("channels", channels)
        return cls(ndim, tuple(patch), channels, meta, inp)


@dataclass
class TileJob:
    """One task: a tile's windows, where they are, their cores, and how to read and normalise them."""

    tile: int
    windows: tuple[int, ...]
    box: tuple[tuple[int, int], ...]
    starts: np.ndarray  # (k, D) window starts, one row per entry of ``windows``
    core_lo: np.ndarray  # (k, D)
    core_hi: np.ndarray
    image_shape: tuple[int, ...]  # spatial shape
    patch: tuple[int, ...]
    stats: Any  # global (lo, hi), or None: each window normalised by predictor.prepare
    pad_mode: str
    batch_size: int
    skip_empty: bool
    merge_radius: float
    predict_kwargs: dict = field(default_factory=dict)  # for predict_batch (PredictionPlan.predict_kwargs)


@dataclass
class SourceSpec:
    """How a worker gets the pixels: ``kind`` is ``"path"`` (open ``path`` itself), ``"object"`` (the
    array travels pickled, once per worker) or ``"pixels"`` (the task carries its box)."""

    kind: str
    spatial_ndim: int
    has_channels: bool
    channel: int | None
    path: str | None = None
    key: str | None = None


class BoxPixels:
    """The raw pixels of one box of an image held in the client's memory (channel already picked)."""

    def __init__(self, data: np.ndarray, box, image_shape):
        self.data = np.ascontiguousarray(data)
        self.box = tuple(tuple(int(v) for v in b) for b in box)
        self.shape = tuple(int(n) for n in image_shape)
        self.spatial_ndim = len(self.shape)
        self.lazy = False

    def read(self, box=None, step=None) -> np.ndarray:
        box = box or self.box
        sl = tuple(slice(lo - blo, hi - blo) for (lo, hi), (blo, _) in zip(box, self.box))
        return self.data[sl]


# ------------------------------------------------------------------ worker side
def _relax_malloc_trim() -> bool:
    """Undo the effect of dask's ``MALLOC_TRIM_THRESHOLD_=65536`` on torch in this worker process (glibc).

    dask's nannies start workers with that variable (``distributed.nanny.pre-spawn-environ``) so that freed
    memory goes back to the OS. It also switches off glibc's adaptive mmap threshold, so every activation
    tensor above 128 KiB is a fresh ``mmap`` with page faults: the model ran about 2x slower in a worker than
    in a plain process here. Fixed thresholds (mmap above 32 MiB, trim above 128 MiB) restore the speed;
    memory is still returned, in larger steps. Returns True when it applied them.
    """
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 128 << 20))
    except (OSError, AttributeError):  # not glibc
        return False


def _load_predictor(payload, meta_override: dict, device, torch_threads):
    is_checkpoint = isinstance(payload, (bytes, bytearray, memoryview))
    if is_checkpoint:
        _relax_malloc_trim()
    if torch_threads and (is_checkpoint or "torch" in sys.modules):
        import torch

        torch.set_num_threads(int(torch_threads))
    if not is_checkpoint:
        return payload  # a predictor object, unpickled on this worker
    from ..model.predictor import make_predictor

    fd, tmp = tempfile.mkstemp(suffix=".safetensors", prefix="vesselgraph-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(payload))
        pred = make_predictor(tmp, device=device)
    finally:
        try:
            os.unlink(tmp)
        except OSError:  # pragma: no cover
            pass
    pred.meta.update(meta_override)
    return pred


def worker_predictor(key: str, payload, meta_override: dict, device="auto", torch_threads=None):
    """The predictor for checkpoint ``key`` in this worker process: built once, then cached."""
    with _LOCK:
        pred = _CACHE.get(key)
        if pred is None:
            pred = _load_predictor(payload, meta_override, device, torch_threads)
            _CACHE[key] = pred
            LOADS.append(key)
            while len(_CACHE) > _CACHE_SIZE:
                _, old = _CACHE.popitem(last=False)
                if hasattr(old, "close"):
                    old.close()
        else:
            _CACHE.move_to_end(key)
        return pred


def worker_source(spec: SourceSpec, payload):
    """The image source a task reads from (opened once per worker process for a path)."""
    from .reader import ImageSource

    if spec.kind == "pixels":
        return payload
    if spec.kind == "object":
        return payload
    with _LOCK:
        src = _SOURCES.get(spec.key)
        if src is None:
            arr, _, _ = open_image(spec.path)
            src = ImageSource(arr, spec.spatial_ndim, spec.has_channels, spec.channel)
            _SOURCES[spec.key] = src
            while len(_SOURCES) > _CACHE_SIZE:
                _SOURCES.popitem(last=False)
        return src


def run_tile(model_key, model_payload, meta_override, device, torch_threads, spec, source_payload, job: TileJob):
    """A dask task: predict the windows of one tile and return their core contributions."""
    from .reader import PatchReader
    from .stitch import core_part

    t0 = time.perf_counter()
    predictor = worker_predictor(model_key, model_payload, meta_override, device, torch_threads)
    source = worker_source(spec, source_payload)
    if tuple(source.shape) != tuple(job.image_shape):
        raise VesselGraphError(
            f"the worker sees an image of shape {tuple(source.shape)}, the client one of {tuple(job.image_shape)} "
            f"({spec.path or spec.kind}); do the workers see the same file?"
        )
    reader = PatchReader(source, predictor, mode="tiles", pad_mode=job.pad_mode, stats=job.stats)
    data = reader.read_box(job.box)
    t_read = time.perf_counter() - t0
    row = {w: k for k, w in enumerate(job.windows)}
    starts = {w: tuple(int(v) for v in job.starts[k]) for k, w in enumerate(job.windows)}

    class _T:  # the tile as tile_batches wants it
        windows = job.windows
        box = job.box

    parts, n_model = [], 0
    for _idx, kept, batch in tile_batches(reader, data, _T, starts, job.patch, job.batch_size, job.skip_empty):
        if batch is None:
            continue
        out = predictor.predict_batch(batch, **job.predict_kwargs)
        if len(out) != len(kept):
            raise VesselGraphError(f"the predictor returned {len(out)} results for {len(kept)} patches")
        n_model += len(kept)
        for w, res in zip(kept, out):
            k = row[w]
            parts.append(
                (w, core_part(res, job.starts[k], job.core_lo[k], job.core_hi[k], len(job.patch), job.merge_radius))
            )
    return {
        "tile": job.tile,
        "windows": job.windows,
        "parts": parts,
        "n_model": n_model,
        "read_s": t_read,
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }


# ------------------------------------------------------------------ the cluster
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
DEFAULT_SCHEDULER_PORT = 8786
PROBE_TIMEOUT = 3.0  # seconds to connect, and then for the scheduler's first message


def check_scheduler_address(address) -> str:
    """``address`` as ``scheme://host:port`` (``host:port`` means tcp; no port means 8786), or a one-line
    :class:`VesselGraphError` saying what is wrong with it, before anything tries to connect."""
    import re

    from ..settings import normalize_scheduler_address

    raw = str(address or "").strip()
    if raw.lower().startswith("inproc://"):  # a scheduler in this process (LocalCluster(processes=False))
        return raw
    a = normalize_scheduler_address(raw)
    usage = "expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([^/]*))?/?", a)
    scheme = a.split("://", 1)[0].lower() if "://" in a else ""
    if scheme in ("http", "https"):
        raise VesselGraphError(
            f"scheduler address {raw!r} is a web address (the dashboard?); the scheduler itself listens on "
            f"tcp://HOST:{DEFAULT_SCHEDULER_PORT} ({usage})"
        )
    if m is None:
        raise VesselGraphError(f"bad scheduler address {raw!r}: {usage}")
    scheme, host, port = m.group(1).lower(), m.group(2), m.group(3)
    if scheme not in SCHEDULER_SCHEMES:
        raise VesselGraphError(f"bad scheduler address {raw!r}: unknown protocol {scheme!r} ({usage})")
    if port is None:
        port = str(DEFAULT_SCHEDULER_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise VesselGraphError(f"bad scheduler address {raw!r}: the port must be a number from 1 to 65535 ({usage})")
    return f"{scheme}://{host}:{int(port)}"


def _probe_scheduler(address: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect to a ``tcp://`` scheduler address and wait for the greeting a dask scheduler sends first (its
    handshake): refused connections, silent servers (a web server such as the dashboard waits for a request)
    and other protocols give a one-line :class:`VesselGraphError` within a few seconds, instead of the
    client's long timeout or hang. Other protocols (tls, ws, ...) only get the connection check."""
    import socket
    import struct

    scheme, rest = address.split("://", 1)
    host, port = rest.rsplit(":", 1)
    host = host.strip("[]")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        if isinstance(e, socket.timeout):
            why = f"no answer within {timeout:g} s"
        raise VesselGraphError(
            f"cannot connect to the dask scheduler at {address}: {why} (is the scheduler running, and is this "
            "its address?)"
        ) from None
    with sock:
        if scheme != "tcp":
            return
        head = b""
        try:
            while len(head) < 8:
                part = sock.recv(8 - len(head))
                if not part:
                    break
                head += part
        except OSError:  # socket.timeout included: a server that waits for the client to speak first
            pass
    not_dask = (
        f"something listens at {address} but it is not a dask scheduler"
        f" (the dashboard, a web server, is usually on port 8787; the scheduler on {DEFAULT_SCHEDULER_PORT})"
    )
    if len(head) < 8:
        raise VesselGraphError(not_dask + ("" if head else f": it sent no dask handshake within {timeout:g} s"))
    (n,) = struct.unpack("<Q", head)
    if head[:4] in (b"HTTP", b"SSH-") or not 0 < n < 2**24:
        raise VesselGraphError(not_dask)


@contextmanager
def cluster_client(scheduler=None, dask_workers: int | None = None, threads_per_worker: int = 1, timeout: float = 10):
    """A ``distributed.Client``: ``scheduler`` (a Client, which is left open, or an address), or a new
    ``LocalCluster`` of ``dask_workers`` processes (closed on exit). Yields ``(client, description)``."""
    try:
        import distributed
    except ImportError:  # pragma: no cover
        raise VesselGraphError(
            "distributed prediction needs the 'distributed' package: pip install distributed"
        ) from None
    if isinstance(scheduler, distributed.Client):
        yield scheduler, f"existing client {scheduler.scheduler.address if scheduler.scheduler else ''}"
        return
    if scheduler is not None:
        address = check_scheduler_address(scheduler)
        if not address.startswith("inproc://"):
            _probe_scheduler(address, min(PROBE_TIMEOUT, timeout))
        try:
            # not the default client: dask work elsewhere in this process (napari drawing a dask layer, say)
            # must not be sent to the cluster while it is open
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, a failed handshake (ValueError, ...)
            text = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise VesselGraphError(f"cannot connect to the dask scheduler at {address}: {text}") from None
        try:
            yield client, f"scheduler {address}"
        finally:
            client.close()
        return
    try:
        n = int(dask_workers)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise VesselGraphError(f"dask_workers must be a positive number of worker processes, got {dask_workers!r}")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=n,
        threads_per_worker=int(threads_per_worker),
        processes=True,
        dashboard_address=":0",  # a free port: never clashes with another cluster's 8787
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client, f"local cluster of {n} worker process{'es' if n > 1 else ''} x {threads_per_worker} thread"
    finally:
        client.close()
        cluster.close()


def _n_threads(client) -> int:
    try:
        return max(1, sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values()))
    except (KeyError, TypeError, ValueError, OSError):  # pragma: no cover - best effort
        return 1


# ------------------------------------------------------------------ the call
def predict_distributed(
    image,
    checkpoint=None,
    *,
    scheduler=None,
    dask_workers: int | None = None,
    client=None,
    method: str = "model",
    device="auto",
    scale=None,
    node_threshold: float | None = None,
    edge_threshold: float | None = None,
    overlap: float | None = None,
    batch_size: int = 8,
    region=None,
    channel: int | None = None,
    progress=None,
    cancel=None,
    predictor=None,
    keep_raw: bool = False,
    torch_threads: int | None = 1,
    max_in_flight: int | None = None,
    **method_params,
):
    """:func:`~napari_vesselgraph.inference.predict` with the tiles on a dask.distributed cluster.

    ``scheduler``: address of a running scheduler (``"tcp://host:8786"``) or a ``distributed.Client``;
    ``dask_workers``: start a ``LocalCluster`` of that many single-threaded worker processes for this call
    (closed at the end); ``client``: an open ``distributed.Client`` (left open). ``device`` is what each
    worker uses (``"auto"``: its GPU if it has one). ``torch_threads``: torch threads per worker process
    (default 1; ``None`` leaves torch's default). ``max_in_flight``: tiles submitted at once (default: twice
    the cluster's threads). Other arguments as for ``predict``; ``normalize`` may be ``"auto"`` or
    ``"tiles"`` (both mean global statistics applied per tile). Only ``method="model"`` runs on a cluster.
    The metadata records the cluster, the number of workers that ran tiles and the model loads.
    """
    t_start = time.perf_counter()
    if str(method).lower() != "model":
        raise VesselGraphError("only method='model' runs on a dask cluster; the skeleton baseline runs in-process")
    overlap = 0.25 if overlap is None else overlap
    options = PredictOptions.from_call(node_threshold, edge_threshold, overlap, batch_size, **method_params)
    if options.normalize not in ("auto", "tiles"):
        raise VesselGraphError(
            f"normalize={options.normalize!r} is not available on a cluster: tiles are normalised with global "
            "statistics (normalize='tiles')"
        )
    image, path, file_scale = open_image(image)
    if scale is None:
        scale = file_scale
    arr = as_array(image)
    shape = tuple(int(n) for n in arr.shape)
    if channel is None and len(shape) == 4:
        image_layout(shape, None, None)
    check_cancel(cancel)

    # the model: checkpoint bytes (workers build the predictor), or a predictor object
    if predictor is None:
        from ..checkpoints import resolve

        ckpt = checkpoint if checkpoint is not None else default_checkpoint(shape, channel)
        ckpt_path = resolve(ckpt)
        info = CheckpointInfo.from_path(ckpt_path)
        model_payload = ckpt_path.read_bytes()
        model_key = "ckpt-" + hashlib.sha256(model_payload).hexdigest()
        meta_override = {"path": str(ckpt_path), "name": info.meta.get("name") or ckpt_path.stem}
        client_predictor = info
    else:
        model_payload = predictor
        model_key = f"object-{uuid.uuid4().hex}"
        meta_override = {}
        client_predictor = predictor

    plan = PredictionPlan.build(arr, shape, client_predictor, checkpoint, scale, region, channel, options)
    from .reader import PatchReader

    reader = PatchReader(plan.source, client_predictor, mode="tiles", pad_mode=options.pad_mode)
    stats = reader.stats
    plan.meta["normalization"] = reader.normalization
    plan.meta["device"] = str(device) if predictor is None else str(getattr(predictor, "device", device))
    if path:
        plan.meta["source_image"] = path
    if isinstance(arr, np.ndarray) and not isinstance(arr, np.memmap):
        spec = SourceSpec("pixels", plan.spatial_ndim, False, None)
    elif path:
        st = os.stat(path)
        spec = SourceSpec(
            "path", plan.spatial_ndim, plan.has_channels, plan.channel, path=os.path.abspath(path),
            key=f"{os.path.abspath(path)}:{st.st_mtime_ns}:{plan.channel}",
        )  # fmt: skip
    else:
        spec = SourceSpec("object", plan.spatial_ndim, plan.has_channels, plan.channel)

    stitcher = plan.stitcher()
    grid, tiles = plan.grid, plan.tiles
    n = len(grid)

    def job_for(tile) -> TileJob:
        w = np.asarray(tile.windows, np.int64)
        return TileJob(
            tile=tile.index, windows=tile.windows, box=tile.box, starts=np.asarray(grid.starts, np.int64)[w],
            core_lo=stitcher.core_lo[w], core_hi=stitcher.core_hi[w], image_shape=plan.source.shape,
            patch=plan.patch, stats=stats, pad_mode=options.pad_mode, batch_size=options.batch_size,
            skip_empty=options.skip_empty, merge_radius=options.merge_radius, predict_kwargs=dict(plan.predict_kwargs),
        )  # fmt: skip

    order = tile_order(tiles)
    t_cluster = time.perf_counter()
    with cluster_client(client if client is not None else scheduler, dask_workers) as (cl, where):
        cluster_s = time.perf_counter() - t_cluster
        n_threads = _n_threads(cl)
        limit = int(max_in_flight) if max_in_flight else max(2, 2 * n_threads)
        model_f = cl.scatter(model_payload, broadcast=True, hash=False)
        src_f = cl.scatter(plan.source, broadcast=True, hash=False) if spec.kind == "object" else None
        run_id = uuid.uuid4().hex[:8]
        queue = list(order)
        running: set = set()
        pids: set = set()
        n_model = 0
        task_s = read_s = 0.0
        done = 0
        t0 = time.perf_counter()
        if progress is not None:
            progress(0, n, {"stage": "predict", "tiles": 0, "n_tiles": len(tiles), "elapsed_s": 0.0})

        def submit_next() -> None:
            ti = queue.pop(0)
            tile = tiles[ti]
            if spec.kind == "pixels":
                payload = BoxPixels(plan.source.read(tile.box), tile.box, plan.source.shape)
                payload = cl.scatter(payload, hash=False)
            else:
                payload = src_f
            f = cl.submit(
                run_tile, model_key, model_f, meta_override, device, torch_threads, spec, payload, job_for(tile),
                key=f"vesselgraph-tile-{run_id}-{ti}", pure=False, retries=1,
            )  # fmt: skip
            running.add(f)

        try:
            while queue and len(running) < limit:
                submit_next()
            tiles_done = 0
            while running:
                finished = [f for f in running if f.done()]
                if not finished:
                    check_cancel(cancel)
                    time.sleep(0.02)
                    continue
                for f in finished:
                    running.discard(f)
                    out = f.result()
                    f.release()
                    got = set()
                    for w, part in out["parts"]:
                        stitcher.add_part(w, part)
                        got.add(w)
                    for w in out["windows"]:
                        if w not in got:
                            stitcher.add_empty(w)
                    pids.add(out["pid"])
                    n_model += out["n_model"]
                    task_s += out["seconds"]
                    read_s += out["read_s"]
                    done += len(out["windows"])
                    tiles_done += 1
                    if queue:
                        submit_next()
                    check_cancel(cancel)
                    if progress is not None:
                        progress(
                            done,
                            n,
                            {
                                "stage": "predict",
                                "tiles": tiles_done,
                                "n_tiles": len(tiles),
                                "elapsed_s": round(time.perf_counter() - t0, 3),
                            },
                        )
            loads = cl.run(_worker_loads, model_key)
        except BaseException:
            for f in running:
                f.cancel()
            raise
        finally:
            model_f.release()
            if src_f is not None:
                src_f.release()
    if not stitcher.complete:  # pragma: no cover - every tile reports all its windows
        raise VesselGraphError(f"{n - stitcher.n_done} windows are missing from the cluster's results")
    raw = stitcher.result()
    # support and brightness need the tiles read again here, which this path never does
    import warnings

    for name, value in (("min_support", plan.cleanup.min_support), ("min_brightness", plan.cleanup.min_brightness)):
        if value > 0:
            warnings.warn(
                f"{name} {value:g} is not applied with dask workers (the edges' image support and brightness "
                "are measured only in a single process: predict without scheduler / dask_workers)",
                UserWarning,
                stacklevel=2,
            )
            raw.metadata[name[4:]] = f"not measured (dask workers): {name} not applied"
    raw.metadata.update(
        cluster=where,
        cluster_threads=n_threads,
        workers_used=len(pids),
        model_loads=int(sum(loads.values())),
        cluster_start_s=round(cluster_s, 3),
        worker_task_s=round(task_s, 3),
        worker_read_s=round(read_s, 3),
    )
    return plan.finish(raw, keep_raw, t_start)


def _worker_loads(key: str) -> int:
    """How many times this worker process loaded the model ``key`` (run on every worker)."""
    return sum(1 for k in LOADS if k == key)


__all__ = ["LOADS", "CheckpointInfo", "cluster_client", "predict_distributed", "run_tile", "worker_predictor"]
