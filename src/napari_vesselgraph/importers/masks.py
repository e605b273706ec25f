"""Binary vessel masks -> centre-line graphs, and folders of (image, mask) pairs -> dataset folders.

The graph of a mask is the graph of its skeleton, built with the classical pipeline's pieces
(:mod:`napari_vesselgraph.baseline.skeleton`): skeletonise, link skeleton pixels and split them into paths
(skan), collapse junction clusters, prune spurs, pull free ends out to the vessel's end, then cut every path
into edges of about ``spacing`` px (nodes at junctions and end points, and along paths where the path bends
by more than ``simplify_tol`` px or every ~``spacing`` px of path), like the synthetic ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import VesselGraphError

__all__ = ["import_masks", "mask_to_graph"]

#: ratio of the longest edge to the requested node spacing. Paths are cut into ``ceil(L / max_edge)``
#: equal pieces, so edges are between ``max_edge / 2`` and ``max_edge`` long; 1.3 puts their mean
#: near ``spacing`` on real vessel trees (DRIVE: see tests/importers).
_MAX_EDGE_FACTOR = 1.3


def _squeeze(arr: np.ndarray) -> np.ndarray:
    """Drop leading axes of length 1 (a GIF read as (1, Y, X), a one-slice stack)."""
    arr = np.asarray(arr)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    return arr


def _as_mask(arr, spatial_shape=None, where: str = "") -> np.ndarray:
    """A bool mask from 0/255, 0/254, 0/1 or any-nonzero data; colour masks count any nonzero channel."""
    a = _squeeze(np.asarray(arr))
    if spatial_shape is not None and a.ndim == len(spatial_shape) + 1 and a.shape[:-1] == tuple(spatial_shape):
        a = a[..., :3].max(axis=-1)
    elif spatial_shape is None and a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] > 4:
        a = a[..., :3].max(axis=-1)  # a colour (Y, X, 3) mask, not a (Z, Y, X) stack
    if a.ndim not in (2, 3):
        raise VesselGraphError(f"{where}a mask must be 2D or 3D, got shape {a.shape}")
    return a != 0


def _scale_tuple(scale, ndim: int, where: str = "") -> tuple[float, ...]:
    if scale is None:
        return (1.0,) * ndim
    s = np.ravel(np.asarray(scale, dtype=float))
    if s.size == 1:
        s = np.repeat(s, ndim)
    if s.size != ndim or not np.all(np.isfinite(s) & (s > 0)):
        raise VesselGraphError(f"{where}scale must be one positive number or {ndim} (napari axis order), got {scale!r}")
    return tuple(float(x) for x in s)


def _sample(arr: np.ndarray, pts: np.ndarray) -> np.ndarray:
    idx = np.clip(np.rint(pts).astype(np.int64), 0, np.array(arr.shape) - 1)
    return arr[tuple(idx.T)]


def _boundary_distance(mask: np.ndarray, pts: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Distance from each point to the mask's outline, with the outline taken halfway between a vessel
    pixel and its background neighbour (so a vessel drawn ``w`` pixels wide has radius ``w / 2`` on its
    centre line, for odd and even ``w``). The image border is not an outline: vessels go on beyond it.
    Distances in pixels of the last axis (``rel``: pixel size per axis relative to the last)."""
    from scipy.spatial import cKDTree

    if len(pts) == 0:
        return np.zeros(0)
    out = []
    for ax in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        where = np.argwhere(mask[tuple(lo)] != mask[tuple(hi)]).astype(float)
        where[:, ax] += 0.5
        out.append(where)
    edge = np.concatenate(out)
    if len(edge) == 0:
        return np.full(len(pts), float(max(mask.shape)))
    d, _ = cKDTree(edge * rel).query(np.asarray(pts, float) * rel)
    return d


