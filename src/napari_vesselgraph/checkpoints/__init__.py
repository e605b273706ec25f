"""Checkpoints: safetensors weights + JSON metadata; registry of bundled and user checkpoints.

:class:`CheckpointMeta` (:mod:`.meta`) is the metadata as one typed, validated object, and the one place that reads
a checkpoint's dimensionality, channels, patch size and thresholds; :mod:`.suits` says what a checkpoint is for.

Importing this package does not import torch (listing checkpoints reads their headers only).
"""

from .meta import (
    FORMAT_VERSION,
    CheckpointMeta,
    checkpoint_candidates,
    checkpoint_ndim,
    checkpoint_patch_size,
    checkpoint_thresholds,
)
from .store import (
    DEFAULT_CHECKPOINT,
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
from .suits import describe_checkpoint

__all__ = [
    "DEFAULT_CHECKPOINT",
    "FORMAT_VERSION",
    "CheckpointMeta",
    "bundled_dir",
    "check_metadata",
    "checkpoint_candidates",
    "checkpoint_ndim",
    "checkpoint_patch_size",
    "checkpoint_thresholds",
    "describe_checkpoint",
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
