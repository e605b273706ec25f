"""Graph files: round trips through every format, networkx interop, SWC rules, errors, atomic writes."""

from __future__ import annotations

import importlib
import json
import os
from contextlib import contextmanager

import networkx as nx
import numpy as np
import pytest

from napari_vesselgraph.errors import GraphFileError, GraphFileWarning, VesselGraphError
from napari_vesselgraph.graph import VesselGraph
from napari_vesselgraph.io import FORMATS, atomic_write, read_graph, write_graph
from napari_vesselgraph.io import graphfiles

ALL = ["graphml", "json", "csv", "swc", "vtk"]
META = {"image_shape": [40, 64, 64], "model": "relationformer", "nested": {"a": 1.5, "ok": True}}


def _tree(ndim: int, scale) -> VesselGraph:
    """A tree whose breadth-first order differs from its index order, with attributes of every type."""
    rng = np.random.default_rng(ndim)
    n = 7
    edges = [[0, 5], [5, 2], [2, 6], [5, 1], [3, 4]]  # two components: {0,5,2,6,1} and {3,4}
    nodes = rng.uniform(0, 50, (n, ndim))
    node_attrs = {
        "radius": rng.uniform(0.5, 3.0, n),
        "label": np.arange(n) * 3 - 4,
        "border": np.array([True, False, False, True, False, True, True]),
        "name": ["a", "b c", "", 'q"x', "é,ü", "line\nbreak", "7"],
        "swc_type": np.array([1, 3, 3, 2, 2, 3, 0]),
    }
    edge_attrs = {
        "length": np.array([1.25, np.nan, 3.0, 1e-9, 2.0]),
        "count": np.array([1, -2, 3, 2**40, 5]),
        "artery": np.array([True, True, False, True, False]),
        "kind": ["x", "y", "z,w", "1", ""],
    }
    return VesselGraph(nodes, edges, node_attrs, edge_attrs, scale=scale, metadata=META)


GRAPHS = {"2d": lambda: _tree(2, (0.5, 0.25)), "3d": lambda: _tree(3, (2.0, 0.5, 0.3))}


def _kinds(attrs):
    return {k: ("str" if v.dtype.kind in "OUS" else v.dtype.kind) for k, v in attrs.items()}


def _expected(g: VesselGraph, fmt: str) -> VesselGraph:
    """What each format keeps of ``g``."""
    if fmt == "swc":
        swc_attrs = {k: g.node_attrs[k] for k in ("radius", "swc_type")}
        return VesselGraph(g.nodes, g.edges, swc_attrs, {}, g.scale, g.metadata)
    if fmt == "vtk":
        keep = lambda d: {k: v for k, v in d.items() if v.dtype.kind in "biuf"}  # noqa: E731
        return VesselGraph(g.nodes, g.edges, keep(g.node_attrs), keep(g.edge_attrs), g.scale, g.metadata)
    return g


@pytest.mark.parametrize("dim", ["2d", "3d"])
@pytest.mark.parametrize("fmt", ALL)
def test_round_trip(tmp_path, fmt, dim):
    g = GRAPHS[dim]()
    paths = write_graph(g, tmp_path / f"g.{fmt}")
    assert all(os.path.isfile(p) for p in paths)
    assert len(paths) == (3 if fmt == "csv" else 1)
    h = read_graph(paths[0])
    want = _expected(g, fmt)
    assert h.differences(want) == []
    assert h.scale == pytest.approx(g.scale)
    assert h.metadata == META
    assert _kinds(h.node_attrs) == _kinds(want.node_attrs)
    assert _kinds(h.edge_attrs) == _kinds(want.edge_attrs)
    assert list(h.node_attrs) == list(want.node_attrs)
    if fmt != "swc":  # every other format keeps the edge order and direction too
        np.testing.assert_array_equal(h.edges, g.edges)
    # no temporary files left behind
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("fmt", ALL)
def test_empty_graph_round_trip(tmp_path, fmt):
    g = VesselGraph.empty(3, scale=(3.0, 1.0, 1.0), metadata={"k": "v"})
    h = read_graph(write_graph(g, tmp_path / f"e.{fmt}")[0])
    assert h.n_nodes == 0 and h.n_edges == 0 and h.ndim == 3
    assert h.scale == (3.0, 1.0, 1.0)
    assert h.metadata == {"k": "v"}