def _inside_distance(mask: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.distance_transform_edt(mask, sampling=rel)`` (float32), computed for a sparse mask from the
    mask's pixels and the background pixels along its outline only: the background pixel nearest to a mask pixel
    always has a mask pixel one axis step away (a step from it towards the mask pixel would otherwise be a nearer
    background pixel), so a nearest-neighbour search among those outline pixels gives the same distances. The
    whole-array transform of a 192^3 volume takes about 1.5 s; a vessel mask covering 1 % of it, a tenth of that."""
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    n_in = int(np.count_nonzero(mask))
    if n_in == 0 or n_in == mask.size or n_in > 0.05 * mask.size:  # dense (or degenerate): the whole-array transform
        return ndi.distance_transform_edt(mask, sampling=None if np.allclose(rel, 1) else rel).astype(np.float32)
    outline = ndi.binary_dilation(mask, structure=ndi.generate_binary_structure(mask.ndim, 1)) & ~mask
    inside = np.argwhere(mask)
    d, _ = cKDTree(np.argwhere(outline) * rel).query(inside * rel)
    out = np.zeros(mask.shape, np.float32)
    out[tuple(inside.T)] = d
    return out


def mask_to_graph(
    mask,
    scale=None,
    spacing: float = 10.0,
    prune_length: float | None = None,
    fov=None,
    *,
    simplify_tol: float = 0.75,
    extend_ends: bool = True,
    min_loop_length: float = 10.0,
    metadata: dict | None = None,
    source=None,
):
    """The centre-line graph of a binary vessel mask (2D ``(Y, X)`` or 3D ``(Z, Y, X)``).

    Parameters
    ----------
    mask : array
        Nonzero = vessel (0/1, 0/255, 0/254, bool ...). A colour mask counts any nonzero channel.
    scale : float or sequence, optional
        Pixel size per axis (napari order), carried to the graph; also makes the distance transform (and
        so ``radius``) anisotropic-aware in 3D. Lengths (``spacing``, radius) stay in pixels of the last axis.
    spacing : float
        Aimed distance between consecutive nodes along a path, in pixels (the synthetic graphs: ~10).
        Edges are at most ``1.3 * spacing`` long; junctions, end points and bends add nodes.
    prune_length : float, optional
        Spurs (end point to junction) shorter than this many pixels are removed. Default: automatic,
        ``1 + 1.5 * r`` where ``r`` is the vessel radius at the junction (distance transform), which
        removes the little branches skeletonisation makes at bumps of the outline and keeps real ones.
    fov : array, optional
        Field-of-view mask of the same shape: the mask outside it is dropped.
    simplify_tol : float
        A straight edge replaces a path only if the path stays within this many pixels of it.
    extend_ends : bool
        Move free end points outwards by the local radius (skeletons stop one radius short of a
        vessel's end; the annotated centre line does not).
    source : str, optional
        Named in error messages (the mask's file).

    Returns
    -------
    VesselGraph
        Nodes in pixels, node attribute ``radius`` (pixels, from the distance transform, the half width
        of the drawn vessel), ``scale``, metadata with the method, its settings, ``image_shape`` and
        whatever ``metadata`` adds (the importers record the source files).
    """
    from skimage.morphology import skeletonize

    from ..baseline.skeleton import merge_close_junctions, prune, skeleton_segments, to_node_edge_graph
    from ..graph.core import VesselGraph

    where = f"{os.fspath(source)}: " if source is not None else ""
    m = _as_mask(mask, where=where)
    if fov is not None:
        f = _as_mask(fov, m.shape, where=where)
        if f.shape != m.shape:
            raise VesselGraphError(f"{where}field-of-view mask has shape {f.shape} but the mask has shape {m.shape}")
        m = m & f
    if not m.any():
        raise VesselGraphError(f"{where}the mask is empty" + (" inside the field of view" if fov is not None else ""))
    spacing = float(spacing)
    if not (np.isfinite(spacing) and spacing > 0):
        raise VesselGraphError(f"spacing must be a positive number of pixels, got {spacing!r}")
    ndim = m.ndim
    scale_t = _scale_tuple(scale, ndim, where)
    rel = np.asarray(scale_t) / scale_t[-1]
    edt = _inside_distance(m, rel)
    skel = skeletonize(m)
    if ndim == 3:
        _skeletonize_lost_pieces(m, skel)
    sg, coords = skeleton_segments(skel)
    meta = {
        "method": "importers.mask_to_graph",
        "spacing": spacing,
        "prune_length": "auto" if prune_length is None else float(prune_length),
        "image_shape": list(m.shape),
        "n_mask_pixels": int(m.sum()),
        "n_skeleton_pixels": len(coords),
    }
    meta.update(metadata or {})
    if not sg.pos:
        return VesselGraph(np.zeros((0, ndim)), None, {"radius": np.zeros(0)}, {}, scale_t, meta)

    def radius_at(p) -> float:
        return float(_sample(edt, np.asarray(p, float)[None])[0])

    merge_close_junctions(sg, 2.5)
    if prune_length is None:
        prune(sg, 1.0, lambda p: 1.5 * radius_at(p), min_loop_length)
    else:
        prune(sg, float(prune_length), lambda p: 0.0, min_loop_length)
    _centre_paths(sg, edt)
    if extend_ends:
        _straighten_ends(sg, m, edt)
    nodes, edges, _, _ = to_node_edge_graph(sg, _MAX_EDGE_FACTOR * spacing, float(simplify_tol))
    nodes = np.clip(nodes, 0, np.array(m.shape) - 1)  # (junction centroids and smoothing stay inside anyway)
    rad = np.maximum(_boundary_distance(m, nodes, rel), 0.5)
    return VesselGraph(nodes, edges, {"radius": rad}, {}, scale_t, meta)


def _skeletonize_lost_pieces(mask: np.ndarray, skel: np.ndarray) -> None:
    """3D thinning (skimage, Lee 1994) can delete a whole piece that is an even number of voxels thick
    in both directions across it (a 2 x 2 or 4 x 4 bar). Such pieces are thickened by one voxel (a 2 x 2 x 2
    dilation, half a voxel off-centre) and thinned again; ``skel`` is updated in place."""
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    lab, n = ndi.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return
    has = np.zeros(n + 1, bool)
    has[np.unique(lab[skel])] = True
    lost = np.flatnonzero(~has[1:]) + 1
    if len(lost) == 0:
        return
    boxes = ndi.find_objects(lab)
    for c in lost.tolist():
        box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in boxes[c - 1])
        piece = lab[box] == c
        grown = ndi.binary_dilation(piece, structure=np.ones((2, 2, 2), bool))
        sk = skeletonize(grown)
        skel[box] |= sk  # (a round blob may still thin to nothing: it has no centre line)


def _normals(t: np.ndarray) -> list[np.ndarray]:
    """Unit vectors perpendicular to the unit tangents ``t`` (N, D): one in 2D, two in 3D."""
    if t.shape[1] == 2:
        return [np.stack([t[:, 1], -t[:, 0]], 1)]
    e = np.zeros_like(t)
    e[np.arange(len(t)), np.abs(t).argmin(1)] = 1.0  # the axis least along the tangent
    u = np.cross(t, e)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return [u, np.cross(t, u)]


def _centre_paths(sg, edt: np.ndarray) -> None:
    """Move path pixels across the vessel, by at most half a pixel, onto the distance transform's ridge.

    A skeleton of a vessel an even number of pixels wide runs along one of the two middle rows, half a
    pixel off the centre; a parabola through the distance transform at -1, 0, +1 pixel across the path
    finds the ridge between them.
    """
    from scipy.ndimage import map_coordinates

    live = [s for s in sg.live() if len(sg.seg_path[s]) > 0]
    if not live:
        return
    fulls = [sg.full_path(s) for s in live]
    P = np.concatenate([f[1:-1] for f in fulls])
    t = np.concatenate([f[2:] - f[:-2] for f in fulls])
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    for nrm in _normals(t):
        f = [map_coordinates(edt, (P + k * nrm).T, order=1, mode="nearest") for k in (-1, 0, 1)]
        curv = f[0] - 2 * f[1] + f[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(curv < 0, (f[0] - f[2]) / (2 * curv), 0.0)
        P = P + np.clip(np.nan_to_num(d), -0.5, 0.5)[:, None] * nrm
    P = np.clip(P, 0, np.array(edt.shape) - 1)  # beyond the border the ridge is unknown: stay inside
    o = 0
    for s, full in zip(live, fulls):
        k = len(full) - 2
        sg.seg_path[s] = P[o : o + k]
        sg.seg_inner[s] = float(np.sqrt((np.diff(P[o : o + k], axis=0) ** 2).sum(axis=1)).sum())
        o += k


def _straighten_ends(sg, mask: np.ndarray, edt: np.ndarray) -> None:
    """Redraw the last stretch of every free end along the vessel's direction, out to the vessel's end.

    A skeleton stops about one radius short of a vessel's end and often bends towards a corner there
    (the skeleton of a square end forks to both corners; pruning keeps one). The last ``ceil(R)`` pixels
    of the path (``R``: the largest radius near the end) are dropped, the direction of the next stretch
    is extended, and the end point is put on the last pixel inside the mask along it.
    """
    shape = np.array(mask.shape)
    inc = sg.incidence()
    for v, segs in enumerate(inc):
        if len(segs) != 1 or sg.junction[v]:
            continue
        s = segs[0]
        if sg.seg_a[s] == sg.seg_b[s]:
            continue
        at_a = sg.seg_a[s] == v
        full = sg.full_path(s)
        if not at_a:
            full = full[::-1]
        n = len(full)
        near = full[: min(n, 15)]
        R = float(_sample(edt, near).max())
        t = max(int(np.ceil(R)), 1)
        k = max(3, int(np.ceil(R)))
        if n < t + k + 2:
            continue
        other = sg.seg_b[s] if at_a else sg.seg_a[s]
        if len(inc[other]) == 1 and n < 2 * (t + k + 2):
            continue  # a short isolated piece: both ends would be redrawn from the same stretch
        anchor, back = full[t], full[t + k]
        direction = anchor - back
        nrm = float(np.linalg.norm(direction))
        if nrm <= 0:
            continue
        direction /= nrm
        step, q = 0.5, anchor.copy()
        for _ in range(int(4 * (R + 2) / step)):
            nxt = q + step * direction
            idx = np.rint(nxt).astype(np.int64)
            if np.any(idx < 0) or np.any(idx >= shape) or not mask[tuple(idx)]:
                break
            q = nxt
        gap = float(np.linalg.norm(q - anchor))
        fill = anchor[None] + (q - anchor)[None] * np.linspace(1, 0, max(int(gap), 0) + 2)[1:-1, None]
        new_path = np.vstack([fill, full[t:-1]])  # from just after the new end to just before the other node
        sg.pos[v] = q
        interior = new_path if at_a else new_path[::-1]
        sg.seg_path[s] = interior
        sg.seg_inner[s] = float(np.sqrt((np.diff(interior, axis=0) ** 2).sum(axis=1)).sum()) if len(interior) > 1 else 0.0


# --------------------------------------------------------------------------- folders of files
def _load(path: Path, what: str):
    from ..io import load_image

    arr, sc = load_image(path)
    arr = np.asarray(arr)
    sq = _squeeze(arr)
    drop = arr.ndim - sq.ndim
    sc = tuple(sc)[drop:] if len(sc) == arr.ndim else tuple(sc)
    return sq, sc


def _image_for_mask(image: np.ndarray, mask_shape: tuple, ipath: Path, mpath: Path) -> tuple[np.ndarray, int]:
    """(image, channels) with the image's spatial axes checked against the mask's."""
    d = len(mask_shape)
    if image.shape == tuple(mask_shape):
        return image, 1
    if image.ndim == d + 1 and image.shape[:d] == tuple(mask_shape):
        c = image.shape[-1]
        if d == 2 and c in (3, 4):
            return image[..., :3], 3
        if c == 1:
            return image[..., 0], 1
    raise VesselGraphError(
        f"{mpath}: mask shape {tuple(mask_shape)} differs from the image's {tuple(image.shape)} ({ipath.name})"
    )


def _splits_for(keys: list[str], split) -> dict[str, str]:
    from ..synth.dataset import SPLITS

    if isinstance(split, str):
        if split not in SPLITS:
            raise VesselGraphError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
        return {k: split for k in keys}
    if isinstance(split, dict):
        sp = {str(k): v for k, v in split.items()}
        missing = [k for k in keys if k not in sp]
        if missing:
            raise VesselGraphError(
                f"split: no split given for id(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
        bad = sorted({v for k, v in sp.items() if k in keys and v not in SPLITS})
        if bad:
            raise VesselGraphError(f"split: unknown split(s) {bad} (use {', '.join(SPLITS)})")
        return {k: sp[k] for k in keys}
    raise VesselGraphError(f"split must be 'train', 'val', 'test' or a dict id -> split, got {split!r}")


def import_masks(
    images,
    masks,
    out,
    pattern: str | None = None,
    mask_pattern: str | None = None,
    fov=None,
    scale=None,
    spacing: float = 10.0,
    split="train",
    domain: str | None = None,
    ids=None,
    *,
    fov_pattern: str | None = None,
    prune_length: float | None = None,
    progress=None,
    cancel=None,
) -> Path:
    """Import annotated images (an image and a binary vessel mask each) into a dataset folder.

    ``images``, ``masks`` (and ``fov``, optional field-of-view masks) are folders or single files. Files
    are paired by an id taken from their names: by default the file stem (``a.tif`` <-> ``a.gif``), or
    by ``pattern`` / ``mask_pattern`` / ``fov_pattern`` (see :mod:`napari_vesselgraph.importers._match`):
    a template such as ``"{id}_training.tif"``, a glob with one ``*`` (the id), or ``"re:<regex>"`` with
    a group. DRIVE::

        import_masks("drive/images", "drive/1st_manual", "out", pattern="{id}_training.tif",
                     mask_pattern="{id}_manual1.gif", fov="drive/mask", fov_pattern="{id}_training_mask.gif")

    Images: GIF, PNG, JPEG, TIFF (LZW needs ``imagecodecs``), grey or RGB 2D, or 3D stacks; masks
    0/255, 0/254 or any nonzero. Pixel size: ``scale`` (one number or one per axis), else the image
    file's (TIFF metadata), else 1. ``ids``: import only these ids. ``split``: one split for all, or a
    dict id -> split. ``domain``: the label written to the manifest.

    Writes ``images/<id>.tif``, ``graphs/<id>.json`` (:func:`mask_to_graph`) and ``masks/<id>.tif``
    (the mask, 0/255 uint8, listed as the sample's ``"mask"``; ``fov/<id>.tif`` too when given) and the
    manifest (``seed: null``), readable by :func:`napari_vesselgraph.synth.read_dataset`. Images
    without a mask are skipped and listed in the manifest's ``imports`` entry. Returns the folder.
    """
    from ..errors import Cancelled
    from ._folder import DatasetFolder, relpath_or_abs, safe_id
    from ._match import describe, list_keyed

    imgs = list_keyed(images, pattern, "images")
    msks = list_keyed(masks, mask_pattern, "masks")
    if not imgs:
        raise VesselGraphError(f"no image files matched in {describe(images, pattern)}")
    if not msks:
        raise VesselGraphError(f"no mask files matched in {describe(masks, mask_pattern)}")
    fovs = list_keyed(fov, fov_pattern, "field-of-view masks") if fov is not None else {}
    # single files pair with each other whatever their names
    if Path(images).is_file() and Path(masks).is_file():
        k = next(iter(imgs))
        msks = {k: next(iter(msks.values()))}
        if fov is not None and Path(fov).is_file():
            fovs = {k: next(iter(fovs.values()))}
    keys = [k for k in imgs if k in msks]
    if ids is not None:
        wanted = [str(i) for i in ([ids] if isinstance(ids, (str, int)) else ids)]
        unknown = [i for i in wanted if i not in keys]
        if unknown:
            raise VesselGraphError(f"id(s) {', '.join(unknown[:5])} have no image and mask pair (found: "
                                   f"{', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''})")
        keys = [k for k in keys if k in wanted]
    if not keys:
        raise VesselGraphError(
            f"no image matched a mask: images {describe(images, pattern)} give ids "
            f"{', '.join(list(imgs)[:4])}{' ...' if len(imgs) > 4 else ''}; masks {describe(masks, mask_pattern)} "
            f"give {', '.join(list(msks)[:4])}{' ...' if len(msks) > 4 else ''}"
        )
    if fov is not None:
        nofov = [k for k in keys if k not in fovs]
        if nofov:
            raise VesselGraphError(
                f"no field-of-view mask for id(s) {', '.join(nofov[:5])} in {describe(fov, fov_pattern)}"
            )
    splits = _splits_for(keys, split)
    source = {
        "kind": "masks",
        "images": relpath_or_abs(images),
        "masks": relpath_or_abs(masks),
        "fov": relpath_or_abs(fov) if fov is not None else None,
        "pattern": pattern,
        "mask_pattern": mask_pattern,
        "fov_pattern": fov_pattern,
        "spacing": float(spacing),
        "unmatched_images": sorted(k for k in imgs if k not in msks),
        "unmatched_masks": sorted(k for k in msks if k not in imgs),
    }
    folder = DatasetFolder(out, domain=domain, source=source)
    for done, k in enumerate(keys):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        ipath, mpath = imgs[k], msks[k]
        image, isc = _load(ipath, "image")
        mraw, _ = _load(mpath, "mask")
        m = _as_mask(mraw, None, where=f"{mpath}: ")
        image, _ = _image_for_mask(image, m.shape, ipath, mpath)
        f = None
        if k in fovs:
            fraw, _ = _load(fovs[k], "fov")
            f = _as_mask(fraw, m.shape, where=f"{fovs[k]}: ")
            if f.shape != m.shape:
                raise VesselGraphError(f"{fovs[k]}: field-of-view shape {f.shape} differs from the mask's {m.shape}")
        sc = scale if scale is not None else (isc if len(isc) == m.ndim else None)
        meta = {"source": "import_masks", "id": k, "image": relpath_or_abs(ipath), "mask": relpath_or_abs(mpath)}
        if f is not None:
            meta["fov"] = relpath_or_abs(fovs[k])
        graph = mask_to_graph(m, scale=sc, spacing=spacing, prune_length=prune_length, fov=f, metadata=meta,
                              source=mpath)
        extra_images = {"mask": m}
        if f is not None:
            extra_images["fov"] = f
        folder.add(safe_id(k), image, graph, splits[k], extra_images=extra_images)
        if progress is not None:
            progress(done + 1, len(keys), {"id": k, "nodes": graph.n_nodes})
    return folder.close()
