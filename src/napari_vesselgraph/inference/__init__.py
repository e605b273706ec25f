"""Whole-image prediction: sliding window over patches, stitching patch graphs, thresholds.

``predict`` is the one call the CLI and the widgets use; see :mod:`.stitch` for the stitching rule and
:mod:`.reader` for how lazy (dask/zarr) images are normalised.
"""

from .grid import WindowGrid, normalize_region, sliding_window
from .predict import predict
from .stitch import apply_thresholds, stitch

__all__ = ["WindowGrid", "apply_thresholds", "normalize_region", "predict", "sliding_window", "stitch"]