def test_formats_table_and_explicit_format(tmp_path):
    assert FORMATS == {".graphml": "graphml", ".json": "json", ".csv": "csv", ".swc": "swc", ".vtk": "vtk"}
    g = GRAPHS["2d"]()
    [p] = write_graph(g, tmp_path / "graph.xml", format="graphml")
    assert read_graph(p, format="GraphML").same_as(g)
    with pytest.raises(VesselGraphError, match=r"\.graphml.*\.json.*\.csv.*\.swc.*\.vtk"):
        write_graph(g, tmp_path / "graph.txt")
    with pytest.raises(VesselGraphError, match="supported formats"):
        read_graph(tmp_path / "graph.txt")
    with pytest.raises(VesselGraphError, match="unknown graph file format"):
        write_graph(g, tmp_path / "graph.json", format="pickle")


# ------------------------------------------------------------------ networkx interop
@pytest.mark.parametrize("dim", ["2d", "3d"])
def test_reads_graphml_written_by_networkx(tmp_path, dim):
    g = GRAPHS[dim]()
    p = tmp_path / "nx.graphml"
    nx.write_graphml(g.to_networkx(), p)
    h = read_graph(p)
    assert h.differences(g) == []
    assert h.metadata == META
    assert _kinds(h.node_attrs) == _kinds(g.node_attrs)
    assert _kinds(h.edge_attrs) == _kinds(g.edge_attrs)


@pytest.mark.parametrize("edges_key", ["edges", "links"])
@pytest.mark.parametrize("dim", ["2d", "3d"])
def test_reads_node_link_json_written_by_networkx(tmp_path, dim, edges_key):
    g = GRAPHS[dim]()
    data = nx.node_link_data(g.to_networkx(), edges=edges_key)
    assert edges_key in data
    p = tmp_path / "nx.json"
    p.write_text(json.dumps(data))
    h = read_graph(p)
    assert h.differences(g) == []
    assert h.metadata == META
    assert _kinds(h.node_attrs) == _kinds(g.node_attrs)


def test_networkx_reads_our_files(tmp_path):
    g = GRAPHS["3d"]()
    write_graph(g, tmp_path / "a.graphml")
    write_graph(g, tmp_path / "a.json")
    via_graphml = VesselGraph.from_networkx(nx.read_graphml(tmp_path / "a.graphml", node_type=int))
    assert via_graphml.differences(g) == []
    with open(tmp_path / "a.json") as f:
        via_json = VesselGraph.from_networkx(nx.node_link_graph(json.load(f), edges="edges"))
    assert via_json.differences(g) == []


# ------------------------------------------------------------------------------- CSV
def test_csv_pair_layout_and_names(tmp_path):
    g = GRAPHS["3d"]()
    paths = write_graph(g, tmp_path / "out_nodes.csv")
    assert [os.path.basename(p) for p in paths] == ["out_nodes.csv", "out_edges.csv", "out_graph.json"]
    header = (tmp_path / "out_nodes.csv").read_text().splitlines()[0]
    assert header == "id,pos_z,pos_y,pos_x,radius,label,border,name,swc_type"
    assert (tmp_path / "out_edges.csv").read_text().startswith("node1,node2,length,count,artery,kind\n")
    for name in ("out.csv", "out_nodes.csv", "out_edges.csv", "out_graph.json"):
        assert read_graph(tmp_path / name).same_as(g)


def test_csv_without_sidecar_infers_types(tmp_path):
    g = GRAPHS["3d"]()
    write_graph(g, tmp_path / "g.csv")
    os.remove(tmp_path / "g_graph.json")
    h = read_graph(tmp_path / "g.csv")
    assert h.scale == (1.0, 1.0, 1.0)
    assert np.allclose(h.nodes, g.nodes)
    assert _kinds(h.node_attrs) == {"radius": "f", "label": "i", "border": "b", "name": "str", "swc_type": "i"}
    assert _kinds(h.edge_attrs) == {"length": "f", "count": "i", "artery": "b", "kind": "str"}
    assert list(h.node_attrs["name"]) == list(g.node_attrs["name"])


