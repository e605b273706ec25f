"""Dataset folders: round trip, splits and clear errors for user-made folders."""

import json

import numpy as np
import pytest
import tifffile

from napari_vesselgraph.errors import GraphFileError, VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.io import write_graph
from napari_vesselgraph.synth import (
    iter_dataset,
    make_sample,
    read_dataset,
    split_seeds,
    write_dataset,
)


@pytest.mark.parametrize(
    "domain,shape", [("vessel2d-fluo", None), ("road-hazy", (64, 80)), ("vessel3d-twophoton", (24, 32, 32))]
)
def test_round_trip(tmp_path, domain, shape):
    out = write_dataset(tmp_path / "ds", domain, 3, seed=5, split="train", shape=shape)
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "napari-vesselgraph-dataset" and m["version"] == 1 and m["domain"] == domain
    assert [s["seed"] for s in m["samples"]] == [5, 6, 7]
    recs = read_dataset(out)
    assert len(recs) == 3
    for rec in recs:
        image, graph = make_sample(domain, rec.seed, shape)
        assert rec["image"].dtype == np.float32 and np.array_equal(rec.image, image)
        assert rec.graph.same_as(graph), rec.graph.differences(graph)
        assert rec.graph.metadata["domain"] == domain
        assert rec.split == "train" and rec.domain == domain


def test_splits_have_disjoint_seeds(tmp_path):
    assert split_seeds("test", 0, 2) == [10_000_000, 10_000_001]
    assert set(split_seeds("train", 0, 1000)).isdisjoint(split_seeds("test", 0, 1000))
    assert set(split_seeds("val", 0, 1000)).isdisjoint(split_seeds("test", 0, 1000))
    with pytest.raises(VesselGraphError):
        split_seeds("train", 9_999_999, 5)
    d = write_dataset(tmp_path / "ds", "vessel2d-fluo", 4, split={"train": 0.5, "val": 0.25, "test": 0.25})
    write_dataset(d, "vessel2d-fluo", 2, seed=100, split="train")  # extend the same folder
    recs = read_dataset(d)
    by_split = {}
    for r in recs:
        by_split.setdefault(r.split, []).append(r.seed)
    assert sorted(by_split["train"]) == [0, 1, 100, 101]
    assert by_split["val"] == [20_000_000] and by_split["test"] == [10_000_000]
    assert [r.id for r in iter_dataset(d, split="test")] == ["test_10000000"]
    assert len(read_dataset(d, split="train")) == 4
    s = write_dataset(tmp_path / "s", "road-clean", 4, split="train:0.75,test:0.25")
    assert sorted(r.split for r in read_dataset(s, load=False)) == ["test", "train", "train", "train"]
    with pytest.raises(VesselGraphError, match="already holds"):
        write_dataset(d, "road-clean", 1)
    with pytest.raises(VesselGraphError, match="split"):
        write_dataset(tmp_path / "x", "vessel2d-fluo", 1, split="training")


def test_clear_errors(tmp_path):
    with pytest.raises(VesselGraphError, match="does not exist"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VesselGraphError, match="manifest.json is missing"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(GraphFileError, match="not valid JSON"):
        read_dataset(tmp_path / "empty")

    d = write_dataset(tmp_path / "ds", "vessel2d-fluo", 2)
    (d / "images" / "train_00000001.tif").unlink()
    with pytest.raises(VesselGraphError, match="missing: images/train_00000001.tif"):
        read_dataset(d)
    # wrong dimensionality
    tifffile.imwrite(d / "images" / "train_00000001.tif", np.zeros((4, 8, 8), np.float32), photometric="minisblack")
    with pytest.raises(GraphFileError, match=r"manifest says 2D with 1 channel"):
        read_dataset(d)
    # a 3D graph in a 2D dataset
    tifffile.imwrite(d / "images" / "train_00000001.tif", np.zeros((128, 128), np.float32))
    g3 = VesselGraph(np.array([[1.0, 2, 3], [1, 2, 9]]), np.array([[0, 1]]))
    write_graph(g3, d / "graphs" / "train_00000001.json")
    with pytest.raises(GraphFileError, match="graph is 3D but the dataset is 2D"):
        read_dataset(d)
    # swapped axes: nodes outside the image
    g = VesselGraph(np.array([[5.0, 300.0], [6.0, 310.0]]), np.array([[0, 1]]))
    write_graph(g, d / "graphs" / "train_00000001.json")
    with pytest.raises(GraphFileError, match="outside the image"):
        read_dataset(d)
    # broken manifest entries
    m = json.loads((d / "manifest.json").read_text())
    m["samples"][0].pop("graph")
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(GraphFileError, match="lacks graph"):
        read_dataset(d)
    m["samples"][0]["graph"] = "../../etc/passwd"
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(GraphFileError, match="inside the folder"):
        read_dataset(d)
    m["ndim"] = 4
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(GraphFileError, match="'ndim' must be 2 or 3"):
        read_dataset(d)


def test_user_made_folder(tmp_path):
    """A folder written by hand: uint8 RGB image, networkx-style 'links', no optional keys."""
    d = tmp_path / "mine"
    (d / "img").mkdir(parents=True)
    img = np.zeros((20, 30, 3), np.uint8)
    img[10, 5:25] = 255
    tifffile.imwrite(d / "img" / "a.tif", img, photometric="rgb")
    graph = {
        "directed": False,
        "graph": {},
        "nodes": [{"id": "n1", "pos_y": 10, "pos_x": 5, "label": "root"}, {"id": "n2", "pos_y": 10, "pos_x": 24}],
        "links": [{"source": "n1", "target": "n2", "kind": 1}],
    }
    (d / "a.json").write_text(json.dumps(graph))
    sample = {"id": "a", "image": "img/a.tif", "graph": "a.json"}
    manifest = {"ndim": 2, "channels": 3, "scale": [0.5, 0.5], "samples": [sample]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    (rec,) = read_dataset(d)
    assert rec.image.dtype == np.float32 and rec.image.max() == 1.0 and rec.image.shape == (20, 30, 3)
    assert rec.graph.n_nodes == 2 and rec.graph.n_edges == 1 and rec.graph.scale == (0.5, 0.5)
    assert list(rec.graph.node_attrs["label"]) == ["root", ""]
    assert rec.split == "train" and rec.seed is None


def test_graph_json_matches_networkx_graph_attributes(tmp_path):
    _, g = make_sample("vessel3d-lightsheet", 1, shape=(16, 24, 24))
    write_graph(g, tmp_path / "g.json")
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["graph"] == g.to_networkx().graph
    assert set(data["nodes"][0]) == {"id", "pos_z", "pos_y", "pos_x", "radius"}
    json.dumps(data, allow_nan=False)
