"""The annotation store: a dataset folder written on every change, atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from napari_vesselgraph.annotations import AnnotationStore, cut_patch, initial_graph, snap_origin
from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.synth import read_dataset


def rgb_patch(seed: int, size=32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


def small_graph(offset: float = 0.0) -> VesselGraph:
    return VesselGraph(
        np.array([[2.0, 3.0], [10.0, 12.0], [20.0 + offset, 25.0]]),
        np.array([[0, 1], [1, 2]]),
        node_attrs={"radius": np.array([1.0, 2.0, 1.5])},
    )


@pytest.fixture
def store(tmp_path):
    return AnnotationStore.create(
        tmp_path / "project", scale=(0.5, 0.5), ndim=2, channels=3, source_image="retina", patch_size=32
    )


def test_create_add_edit_reopen_intact(store, tmp_path):
    a = store.add_patch(rgb_patch(0), origin=(100, 200), graph=small_graph())
    b = store.add_patch(rgb_patch(1), origin=(300, 40))
    assert (a, b) == ("patch_0001", "patch_0002")
    edited = small_graph(offset=5.0)
    edited.edges = np.array([[0, 2]])
    store.update_graph(a, edited, status="done")

    again = AnnotationStore.open(tmp_path / "project")
    assert again.ids() == [a, b]
    assert again.scale == (0.5, 0.5) and again.channels == 3 and again.patch_size == (32, 32)
    assert again.source_image == "retina"
    img, g = again.load(a)
    assert np.array_equal(img, rgb_patch(0))
    assert np.allclose(g.nodes, edited.nodes) and g.edges.tolist() == [[0, 2]]
    assert g.scale == (0.5, 0.5)
    entry = again.get(a)
    assert entry["origin"] == [100, 200] and entry["size"] == [32, 32] and entry["status"] == "done"
    assert entry["created"] <= entry["modified"]
    _, gb = again.load(b)
    assert gb.n_nodes == 0 and again.get(b)["status"] == "draft"
    # image coordinates <-> patch coordinates
    assert np.allclose(again.to_image(a, g).nodes, g.nodes + [100, 200])
    assert np.allclose(again.from_image(a, again.to_image(a, g)).nodes, g.nodes)


def test_store_is_a_dataset(store, tmp_path):
    store.add_patch(rgb_patch(0), (0, 0), small_graph())
    store.add_patch(rgb_patch(1), (40, 40), small_graph(1.0))
    store.assign_splits(0.5)
    recs = read_dataset(tmp_path / "project")
    assert [r.id for r in recs] == store.ids()
    assert sorted(r.split for r in recs) == ["train", "val"]
    assert recs[0].image.shape == (32, 32, 3) and recs[0].image.dtype == np.float32
    assert recs[0].graph.n_edges == 2
    m = json.loads((tmp_path / "project" / "manifest.json").read_text())
    assert m["kind"] == "annotations" and m["format"] == "napari-vesselgraph-dataset"


def test_ids_are_not_reused_after_delete(store, tmp_path):
    a = store.add_patch(rgb_patch(0), (0, 0))
    b = store.add_patch(rgb_patch(1), (0, 0))
    store.delete_patch(b)
    assert not (tmp_path / "project" / "images" / f"{b}.tif").exists()
    again = AnnotationStore.open(tmp_path / "project")
    assert again.ids() == [a]
    assert again.add_patch(rgb_patch(2), (0, 0)) == "patch_0003"


def test_graph_is_cleaned_for_the_dataset(store):
    g = VesselGraph(
        np.array([[-4.0, 3.0], [10.0, 50.0], [5.0, 5.0]]),
        np.array([[0, 1], [1, 0], [2, 2]]),
        node_attrs={"radius": np.array([1.0, np.nan, 3.0])},
    )
    pid = store.add_patch(rgb_patch(0), (0, 0), g)
    back = store.load_graph(pid)
    assert np.allclose(back.nodes, [[0, 3], [10, 31], [5, 5]])  # dragged past the border: on the border
    assert back.edges.tolist() == [[0, 1]]  # repeated edge and self loop dropped
    assert np.allclose(back.node_attrs["radius"], [1.0, 2.0, 3.0])  # a new node gets the median radius


def test_assign_splits_is_deterministic_and_keeps_a_training_patch(store):
    ids = [store.add_patch(rgb_patch(i), (i, i)) for i in range(5)]
    first = store.assign_splits(0.4, seed=3)
    assert len(first["val"]) == 2 and len(first["train"]) == 3
    assert store.assign_splits(0.4, seed=3) == first
    assert [store.get(i)["split"] for i in ids].count("val") == 2
    assert store.assign_splits(0.0)["val"] == []
    for pid in ids[1:]:
        store.delete_patch(pid)
    assert store.assign_splits(0.9)["val"] == []  # one patch: nothing to hold out
    with pytest.raises(VesselGraphError):
        store.assign_splits(1.0)


def test_wrong_shapes_and_existing_folder_are_refused(store, tmp_path):
    with pytest.raises(VesselGraphError, match="shape"):
        store.add_patch(np.zeros((32, 32)), (0, 0))
    with pytest.raises(VesselGraphError, match="already"):
        AnnotationStore.create(tmp_path / "project")
    with pytest.raises(VesselGraphError, match="no patch"):
        store.update_graph("patch_0099", small_graph())


def test_failing_manifest_write_leaves_the_previous_manifest(store, tmp_path, monkeypatch):
    a = store.add_patch(rgb_patch(0), (0, 0), small_graph())
    before = (tmp_path / "project" / "manifest.json").read_text()

    real_fsync = os.fsync

    def crash(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises((OSError, VesselGraphError)):
        store.add_patch(rgb_patch(1), (5, 5), small_graph())
    with pytest.raises((OSError, VesselGraphError)):
        store.update_graph(a, VesselGraph.empty(2))
    monkeypatch.setattr(os, "fsync", real_fsync)

    folder = tmp_path / "project"
    assert (folder / "manifest.json").read_text() == before
    assert not [p for p in folder.rglob("*.tmp")]  # temporary files cleaned up
    assert store.ids() == [a]  # the in-memory state follows the disk
    again = AnnotationStore.open(folder)
    assert again.ids() == [a] and again.load_graph(a).n_edges == 2
    assert len(read_dataset(folder)) == 1


def test_manifest_write_dying_half_way_leaves_the_previous_manifest(store, tmp_path, monkeypatch):
    """The image and graph of the new patch are written; the manifest write dies after half its bytes."""
    import contextlib

    import napari_vesselgraph.io as vio

    a = store.add_patch(rgb_patch(0), (0, 0), small_graph())
    before = (tmp_path / "project" / "manifest.json").read_text()
    real = vio.atomic_write

    @contextlib.contextmanager
    def dying(path, *args, **kwargs):
        with real(path, *args, **kwargs) as f:
            if str(path).endswith("manifest.json"):
                class Half:
                    def write(self, text):
                        f.write(text[: len(text) // 2])
                        raise KeyboardInterrupt("killed")
                yield Half()
            else:
                yield f

    monkeypatch.setattr(vio, "atomic_write", dying)
    with pytest.raises(KeyboardInterrupt):
        store.add_patch(rgb_patch(1), (5, 5), small_graph())
    monkeypatch.setattr(vio, "atomic_write", real)
    folder = tmp_path / "project"
    assert (folder / "manifest.json").read_text() == before
    assert (folder / "images" / "patch_0002.tif").exists()  # written before the manifest, which never named it
    assert not [p for p in folder.rglob("*.tmp")]
    assert [r.id for r in read_dataset(folder)] == [a]
    # the next patch does not collide with the orphan files
    assert store.add_patch(rgb_patch(2), (9, 9)) == "patch_0002"
    assert np.array_equal(AnnotationStore.open(folder).load_image("patch_0002"), rgb_patch(2))


def test_crash_between_files_keeps_the_manifest_consistent(store, tmp_path, monkeypatch):
    from napari_vesselgraph.annotations import store as store_mod

    store.add_patch(rgb_patch(0), (0, 0), small_graph())

    def broken(self, entry, graph):
        raise RuntimeError("killed while writing the graph")

    monkeypatch.setattr(store_mod.AnnotationStore, "_write_graph", broken)
    with pytest.raises(RuntimeError):
        store.add_patch(rgb_patch(1), (5, 5), small_graph())
    # the image of the failed patch may be on disk, but the manifest does not name it
    assert [r.id for r in read_dataset(tmp_path / "project")] == ["patch_0001"]


def test_killed_process_loses_no_saved_patch(tmp_path):
    """SIGKILL a process that adds and edits patches as fast as it can; the folder it leaves always opens,
    is a valid dataset, and holds every patch the process reported as saved."""
    folder = tmp_path / "killed"
    log = tmp_path / "saved.txt"
    script = textwrap.dedent(
        f"""
        import numpy as np, sys
        from napari_vesselgraph.annotations import AnnotationStore
        from napari_vesselgraph.graph import VesselGraph
        s = AnnotationStore.create({str(folder)!r}, ndim=2, channels=1)
        print("ready", flush=True)
        rng = np.random.default_rng(0)
        with open({str(log)!r}, "a") as log:
            for i in range(100000):
                g = VesselGraph(rng.uniform(0, 31, (20, 2)), np.array([[k, k + 1] for k in range(19)]))
                pid = s.add_patch(rng.random((32, 32), dtype=np.float32), (i, i), g)
                s.update_graph(pid, g.subgraph(np.arange(10)))
                log.write(pid + "\\n"); log.flush()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 5):
            time.sleep(0.05)
        time.sleep(0.137)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = log.read_text().split()
    assert len(saved) >= 5
    again = AnnotationStore.open(folder)
    recs = read_dataset(folder)  # every listed file exists and reads
    ids = [r.id for r in recs]
    assert set(saved) <= set(ids)
    for pid in saved:
        assert again.load_graph(pid).n_nodes == 10


