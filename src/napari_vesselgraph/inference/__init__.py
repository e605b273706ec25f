"""Whole-image prediction: sliding window over patches, stitching patch graphs, thresholds.

``predict`` is the one call the CLI and the widgets use; see :mod:`.stitch` for the stitching rule (and
:class:`StreamingStitcher`, which merges windows as they arrive), :mod:`.reader` for how lazy (dask/zarr)
images are normalised and read tile by tile, and :mod:`.distributed` for running the tiles on a
dask.distributed cluster.
"""

from .distributed import predict_distributed
from .grid import Tile, WindowGrid, make_tiles, normalize_region, sliding_window
from .predict import predict
from .stitch import StreamingStitcher, apply_thresholds, stitch

__all__ = [
    "StreamingStitcher",
    "Tile",
    "WindowGrid",
    "apply_thresholds",
    "make_tiles",
    "normalize_region",
    "predict",
    "predict_distributed",
    "sliding_window",
    "stitch",
]
