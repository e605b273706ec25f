"""Legacy VTK PolyData graph files (ASCII): ``_read_vtk(path)`` and ``_write_vtk(graph, path)``,
dispatched by :mod:`napari_vesselgraph.io.graphfiles`.

``.vtk`` — legacy VTK PolyData, ASCII
Opens in ParaView. ``POINTS`` are physical ``x y z`` (napari order reversed, times the scale;
2D graphs get ``z = 0``), each edge is a 2-point ``LINES`` cell, and numeric and bool node and
edge attributes become ``POINT_DATA``/``CELL_DATA`` scalars. **String attributes are not stored.**
``ndim`` and the scale are in the title line; metadata and which arrays are bool go into a
dataset-level field array ``vesselgraph`` (UTF-8 JSON bytes).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from ...errors import GraphFileError
from ...graph.core import (
    VesselGraph,
    _parse_metadata,
    axis_names,
)
from ..atomic import atomic_write
from ._common import (
    _fmt_float,
    _metadata_json,
    _typed_columns,
)

_VTK_INT_TYPES = {
    "char", "signed_char", "unsigned_char", "short", "unsigned_short", "int", "unsigned_int", "long",
    "unsigned_long", "vtkidtype", "vtktypeint64", "vtktypeuint64", "vtktypeint32", "vtktypeuint32",
    "vtktypeint8", "vtktypeuint8", "vtktypeint16", "vtktypeuint16",
}  # fmt: skip
_VTK_FLOAT_TYPES = {"float", "double", "vtktypefloat32", "vtktypefloat64"}
_VTK_NAME_OK = re.compile(r"[A-Za-z0-9_\-.:()\[\]+]")


def _vtk_name(name: str) -> str:
    """Array names may not contain white space: percent-encode like VTK's own writer."""
    return "".join(c if _VTK_NAME_OK.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def _vtk_unname(name: str) -> str:
    try:
        return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name.encode()).decode()
    except UnicodeDecodeError:
        return name