def test_helpers():
    assert snap_origin((50, 50), (32, 32)) == (35, 35)  # pixels 35..66
    assert snap_origin((5, 100), (32, 32), shape=(64, 110)) == (0, 78)
    assert snap_origin((5, 5), (32, 32), shape=(16, 16)) == (0, 0)
    img = np.arange(100).reshape(10, 10)
    p = cut_patch(img, (8, -2), (4, 4))
    assert p.shape == (4, 4) and p[0, 2] == 80 and p[0, 0] == 0 and p[3].sum() == 0
    g = VesselGraph(np.array([[0.0, 0.0], [20.0, 20.0]]), np.array([[0, 1]]), node_attrs={
        "radius": np.array([1.0, 1.0]), "confidence": np.array([0.9, 0.8])})
    local = initial_graph(g, (5, 5), (10, 10))
    assert local.n_nodes == 2 and local.n_edges == 1
    assert np.allclose(local.nodes, [[0, 0], [9, 9]])
    assert set(local.node_attrs) == {"radius"}


# ------------------------------------------------------------ paths stay inside the project folder
def _rewrite_entry(folder, **fields):
    mpath = folder / "manifest.json"
    m = json.loads(mpath.read_text())
    m["samples"][0].update(fields)
    mpath.write_text(json.dumps(m))