def test_csv_semicolon_files_from_elsewhere(tmp_path):
    # Whole-Brain Vessel Graphs style: ';' separated, ids not in order, x/y/z column order
    (tmp_path / "wb_nodes.csv").write_text(
        "id;pos_x;pos_y;pos_z;degree\n10;1.0;2.0;3.0;1\n4;4.5;5.0;6.0;2\n7;0;0;1;1\n"
    )
    (tmp_path / "wb_edges.csv").write_text("node1;node2;length\n10;4;1.5\n4;7;2.5\n")
    h = read_graph(tmp_path / "wb_nodes.csv")
    np.testing.assert_allclose(h.nodes, [[3, 2, 1], [6, 5, 4.5], [1, 0, 0]])
    np.testing.assert_array_equal(h.edges, [[0, 1], [1, 2]])
    assert h.node_attrs["degree"].dtype.kind == "i"
    np.testing.assert_allclose(h.edge_attrs["length"], [1.5, 2.5])


# ------------------------------------------------------------------------------- SWC
def test_swc_refuses_cycles(tmp_path):
    g = VesselGraph(np.zeros((4, 2)), [[0, 1], [1, 2], [2, 0], [2, 3]])
    with pytest.raises(VesselGraphError, match="cycle") as info:
        write_graph(g, tmp_path / "c.swc")
    assert "GraphML" in str(info.value) and "JSON" in str(info.value)
    assert not os.listdir(tmp_path)
    loop = VesselGraph(np.zeros((2, 2)), [[0, 1], [1, 1]])
    with pytest.raises(VesselGraphError, match="self loop"):
        write_graph(loop, tmp_path / "l.swc")


