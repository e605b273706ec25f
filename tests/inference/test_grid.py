import itertools

import numpy as np
import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.inference import normalize_region, sliding_window
from napari_vesselgraph.inference.grid import axis_starts


@pytest.mark.parametrize(
    "shape,patch,overlap",
    [
        ((64, 64), (64, 64), 0.25),
        ((100, 257), (64, 64), 0.25),
        ((300, 300), (64, 64), 0.5),
        ((97, 130), (32, 48), 0.0),
        ((65, 200), (64, 64), 0.9),
        ((40, 70, 90), (32, 32, 32), 0.25),
    ],
)
def test_grid_covers_image_exactly(shape, patch, overlap):
    grid = sliding_window(shape, patch, overlap)
    cov = grid.coverage()
    assert cov.shape == shape
    assert cov.min() >= 1  # every pixel seen
    for ax, (starts, p, n) in enumerate(zip(grid.axis_starts, patch, shape)):
        assert starts[0] == 0 and starts[-1] == n - p  # first flush with 0, last flush with the border
        assert all(0 <= s <= n - p for s in starts)  # no window leaves the image
        gaps = np.diff(starts)
        assert np.all(gaps > 0)
        assert np.all(p - gaps >= int(np.floor(overlap * p)) - 1)  # requested overlap (rounding)
    # windows are all combinations of the per-axis starts
    assert len(grid) == int(np.prod([len(s) for s in grid.axis_starts]))
    assert not grid.needs_clip


def test_cores_partition_space():
    grid = sliding_window((150, 230), (64, 64), 0.3)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-10, 240, size=(5000, 2))
    inside = np.all((pts[:, None] >= grid.core_lo[None]) & (pts[:, None] < grid.core_hi[None]), axis=2)
    assert np.all(inside.sum(1) == 1)
    # a core lies inside its own window (except the open outer sides)
    for i, s in enumerate(grid.starts):
        lo = np.maximum(grid.core_lo[i], s)
        hi = np.minimum(grid.core_hi[i], np.asarray(s) + 64)
        assert np.all(lo < hi)


def test_small_image_one_centred_window():
    grid = sliding_window((20, 100), (64, 64), 0.25)
    assert grid.axis_starts[0] == [-22]  # centred: pixel 0 of the image at position 22 of the patch
    assert grid.axis_starts[1][0] == 0 and grid.axis_starts[1][-1] == 36
    assert grid.needs_clip
    assert grid.coverage().min() >= 1


def test_region_grid():
    # region larger than a patch: windows inside the region
    grid = sliding_window((300, 300), (64, 64), 0.25, region=(slice(50, 200), slice(10, 80)))
    assert grid.region == ((50, 200), (10, 80))
    assert grid.axis_starts[0][0] == 50 and grid.axis_starts[0][-1] == 136
    assert grid.coverage().min() >= 1
    assert not grid.needs_clip
    # region smaller than a patch: one window around it, inside the image, result cut to the region
    grid = sliding_window((300, 300), (64, 64), 0.25, region=((5, 280), (25, 300)))
    assert grid.axis_starts[0] == [0]
    assert grid.axis_starts[1] == [236]
    assert grid.needs_clip


def test_axis_starts_errors():
    with pytest.raises(VesselGraphError, match="overlap"):
        axis_starts(0, 100, 64, 1.0, 100)
    with pytest.raises(VesselGraphError, match="empty"):
        sliding_window((0, 10), (8, 8))


@pytest.mark.parametrize(
    "region,expected",
    [
        (None, ((0, 100), (0, 120))),
        ((slice(10, 20), slice(None)), ((10, 20), (0, 120))),
        ((slice(-30, None),), ((70, 100), (0, 120))),
        ((Ellipsis, slice(5, 6)), ((0, 100), (5, 6))),
        (((10, 20), (50, 80)), ((10, 50), (20, 80))),  # (start, stop) box
        (np.array([[0, 0], [1000, 1000]]), ((0, 100), (0, 120))),  # clipped to the image
    ],
)
def test_normalize_region(region, expected):
    assert normalize_region(region, (100, 120)) == expected


@pytest.mark.parametrize(
    "region,msg",
    [
        ((slice(0, 10, 2), slice(None)), "step"),
        ((slice(50, 10), slice(None)), "empty"),
        ((slice(None),) * 3, "3 slices"),
        (((1, 2, 3), (4, 5, 6)), "box"),
        ("abc", "region"),
    ],
)
def test_normalize_region_errors(region, msg):
    with pytest.raises(VesselGraphError, match=msg):
        normalize_region(region, (100, 120))


def test_overlap_values_give_more_windows():
    counts = [len(sliding_window((512, 512), (64, 64), ov)) for ov in (0.0, 0.25, 0.5)]
    assert counts == sorted(counts) and counts[0] == 64
    # every combination of per-axis starts appears once
    g = sliding_window((512, 512), (64, 64), 0.25)
    assert set(g.starts) == set(itertools.product(*g.axis_starts))
