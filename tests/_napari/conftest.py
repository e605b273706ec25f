"""Fixtures for the napari glue tests."""

import pytest

from .graphs import make_graph_2d, make_graph_3d


@pytest.fixture
def graph_2d():
    return make_graph_2d()


@pytest.fixture
def graph_3d():
    return make_graph_3d()
