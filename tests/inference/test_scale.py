"""Big inputs: tiles, lazy reading with bounded memory, streaming stitching, OME-Zarr / TIFF paths."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from napari_vesselgraph.inference import predict, sliding_window
from napari_vesselgraph.inference.grid import make_tiles
from napari_vesselgraph.inference.stitch import StreamingStitcher, stitch

from .fakes import GTPredictor, coordinate_image, random_tree

# the module (``inference.predict`` is also the name of the function)
predict_module = importlib.import_module("napari_vesselgraph.inference.predict")


# ------------------------------------------------------------------ tiles
@pytest.mark.parametrize("shape,patch,tile", [((1000, 1300), (64, 64), 300), ((90, 200, 170), (32, 32, 32), 80)])
def test_tiles_partition_the_windows(shape, patch, tile):
    grid = sliding_window(shape, patch, 0.25)
    tiles = make_tiles(grid, tile)
    assert len(tiles) > 1
    allw = np.sort(np.concatenate([t.windows for t in tiles]))
    assert np.array_equal(allw, np.arange(len(grid)))  # every window in exactly one tile
    for t in tiles:
        for (lo, hi), n in zip(t.box, shape):
            assert 0 <= lo < hi <= n and hi - lo <= max(tile, 64)
        for i in t.windows:  # the part of each window inside the image lies in its tile's box
            for (lo, hi), s, p, n in zip(t.box, grid.starts[i], patch, shape):
                assert lo <= max(s, 0) and min(s + p, n) <= hi


# ------------------------------------------------------------------ streaming stitching
def _window_results(gt, shape, patch, overlap=0.25):
    grid = sliding_window(shape, patch, overlap)
    fake = GTPredictor(gt, shape, patch, junk=True)
    img = coordinate_image(shape)
    from napari_vesselgraph.inference.reader import ImageSource, PatchReader

    reader = PatchReader(ImageSource(img, len(shape), False), fake)
    results = fake.predict_batch(np.stack([reader.read(s, patch) for s in grid.starts]))
    return grid, results


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_stitcher_any_order_equals_in_memory_stitch(seed):
    shape, patch = (190, 250), (64, 64)
    gt = random_tree(shape, seed=seed, n_vessels=8)
    grid, results = _window_results(gt, shape, patch)
    ref = stitch(results, grid.starts, grid.core_lo, grid.core_hi)
    rng = np.random.default_rng(seed)
    for consolidate in (1, 3, 1000):
        st = StreamingStitcher.for_grid(grid, consolidate_every=consolidate)
        for i in rng.permutation(len(grid)):
            st.add(int(i), results[i])
        assert st.complete
        g = st.result()
        assert g.differences(ref) == []
        assert g.n_nodes > 0 and g.n_edges > 0
    with pytest.raises(ValueError, match="twice"):
        st.add(0, results[0])


def test_streaming_stitcher_keeps_only_core_parts():
    shape, patch = (190, 250), (64, 64)
    gt = random_tree(shape, seed=3, n_vessels=8)
    grid, results = _window_results(gt, shape, patch)
    st = StreamingStitcher.for_grid(grid, consolidate_every=1)
    for i, r in enumerate(results):
        st.add(i, r)
    held = st._blocks
    n_kept = sum(len(b["pos"]) for b in held)
    n_raw = sum(len(r["nodes"]) for r in results)
    assert n_kept < n_raw  # the copies of neighbours' nodes in the overlaps are not kept
    assert st.nbytes > 0


def test_shuffled_tiles_of_a_zarr_equal_the_in_memory_result(monkeypatch, tmp_path):
    zarr = pytest.importorskip("zarr")
    shape, patch = (190, 250), (64, 64)
    gt = random_tree(shape, seed=4, n_vessels=8)
    img = coordinate_image(shape)
    ref = predict(img, predictor=GTPredictor(gt, shape, patch, junk=True), keep_raw=True)
    assert ref.metadata["n_tiles"] == 1
    z = zarr.create_array(str(tmp_path / "img.zarr"), shape=shape, chunks=(40, 50), dtype="f4")
    z[:] = img
    order_seen = []

    def shuffled(tiles):
        order = list(np.random.default_rng(0).permutation(len(tiles)))
        order_seen.append(order)
        return order

    monkeypatch.setattr(predict_module, "_tile_order", shuffled)
    for source in (z, str(tmp_path / "img.zarr")):
        g = predict(source, predictor=GTPredictor(gt, shape, patch, junk=True), keep_raw=True, tile_size=90)
        assert g.metadata["n_tiles"] > 4
        assert g.differences(ref) == []
    assert order_seen[-1] != sorted(order_seen[-1])


def test_shuffled_tiles_3d_volume(monkeypatch):
    da = pytest.importorskip("dask.array")
    shape, patch = (40, 90, 100), (32, 32, 32)
    gt = random_tree(shape, seed=1, n_vessels=5)
    img = coordinate_image(shape)
    ref = predict(img, predictor=GTPredictor(gt, shape, patch))
    monkeypatch.setattr(predict_module, "_tile_order", lambda tiles: list(range(len(tiles)))[::-1])
    g = predict(da.from_array(img, chunks=(16, 32, 32)), predictor=GTPredictor(gt, shape, patch), tile_size=48)
    assert g.metadata["n_tiles"] >= 8
    assert g.differences(ref) == []


# ------------------------------------------------------------------ lazy reading, bounded memory
class DotImage:
    """A procedural image that is never held in memory: faint texture, bright 3x3 dots on a lattice.

    Records the size of every read (``__getitem__``) in bytes.
    """

    def __init__(self, shape, pitch=50, offset=25):
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(shape)
        self.pitch, self.offset = pitch, offset
        self.reads: list[int] = []

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        axes = [np.arange(*k.indices(n)) for k, n in zip(key, self.shape)]
        y, x = np.meshgrid(*axes, indexing="ij")
        out = ((y * 7 + x * 13) % 31).astype(np.float32) / 100.0  # texture in [0, 0.3]
        ny = np.abs((y - self.offset + self.pitch // 2) % self.pitch - self.pitch // 2) <= 1
        nx = np.abs((x - self.offset + self.pitch // 2) % self.pitch - self.pitch // 2) <= 1
        out[ny & nx] = 1.0
        self.reads.append(out.nbytes)
        return out


class DotPredictor:
    """Finds the bright dots of a patch (centroids of pixels > 0.5) and links lattice neighbours."""

    ndim = 2
    channels = 1
    device = "cpu"

    def __init__(self, patch=(64, 64), pitch=50):
        self.patch_size = patch
        self.pitch = pitch
        self.meta = {"name": "dots"}
        self.input_meta = {"ndim": 2, "channels": 1, "method": "none"}  # global stats: (0, 1), no stretch

    def prepare(self, image):
        from napari_vesselgraph.model.preprocess import normalize_image

        return normalize_image(image, self.input_meta)

    def predict_batch(self, patches):
        from scipy import ndimage as ndi

        out = []
        for p in patches:
            lab, n = ndi.label(p[0] > 0.5)
            nodes = np.asarray(ndi.center_of_mass(p[0] > 0.5, lab, range(1, n + 1)), float).reshape(-1, 2)
            sizes = np.bincount(lab.ravel())[1:]
            nodes = nodes[sizes == 9]  # whole dots only
            d = np.linalg.norm(nodes[:, None] - nodes[None], axis=-1)
            i, j = np.nonzero(np.triu(np.abs(d - self.pitch) < 0.5))
            out.append(
                {
                    "nodes": nodes,
                    "node_score": np.full(len(nodes), 0.9),
                    "radius": np.full(len(nodes), 1.0),
                    "edges": np.stack([i, j], 1),
                    "edge_score": np.full(len(i), 0.9),
                }
            )
        return out


def _lattice(lo, hi, pitch=12, offset=6):
    """Centres of the whole dots of a :class:`DotImage` inside ``[lo, hi)`` along one axis."""
    c = np.arange(offset, hi, pitch)
    return c[(c >= lo + 1) & (c <= hi - 2)]


def test_huge_lazy_image_reads_only_its_tiles():
    pytest.importorskip("scipy")
    from napari_vesselgraph.inference import reader as reader_mod

    img = DotImage((40_000, 60_000), pitch=12, offset=6)  # 9.6 GB as float32: never materialised
    region = (slice(20_010, 20_330), slice(30_020, 30_480))
    g = predict(img, predictor=DotPredictor(pitch=12), region=region, tile_size=256, overlap=0.5, postprocess=False)
    # what was read: one strided sample for the statistics, then the region's tiles only
    assert max(img.reads) <= reader_mod.STATS_SAMPLE * 4 * 1.01
    tile_reads = img.reads[1:]
    assert len(tile_reads) == g.metadata["n_tiles"] > 1
    assert max(tile_reads) <= (256 * 256) * 4
    assert sum(img.reads) < 1e-3 * img.nbytes
    # and the graph is the lattice of dots inside the region, in full-image coordinates
    real = ~g.node_attrs["inserted"]
    ys, xs = _lattice(20_010, 20_330), _lattice(30_020, 30_480)
    want = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2).astype(float)
    got = g.nodes[real]
    assert len(got) == len(want)
    assert np.abs(np.sort(got, axis=0) - np.sort(want, axis=0)).max() < 1e-6
    inner = g.edges[real[g.edges].all(axis=1)]
    assert len(inner) == len(ys) * (len(xs) - 1) + len(xs) * (len(ys) - 1)


def test_lazy_image_tiles_equal_in_memory(monkeypatch):
    pytest.importorskip("scipy")
    from napari_vesselgraph.inference import reader as reader_mod

    monkeypatch.setattr(reader_mod, "LAZY_WHOLE_LIMIT", 0)  # read tiles even for this small image
    img = DotImage((300, 420), pitch=12, offset=6)
    kw = {"predictor": DotPredictor(pitch=12), "keep_raw": True, "overlap": 0.5}
    ref = predict(np.asarray(img[0:300, 0:420]), **kw)
    img.reads.clear()
    g = predict(img, tile_size=128, **kw)
    assert g.metadata["n_tiles"] > 4
    assert g.differences(ref) == []
    ny, nx = len(_lattice(0, 300)), len(_lattice(0, 420))
    assert (g.n_nodes, g.n_edges) == (ny * nx, ny * (nx - 1) + nx * (ny - 1))
    assert max(img.reads[1:]) <= 128 * 128 * 4  # never more than a tile at once after the sample
    assert g.metadata["normalization"].startswith("global statistics")


# ------------------------------------------------------------------ files: OME-Zarr, multiscale, TIFF
def _write_ome_zarr(path, levels, scale):
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    datasets = []
    for k, level in enumerate(levels):
        root.create_array(str(k), shape=level.shape, chunks=(64,) * level.ndim, dtype=level.dtype)[:] = level
        datasets.append(
            {
                "path": str(k),
                "coordinateTransformations": [{"type": "scale", "scale": [s * 2**k for s in scale]}],
            }
        )
    axes = [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"[-levels[0].ndim :]]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]


def test_ome_zarr_path_uses_level_0_and_its_scale(tmp_path):
    pytest.importorskip("zarr")
    shape, patch = (150, 190), (64, 64)
    gt = random_tree(shape, seed=2, n_vessels=5)
    img = coordinate_image(shape)
    _write_ome_zarr(tmp_path / "img.ome.zarr", [img, img[::2, ::2].copy()], (0.5, 0.25))
    ref = predict(img, predictor=GTPredictor(gt, shape, patch), scale=(0.5, 0.25))
    g = predict(str(tmp_path / "img.ome.zarr"), predictor=GTPredictor(gt, shape, patch), tile_size=100)
    assert g.scale == (0.5, 0.25)
    assert g.metadata["source_image"].endswith("img.ome.zarr")
    assert g.differences(ref) == []
    # an explicit scale wins over the file's
    g2 = predict(str(tmp_path / "img.ome.zarr"), predictor=GTPredictor(gt, shape, patch), scale=(1.0, 1.0))
    assert g2.scale == (1.0, 1.0)


def test_napari_multiscale_list_uses_level_0():
    da = pytest.importorskip("dask.array")
    shape, patch = (150, 190), (64, 64)
    gt = random_tree(shape, seed=2, n_vessels=5)
    img = coordinate_image(shape)
    ref = predict(img, predictor=GTPredictor(gt, shape, patch))
    levels = [da.from_array(img, chunks=64), da.from_array(img[::2, ::2], chunks=64)]
    assert predict(levels, predictor=GTPredictor(gt, shape, patch)).differences(ref) == []


def test_ome_tiff_path_is_read_lazily_with_its_scale(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from napari_vesselgraph.io import load_image

    shape, patch = (150, 190), (64, 64)
    gt = random_tree(shape, seed=6, n_vessels=5)
    img = coordinate_image(shape)
    path = tmp_path / "img.ome.tif"
    md = {"axes": "YX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.6}
    tifffile.imwrite(path, img, tile=(64, 64), ome=True, metadata=md)
    arr, scale = load_image(path, lazy=True)
    assert not isinstance(arr, np.ndarray) and scale == pytest.approx((0.6, 0.3))
    ref = predict(img, predictor=GTPredictor(gt, shape, patch), scale=scale)
    g = predict(str(path), predictor=GTPredictor(gt, shape, patch), tile_size=100)
    assert g.scale == pytest.approx((0.6, 0.3))
    assert g.differences(ref) == []
    contiguous = tmp_path / "plain.tif"
    tifffile.imwrite(contiguous, img)
    arr, _ = load_image(contiguous, lazy=True)
    assert isinstance(arr, np.memmap)
    g = predict(str(contiguous), predictor=GTPredictor(gt, shape, patch), scale=scale)
    assert g.differences(ref) == []
