"""read_swc_graph / import_swc: SWC axes, z step, bounds, union of files, dataset folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.importers import import_swc, read_swc_graph
from napari_vesselgraph.importers.swc import infer_z_step
from napari_vesselgraph.synth import read_dataset

REALDATA = Path(__file__).parents[2].parent / "shared/realdata"

# a Y-shaped neuron: x = column, y = row, z in x/y pixel units (z_step 3: slice = z / 3)
SWC = """# a test neuron
# id type x y z radius parent
1 1 10 20 3 2.0 -1
2 3 20 20 6 1.5 1
3 3 30 20 9 1.0 2
4 3 40 10 12 1.0 3
5 3 40 30 12 1.0 3
"""


def write(path, text=SWC):
    path.write_text(text)
    return path


def test_axes_and_z_step(tmp_path):
    p = write(tmp_path / "n.swc")
    g = read_swc_graph(p, z_step=3.0)
    assert g.ndim == 3 and g.n_nodes == 5 and g.n_edges == 4
    np.testing.assert_allclose(g.nodes[0], [1.0, 20.0, 10.0])  # (z / 3, y = row, x = column)
    np.testing.assert_allclose(g.nodes[3], [4.0, 10.0, 40.0])
    np.testing.assert_allclose(g.node_attrs["radius"], [2.0, 1.5, 1.0, 1.0, 1.0])
    assert g.node_attrs["swc_type"].tolist() == [1, 3, 3, 3, 3]
    assert g.scale == (3.0, 1.0, 1.0) and g.metadata["z_step"] == 3.0
    # z_step 1: z is the slice index
    np.testing.assert_allclose(read_swc_graph(p).nodes[:, 0], [3, 6, 9, 12, 12])


def test_auto_z_step_and_bounds(tmp_path):
    p = write(tmp_path / "n.swc")
    assert read_swc_graph(p, shape=(16, 40, 50), z_step="auto").metadata["z_step"] == 1.0
    g = read_swc_graph(p, shape=(5, 40, 50), z_step="auto")  # z up to 12 in 5 slices: 12 / 4.5 -> 2.67
    assert g.metadata["z_step"] == pytest.approx(2.67)
    assert g.nodes[:, 0].max() <= 4.5
    assert infer_z_step(54.9, 60) == 1.0
    with pytest.raises(VesselGraphError, match=r"n\.swc: 2 of 5 points lie outside .*first: sample 4 at x y z = 40 10 12") as e:
        read_swc_graph(p, shape=(16, 40, 35))
    assert "\n" not in str(e.value)
    with pytest.raises(VesselGraphError, match="outside"):
        read_swc_graph(p, shape=(10, 40, 50))  # z 12 > 9.5 slices with z_step 1


def test_forest_2d_and_bad_files(tmp_path):
    p = write(tmp_path / "f.swc", "1 2 5 5 0 1 -1\n2 2 9 5 0 1 1\n3 2 20 20 0 1 -1\n4 2 20 25 0 1 3\n")
    g = read_swc_graph(p)
    assert g.ndim == 2 and g.n_edges == 2
    np.testing.assert_allclose(g.nodes[1], [5, 9])
    assert read_swc_graph(p, shape=(4, 30, 30)).ndim == 3
    with pytest.raises(VesselGraphError, match="line 1"):
        read_swc_graph(write(tmp_path / "bad.swc", "1 2 x\n"))
    with pytest.raises(VesselGraphError, match="not found"):
        read_swc_graph(tmp_path / "missing.swc")
    with pytest.raises(VesselGraphError, match="z_step"):
        read_swc_graph(p, z_step=0)


def test_spacing_resamples_on_the_path(tmp_path):
    lines = ["1 3 0 50 0 1 -1"] + [f"{i + 1} 3 {i} 50 0 1 {i}" for i in range(1, 80)]
    g = read_swc_graph(write(tmp_path / "line.swc", "\n".join(lines) + "\n"), spacing=10.0)
    assert g.n_edges == g.n_nodes - 1 and 7 <= g.n_nodes <= 12
    assert np.all(g.nodes[:, 0] == 50) and g.nodes[:, 1].min() == 0 and g.nodes[:, 1].max() == 79


def test_import_swc_union_reads_back(tmp_path):
    stack = np.zeros((6, 40, 50), np.uint8)
    tifffile.imwrite(tmp_path / "cell.tif", stack)
    a = write(tmp_path / "a.swc", SWC)
    b = write(tmp_path / "b.swc", "1 2 5 35 0 1 -1\n2 2 45 35 3 1 1\n")
    out = import_swc(tmp_path / "cell.tif", [a, b], tmp_path / "ds", z_step=3.0, spacing=None, domain="neurons")
    (rec,) = read_dataset(out)
    g = rec.graph
    assert rec.id == "cell" and rec.seed is None and rec.image.shape == (6, 40, 50)
    assert g.n_nodes == 7 and g.n_edges == 5 and g.node_attrs["swc_file"].tolist() == [0] * 5 + [1] * 2
    np.testing.assert_allclose(g.nodes[6], [1.0, 35, 45])
    m = json.loads((out / "manifest.json").read_text())
    assert m["ndim"] == 3 and m["domain"] == "neurons" and m["imports"][0]["kind"] == "swc"
    with pytest.raises(VesselGraphError, match="outside the image"):
        import_swc(tmp_path / "cell.tif", a, tmp_path / "ds2", z_step=1.0)
    assert not (tmp_path / "ds2" / "manifest.json").exists()


@pytest.mark.skipif(not (REALDATA / "diadem-op").is_dir(), reason=f"real data not present at {REALDATA}")
def test_real_diadem_op1_z_is_the_slice_index(tmp_path):
    d = REALDATA / "diadem-op"
    stack = tifffile.imread(d / "OP_1.tif")
    g = read_swc_graph(d / "OP_1.swc", shape=stack.shape, z_step="auto")
    assert g.metadata["z_step"] == 1.0 and g.n_nodes == 1496
    assert 50 <= g.nodes[:, 0].max() < stack.shape[0]  # measured: z 0 - 54.9 in 60 slices
    idx = np.rint(g.nodes).astype(int)
    on = stack[tuple(idx.T)].mean()
    off = stack[(np.rint(g.nodes[:, 0] / 3.03).astype(int), idx[:, 1], idx[:, 2])].mean()
    assert on > 100 and off < 10  # measured: 228 vs 1.9 (z / 3.03 would miss the fibres)
    out = import_swc(d / "OP_1.tif", d / "OP_1.swc", tmp_path / "op", domain="diadem-op")
    (rec,) = read_dataset(out)
    assert 150 <= rec.graph.n_nodes <= 400  # re-spaced to ~10 px; measured 271
