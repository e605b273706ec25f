"""Fixtures for the napari glue tests."""

import pytest

from .graphs import make_graph_2d, make_graph_3d


@pytest.fixture
def graph_2d():
    return make_graph_2d()


@pytest.fixture
def graph_3d():
    return make_graph_3d()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))


@pytest.fixture
def notes(monkeypatch):
    from napari.utils import notifications

    seen: dict[str, list[str]] = {"info": [], "warning": [], "error": []}
    for level in ("info", "warning", "error"):
        monkeypatch.setattr(notifications, f"show_{level}", lambda msg, level=level: seen[level].append(str(msg)))
    return seen
