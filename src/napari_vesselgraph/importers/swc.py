"""SWC traces aligned on their image stack, and (stack, SWC files) -> dataset folders.

Convention (pixel-aligned import; ``io.read_graph`` reads SWC in physical units instead):

* SWC ``x`` is the column and ``y`` the row of the stack, in pixels, with no flip;
* SWC ``z`` is in units where one slice is ``z_step`` x/y pixels, so the node's slice is ``z / z_step``.
  ``z_step=1`` means ``z`` is the slice index. ``z_step="auto"`` (needs the stack's shape) takes 1 when
  the trace fits in the stack, else the smallest step (to 0.01) that puts it inside;
* ``radius`` is in x/y pixels; the SWC ``type`` becomes the node attribute ``swc_type``.

DIADEM Olfactory Projection fibres (OP_1..OP_5) follow ``z_step=1``: the SWC ``z`` range lies inside
the stack (OP_1: 0-54.9 for 60 slices) and the traced points sit on bright voxels at ``z`` (mean
intensity 228 of 255 at OP_1's nodes, background 0.5) but not at ``z / 3.03`` (1.9). The 3.03 of the DIADEM readme is
the physical anisotropy of the voxels: pass it as ``scale=(3.03, 1, 1)``, not as ``z_step``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import GraphFileError, VesselGraphError

__all__ = ["import_swc", "infer_z_step", "read_swc_graph"]


def infer_z_step(z_max: float, depth: int) -> float:
    """1 when ``z_max`` fits a stack of ``depth`` slices, else the smallest step (to 0.01) that fits."""
    if depth <= 1 or z_max <= depth - 0.5:
        return 1.0
    return math.ceil(z_max / (depth - 0.5) * 100) / 100


def _swc_ids(path: str) -> list[tuple[int, str]]:
    """``(sample id, 'x y z')`` in the order io's reader sorts them (by id), for error messages."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                p = s.split()
                try:
                    rows.append((int(p[0]), " ".join(p[2:5])))
                except (ValueError, IndexError):
                    continue
    rows.sort(key=lambda r: r[0])
    return rows


