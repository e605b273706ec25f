"""Make the README screenshot: the retina sample in napari, with a graph on top when one is given.

    xvfb-run -a python scripts/screenshot_readme.py [--graph PATH] [--out docs/images/readme.png]

``--graph`` takes any file ``napari_vesselgraph.io.read_graph`` reads (GraphML, JSON, CSV pair, SWC,
VTK) holding a graph in the retina image's pixel coordinates. The screenshot is of the whole window
(``viewer.screenshot(canvas_only=False)``).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", help="graph file to overlay on the retina")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "readme.png"))
    ap.add_argument("--size", default="1400x900", help="window size WIDTHxHEIGHT (default 1400x900)")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_vesselgraph._napari.layers import add_graph_to_viewer, find_graph_layers

    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer = napari.Viewer(title="napari-vesselgraph", show=True)
    viewer.window._qt_window.resize(width, height)
    (image,) = viewer.open_sample("napari-vesselgraph", "retina")
    if args.graph:
        from napari_vesselgraph._napari._widget_utils import contrast_color, displayed_pixels
        from napari_vesselgraph.io import read_graph

        graph = read_graph(args.graph)
        add_graph_to_viewer(viewer, graph, image_layer=image, name=os.path.splitext(os.path.basename(args.graph))[0])
        layers = find_graph_layers(viewer.layers)
        edges = layers.get("edges")
        if edges is not None:  # one colour that stands out on the photo, as the Predict widget draws edges
            edges.edge_color = contrast_color(displayed_pixels(image))
        nodes = layers.get("nodes")
        if nodes is not None:
            viewer.layers.selection.active = nodes
    viewer.reset_view()
    for _ in range(5):
        QApplication.processEvents()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    viewer.screenshot(path=args.out, canvas_only=False, flash=False)
    viewer.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