@pytest.mark.parametrize("key", ["image", "graph"])
@pytest.mark.parametrize("kind", ["absolute", "dotdot", "not_text"])
def test_open_refuses_paths_outside_the_folder(store, tmp_path, key, kind):
    store.add_patch(rgb_patch(0), origin=(0, 0), graph=small_graph())
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    bad = {"absolute": str(victim), "dotdot": "../victim.txt", "not_text": 42}[kind]
    _rewrite_entry(store.folder, **{key: bad})
    with pytest.raises(VesselGraphError, match="inside the (project )?folder") as err:
        AnnotationStore.open(store.folder)
    assert "\n" not in str(err.value) and "patch_0001" in str(err.value)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("key", ["image", "graph"])
def test_open_refuses_a_symlink_leading_outside(store, tmp_path, key):
    pid = store.add_patch(rgb_patch(0), origin=(0, 0), graph=small_graph())
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    target = store.folder / store.get(pid)[key]
    target.unlink()
    target.symlink_to(victim)
    with pytest.raises(VesselGraphError, match="outside the project folder"):
        AnnotationStore.open(store.folder)
    assert victim.read_text() == "precious"


def test_edit_and_delete_never_touch_files_outside(store, tmp_path):
    """Defence in depth: a manifest (or a link) that turns bad after the store was opened is refused at
    write and delete time too, and the outside files are left alone."""
    pid = store.add_patch(rgb_patch(0), origin=(0, 0), graph=small_graph())
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    victim_img = tmp_path / "victim.tif"
    victim_img.write_text("precious too")
    store._m["samples"][0]["graph"] = "../victim.json"
    store._m["samples"][0]["image"] = str(victim_img)
    with pytest.raises(VesselGraphError, match="outside the project folder"):
        store.update_graph(pid, small_graph(1.0))
    with pytest.raises(VesselGraphError, match="outside the project folder"):
        store.delete_patch(pid)
    assert victim.read_text() == "precious" and victim_img.read_text() == "precious too"

    # a symlinked graph file created after opening: the write does not follow it
    store._m["samples"][0]["graph"] = f"graphs/{pid}.json"
    store._m["samples"][0]["image"] = f"images/{pid}.tif"
    gpath = store.folder / "graphs" / f"{pid}.json"
    gpath.unlink()
    gpath.symlink_to(victim)
    with pytest.raises(VesselGraphError, match="outside the project folder"):
        store.update_graph(pid, small_graph(1.0))
    with pytest.raises(VesselGraphError, match="outside the project folder"):
        store.delete_patch(pid)
    assert victim.read_text() == "precious" and victim.exists()
