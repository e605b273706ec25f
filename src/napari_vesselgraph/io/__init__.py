"""Graph file formats, atomic writes and image loading with voxel size.

Nothing heavy is imported here: tifffile, imageio, zarr and dask are imported inside the functions
that need them, so that napari starts fast.
"""

from .atomic import atomic_write, check_writable
from .graphfiles import FORMATS, check_graph_output, csv_paths, graph_format, read_graph, write_graph
from .images import load_image, save_tiff

__all__ = [
    "FORMATS",
    "atomic_write",
    "check_graph_output",
    "check_writable",
    "csv_paths",
    "graph_format",
    "load_image",
    "read_graph",
    "save_tiff",
    "write_graph",
]
