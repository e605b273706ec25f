"""Checkpoints: safetensors weights + JSON metadata; registry of bundled and user checkpoints.

Importing this package does not import torch (listing checkpoints reads their headers only).
"""

from .store import (
    DEFAULT_CHECKPOINT,
    FORMAT_VERSION,
    bundled_dir,
    check_metadata,
    list_bundled,
    list_checkpoints,
    list_user,
    load_checkpoint,
    load_tensors,
    read_metadata,
    rescue_dir,
    resolve,
    save_checkpoint,
    save_tensors,
    user_dir,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "FORMAT_VERSION",
    "bundled_dir",
    "check_metadata",
    "list_bundled",
    "list_checkpoints",
    "list_user",
    "load_checkpoint",
    "load_tensors",
    "read_metadata",
    "rescue_dir",
    "resolve",
    "save_checkpoint",
    "save_tensors",
    "user_dir",
]
