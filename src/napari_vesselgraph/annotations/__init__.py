"""Annotated target patches on disk, saved on every change (see :mod:`.store` for the folder format), and which
patches to annotate next (:mod:`.propose`: ranked by the model's uncertainty, or at random).

The folder is a dataset folder: :func:`napari_vesselgraph.synth.read_dataset`, ``vesselgraph adapt --target DIR``
and ``vesselgraph evaluate --dataset DIR`` read it. No napari or Qt here.
"""

from .propose import Proposal, propose_patches, random_patches
from .store import (
    KIND,
    STATUSES,
    AnnotationStore,
    cut_patch,
    initial_graph,
    patch_box,
    snap_origin,
)

__all__ = [
    "KIND",
    "STATUSES",
    "AnnotationStore",
    "Proposal",
    "cut_patch",
    "initial_graph",
    "patch_box",
    "propose_patches",
    "random_patches",
    "snap_origin",
]