def _vtk_arrays(cols: dict[str, tuple[str, list]]) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(vtk name, vtk type, value texts) for every numeric/bool column, and the names of the bool ones."""
    out, bools = [], []
    for name, (kind, vals) in cols.items():
        if kind == "str":
            continue
        if kind == "bool":
            out.append((_vtk_name(name), "unsigned_char", ["1" if v else "0" for v in vals]))
            bools.append(name)
        elif kind == "int":
            small = all(-(2**31) <= v < 2**31 for v in vals)
            out.append((_vtk_name(name), "int" if small else "vtktypeint64", [str(v) for v in vals]))
        else:
            out.append((_vtk_name(name), "double", [_fmt_float(v) for v in vals]))
    return out, bools


def _write_lines(f, texts: list[str], per_line: int = 9) -> None:
    for k in range(0, len(texts), per_line):
        f.write(" ".join(texts[k : k + per_line]) + "\n")


def _write_vtk(graph: VesselGraph, path: str) -> list[str]:
    names = axis_names(graph.ndim)
    ncols = _typed_columns(graph.node_attrs)
    ecols = _typed_columns(graph.edge_attrs)
    narrays, nbools = _vtk_arrays(ncols)
    earrays, ebools = _vtk_arrays(ecols)
    title = "napari-vesselgraph ndim={} {}".format(
        graph.ndim, " ".join(f"scale_{a}={_fmt_float(s)}" for a, s in zip(names, graph.scale))
    )
    info = {
        "ndim": graph.ndim,
        "scale": [float(s) for s in graph.scale],
        "metadata": json.loads(_metadata_json(graph)),
        "node_bool": nbools,
        "edge_bool": ebools,
    }
    blob = json.dumps(info).encode("utf-8")
    phys = graph.nodes * np.asarray(graph.scale)
    xyz = np.zeros((graph.n_nodes, 3))
    xyz[:, : graph.ndim] = phys[:, ::-1]
    with atomic_write(path, "w", newline="\n") as f:
        f.write("# vtk DataFile Version 3.0\n")
        f.write(title[:255] + "\n")
        f.write("ASCII\nDATASET POLYDATA\n")
        f.write("FIELD FieldData 1\n")
        f.write(f"vesselgraph 1 {len(blob)} unsigned_char\n")
        _write_lines(f, [str(b) for b in blob], 32)
        f.write(f"POINTS {graph.n_nodes} double\n")
        for x, y, z in xyz.tolist():
            f.write(f"{_fmt_float(x)} {_fmt_float(y)} {_fmt_float(z)}\n")
        if graph.n_edges:
            f.write(f"LINES {graph.n_edges} {3 * graph.n_edges}\n")
            for a, b in graph.edges.tolist():
                f.write(f"2 {a} {b}\n")
        for section, count, arrays in (("POINT_DATA", graph.n_nodes, narrays), ("CELL_DATA", graph.n_edges, earrays)):
            if not arrays or not count:
                continue
            f.write(f"{section} {count}\n")
            for vname, vtype, texts in arrays:
                f.write(f"SCALARS {vname} {vtype} 1\nLOOKUP_TABLE default\n")
                _write_lines(f, texts)
    return [path]


class _Tokens:
    def __init__(self, tokens: list[str], path: str):
        self.t = tokens
        self.i = 0
        self.path = path

    def more(self) -> bool:
        return self.i < len(self.t)

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self) -> str:
        if self.i >= len(self.t):
            raise GraphFileError(self.path, "the file ends unexpectedly (truncated?)")
        self.i += 1
        return self.t[self.i - 1]

    def int(self, what: str) -> int:
        tok = self.next()
        try:
            v = int(tok)
        except ValueError:
            raise GraphFileError(self.path, f"expected a whole number for {what}, found {tok[:30]!r}") from None
        if v < 0:
            raise GraphFileError(self.path, f"{what} is negative ({v})")
        return v

    def values(self, count: int, vtype: str, what: str) -> np.ndarray:
        if self.i + count > len(self.t):
            raise GraphFileError(self.path, f"the file ends inside {what} (truncated?)")
        chunk = self.t[self.i : self.i + count]
        self.i += count
        vtype = vtype.lower()
        try:
            if vtype in _VTK_INT_TYPES:
                return np.array([int(v) for v in chunk], dtype=np.int64)
            if vtype == "bit":
                return np.array([int(v) != 0 for v in chunk], dtype=bool)
            if vtype in _VTK_FLOAT_TYPES:
                return np.array([float(v) for v in chunk], dtype=float)
        except ValueError:
            raise GraphFileError(self.path, f"{what} holds a value that is not a {vtype} number") from None
        raise GraphFileError(self.path, f"{what}: VTK data type {vtype!r} is not supported")


_VTK_SECTIONS = {
    "POINTS", "VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS", "POINT_DATA", "CELL_DATA", "FIELD",
    "SCALARS", "COLOR_SCALARS", "LOOKUP_TABLE", "VECTORS", "NORMALS", "TEXTURE_COORDINATES", "TENSORS",
    "TENSORS6", "GLOBAL_IDS", "PEDIGREE_IDS",
}  # fmt: skip


def _strip_vtk_metadata(lines: list[str]) -> list[str]:
    """Drop the ``METADATA`` blocks newer VTK writers add after arrays (they end at a blank line)."""
    out, skipping = [], False
    for line in lines:
        s = line.strip()
        if skipping:
            if not s:
                skipping = False
            continue
        if s.upper() == "METADATA":
            skipping = True
            continue
        out.append(line)
    return out


def _read_vtk(path: str) -> VesselGraph:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].lstrip().lower().startswith("# vtk datafile"):
        raise GraphFileError(path, "not a legacy VTK file (the first line should be '# vtk DataFile Version ...')")
    if len(lines) < 4:
        raise GraphFileError(path, "the VTK header is incomplete (truncated file?)")
    title = lines[1]
    mode = lines[2].strip().upper()
    if mode == "BINARY":
        raise GraphFileError(path, "binary VTK files are not supported; save it as ASCII")
    if mode != "ASCII":
        raise GraphFileError(path, f"the third line should be ASCII, found {lines[2][:30]!r}")
    tok = _Tokens(" ".join(_strip_vtk_metadata(lines[3:])).split(), path)
    if tok.next().upper() != "DATASET":
        raise GraphFileError(path, "expected 'DATASET POLYDATA' after the header")
    kind = tok.next().upper()
    if kind != "POLYDATA":
        raise GraphFileError(path, f"the VTK dataset is {kind}; only POLYDATA (points and lines) can be a graph")

    points = None
    cells: dict[str, list[list[int]]] = {}
    dataset_fields: dict[str, np.ndarray] = {}
    data: dict[str, dict[str, np.ndarray]] = {"POINT_DATA": {}, "CELL_DATA": {}}
    counts: dict[str, int] = {}
    current = None

    def read_field(target: dict[str, np.ndarray], n_expected: int | None, what: str) -> None:
        tok.next()  # the field's name
        n_arrays = tok.int(f"{what} array count")
        for _ in range(n_arrays):
            name = _vtk_unname(tok.next())
            ncomp = tok.int(f"components of {name!r}")
            ntup = tok.int(f"tuples of {name!r}")
            vtype = tok.next()
            if vtype.lower() in ("string", "utf8_string", "variant"):
                raise GraphFileError(path, f"field array {name!r} holds {vtype} values, which are not supported")
            vals = tok.values(ncomp * ntup, vtype, f"array {name!r}")
            if n_expected is not None and ntup != n_expected:
                raise GraphFileError(path, f"array {name!r} has {ntup} values for {n_expected} items")
            _store(target, name, vals.reshape(ntup, ncomp) if ncomp > 1 else vals)

    def read_cells(section: str) -> None:
        n = tok.int(f"{section} count")
        size = tok.int(f"{section} size")
        polys: list[list[int]] = []
        if (tok.peek() or "").upper() == "OFFSETS":  # VTK 5.1 layout
            tok.next()
            offsets = tok.values(n, tok.next(), f"{section} offsets")
            if (tok.next() or "").upper() != "CONNECTIVITY":
                raise GraphFileError(path, f"{section}: expected CONNECTIVITY after OFFSETS")
            conn = tok.values(size, tok.next(), f"{section} connectivity")
            for k in range(max(n - 1, 0)):
                a, b = int(offsets[k]), int(offsets[k + 1])
                if not 0 <= a <= b <= size:
                    raise GraphFileError(path, f"{section}: bad offsets")
                polys.append(conn[a:b].tolist())
        else:
            flat = tok.values(size, "int", section)
            j = 0
            for _ in range(n):
                if j >= size:
                    raise GraphFileError(path, f"{section}: the cell list is shorter than its header says")
                k = int(flat[j])
                if j + 1 + k > size:
                    raise GraphFileError(path, f"{section}: the cell list is shorter than its header says")
                polys.append(flat[j + 1 : j + 1 + k].tolist())
                j += 1 + k
            if j != size:
                raise GraphFileError(path, f"{section}: the cell list size does not match its header")
        cells[section] = polys

    while tok.more():
        word = tok.next()
        key = word.upper()
        if key == "POINTS":
            n = tok.int("POINTS count")
            points = tok.values(3 * n, tok.next(), "POINTS").reshape(n, 3)
        elif key in ("VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS"):
            read_cells(key)
        elif key in ("POINT_DATA", "CELL_DATA"):
            current = key
            counts[key] = tok.int(f"{key} count")
        elif key == "FIELD":
            if current is None:
                read_field(dataset_fields, None, "FIELD")
            else:
                read_field(data[current], counts[current], "FIELD")
        elif current is None:
            raise GraphFileError(path, f"unexpected {word[:30]!r} in the VTK file")
        elif key in ("SCALARS", "GLOBAL_IDS", "PEDIGREE_IDS"):
            name = _vtk_unname(tok.next())
            vtype = tok.next()
            ncomp = 1
            if key == "SCALARS" and (tok.peek() or "").isdigit():
                ncomp = tok.int(f"components of {name!r}")
            if key == "SCALARS" and (tok.peek() or "").upper() == "LOOKUP_TABLE":
                tok.next()
                tok.next()
            if vtype.lower() in ("string", "utf8_string", "variant"):
                raise GraphFileError(path, f"array {name!r} holds {vtype} values, which are not supported")
            n = counts[current]
            vals = tok.values(n * ncomp, vtype, f"array {name!r}")
            _store(data[current], name, vals.reshape(n, ncomp) if ncomp > 1 else vals)
        elif key == "LOOKUP_TABLE":
            tok.next()
            tok.values(4 * tok.int("LOOKUP_TABLE size"), "float", "LOOKUP_TABLE")
        elif key == "COLOR_SCALARS":
            tok.next()
            m = tok.int("COLOR_SCALARS components")
            tok.values(m * counts[current], "float", "COLOR_SCALARS")
        elif key in ("VECTORS", "NORMALS", "TENSORS", "TENSORS6"):
            tok.next()
            width = {"TENSORS": 9, "TENSORS6": 6}.get(key, 3)
            tok.values(width * counts[current], tok.next(), key)
        elif key == "TEXTURE_COORDINATES":
            tok.next()
            dim = tok.int("TEXTURE_COORDINATES dimension")
            tok.values(dim * counts[current], tok.next(), key)
        else:
            raise GraphFileError(path, f"unexpected {word[:30]!r} in the VTK file")

    if points is None:
        raise GraphFileError(path, "the VTK file has no POINTS")
    n = len(points)
    info: dict[str, Any] = {}
    if "vesselgraph" in dataset_fields:
        try:
            info = json.loads(bytes(int(b) for b in dataset_fields["vesselgraph"].ravel()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise GraphFileError(path, "the 'vesselgraph' field data is damaged") from None
        if not isinstance(info, dict):
            raise GraphFileError(path, "the 'vesselgraph' field data is damaged")
    mt = re.search(r"ndim=(\d)", title)
    ndim = info.get("ndim") or (int(mt.group(1)) if mt else (3 if n and np.any(points[:, 2] != 0) else 2))
    names = axis_names(int(ndim))
    scale = info.get("scale")
    if scale is None:
        scale = []
        for a in names:
            ms = re.search(rf"scale_{a}=(\S+)", title)
            scale.append(float(ms.group(1)) if ms else 1.0)
    try:
        scale_arr = np.array([float(s) for s in scale], dtype=float)
    except (TypeError, ValueError):
        raise GraphFileError(path, f"cannot read the scale {scale!r}") from None
    if scale_arr.shape != (len(names),) or not np.all(np.isfinite(scale_arr) & (scale_arr > 0)):
        raise GraphFileError(path, f"bad scale {scale!r} for a {len(names)}D graph")
    pos = points[:, : len(names)][:, ::-1] / scale_arr

    n_verts = len(cells.get("VERTICES", []))
    lines_cells = cells.get("LINES", [])
    edges: list[tuple[int, int]] = []
    edge_cell: list[int] = []
    for c, poly in enumerate(lines_cells):
        for a, b in zip(poly[:-1], poly[1:]):
            if not (0 <= a < n and 0 <= b < n):
                raise GraphFileError(path, f"line cell {c} refers to point {max(a, b)} but there are {n} points")
            edges.append((a, b))
            edge_cell.append(n_verts + c)
    node_attrs = {}
    for name, vals in data["POINT_DATA"].items():
        if len(vals) != n:
            raise GraphFileError(path, f"POINT_DATA array {name!r} has {len(vals)} values for {n} points")
        node_attrs[name] = vals.astype(bool) if name in (info.get("node_bool") or []) else vals
    n_cells = sum(len(v) for v in cells.values())
    edge_attrs = {}
    idx = np.array(edge_cell, dtype=np.int64)
    for name, vals in data["CELL_DATA"].items():
        if len(vals) != n_cells:
            raise GraphFileError(path, f"CELL_DATA array {name!r} has {len(vals)} values for {n_cells} cells")
        v = vals[idx]
        edge_attrs[name] = v.astype(bool) if name in (info.get("edge_bool") or []) else v
    meta = _parse_metadata(info.get("metadata"))
    edge_array = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return VesselGraph(pos, edge_array, node_attrs, edge_attrs, tuple(scale_arr), meta)


def _store(target: dict[str, np.ndarray], name: str, vals: np.ndarray) -> None:
    if vals.ndim == 1:
        target[name] = vals
    else:
        for j in range(vals.shape[1]):
            target[f"{name}_{j}"] = vals[:, j]