def test_swc_break_cycles_writes_the_spanning_forest_and_reports_the_removed_edges(tmp_path):
    # a square 0-1-2-3 with a tail 3-4; node 2 has the largest radius, so the tree grows from it
    nodes = np.array([[0, 0], [0, 10], [10, 10], [10, 0], [20, 0]], float)
    g = VesselGraph(nodes, [[0, 1], [1, 2], [2, 3], [3, 0], [3, 4]],
                    node_attrs={"radius": np.array([1, 1, 4, 1, 1.0])}, scale=(0.5, 0.5))
    with pytest.warns(GraphFileWarning, match=r"1 edge closing cycles.*root node 2\).*3-0") as rec:
        [p] = write_graph(g, tmp_path / "c.swc", break_cycles=True)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    back = read_graph(p)
    assert back.n_nodes == 5 and back.n_edges == 4
    assert {tuple(sorted(e)) for e in back.edges.tolist()} == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert back.metadata["swc_removed_edges"] == [[3, 0]] and back.metadata["swc_roots"] == [2]
    rows = [line.split() for line in open(p) if line.strip() and not line.startswith("#")]
    assert rows[0][0] == "3" and rows[0][6] == "-1"  # the root (node 2, sample 3) comes first, no parent
    # a chosen root; a tree with a root loses nothing and warns nothing
    with pytest.warns(GraphFileWarning, match="root node 4"):
        write_graph(g, tmp_path / "r.swc", break_cycles=True, root=4)
    tree = VesselGraph(nodes, [[0, 1], [1, 2], [2, 3], [3, 4]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [p] = write_graph(tree, tmp_path / "t.swc", root=3)
    rows = [line.split() for line in open(p) if line.strip() and not line.startswith("#")]
    assert rows[0][0] == "4" and rows[0][6] == "-1"
    # root alone does not break cycles; the options are for SWC only; a bad root is one clear error
    with pytest.raises(VesselGraphError, match="break-cycles"):
        write_graph(g, tmp_path / "x.swc", root=4)
    with pytest.raises(VesselGraphError, match="SWC files only"):
        write_graph(g, tmp_path / "x.graphml", break_cycles=True)
    with pytest.raises(VesselGraphError, match="root node 9 does not exist"):
        write_graph(g, tmp_path / "x.swc", break_cycles=True, root=9)
    assert not list(tmp_path.glob("x*"))


def test_swc_layout(tmp_path):
    g = GRAPHS["3d"]()
    [p] = write_graph(g, tmp_path / "t.swc")
    text = open(p).read().splitlines()
    assert "# scale_z 2.0" in text and "# scale_y 0.5" in text and "# scale_x 0.3" in text
    rows = [line.split() for line in text if line and not line.startswith("#")]
    assert len(rows) == g.n_nodes
    seen = set()
    for sid, typ, x, y, z, r, parent in rows:
        i = int(sid) - 1
        assert int(parent) == -1 or int(parent) in seen  # parents come first
        seen.add(int(sid))
        np.testing.assert_allclose([float(x), float(y), float(z)], g.nodes[i][::-1] * np.array(g.scale)[::-1])
        assert float(r) == pytest.approx(g.node_attrs["radius"][i] * 0.3)
        assert int(typ) == g.node_attrs["swc_type"][i]
    assert [int(r[0]) for r in rows] != sorted(int(r[0]) for r in rows)  # BFS order, not index order
    g2 = GRAPHS["2d"]()
    [p2] = write_graph(g2, tmp_path / "t2.swc")
    rows2 = [line.split() for line in open(p2) if line.strip() and not line.startswith("#")]
    assert all(float(r[4]) == 0.0 for r in rows2)


def test_swc_from_elsewhere(tmp_path):
    p = tmp_path / "neuron.swc"
    p.write_text("# traced by hand\n# nodes were checked twice\n3 3 0 2 1 0.5 1\n1 1 0 0 1 2.0 -1\n2 3 0 1 1 1.0 1\n")
    h = read_graph(p)
    assert h.ndim == 3 and h.n_nodes == 3
    np.testing.assert_allclose(h.nodes, [[1, 0, 0], [1, 1, 0], [1, 2, 0]])
    assert {tuple(sorted(e)) for e in h.edges.tolist()} == {(0, 1), (0, 2)}
    np.testing.assert_allclose(h.node_attrs["radius"], [2.0, 1.0, 0.5])
    np.testing.assert_array_equal(h.node_attrs["swc_type"], [1, 3, 3])


# ------------------------------------------------------------------------------- VTK
def test_vtk_layout(tmp_path):
    g = GRAPHS["3d"]()
    [p] = write_graph(g, tmp_path / "g.vtk")
    lines = open(p).read().splitlines()
    assert lines[0].startswith("# vtk DataFile Version")
    assert lines[1] == "napari-vesselgraph ndim=3 scale_z=2.0 scale_y=0.5 scale_x=0.3"
    assert lines[2] == "ASCII" and lines[3] == "DATASET POLYDATA"
    k = lines.index(f"POINTS {g.n_nodes} double")
    pts = np.array([[float(v) for v in line.split()] for line in lines[k + 1 : k + 1 + g.n_nodes]])
    np.testing.assert_allclose(pts, g.nodes[:, ::-1] * np.array(g.scale)[::-1])
    assert f"LINES {g.n_edges} {3 * g.n_edges}" in lines
    assert "SCALARS radius double 1" in lines and "SCALARS artery unsigned_char 1" in lines
    assert "SCALARS count vtktypeint64 1" in lines
    assert not any(line.startswith("SCALARS name") for line in lines)  # strings are not stored


def test_vtk_from_elsewhere_polylines_and_v51(tmp_path):
    p = tmp_path / "pv.vtk"
    p.write_text(
        "# vtk DataFile Version 5.1\nfrom paraview\nASCII\nDATASET POLYDATA\n"
        "POINTS 4 float\n0 0 0 1 0 0\n2 0 0 2 1 0\n"
        "LINES 2 4\nOFFSETS vtktypeint64\n0 4\nCONNECTIVITY vtktypeint64\n0 1 2 3\n"
        "CELL_DATA 1\nSCALARS id int 1\nLOOKUP_TABLE default\n7\n"
        "METADATA\nINFORMATION 0\n\n"
        "POINT_DATA 4\nFIELD FieldData 1\nmy%20value 1 4 double\n0.5 1.5 2.5 3.5\n"
    )
    h = read_graph(p)
    assert h.ndim == 2
    np.testing.assert_allclose(h.nodes, [[0, 0], [0, 1], [0, 2], [1, 2]])
    np.testing.assert_array_equal(h.edges, [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(h.edge_attrs["id"], [7, 7, 7])
    np.testing.assert_allclose(h.node_attrs["my value"], [0.5, 1.5, 2.5, 3.5])


# ---------------------------------------------------------------------------- errors
def _main_file(tmp_path, fmt):
    g = GRAPHS["3d"]()
    paths = write_graph(g, tmp_path / f"g.{fmt}")
    return paths[0]


@pytest.mark.parametrize("fmt", ALL)
def test_truncated_files(tmp_path, fmt):
    p = _main_file(tmp_path, fmt)
    data = open(p, "rb").read()
    for cut in (0.3, 0.6, 0.9):
        open(p, "wb").write(data[: int(len(data) * cut)])
        with pytest.raises(GraphFileError) as info:
            read_graph(p)
        assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("fmt", ALL)
def test_truncated_at_a_line_boundary(tmp_path, fmt):
    """Losing whole lines at the end (the nastiest truncation for line formats) is still noticed."""
    paths = write_graph(GRAPHS["3d"](), tmp_path / f"g.{fmt}")
    for p in paths[:2]:  # for CSV: the nodes file and the edges file
        if p.endswith(".json") and fmt == "csv":
            continue
        data = open(p, "rb").read()
        lines = data.splitlines(keepends=True)
        open(p, "wb").write(b"".join(lines[:-1]))
        with pytest.raises(GraphFileError) as info:
            read_graph(paths[0])
        assert os.path.basename(p) in str(info.value)
        open(p, "wb").write(data)


@pytest.mark.parametrize("fmt", ALL)
@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a graph\n", b"\x89\xff\xfe\x00\x01garbage\x00\x9c" * 20, b"[1, 2, 3]\n", b"<a><b/></a>\n"],
    ids=["empty", "text", "binary", "json-list", "other-xml"],
)
def test_garbage_files(tmp_path, fmt, content):
    p = _main_file(tmp_path, fmt)
    open(p, "wb").write(content)
    with pytest.raises(GraphFileError) as info:
        read_graph(p)
    msg = str(info.value)
    assert str(tmp_path) in msg
    assert "\n" not in msg.strip()
    if not content:
        assert "empty" in msg


@pytest.mark.parametrize("fmt", ALL)
def test_missing_file(tmp_path, fmt):
    with pytest.raises(GraphFileError, match="file not found") as info:
        read_graph(tmp_path / f"nothing.{fmt}")
    assert "nothing" in str(info.value)


def test_wrong_kind_and_broken_references(tmp_path):
    cases = {
        "a.json": '{"nodes": [{"id": 0, "pos_y": 1, "pos_x": 2}], "edges": [{"source": 0, "target": 9}]}',
        "b.json": '{"nodes": [{"id": 0, "foo": 1}], "edges": []}',
        "c.json": '{"nodes": 5}',
        "d.graphml": '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="k" for="node" '
        'attr.name="pos_x" attr.type="double"/><graph><node id="a"><data key="k">abc</data></node></graph></graphml>',
        "e.swc": "1 1 0 0 0 1 -1\n2 1 0 0 0 1 5\n",
        "f.vtk": "# vtk DataFile Version 3.0\nt\nASCII\nDATASET STRUCTURED_POINTS\nDIMENSIONS 2 2 2\n",
        "g.vtk": "# vtk DataFile Version 3.0\nt\nBINARY\nDATASET POLYDATA\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(GraphFileError) as info:
            read_graph(tmp_path / name)
        assert name in str(info.value)
    (tmp_path / "x_nodes.csv").write_text("id,pos_y,pos_x\n0,1,2\n")
    (tmp_path / "x_edges.csv").write_text("node1,node2\n0,3\n")
    with pytest.raises(GraphFileError, match="x_edges.csv"):
        read_graph(tmp_path / "x.csv")
    os.remove(tmp_path / "x_edges.csv")
    with pytest.raises(GraphFileError, match="file not found"):
        read_graph(tmp_path / "x.csv")


# ---------------------------------------------------------------------------- atomic
def test_atomic_write_keeps_original_on_error(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("original")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("half of the new conte")
            f.flush()
            raise RuntimeError("disk on fire")
    assert p.read_text() == "original"
    assert os.listdir(tmp_path) == ["keep.txt"]
    with atomic_write(p, "wb") as f:
        f.write(b"new")
    assert p.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["keep.txt"]
    with pytest.raises(ValueError):
        with atomic_write(p, "a"):
            pass


class _CrashingFile:
    """Passes writes through to the real (temporary) file, then crashes part-way."""

    def __init__(self, f, folder, after=5):
        self.f, self.folder, self.after, self.n = f, folder, after, 0

    def write(self, text):
        self.n += 1
        if self.n > self.after:
            # the half-written temporary file is really there when the crash happens
            assert any(name.endswith(".tmp") for name in os.listdir(self.folder))
            raise RuntimeError("simulated crash in the middle of writing")
        return self.f.write(text)


@pytest.mark.parametrize("fmt", ALL)
def test_failed_write_graph_leaves_old_files(tmp_path, monkeypatch, fmt):
    g = GRAPHS["3d"]()
    paths = write_graph(g, tmp_path / f"g.{fmt}")
    before = {p: open(p, "rb").read() for p in paths}
    real = graphfiles.atomic_write

    @contextmanager
    def crashing_atomic_write(path, *args, **kwargs):
        with real(path, *args, **kwargs) as f:
            f.write("x" * 100)
            f.flush()
            yield _CrashingFile(f, tmp_path)

    # each format module writes through its own atomic_write (io/formats/<fmt>.py)
    module = importlib.import_module(f"napari_vesselgraph.io.formats.{fmt}")
    monkeypatch.setattr(module, "atomic_write", crashing_atomic_write)
    other = _tree(3, (1.0, 1.0, 1.0))
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_graph(other, tmp_path / f"g.{fmt}")
    assert {p: open(p, "rb").read() for p in paths} == before
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)


# ------------------------------------------------------------------ graph invariants on read
NORMALISED = ["json", "graphml", "csv", "vtk"]


@pytest.mark.parametrize("fmt", NORMALISED)
def test_self_loops_and_duplicate_edges_are_dropped_on_read_with_a_warning(tmp_path, fmt):
    from napari_vesselgraph.errors import GraphFileWarning

    nodes = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    edges = [[0, 1], [1, 1], [1, 2], [2, 1], [0, 1]]  # a self loop, and two repeats
    g = VesselGraph(nodes, edges, edge_attrs={"w": np.array([1.0, 2.0, 3.0, 4.0, 5.0])})
    p = tmp_path / f"g.{fmt}"
    write_graph(g, p)
    with pytest.warns(GraphFileWarning, match=r"1 self loop.* 2 duplicate edge") as rec:
        back = read_graph(p)
    assert "g." in str(rec[0].message)
    assert back.edges.tolist() == [[0, 1], [1, 2]]  # the first of each kept, orientation as in the file
    assert back.edge_attrs["w"].tolist() == [1.0, 3.0]


def test_a_clean_graph_reads_without_warning(tmp_path):
    import warnings

    g = GRAPHS["2d"]()
    write_graph(g, tmp_path / "g.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_graph(tmp_path / "g.json")
    assert back.edges.tolist() == g.edges.tolist()


@pytest.mark.parametrize("fmt", ["json", "graphml", "csv", "vtk", "swc"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_coordinates_are_refused(tmp_path, fmt, bad):
    nodes = np.array([[0.0, 0.0], [0.0, 10.0], [bad, 10.0]])
    p = tmp_path / f"g.{fmt}"
    write_graph(VesselGraph(nodes, [[0, 1], [1, 2]]), p)
    with pytest.raises(GraphFileError, match="NaN or infinite") as err:
        read_graph(p)
    assert "\n" not in str(err.value) and "g." in str(err.value)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text('{"nodes": [], "graph": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(GraphFileError, match="nested") as err:
        read_graph(p)
    assert "\n" not in str(err.value)


def test_stale_temporary_files_are_cleaned_when_writing(tmp_path):
    import time

    old = time.time() - 2 * 3600
    names = {
        ".g.json.deadbeef.tmp": True,  # left by a killed write of g.json, two hours ago: removed
        ".g.json.0badcafe.tmp": False,  # fresh: another process may be writing it now
        ".h.json.deadbeef.tmp": True,  # another file's: that write cleans it (not this one)
        ".g.json.notahex!.tmp": True,  # not the pattern
        "g.json.deadbeef.tmp": True,  # not the pattern (no dot in front)
    }
    for name, is_old in names.items():
        (tmp_path / name).write_text("partial")
        if is_old:
            os.utime(tmp_path / name, (old, old))
    write_graph(GRAPHS["2d"](), tmp_path / "g.json")
    left = set(os.listdir(tmp_path))
    assert ".g.json.deadbeef.tmp" not in left
    assert left == {"g.json"} | (set(names) - {".g.json.deadbeef.tmp"})
