"""Annotated target patches on disk, saved on every change (see :mod:`.store` for the folder format).

The folder is a dataset folder: :func:`napari_vesselgraph.synth.read_dataset`, ``vesselgraph adapt --target DIR``
and ``vesselgraph evaluate --dataset DIR`` read it. No napari or Qt here.
"""

from .store import (
    KIND,
    STATUSES,
    AnnotationStore,
    cut_patch,
    initial_graph,
    patch_box,
    snap_origin,
)

__all__ = ["KIND", "STATUSES", "AnnotationStore", "cut_patch", "initial_graph", "patch_box", "snap_origin"]
