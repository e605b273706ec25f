"""Image loading with voxel size: TIFF (ImageJ, OME), PNG, .npy, (OME-)Zarr read lazily; save_tiff."""

from __future__ import annotations

import os

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.io import load_image, save_tiff


def test_tiff_voxel_size_round_trip_3d(tmp_path):
    img = np.random.default_rng(0).integers(0, 4000, (4, 9, 11)).astype(np.uint16)
    p = save_tiff(tmp_path / "vol.tif", img, scale=(2.5, 0.3, 0.7))
    arr, scale = load_image(p)
    assert arr.dtype == np.uint16 and arr.shape == (4, 9, 11)
    np.testing.assert_array_equal(arr, img)
    assert scale == pytest.approx((2.5, 0.3, 0.7), rel=1e-6)


def test_tiff_voxel_size_round_trip_2d(tmp_path):
    img = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    arr, scale = load_image(save_tiff(tmp_path / "img.tif", img, scale=(0.25, 0.125)))
    np.testing.assert_array_equal(arr, img)
    assert scale == pytest.approx((0.25, 0.125), rel=1e-6)


def test_tiff_rgb_has_two_spatial_scales(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, (9, 11, 3)).astype(np.uint8)
    arr, scale = load_image(save_tiff(tmp_path / "rgb.tiff", rgb, scale=(0.5, 0.5)))
    assert arr.shape == (9, 11, 3)
    np.testing.assert_array_equal(arr, rgb)
    assert scale == pytest.approx((0.5, 0.5))


def test_save_tiff_converts_dtypes_and_checks_scale(tmp_path):
    arr, scale = load_image(save_tiff(tmp_path / "b.tif", np.eye(5, dtype=bool)))
    assert arr.dtype == np.uint8 and scale == (1.0, 1.0)
    np.testing.assert_array_equal(arr, np.eye(5))
    with pytest.raises(VesselGraphError, match="scale"):
        save_tiff(tmp_path / "c.tif", np.zeros((3, 4, 5)), scale=(1.0, -1.0, 1.0))


def test_tiff_written_by_other_tools(tmp_path):
    import tifffile

    vol = np.zeros((3, 6, 7), np.uint8)
    # ImageJ calibrated in nanometres: converted to micrometres
    tifffile.imwrite(
        tmp_path / "ij.tif",
        vol,
        imagej=True,
        resolution=(1 / 200, 1 / 100),
        metadata={"axes": "ZYX", "spacing": 500, "unit": "nm"},
    )
    assert load_image(tmp_path / "ij.tif")[1] == pytest.approx((0.5, 0.1, 0.2))
    # OME-TIFF with physical sizes
    tifffile.imwrite(
        tmp_path / "o.ome.tif",
        vol,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.4, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 1.5},
    )
    assert load_image(tmp_path / "o.ome.tif")[1] == pytest.approx((1.5, 0.3, 0.4))
    # no calibration at all
    tifffile.imwrite(tmp_path / "plain.tif", vol[0])
    arr, scale = load_image(tmp_path / "plain.tif")
    assert arr.shape == (6, 7) and scale == (1.0, 1.0)


def _ome_zarr(path, data, zarr_format):
    import zarr

    g = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    a0 = g.create_array("0", shape=data.shape, chunks=(1, 1, 4, 5), dtype=data.dtype)
    a0[:] = data
    a1 = g.create_array("1", shape=(1, data.shape[1], data.shape[2] // 2, data.shape[3] // 2), dtype=data.dtype)
    a1[:] = data[:, :, ::2, ::2]
    axes = [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "nanometer"},
    ]
    ms = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 2.0, 0.5, 250.0]}]},
                {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 2.0, 1.0, 500.0]}]},
            ],
        }
    ]
    if zarr_format == 3:
        g.attrs["ome"] = {"version": "0.5", "multiscales": ms}
    else:
        g.attrs["multiscales"] = ms


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_is_read_lazily_with_scale(tmp_path, zarr_format):
    import dask.array as da

    data = np.arange(1 * 3 * 8 * 10, dtype=np.uint16).reshape(1, 3, 8, 10)
    p = tmp_path / "img.ome.zarr"
    _ome_zarr(p, data, zarr_format)
    arr, scale = load_image(p)
    assert isinstance(arr, da.Array)  # lazy, not loaded
    assert arr.chunksize == (1, 4, 5)  # the store's chunks: dask reads piece by piece
    assert arr.shape == (3, 8, 10)  # highest resolution, singleton channel axis dropped
    assert scale == pytest.approx((2.0, 0.5, 0.25))  # x given in nm -> um
    np.testing.assert_array_equal(arr[1].compute(), data[0, 1])


def test_plain_zarr_array(tmp_path):
    import dask.array as da
    import zarr

    z = zarr.open_array(str(tmp_path / "plain.zarr"), mode="w", shape=(6, 7), chunks=(3, 7), dtype="f4")
    z[:] = 0.5
    arr, scale = load_image(tmp_path / "plain.zarr")
    assert isinstance(arr, da.Array) and arr.shape == (6, 7) and scale == (1.0, 1.0)
    assert float(arr.sum().compute()) == pytest.approx(21.0)


