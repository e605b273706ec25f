"""Relationformer image-to-graph model: config, network, losses, input normalisation, patch predictor, training.

Submodules that need torch are imported lazily so importing this package stays cheap.
"""

from __future__ import annotations

from .config import ModelConfig
from .preprocess import normalize_image

__all__ = [
    "ModelConfig",
    "PatchPredictor",
    "Relationformer",
    "TrainConfig",
    "build_model",
    "candidates_to_graph",
    "make_predictor",
    "normalize_image",
    "select_device",
    "train",
]

_LAZY = {
    "Relationformer": "network",
    "build_model": "network",
    "PatchPredictor": "predictor",
    "make_predictor": "predictor",
    "select_device": "predictor",
    "candidates_to_graph": "predictor",
    "train": "train",
    "TrainConfig": "train",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
