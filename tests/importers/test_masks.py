"""mask_to_graph / import_masks on masks the tests draw themselves (known centre lines and widths)."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.importers import import_masks, mask_to_graph
from napari_vesselgraph.importers._match import compile_pattern, key_of
from napari_vesselgraph.synth import read_dataset

REALDATA = Path(__file__).parents[2].parent / "shared/realdata"


def draw_curve(shape, curve, radius):
    """Mask of all pixels within ``radius`` of the dense polyline ``curve`` (N, D)."""
    grids = np.indices(shape).reshape(len(shape), -1).T.astype(float)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(curve).query(grids)
    return (d <= radius).reshape(shape)


def dist_to_curve(points, curve):
    from scipy.spatial import cKDTree

    return cKDTree(curve).query(points)[0]


def sine_curve(n=2000):
    x = np.linspace(12, 148, n)
    y = 40 + 12 * np.sin(x / 18.0)
    return np.stack([y, x], 1)


def test_straight_band_lies_on_its_centre_line_with_its_half_width():
    m = np.zeros((40, 100), bool)
    m[18:23, 10:91] = True  # 5 px wide: half width 2.5 from the centre row 20
    g = mask_to_graph(m)
    assert g.n_nodes >= 8 and g.n_edges == g.n_nodes - 1
    assert np.all(np.abs(g.nodes[:, 0] - 20) <= 1.0)
    # the ends reach (almost) the ends of the band
    assert g.nodes[:, 1].min() <= 13 and g.nodes[:, 1].max() >= 88
    np.testing.assert_allclose(np.median(g.node_attrs["radius"]), 2.5, atol=0.3)
    # nodes about `spacing` apart along the path
    lengths = g.edge_lengths(physical=False)
    assert 5.0 <= lengths.mean() <= 13.0 and lengths.max() <= 13.0 + 1e-6


def extend(curve, r):
    """The curve with straight pieces of length ``r`` added at both ends (a vessel's round caps)."""
    d0, d1 = curve[0] - curve[1], curve[-1] - curve[-2]
    s = np.linspace(0, r, 50)[:, None]
    return np.vstack([curve[0] + s[::-1] * d0 / np.linalg.norm(d0), curve, curve[-1] + s * d1 / np.linalg.norm(d1)])


@pytest.mark.parametrize("radius", [1.5, 2.0, 3.0])
def test_curved_vessel_graph_within_a_pixel_of_the_drawn_centre_line(radius):
    curve = sine_curve()
    m = draw_curve((80, 160), curve, radius)
    g = mask_to_graph(m, spacing=8.0)
    assert g.n_nodes > 10 and g.n_edges == g.n_nodes - 1
    # free ends go out to the end of the mask (the round cap): compare with the curve extended by the radius
    line = extend(curve, radius)
    assert dist_to_curve(g.nodes, line).max() <= 1.0
    # the edges too: points along every edge
    t = np.linspace(0, 1, 11)[:, None, None]
    a, b = g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]
    along = (a[None] * (1 - t) + b[None] * t).reshape(-1, 2)
    assert dist_to_curve(along, line).max() <= 1.0
    # radius = the drawn half width (pixel centres within `radius` of the curve: a band 2 * radius wide)
    assert abs(np.median(g.node_attrs["radius"]) - radius) <= 0.4
    assert g.metadata["method"] == "importers.mask_to_graph"


def test_branching_mask_gives_one_junction_and_no_spurs():
    m = np.zeros((100, 100), bool)
    m[48:53, 5:95] = True  # main vessel, radius 2.5
    m[10:50, 69:72] = True  # a branch from above, radius 1.5
    g = mask_to_graph(m)
    deg = g.degree()
    assert np.count_nonzero(deg >= 3) == 1
    assert np.count_nonzero(deg == 1) == 3
    j = g.nodes[deg >= 3][0]
    assert abs(j[0] - 50) <= 2 and abs(j[1] - 70) <= 2


