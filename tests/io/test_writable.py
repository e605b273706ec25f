"""io.check_writable: refuse an output that cannot be written before the work starts, in one line."""

from __future__ import annotations

import os

import pytest

from napari_vesselgraph.errors import VesselGraphError
from napari_vesselgraph.io import check_writable


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_a_good_path_passes_and_leaves_nothing(tmp_path):
    p = tmp_path / "g.graphml"
    assert check_writable(p, suffixes=(".graphml",)) == p
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix(tmp_path):
    with pytest.raises(VesselGraphError, match=r"\.txt") as err:
        check_writable(tmp_path / "out.txt", suffixes=(".graphml", ".json"))
    assert ".graphml" in _one_line(err)


def test_missing_folder(tmp_path):
    with pytest.raises(VesselGraphError, match="does not exist") as err:
        check_writable(tmp_path / "nonexistent" / "dir" / "x.graphml")
    _one_line(err)
    # ... unless the folders are to be made
    assert check_writable(tmp_path / "nonexistent" / "dir" / "x.graphml", parents=True)
    assert not (tmp_path / "nonexistent").exists()


def test_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(VesselGraphError, match="not a folder") as err:
        check_writable(tmp_path / "file" / "x.json")
    _one_line(err)
    with pytest.raises(VesselGraphError, match="not a folder"):
        check_writable(tmp_path / "file" / "sub" / "x.json", parents=True)
    with pytest.raises(VesselGraphError, match="not a folder"):
        check_writable(tmp_path / "file" / "run", folder=True)


def test_target_is_a_folder(tmp_path):
    with pytest.raises(VesselGraphError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(VesselGraphError, match="not a folder"):
        (tmp_path / "f").write_text("x")
        check_writable(tmp_path / "f", folder=True)
    assert check_writable(tmp_path / "new", folder=True) == tmp_path / "new"


def test_read_only_folder(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, *a, **k: False if os.fspath(p) == str(tmp_path) else real(p, mode)
    )
    with pytest.raises(VesselGraphError, match="not writable") as err:
        check_writable(tmp_path / "x.json")
    assert str(tmp_path) in _one_line(err)


def test_probe_failure_is_reported(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(VesselGraphError, match="Permission denied"):
        check_writable(tmp_path / "x.json")


def test_name_too_long_counts_the_temporary_name(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    ok = "a" * (name_max - 14 - 5) + ".json"  # the atomic write's ".NAME.1234abcd.tmp" still fits
    assert check_writable(tmp_path / ok)
    long = "a" * (250 - 5) + ".json"  # fits as a name, but not its temporary file
    with pytest.raises(VesselGraphError, match="too long") as err:
        check_writable(tmp_path / long)
    assert len(_one_line(err)) < 500
    with pytest.raises(VesselGraphError, match="too long"):
        check_writable(tmp_path / ("b" * 300) / "x.json", parents=True)
