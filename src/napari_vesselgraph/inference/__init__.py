"""Whole-image prediction: sliding window over patches, stitching patch graphs, thresholds.

``predict`` is the one call the CLI and the widgets use; :mod:`.plan` holds what a prediction does whatever runs
its windows (:class:`PredictOptions`, :class:`PredictionPlan`), :mod:`.postprocess` the thresholds and the clean-up
(:class:`CleanupSettings`, :func:`finish_graph`); see :mod:`.stitch` for the stitching rule (and
:class:`StreamingStitcher`, which merges windows as they arrive), :mod:`.reader` for how lazy (dask/zarr)
images are normalised and read tile by tile, and :mod:`.distributed` for running the tiles on a
dask.distributed cluster.
"""

from .distributed import predict_distributed
from .grid import Tile, WindowGrid, make_tiles, normalize_region, sliding_window
from .plan import PredictionPlan, PredictOptions
from .postprocess import CleanupSettings, apply_thresholds, finish_graph
from .predict import predict
from .stitch import StreamingStitcher, stitch

__all__ = [
    "CleanupSettings",
    "PredictOptions",
    "PredictionPlan",
    "StreamingStitcher",
    "Tile",
    "WindowGrid",
    "apply_thresholds",
    "finish_graph",
    "make_tiles",
    "normalize_region",
    "predict",
    "predict_distributed",
    "sliding_window",
    "stitch",
]