def test_bumps_on_the_outline_are_pruned_by_default_but_not_with_prune_length_zero():
    m = np.zeros((40, 120), bool)
    m[15:26, 5:115] = True  # radius 5.5
    for x in (30, 60, 90):  # small bumps make skeleton spurs
        m[26:29, x - 1 : x + 2] = True
    auto = mask_to_graph(m)
    assert np.count_nonzero(auto.degree() >= 3) == 0
    assert np.all(np.abs(auto.nodes[:, 0] - 20) <= 1.0)
    raw = mask_to_graph(m, prune_length=0, extend_ends=False)
    assert np.count_nonzero(raw.degree() >= 3) >= 1


def test_3d_tube_and_anisotropic_scale():
    m = np.zeros((30, 30, 60), bool)
    zz, yy = np.mgrid[:30, :30]
    disk = (zz - 15) ** 2 + (yy - 14) ** 2 <= 9
    m[:, :, 5:55] = disk[:, :, None]
    g = mask_to_graph(m, scale=(2.0, 0.5, 0.5))
    assert g.ndim == 3 and g.scale == (2.0, 0.5, 0.5)
    assert np.all(np.abs(g.nodes[:, 0] - 15) <= 1.0) and np.all(np.abs(g.nodes[:, 1] - 14) <= 1.0)
    assert g.nodes[:, 2].max() - g.nodes[:, 2].min() >= 40


def test_vessels_cut_by_the_image_border_stay_inside_it():
    m = np.zeros((30, 40, 40), bool)
    m[10:14, 18:22, 20:] = True  # even width, ending on the border
    m[10:14, :, 5:9] = True
    g = mask_to_graph(m)
    assert g.nodes.min() >= 0 and np.all(g.nodes <= np.array(m.shape) - 1)
    assert g.nodes[:, 2].max() == pytest.approx(39, abs=0.5)
    # 4 x 4 bars vanish under skimage's 3D thinning; they are thinned again, thickened by a voxel
    bar = g.nodes[g.nodes[:, 2] > 15]
    assert len(bar) >= 2 and np.all(np.abs(bar[:, :2] - [11.5, 19.5]) <= 1.0)
    assert g.n_edges >= 4


def test_fov_drops_the_outside():
    m = np.zeros((40, 100), bool)
    m[18:23, 5:95] = True
    fov = np.zeros_like(m)
    fov[:, :50] = True
    g = mask_to_graph(m, fov=fov)
    assert g.nodes[:, 1].max() <= 50


def test_empty_mask_and_bad_arguments_give_one_line_errors():
    with pytest.raises(VesselGraphError, match="empty"):
        mask_to_graph(np.zeros((10, 10)), source="x.gif")
    m = np.zeros((20, 20), bool)
    m[5:8, 2:18] = True
    with pytest.raises(VesselGraphError, match="inside the field of view"):
        mask_to_graph(m, fov=np.zeros_like(m))
    with pytest.raises(VesselGraphError, match="field-of-view mask has shape"):
        mask_to_graph(m, fov=np.ones((5, 5)))
    with pytest.raises(VesselGraphError, match="scale"):
        mask_to_graph(m, scale=(1, 2, 3))


@pytest.mark.parametrize(
    "pattern, name, key",
    [
        ("{id}_training.tif", "21_training.tif", "21"),
        ("{id}_training.tif", "21_manual1.gif", None),
        ("{id}_*.gif", "21_manual1.gif", "21"),
        ("*_manual1.gif", "33_manual1.gif", "33"),
        (r"re:(\d+)_training_mask\.gif", "40_training_mask.gif", "40"),
        (r"re:img(?P<id>\d+)\.png", "img7.png", "7"),
        (None, "a.b.tif", "a.b"),
    ],
)
def test_pattern_syntax(pattern, name, key):
    assert key_of(name, compile_pattern(pattern)) == key


