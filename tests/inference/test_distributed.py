"""Prediction on a dask.distributed cluster of 2 worker processes on loopback: the same graph as in-process,
the model loaded once per worker, workers reading their own tiles of a Zarr path."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_vesselgraph.errors import Cancelled, VesselGraphError
from napari_vesselgraph.inference import predict

from .fakes import GTPredictor, coordinate_image, random_tree

distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")


def tiny_checkpoint(path):
    torch = pytest.importorskip("torch")
    from napari_vesselgraph.checkpoints import save_checkpoint
    from napari_vesselgraph.model import ModelConfig
    from napari_vesselgraph.model.network import Relationformer

    torch.manual_seed(0)
    cfg = ModelConfig(
        ndim=2, patch_size=(32, 32), backbone_channels=(8, 16, 32), hidden=32, heads=2, enc_layers=1,
        dec_layers=1, ffn=64, query_grid=(4, 4),
    )  # fmt: skip
    return save_checkpoint(
        path, Relationformer(cfg).eval(), {"name": "tiny-random", "thresholds": {"node": 0.4, "edge": 0.4}}
    )


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on loopback, shared by the tests of this module."""
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
        host="127.0.0.1",
    )  # fmt: skip
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny checkpoint and a 200 x 230 uint8 image as a Zarr store."""
    import zarr

    d = tmp_path_factory.mktemp("dist")
    ckpt = tiny_checkpoint(d / "tiny.safetensors")
    rng = np.random.default_rng(0)
    img = (rng.random((200, 230)) * 255).astype(np.uint8)
    img[90:96, :] = 255  # a bright bar
    path = d / "img.zarr"
    z = zarr.create_array(str(path), shape=img.shape, chunks=(64, 64), dtype="u1")
    z[:] = img
    return {"ckpt": str(ckpt), "zarr": str(path), "image": img}


def one_process(*args, **kw):
    """``predict`` in this process, without the ``support`` and ``brightness`` edge columns that only it measures
    (the cluster path does not read tiles on the client; see ``inference.support``)."""
    g = predict(*args, **kw)
    g.edge_attrs.pop("support", None)
    g.edge_attrs.pop("brightness", None)
    return g


def _loads(client, key=None):
    from napari_vesselgraph.inference import distributed as dist

    return client.run(lambda: list(dist.LOADS))


def test_checkpoint_on_a_zarr_path_equals_single_process(client, data):
    kw = {"checkpoint": data["ckpt"], "tile_size": 80, "keep_raw": True}
    ref = one_process(data["zarr"], normalize="tiles", device="cpu", **kw)
    assert ref.metadata["n_tiles"] >= 6 and ref.n_nodes > 0
    g = predict(data["zarr"], scheduler=client, device="cpu", **kw)
    assert g.differences(ref) == []
    md = g.metadata
    assert md["checkpoint"] == "tiny-random" and md["source_image"] == data["zarr"]
    assert md["workers_used"] >= 1 and md["cluster_threads"] == 2
    # the model was built once per worker that ran tiles, not once per tile ...
    assert md["model_loads"] == md["workers_used"] < md["n_tiles"]
    # ... and a second run with the same checkpoint reuses it (same SHA-256: no new load anywhere)
    before = _loads(client)
    again = predict(data["zarr"], scheduler=client.scheduler.address, device="cpu", **kw)
    assert again.differences(ref) == []
    after = _loads(client)
    assert before == after
    assert all(len(keys) == len(set(keys)) <= 1 for keys in after.values())
    # thresholds: the checkpoint's, as in-process
    t = predict(data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=80, device="cpu")
    assert t.metadata["node_threshold"] == 0.4
    assert t.differences(one_process(data["zarr"], checkpoint=data["ckpt"], tile_size=80, normalize="tiles")) == []
    # the image-support clean-up needs the tiles on the client: said, not silently skipped
    with pytest.warns(UserWarning, match="min_support 0.5 is not applied with dask workers"):
        w = predict(data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=80, min_support=0.5)
    assert w.metadata["support"].startswith("not measured")
    with pytest.warns(UserWarning, match="min_brightness 0.3 is not applied with dask workers"):
        w = predict(data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=80, min_brightness=0.3)
    assert w.metadata["brightness"].startswith("not measured") and "support" not in w.metadata


def test_workers_read_their_own_tiles_from_the_path(client, data, monkeypatch):
    """With a path, the client never reads a tile: only the statistics sample."""
    from napari_vesselgraph.inference import reader as reader_mod

    boxes = []
    real = reader_mod.ImageSource.read

    def spy(self, box=None, step=None):
        boxes.append((box, step))
        return real(self, box, step)

    monkeypatch.setattr(reader_mod.ImageSource, "read", spy)
    predict(data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=80, device="cpu")
    assert len(boxes) == 1 and boxes[0][0] is None  # the strided sample for the global statistics


def test_numpy_image_and_predictor_object_with_a_local_cluster():
    """dask_workers=2 starts (and closes) its own LocalCluster; a predictor object is shipped to each worker."""
    shape, patch = (190, 250), (64, 64)
    gt = random_tree(shape, seed=1, n_vessels=8)
    img = coordinate_image(shape)
    kw = {"tile_size": 100, "keep_raw": True}
    ref = one_process(img, predictor=GTPredictor(gt, shape, patch, junk=True), **kw)
    calls, defaults = [], set()
    before = distributed.client._get_global_client()

    def progress(done, total, info):
        calls.append((done, total))
        defaults.add(id(distributed.client._get_global_client()))  # dask's default client meanwhile

    g = predict(img, predictor=GTPredictor(gt, shape, patch, junk=True), dask_workers=2, progress=progress, **kw)
    assert g.differences(ref) == []
    assert g.metadata["cluster"].startswith("local cluster of 2")
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == ref.metadata["n_patches"]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # the temporary cluster never became dask's default (other dask work in the process stays local)
    assert defaults == {id(before)}


def test_dask_array_input_and_3d(client):
    da = pytest.importorskip("dask.array")
    shape, patch = (40, 90, 100), (32, 32, 32)
    gt = random_tree(shape, seed=2, n_vessels=5)
    img = coordinate_image(shape)
    ref = one_process(img, predictor=GTPredictor(gt, shape, patch))
    lazy = da.from_array(img, chunks=(20, 45, 50))
    g = predict(lazy, predictor=GTPredictor(gt, shape, patch), scheduler=client, tile_size=48)
    assert g.metadata["n_tiles"] >= 8
    assert g.differences(ref) == []


def test_cancel_on_the_cluster(client, data):
    ev = threading.Event()

    def progress(done, total, info):
        if done > 0:
            ev.set()

    with pytest.raises(Cancelled):
        predict(
            data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=40, device="cpu",
            progress=progress, cancel=ev, max_in_flight=1,
        )  # fmt: skip
    # the cluster is still usable afterwards
    g = predict(data["zarr"], scheduler=client, checkpoint=data["ckpt"], tile_size=80, device="cpu")
    assert g.n_nodes >= 0


def test_cluster_errors(data):
    with pytest.raises(VesselGraphError, match="positive number"):
        predict(data["zarr"], checkpoint=data["ckpt"], dask_workers=0)
    with pytest.raises(VesselGraphError, match="only method='model'"):
        predict(data["zarr"], method="skeleton", dask_workers=2)
    with pytest.raises(VesselGraphError, match="not available on a cluster"):
        predict(data["zarr"], checkpoint=data["ckpt"], dask_workers=2, normalize="whole")


def test_cli_predict_on_a_scheduler(client, data, tmp_path, capsys):
    from napari_vesselgraph.cli import main
    from napari_vesselgraph.io import read_graph

    out = tmp_path / "out.graphml"
    rc = main(
        ["predict", data["zarr"], "-o", str(out), "--checkpoint", data["ckpt"], "--device", "cpu",
         "--scheduler", client.scheduler.address, "--tile-size", "80"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    g = read_graph(out)
    ref = predict(data["zarr"], checkpoint=data["ckpt"], tile_size=80, normalize="tiles", device="cpu")
    assert g.n_nodes == ref.n_nodes and g.n_edges == ref.n_edges
    assert np.allclose(np.sort(g.nodes, axis=0), np.sort(ref.nodes, axis=0))


# ------------------------------------------------------------------ a wrong --scheduler fails fast and clearly
def _cli_predict_on(address, data, tmp_path, capsys):
    import time

    from napari_vesselgraph.cli import main

    t0 = time.perf_counter()
    rc = main(["predict", data["zarr"], "-o", str(tmp_path / "o.json"), "--checkpoint", data["ckpt"],
               "--device", "cpu", "--scheduler", address])  # fmt: skip
    err = capsys.readouterr().err.strip()
    return rc, err, time.perf_counter() - t0


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:notaport", "tcp://:8786", "127.0.0.1:99999", "http://127.0.0.1:8787/status", "no such host"],
)
def test_malformed_scheduler_address_is_refused_at_once(address, data, tmp_path, capsys):
    rc, err, seconds = _cli_predict_on(address, data, tmp_path, capsys)
    assert rc == 2 and err.startswith("vesselgraph: error:") and "\n" not in err and "scheduler" in err
    assert seconds < 3


def test_http_server_on_the_scheduler_port_is_a_clear_error(data, tmp_path, capsys):
    """The dashboard-port mistake: something answers on the port, but it is a web server, not dask."""
    import http.server

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rc, err, seconds = _cli_predict_on(f"127.0.0.1:{srv.server_address[1]}", data, tmp_path, capsys)
    finally:
        srv.shutdown()
        srv.server_close()
    assert rc == 2 and "\n" not in err and "dask scheduler" in err and "dashboard" in err
    assert seconds < 10


def test_nothing_listening_is_a_quick_clear_error(data, tmp_path, capsys):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # a free port: connections are refused
    rc, err, seconds = _cli_predict_on(f"tcp://127.0.0.1:{port}", data, tmp_path, capsys)
    assert rc == 2 and "\n" not in err and "cannot connect" in err
    assert seconds < 5
