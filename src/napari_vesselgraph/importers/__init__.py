"""Import annotated real data into dataset folders (see docs/formats.md, "Importing annotations").

* :func:`mask_to_graph` / :func:`import_masks`: binary vessel masks (DRIVE, vesselNN, ...) -> centre-line graphs.
* :func:`read_swc_graph` / :func:`import_swc`: SWC traces (DIADEM, ...) aligned on their image stack.
* :func:`geojson_to_graph` / :func:`import_geojson`: GeoJSON line strings (SpaceNet roads) on a GeoTIFF.

Every importer writes the dataset folder format of :mod:`napari_vesselgraph.synth.dataset`, so the result
is read by ``synth.read_dataset`` (``vesselgraph train``, ``adapt --target``, ``evaluate --dataset``).
Nothing heavy is imported at module level.
"""

from .geojson import geojson_to_graph, import_geojson
from .masks import import_masks, mask_to_graph
from .swc import import_swc, read_swc_graph

__all__ = ["geojson_to_graph", "import_geojson", "import_masks", "import_swc", "mask_to_graph", "read_swc_graph"]
