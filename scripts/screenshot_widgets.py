"""Screenshots of the napari widgets for docs/user-guide.md.

    xvfb-run -a python scripts/screenshot_widgets.py [--method skeleton|CHECKPOINT] [--out-dir docs/images]

Writes

* ``widget_predict_retina.png``: the retina sample, the *Predict graph* widget docked, the predicted graph on
  top of the vessels (zoomed on the optic disc so the graph can be seen);
* ``widget_inspector.png``: the *Graph inspector* on the same graph, a segment chosen in its table;
* ``widget_predict_3d.png``: the 3D light-sheet sample in the 3D view with its predicted graph.

The predictions go through the widgets themselves (Run, the worker thread, the layers). ``--method`` picks a
checkpoint by name (``vesselgraph checkpoints`` lists them), ``skeleton`` for the classical baseline, or ``auto``
(the default): what the widget chooses for the image. The docs' screenshots are made with
``--method skeleton --method-3d auto`` (the bundled 2D model is made for bright vessels and finds little on the
retina photo; the widget says so).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

#: camera angles of the 3D screenshot (degrees, napari's convention)
ANGLES_3D = (0.0, 60.0, 90.0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wait(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait_for(app, cond, timeout: float = 600.0) -> None:
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def _dismiss_notifications(viewer) -> None:
    """Close the notification pop-ups so they do not cover the canvas in the screenshot."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for w in viewer.window._qt_window.findChildren(NapariQtNotification):
        w.close()


def _shoot(app, viewer, out: str) -> None:
    _wait(app, 0.8)
    _dismiss_notifications(viewer)
    _wait(app, 0.4)
    viewer.screenshot(path=out, canvas_only=False, flash=False)
    print(f"wrote {out}")


def _choose_method(widget, method: str | None, ndim: int) -> str:
    """Select ``method`` in the widget; ``auto`` keeps what the widget chose for the image (the checkpoint that
    suits it best, ``checkpoints.suits``, or the skeleton when none can run on it)."""
    from napari_vesselgraph._napari._predict_widget import SKELETON_LABEL

    combo = widget.method_combo
    if method in (None, "auto"):
        chosen = widget.method()
        return chosen["name"] if chosen.get("kind") == "model" else "skeleton"
    if method == "skeleton":
        combo.setCurrentIndex(combo.findText(SKELETON_LABEL))
        return "skeleton"
    for i in range(combo.count()):
        d = combo.itemData(i)
        if isinstance(d, dict) and d.get("name") == method:
            combo.setCurrentIndex(i)
            return method
    raise SystemExit(f"no checkpoint named {method!r} in the widget")


def _predict(app, viewer, widget, image_layer) -> None:
    widget.image_combo.set_layer(image_layer)
    widget.run()
    _wait_for(app, lambda: widget.worker is None)
    if widget.last_result is None:
        raise SystemExit(f"the prediction failed: {widget.status_label.text()}")
    _wait(app, 0.5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="auto", help="checkpoint name, 'skeleton', or 'auto' (default)")
    ap.add_argument("--method-3d", default=None, help="method for the 3D sample (default: like --method)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "images"))
    ap.add_argument("--size", default="1500x950", help="window size WIDTHxHEIGHT")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_vesselgraph._napari._inspector_widget import InspectorWidget
    from napari_vesselgraph._napari._predict_widget import PredictWidget

    os.makedirs(args.out_dir, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    # ---- 1. retina + predict widget
    viewer = napari.Viewer(title="napari-vesselgraph", show=True)
    app = QApplication.instance()
    viewer.window._qt_window.resize(width, height)
    (retina,) = viewer.open_sample("napari-vesselgraph", "retina")
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict graph", area="right")
    label = _choose_method(predict, args.method, 2)
    print(f"retina: predicting with {label}")
    _predict(app, viewer, predict, retina)
    res = predict.last_result
    res.layers["nodes"].size = 5
    res.layers["edges"].edge_width = 2.5
    viewer.layers.selection.active = res.layers["nodes"]
    # the optic disc (left) and the big vessels leaving it
    viewer.scene.camera.center = (0.0, 640.0, 520.0)
    viewer.scene.camera.zoom = 1.05
    _shoot(app, viewer, os.path.join(args.out_dir, "widget_predict_retina.png"))

    # ---- 2. inspector on the same graph, one segment chosen
    inspector = InspectorWidget(viewer)
    viewer.window.add_dock_widget(inspector, name="Graph inspector", area="right", tabify=True)
    inspector.select_graph(res.layers["nodes"])
    inspector.refresh_statistics()
    _wait_for(app, lambda: inspector.worker is None and inspector.result is not None)
    inspector.set_color_by("nodes", "degree")
    # pick a long segment near the view centre

    seg = inspector.result["segments"]
    nodes = np.asarray(res.layers["nodes"].data)
    centres = np.array([nodes[[n for n in s if n < len(nodes)]].mean(0) for s in inspector.result["segment_nodes"]])
    near = np.linalg.norm(centres - np.array([640.0, 520.0]), axis=1) < 250
    score = np.where(near, seg["length"], -1)
    best = int(np.argmax(score))
    inspector.segments_view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    row = [inspector.segments_model.segment_index(r) for r in range(inspector.segments_model.rowCount())].index(best)
    inspector.segments_view.selectRow(row)
    inspector.segments_view.scrollTo(inspector.segments_model.index(row, 0))
    viewer.scene.camera.zoom = 1.8
    _shoot(app, viewer, os.path.join(args.out_dir, "widget_inspector.png"))
    viewer.close()
    _wait(app, 0.5)

    # ---- 3. 3D sample in the 3D view
    viewer = napari.Viewer(title="napari-vesselgraph", show=True)
    viewer.window._qt_window.resize(width, height)
    layers = viewer.open_sample("napari-vesselgraph", "vessel3d-lightsheet")
    volume = layers[0]
    volume.rendering = "mip"
    volume.contrast_limits = (0.0, 0.8)
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict graph", area="right")
    label = _choose_method(predict, args.method_3d or args.method, 3)
    print(f"3D sample: predicting with {label}")
    _predict(app, viewer, predict, volume)
    res = predict.last_result
    res.layers["nodes"].size = 2.5
    res.layers["edges"].edge_width = 1.0
    viewer.dims.ndisplay = 3
    viewer.scene.camera.angles = ANGLES_3D
    viewer.fit_to_view()
    viewer.layers.selection.active = res.layers["nodes"]
    _shoot(app, viewer, os.path.join(args.out_dir, "widget_predict_3d.png"))
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
