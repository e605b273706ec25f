"""Graph file formats, atomic writes and image loading with voxel size.

Nothing heavy is imported here: tifffile, imageio, zarr and dask are imported inside the functions
that need them, so that napari starts fast.
"""

from .atomic import atomic_write
from .graphfiles import FORMATS, csv_paths, graph_format, read_graph, write_graph
from .images import load_image, save_tiff

__all__ = [
    "FORMATS",
    "atomic_write",
    "csv_paths",
    "graph_format",
    "load_image",
    "read_graph",
    "save_tiff",
    "write_graph",
]