def test_png_and_npy(tmp_path):
    import imageio.v3 as iio

    rgb = np.random.default_rng(3).integers(0, 255, (8, 9, 3)).astype(np.uint8)
    iio.imwrite(tmp_path / "x.png", rgb)
    arr, scale = load_image(tmp_path / "x.png")
    np.testing.assert_array_equal(arr, rgb)
    assert scale == (1.0, 1.0)
    vol = np.random.default_rng(4).random((3, 5, 6))
    np.save(tmp_path / "v.npy", vol)
    arr, scale = load_image(tmp_path / "v.npy")
    np.testing.assert_array_equal(arr, vol)
    assert scale == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "name, content",
    [
        ("broken.tif", b"II*\x00garbage bytes here"),
        ("empty.tif", b""),
        ("broken.png", b"\x89PNG\r\n\x1a\n not really"),
        ("broken.npy", b"\x93NUMPY garbage"),
        ("notes.txt", b"hello"),
    ],
)
def test_broken_or_unsupported_images(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(VesselGraphError) as info:
        load_image(p)
    assert name in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_non_zarr_folder(tmp_path):
    with pytest.raises(VesselGraphError, match="file not found"):
        load_image(tmp_path / "nope.tif")
    os.mkdir(tmp_path / "empty.zarr")
    with pytest.raises(VesselGraphError, match="empty.zarr"):
        load_image(tmp_path / "empty.zarr")


# ------------------------------------------------------------------ broken, absurd or incomplete files
def _read_all(path, **kw):
    arr, _ = load_image(path, **kw)
    return np.asarray(arr)


def _one_line(err, path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and os.path.basename(os.fspath(path)) in msg
    return msg


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_tiff_is_one_line_error_eager_and_lazy(tmp_path, compression, lazy):
    import tifffile

    img = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    kw = {"tile": (128, 128), "compression": compression} if compression else {}
    tifffile.imwrite(tmp_path / "full.tif", img, **kw)
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(VesselGraphError) as err:
        _read_all(tmp_path / "cut.tif", lazy=lazy)
    _one_line(err, "cut.tif")


def test_tiff_declaring_absurd_size_is_refused_quickly(tmp_path):
    import time

    import tifffile

    p = tmp_path / "bomb.tif"
    tifffile.imwrite(p, shape=(100000, 100000), dtype=np.uint8)  # written sparse, then cut to 1 KB
    os.truncate(p, 1024)
    for lazy in (None, True, False):
        t0 = time.perf_counter()
        with pytest.raises(VesselGraphError) as err:
            _read_all(p, lazy=lazy)
        _one_line(err, p)
        assert time.perf_counter() - t0 < 3


def _zeros_tiff(path, shape=(4096, 4096)):
    import tifffile

    tifffile.imwrite(path, np.zeros(shape, np.uint8), tile=(512, 512), compression="zstd")
    return path


def test_highly_compressed_tiff_needs_allow_large(tmp_path, monkeypatch):
    from napari_vesselgraph.io import images

    monkeypatch.setattr(images, "BOMB_MIN_BYTES", 1 << 20)
    p = _zeros_tiff(tmp_path / "zeros.tif")
    assert os.path.getsize(p) * 1000 < 4096 * 4096
    with pytest.raises(VesselGraphError, match="allow-large-image") as err:
        load_image(p)
    assert "compress" in _one_line(err, p)
    arr, _ = load_image(p, allow_large=True)
    assert arr.shape == (4096, 4096) and not np.asarray(arr).any()
    monkeypatch.setenv("NAPARI_VESSELGRAPH_ALLOW_LARGE_IMAGE", "1")  # what the CLI flag sets
    assert load_image(p)[0].shape == (4096, 4096)


def test_eager_read_larger_than_memory_is_refused(tmp_path, monkeypatch):
    from napari_vesselgraph.io import images

    p = tmp_path / "img.tif"
    save_tiff(p, np.ones((512, 512), np.uint16))
    monkeypatch.setattr(images, "available_memory", lambda: 100_000)
    with pytest.raises(VesselGraphError, match="memory") as err:
        load_image(p, lazy=False)
    _one_line(err, p)
    assert load_image(p, lazy=True)[0].shape == (512, 512)  # lazily it reads a window at a time
    assert load_image(p, lazy=False, allow_large=True)[0].shape == (512, 512)


def _plain_zarr(path, zarr_format):
    import zarr

    z = zarr.create_array(str(path), shape=(20, 30), chunks=(10, 10), dtype="u2", zarr_format=zarr_format)
    data = np.arange(1, 601, dtype=np.uint16).reshape(20, 30)  # no chunk equals the fill value: all written
    z[:] = data
    return data


def _chunk_file(path, zarr_format, i, j):
    return path / (f"{i}.{j}" if zarr_format == 2 else os.path.join("c", str(i), str(j)))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_corrupt_zarr_chunk_is_one_line_error(tmp_path, zarr_format):
    p = tmp_path / "img.zarr"
    _plain_zarr(p, zarr_format)
    _chunk_file(p, zarr_format, 1, 2).write_bytes(b"\x00garbage" * 3)
    arr, _ = load_image(p)
    np.asarray(arr[:10])  # the intact chunks read
    with pytest.raises(VesselGraphError, match="cannot read") as err:
        np.asarray(arr)
    _one_line(err, p)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_missing_zarr_chunk_is_reported_not_read_as_zeros(tmp_path, zarr_format):
    p = tmp_path / "img.zarr"
    data = _plain_zarr(p, zarr_format)
    _chunk_file(p, zarr_format, 1, 2).unlink()
    arr, _ = load_image(p)
    np.testing.assert_array_equal(np.asarray(arr[:10]), data[:10])
    with pytest.raises(VesselGraphError, match="missing") as err:
        np.asarray(arr[5:15, 15:25])
    msg = _one_line(err, p)
    assert "allow-missing-chunks" in msg
    # the user opts into the fill value
    arr, _ = load_image(p, allow_missing_chunks=True)
    got = np.asarray(arr)
    assert (got[10:, 20:] == 0).all() and (got[:10] == data[:10]).all()