def test_bad_patterns():
    with pytest.raises(VesselGraphError, match="must contain"):
        compile_pattern("plain.tif")
    with pytest.raises(VesselGraphError, match="needs a group"):
        compile_pattern(r"re:\d+\.tif")


# --------------------------------------------------------------------------- import_masks
def _drive_like(tmp_path, n=2, shape=(64, 80)):
    """A DRIVE-like layout: RGB TIFF images, GIF masks with another name, GIF field-of-view masks."""
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "manual").mkdir()
    (tmp_path / "fov").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        sid = 21 + i
        m = np.zeros(shape, np.uint8)
        m[30:35, 5:75] = 255
        m[5:31, 20 + 10 * i : 23 + 10 * i] = 255
        img = rng.integers(0, 60, shape + (3,), dtype=np.uint8)
        img[m > 0] = 200
        tifffile.imwrite(tmp_path / "images" / f"{sid}_training.tif", img, photometric="rgb", compression="lzw")
        iio.imwrite(tmp_path / "manual" / f"{sid}_manual1.gif", m)
        f = np.full(shape, 255, np.uint8)
        f[:, 70:] = 0
        iio.imwrite(tmp_path / "fov" / f"{sid}_training_mask.gif", f)
    return tmp_path


def test_import_masks_drive_layout_reads_back(tmp_path):
    src = _drive_like(tmp_path / "src")
    out = import_masks(
        src / "images", src / "manual", tmp_path / "ds", pattern="{id}_training.tif",
        mask_pattern="{id}_manual1.gif", fov=src / "fov", fov_pattern="{id}_training_mask.gif",
        split={"21": "train", "22": "val"}, domain="drive-like",
    )
    recs = read_dataset(out)
    assert [r.id for r in recs] == ["21", "22"]
    assert [r.split for r in recs] == ["train", "val"]
    assert all(r.seed is None and r.domain == "drive-like" for r in recs)
    assert recs[0].image.shape == (64, 80, 3)
    g = recs[0].graph
    assert g.n_edges > 5 and g.nodes[:, 1].max() <= 70
    assert g.metadata["mask"].endswith("21_manual1.gif") and g.metadata["fov"].endswith("21_training_mask.gif")
    import json

    m = json.loads((out / "manifest.json").read_text())
    s = m["samples"][0]
    assert s["mask"] == "masks/21.tif" and (out / s["mask"]).is_file() and (out / s["fov"]).is_file()
    assert set(np.unique(tifffile.imread(out / s["mask"]))) == {0, 255}
    assert m["channels"] == 3 and m["ndim"] == 2 and m["imports"][0]["kind"] == "masks"
    # ids: only some; extending the folder keeps the others
    import_masks(src / "images", src / "manual", out, pattern="{id}_training.tif",
                 mask_pattern="{id}_manual1.gif", ids=["22"], split="test")
    assert {r.id: r.split for r in read_dataset(out)} == {"21": "train", "22": "test"}