def read_swc_graph(path, shape=None, z_step=1.0, *, scale=None, spacing: float | None = None):
    """Read an SWC file as a graph in the pixels of its image stack, napari axis order ``(z, y, x)``.

    Parameters
    ----------
    path : SWC file (``id type x y z radius parent``; ``#`` comments). One tree, or a forest when
        several samples have parent -1.
    shape : the stack's shape ``(Z, Y, X)`` (or ``(Y, X)``), optional: nodes outside it raise a
        VesselGraphError naming the file and the first bad sample.
    z_step : float or ``"auto"``
        Size of one slice in x/y pixels, in the SWC's ``z`` units: slice = ``z / z_step`` (see module doc).
    scale : pixel size per axis of the result (default: the file's ``# scale_*`` header when it has
        one, else ``(z_step, 1, 1)``: one slice is ``z_step`` x/y pixels).
    spacing : re-space the nodes along the paths to about this many pixels (default: keep the SWC's nodes).

    Returns
    -------
    VesselGraph with node attributes ``radius`` (x/y pixels) and ``swc_type``; metadata ``swc``,
    ``z_step``, ``image_shape`` (when ``shape`` is given).
    """
    from ..graph.core import VesselGraph
    from ..io.graphfiles import _read_swc

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VesselGraphError(f"{path}: SWC file not found")
    try:
        g = _read_swc(path)
    except VesselGraphError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise GraphFileError(path, f"cannot read ({type(e).__name__}: {e})") from None
    has_scale_header = tuple(g.scale) != (1.0,) * g.ndim
    nodes = g.nodes
    if g.ndim == 2:  # all z == 0
        want3 = shape is not None and len(shape) == 3
        if want3:
            nodes = np.concatenate([np.zeros((len(nodes), 1)), nodes], 1)
    if shape is not None and len(shape) not in (2, 3):
        raise VesselGraphError(f"shape must be (Z, Y, X) or (Y, X), got {tuple(shape)}")
    ndim = nodes.shape[1]
    if shape is not None and len(shape) == 2 and ndim == 3:
        if np.any(nodes[:, 0] != 0):
            raise VesselGraphError(f"{path}: the SWC has z values but the image is 2D {tuple(shape)}")
        nodes = nodes[:, 1:]
        ndim = 2
    if z_step == "auto":
        z_step = infer_z_step(float(nodes[:, 0].max(initial=0)), int(shape[0])) if (shape is not None and ndim == 3) else 1.0
    try:
        z_step = float(z_step)
    except (TypeError, ValueError):
        raise VesselGraphError(f"z_step must be a positive number or 'auto', got {z_step!r}") from None
    if not (math.isfinite(z_step) and z_step > 0):
        raise VesselGraphError(f"z_step must be a positive number, got {z_step!r}")
    nodes = nodes.copy()
    if ndim == 3:
        nodes[:, 0] /= z_step
    if shape is not None:
        sh = np.asarray(shape[:ndim], float)
        bad = np.any((nodes < -0.5) | (nodes > sh - 0.5), 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rows = _swc_ids(path)
            sid, xyz = rows[i] if i < len(rows) else (i + 1, "?")
            raise VesselGraphError(
                f"{path}: {int(bad.sum())} of {len(nodes)} points lie outside the image of shape {tuple(shape)} "
                f"(first: sample {sid} at x y z = {xyz}, pixel (z, y, x) = {nodes[i].round(2).tolist()}"
                f"{f' with z_step {z_step:g}' if ndim == 3 else ''}); check --z-step and that the SWC belongs "
                "to this image"
            )
    if scale is None:
        scale = tuple(g.scale) if (has_scale_header and g.ndim == ndim) else ((z_step, 1.0, 1.0) if ndim == 3 else (1.0, 1.0))
    meta = {**g.metadata, "source": "swc", "swc": os.path.abspath(path), "z_step": z_step,
            "swc_convention": "x = column, y = row, slice = z / z_step (pixels)"}
    if shape is not None:
        meta["image_shape"] = [int(s) for s in shape]
    out = VesselGraph(nodes, g.edges, dict(g.node_attrs), {}, tuple(float(s) for s in np.ravel(scale)), meta)
    if spacing is not None:
        from ._resample import resample

        out = resample(out, float(spacing))
    return out


def _union(graphs: list, scale) -> object:
    from ..graph.core import VesselGraph

    nodes, edges, off = [], [], 0
    names = sorted(set().union(*[g.node_attrs.keys() for g in graphs]))
    attrs: dict[str, list] = {k: [] for k in names}
    tree = []
    for t, g in enumerate(graphs):
        nodes.append(g.nodes)
        edges.append(g.edges + off)
        off += g.n_nodes
        tree.append(np.full(g.n_nodes, t, np.int64))
        for k in names:
            col = g.node_attrs.get(k)
            attrs[k].append(np.asarray(col) if col is not None else np.zeros(g.n_nodes))
    node_attrs = {k: np.concatenate(v) for k, v in attrs.items()}
    node_attrs["swc_file"] = np.concatenate(tree)
    return VesselGraph(np.concatenate(nodes), np.concatenate(edges), node_attrs, {}, scale, {})


def import_swc(
    stack,
    swc_files,
    out,
    z_step=1.0,
    scale=None,
    split: str = "train",
    domain: str | None = None,
    *,
    spacing: float | None = 10.0,
    sample_id: str | None = None,
) -> Path:
    """An image stack and its SWC traces -> one sample of a dataset folder (created or extended).

    ``swc_files``: one path or several (several neurons of one stack: their union, with node attribute
    ``swc_file`` = the file's index). ``z_step``: see :func:`read_swc_graph` (``"auto"`` allowed).
    ``scale``: voxel size (one number or per axis); default the stack's TIFF metadata, else
    ``(z_step, 1, 1)``. ``spacing``: nodes re-spaced to about this many pixels along the traces, like
    the synthetic ground truth (default 10); ``None`` keeps the SWC's own nodes. The sample id is the
    stack's stem unless ``sample_id`` is given. Returns the folder.
    """
    from ..io import load_image
    from ._folder import DatasetFolder, relpath_or_abs, safe_id
    from .masks import _scale_tuple, _squeeze

    stack = Path(stack)
    files = [Path(swc_files)] if isinstance(swc_files, (str, os.PathLike)) else [Path(p) for p in swc_files]
    if not files:
        raise VesselGraphError("no SWC files given")
    for p in files:
        if not p.is_file():
            raise VesselGraphError(f"{p}: SWC file not found")
    if not stack.is_file():
        raise VesselGraphError(f"{stack}: image stack not found")
    image, isc = load_image(stack)
    image = np.asarray(image)
    sq = _squeeze(image)
    isc = tuple(isc)[image.ndim - sq.ndim:] if len(isc) == image.ndim else tuple(isc)
    image = sq
    if image.ndim == 3 and image.shape[-1] in (3, 4) and len(isc) == 2:
        spatial = image.shape[:2]
    else:
        spatial = image.shape
    if len(spatial) not in (2, 3):
        raise VesselGraphError(f"{stack}: expected a 2D image or a (Z, Y, X) stack, got shape {image.shape}")
    graphs = [read_swc_graph(p, spatial, z_step) for p in files]
    zs = graphs[0].metadata["z_step"]
    if scale is not None:
        sc = _scale_tuple(scale, len(spatial))
    elif any(s != 1.0 for s in isc) and len(isc) == len(spatial):
        sc = tuple(isc)
    else:
        sc = tuple(graphs[0].scale)
    g = _union(graphs, sc)
    if spacing is not None:
        from ._resample import resample

        g = resample(g, float(spacing))
    g.metadata = {"source": "import_swc", "image": relpath_or_abs(stack), "swc": [relpath_or_abs(p) for p in files],
                  "z_step": zs, "image_shape": [int(s) for s in spatial],
                  "swc_convention": graphs[0].metadata["swc_convention"],
                  "nodes": "original SWC samples" if spacing is None else f"re-spaced to ~{float(spacing):g} px"}
    folder = DatasetFolder(out, domain=domain, source={
        "kind": "swc", "image": relpath_or_abs(stack), "swc": [relpath_or_abs(p) for p in files], "z_step": zs,
        "spacing": spacing})
    folder.add(safe_id(sample_id or stack.stem), image, g, split)
    return folder.close()
