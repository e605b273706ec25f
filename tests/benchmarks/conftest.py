"""Import a script of benchmarks/ as a module (``load_bench("adaptation")``); it is forgotten afterwards."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_bench(monkeypatch):
    names = []

    def load(name: str):
        monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
        names.append(name)
        return importlib.import_module(name)

    yield load
    for name in names:
        sys.modules.pop(name, None)