def test_import_masks_by_stem_3d_and_254_masks_with_scale(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    stack = np.zeros((6, 40, 40), np.uint8)
    lab = np.zeros((6, 40, 40), np.uint16)
    lab[2:5, 18:22, 4:36] = 254
    stack[lab > 0] = 180
    tifffile.imwrite(tmp_path / "img" / "s1.tif", stack, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    tifffile.imwrite(tmp_path / "lab" / "s1.tif", lab)
    out = import_masks(tmp_path / "img", tmp_path / "lab", tmp_path / "ds")
    (rec,) = read_dataset(out)
    assert rec.image.shape == (6, 40, 40) and rec.graph.ndim == 3
    np.testing.assert_allclose(rec.graph.scale, (3.0, 0.5, 0.5))
    out2 = import_masks(tmp_path / "img" / "s1.tif", tmp_path / "lab" / "s1.tif", tmp_path / "ds2", scale=(2, 1, 1))
    assert read_dataset(out2)[0].graph.scale == (2.0, 1.0, 1.0)


def test_import_masks_errors_name_the_file(tmp_path):
    src = _drive_like(tmp_path / "src", n=1)
    with pytest.raises(VesselGraphError, match="no image matched a mask"):
        import_masks(src / "images", src / "manual", tmp_path / "o1")
    with pytest.raises(VesselGraphError, match="no image files matched"):
        import_masks(src / "images", src / "manual", tmp_path / "o1", pattern="{id}.png")
    assert not (tmp_path / "o1").exists()  # nothing written before the inputs are checked
    iio.imwrite(src / "manual" / "21_manual1.gif", np.zeros((64, 80), np.uint8))
    with pytest.raises(VesselGraphError, match=r"21_manual1\.gif: the mask is empty") as e:
        import_masks(src / "images", src / "manual", tmp_path / "o2", pattern="{id}_training.tif",
                     mask_pattern="{id}_manual1.gif")
    assert "\n" not in str(e.value)
    iio.imwrite(src / "manual" / "21_manual1.gif", np.full((50, 80), 255, np.uint8))
    with pytest.raises(VesselGraphError, match=r"21_manual1\.gif: mask shape \(50, 80\) differs"):
        import_masks(src / "images", src / "manual", tmp_path / "o3", pattern="{id}_training.tif",
                     mask_pattern="{id}_manual1.gif")
    with pytest.raises(VesselGraphError, match="no split given"):
        import_masks(src / "images", src / "manual", tmp_path / "o4", pattern="{id}_training.tif",
                     mask_pattern="{id}_manual1.gif", split={"99": "val"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("x")
    with pytest.raises(VesselGraphError, match="not a dataset folder"):
        import_masks(src / "images", src / "manual", tmp_path / "full", pattern="{id}_training.tif",
                     mask_pattern="{id}_manual1.gif")


@pytest.mark.skipif(not (REALDATA / "drive-train").is_dir(), reason=f"real data not present at {REALDATA}")
def test_real_drive_image_21(tmp_path):
    pytest.importorskip("imagecodecs", reason="DRIVE images are LZW TIFFs; reading them needs imagecodecs")
    d = REALDATA / "drive-train"
    out = import_masks(d / "images", d / "1st_manual", tmp_path / "drive", pattern="{id}_training.tif",
                       mask_pattern="{id}_manual1.gif", fov=d / "mask", fov_pattern="{id}_training_mask.gif",
                       ids=["21"], domain="drive")
    (rec,) = read_dataset(out)
    g = rec.graph
    assert rec.image.shape == (584, 565, 3)
    assert 600 <= g.n_nodes <= 2500, g.n_nodes  # measured: 1058 nodes, 1084 edges
    assert 7.0 <= g.edge_lengths(physical=False).mean() <= 10.0
    assert 0.8 <= np.median(g.node_attrs["radius"]) <= 3.0


def test_inside_distance_is_the_euclidean_distance_transform():
    from scipy import ndimage as ndi

    from napari_vesselgraph.importers.masks import _inside_distance

    rng = np.random.default_rng(3)
    for k in range(12):
        shape = (12, 30, 25) if k % 2 else (40, 37)
        seeds = rng.random(shape) < 0.004
        m = ndi.binary_dilation(seeds, iterations=int(rng.integers(1, 3)))
        m[0, ...] |= k == 3  # touching the border
        rel = np.ones(m.ndim) if k % 3 else np.r_[rng.uniform(1, 4), np.ones(m.ndim - 1)]
        want = ndi.distance_transform_edt(m, sampling=None if k % 3 else rel).astype(np.float32)
        np.testing.assert_allclose(_inside_distance(m, rel), want, atol=1e-5)
    full = np.ones((5, 6), bool)
    np.testing.assert_allclose(_inside_distance(full, np.ones(2)), ndi.distance_transform_edt(full))
