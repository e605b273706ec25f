"""`vesselgraph import masks|swc|geojson`: dataset folders from the command line; bad input exits 2 with one line."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_vesselgraph.cli import main
from napari_vesselgraph.synth import read_dataset

from .test_geojson import geojson, geotiff


def _masks(tmp_path):
    (tmp_path / "img").mkdir(parents=True)
    (tmp_path / "lab").mkdir()
    m = np.zeros((48, 64), np.uint8)
    m[20:25, 4:60] = 255
    tifffile.imwrite(tmp_path / "img" / "7_training.tif", (m // 2).astype(np.uint8))
    iio.imwrite(tmp_path / "lab" / "7_manual1.gif", m)
    return tmp_path


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vesselgraph: error: "), err
    return err[0]


def test_import_masks_command(tmp_path, capsys):
    src = _masks(tmp_path)
    rc = main(["import", "masks", str(src / "img"), str(src / "lab"), "-o", str(tmp_path / "ds"),
               "--pattern", "{id}_training.tif", "--mask-pattern", "{id}_manual1.gif", "--split", "7=val",
               "--scale", "2.5", "--domain", "mine"])
    assert rc == 0
    assert "1 sample(s) (val 1)" in capsys.readouterr().out
    (rec,) = read_dataset(tmp_path / "ds")
    assert rec.id == "7" and rec.split == "val" and rec.graph.scale == (2.5, 2.5) and rec.domain == "mine"


def test_import_swc_and_geojson_commands(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((6, 30, 40), np.uint8))
    (tmp_path / "s.swc").write_text("1 3 5 5 0 1 -1\n2 3 30 20 9 1 1\n")
    assert main(["import", "swc", str(tmp_path / "s.tif"), str(tmp_path / "s.swc"), "-o", str(tmp_path / "n"),
                 "--z-step", "3", "--spacing", "none"]) == 0
    (rec,) = read_dataset(tmp_path / "n")
    np.testing.assert_allclose(rec.graph.nodes, [[0, 5, 5], [3, 20, 30]])
    tif = geotiff(tmp_path / "g.tif")
    gj = geojson(tmp_path / "g.geojson", [[(50, 5), (50, 195)]])
    assert main(["import", "geojson", str(tif), str(gj), "-o", str(tmp_path / "r"), "--tile", "64",
                 "--region", "0:64,0:128"]) == 0
    assert [r.id for r in read_dataset(tmp_path / "r")] == ["g_y0-64_x0-128_y0_x0", "g_y0-64_x0-128_y0_x64"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["masks", "{src}/img", "{src}/lab", "-o", "{tmp}/o"], "no image matched a mask"),
        (["masks", "{src}/img", "{src}/nowhere", "-o", "{tmp}/o"], "does not exist"),
        (["masks", "{src}/img", "{src}/lab", "-o", "{src}/img/7_training.tif", "--pattern", "{{id}}_training.tif",
          "--mask-pattern", "{{id}}_manual1.gif"], "exists and is not a folder"),
        (["masks", "{src}/img", "{src}/lab", "-o", "{tmp}/o", "--pattern", "x.tif"], "must contain {id}"),
        (["masks", "{src}/img", "{src}/lab", "-o", "{tmp}/o", "--scale", "a"], "--scale takes numbers"),
        (["masks", "{src}/img"], "the following arguments are required"),
        (["swc", "{src}/img/7_training.tif", "{tmp}/missing.swc", "-o", "{tmp}/o"], "SWC file not found"),
        (["swc", "{src}/img/7_training.tif", "{tmp}/x.swc", "-o", "{tmp}/o", "--z-step", "big"], "--z-step"),
        (["geojson", "{src}/img/7_training.tif", "{tmp}/x.geojson", "-o", "{tmp}/o"], "not a GeoTIFF"),
        (["geojson", "a.tif", "b.geojson", "-o", "{tmp}/o", "--region", "middle"], "--region must be"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    src = _masks(tmp_path / "src")
    (tmp_path / "x.swc").write_text("1 3 5 5 0 1 -1\n")
    argv = ["import"] + [a.format(src=src, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "o").exists()
