import numpy as np
import pytest

from napari_vesselgraph.inference import reader as reader_mod
from napari_vesselgraph.inference import sliding_window
from napari_vesselgraph.inference.reader import ImageSource, PatchReader
from napari_vesselgraph.model.preprocess import input_meta, normalize_image


class _NormOnly:
    """Just the normalisation part of a PatchPredictor."""

    def __init__(self, **kw):
        self.input_meta = input_meta(**kw)

    def prepare(self, image):
        return normalize_image(image, self.input_meta)


def _image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.gamma(2.0, 300.0, size=shape)
    img[..., :20] *= 0.1  # a dark band: tiles there must not be stretched on their own
    if np.dtype(dtype).kind == "u":
        img = np.clip(img, 0, np.iinfo(dtype).max)
    return img.astype(dtype)


@pytest.mark.parametrize(
    "shape,dtype,meta,spatial,has_ch",
    [
        ((150, 230), np.uint16, {"ndim": 2, "channels": 1}, 2, False),
        ((150, 230, 3), np.uint8, {"ndim": 2, "channels": 1, "invert": True}, 2, True),  # RGB -> grey
        ((150, 230), np.float32, {"ndim": 2, "channels": 3, "method": "minmax"}, 2, False),  # grey -> RGB
        ((30, 70, 80), np.uint16, {"ndim": 3, "channels": 1, "low": 0.5, "high": 99.9}, 3, False),
    ],
)
def test_tiles_with_global_stats_equal_whole_image(shape, dtype, meta, spatial, has_ch):
    img = _image(shape, dtype)
    pred = _NormOnly(**meta)
    src = ImageSource(img, spatial, has_ch)
    whole = PatchReader(src, pred, mode="whole")
    tiles = PatchReader(src, pred, mode="tiles")
    assert tiles.normalization.startswith("global statistics")
    patch = (32,) * spatial
    grid = sliding_window(src.shape, patch, 0.25)
    for s in grid.starts:
        a, b = whole.read(s, patch), tiles.read(s, patch)
        assert a.shape == b.shape == (pred.input_meta["channels"], *patch)
        assert np.abs(a - b).max() < 1e-5


def test_strided_subsample_statistics_are_close(monkeypatch):
    monkeypatch.setattr(reader_mod, "STATS_SAMPLE", 4000)
    img = _image((300, 400), np.uint16)
    pred = _NormOnly(ndim=2, channels=1)
    src = ImageSource(img, 2, False)
    whole = PatchReader(src, pred, mode="whole")
    tiles = PatchReader(src, pred, mode="tiles")
    for s in [(0, 0), (100, 300), (236, 336)]:
        assert np.abs(whole.read(s, (64, 64)) - tiles.read(s, (64, 64))).max() < 0.03


def test_auto_mode_and_lazy_sources():
    da = pytest.importorskip("dask.array")
    img = _image((120, 130), np.uint16)
    pred = _NormOnly(ndim=2, channels=1)
    assert PatchReader(ImageSource(img, 2, False), pred).mode == "whole"
    lazy = da.from_array(img, chunks=32)
    r = PatchReader(ImageSource(lazy, 2, False), pred)
    assert r.mode == "whole"  # small lazy arrays are read once
    ref = PatchReader(ImageSource(img, 2, False), pred, mode="whole").read((10, 20), (64, 64))
    assert np.allclose(r.read((10, 20), (64, 64)), ref)


@pytest.mark.parametrize("pad_mode", ["reflect", "constant", "edge"])
def test_padding_outside_the_image(pad_mode):
    img = _image((20, 30), np.uint16)
    pred = _NormOnly(ndim=2, channels=1)
    r = PatchReader(ImageSource(img, 2, False), pred, pad_mode=pad_mode)
    t = r.read((-22, -17), (64, 64))
    assert t.shape == (1, 64, 64)
    inner = pred.prepare(img)
    assert np.allclose(t[:, 22:42, 17:47], inner)
    if pad_mode == "constant":
        assert t[:, :22].max() == 0 and t[:, 42:].max() == 0


def test_channel_selection_reads_one_channel():
    img = np.stack([np.zeros((40, 50)), np.arange(2000.0).reshape(40, 50)], axis=-1)
    src = ImageSource(img, 2, False, channel=1)
    assert src.shape == (40, 50)
    assert np.array_equal(src.read(((5, 7), (10, 12))), img[5:7, 10:12, 1])


def test_failing_lazy_read_is_one_line_error():
    """A lazy array whose pixels cannot be read (a broken chunk) ends in a clear error, not a traceback."""
    import dask.array as da

    from napari_vesselgraph.errors import VesselGraphError

    def broken(block):
        raise OSError(5, "Input/output error")

    arr = da.zeros((64, 64), chunks=32, dtype="f4").map_blocks(broken, dtype="f4")
    src = ImageSource(arr, 2, False)
    with pytest.raises(VesselGraphError, match="Input/output error") as err:
        src.read(((0, 40), (0, 40)))
    assert "\n" not in str(err.value)
