"""The steps of docs/tutorial.md, done by a script in a real napari viewer, with screenshots.

    xvfb-run -a python scripts/tutorial_run.py [--steps 150] [--threads 1] [--out-dir docs/images]

1. opens the retina sample and predicts its graph with the bundled ``vessel2d-fluo`` checkpoint (*Predict graph*);
2. creates an annotation project and adds three 64 × 64 patches (*Annotate patches*), each starting from that
   prediction, then **replaces each patch's graph by a corrected one** (see below) through the widget, which saves
   it to the project folder;
3. fine-tunes ``vessel2d-fluo`` on the project with the contrastive method (*Fine-tune*), one of the three
   patches held out;
4. predicts again with the new checkpoint, which the *Predict graph* widget has selected by itself.

It writes ``docs/images/tutorial_{1_predict,2_annotate,3_finetune,4_predict_again}.png`` and prints the figures
the tutorial quotes: the before/after metrics on the held-out patch (from the new checkpoint's metadata) and the
agreement of the whole-image graphs with the reference graph before and after.

The "corrections": the retina photo has no ground-truth graph, and a script cannot correct by eye. The script
uses the classical skeleton baseline (``inference.predict(method="skeleton")``: vesselness, threshold, skeleton,
the photo's black surround masked) as the corrected graph, cut to each patch the way training patches are cut,
with pieces of fewer than three nodes dropped. So the figures measure how well the model learns to agree with
that reference, not with a human annotator. The patches are the three non-overlapping 64-pixel grid cells near
the optic disc with the most reference vessel length.

By default the new checkpoint goes to a temporary user folder (``NAPARI_VESSELGRAPH_HOME``), so the run leaves
your own checkpoint folder alone; ``--home`` picks another one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCH = 64
#: the part of the retina the patches are chosen in (around the optic disc and the vessels leaving it)
SEARCH_BOX = ((384, 896), (256, 768))


def _wait(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait_for(app, cond, timeout: float = 1800.0, report=None, every: float = 15.0) -> None:
    end = time.perf_counter() + timeout
    last = time.perf_counter()
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)
        if report is not None and time.perf_counter() - last > every:
            last = time.perf_counter()
            report()


def _dismiss_notifications(viewer) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for w in viewer.window._qt_window.findChildren(NapariQtNotification):
        w.close()


def _shoot(app, viewer, out: str) -> None:
    _wait(app, 0.8)
    _dismiss_notifications(viewer)
    _wait(app, 0.4)
    viewer.screenshot(path=out, canvas_only=False, flash=False)
    print(f"wrote {out}")


def choose_patches(reference, n: int = 3) -> list[tuple[int, int]]:
    """The ``n`` grid cells (PATCH pixels, non-overlapping) inside SEARCH_BOX with the most reference edge length."""
    from napari_vesselgraph.annotations import initial_graph

    cells = []
    (y0, y1), (x0, x1) = SEARCH_BOX
    for y in range(y0, y1 - PATCH + 1, PATCH):
        for x in range(x0, x1 - PATCH + 1, PATCH):
            g = initial_graph(reference, (y, x), (PATCH, PATCH))
            cells.append((float(g.edge_lengths(physical=False).sum()), (y, x)))
    cells.sort(reverse=True)
    return [c for _, c in cells[:n]]


def corrected_graph(reference, origin):
    """The reference graph cut to a patch, without pieces of fewer than three nodes (in patch pixels)."""
    from napari_vesselgraph.annotations import initial_graph
    from napari_vesselgraph.metrics._geometry import components

    g = initial_graph(reference, origin, (PATCH, PATCH))
    if not g.n_nodes:
        return g
    _, label = components(g.n_nodes, g.edges)
    sizes = np.bincount(label)
    return g.subgraph(sizes[label] >= 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps (default 150)")
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--method", default="contrastive")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "images"))
    ap.add_argument("--project", default=None, help="annotation project folder (default: a temporary one)")
    ap.add_argument("--home", default=None, help="NAPARI_VESSELGRAPH_HOME for the new checkpoint (default: temporary)")
    ap.add_argument("--size", default="1500x950", help="window size WIDTHxHEIGHT")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="vesselgraph-tutorial-")
    os.environ["NAPARI_VESSELGRAPH_HOME"] = args.home or os.path.join(tmp, "home")
    project = args.project or os.path.join(tmp, "retina-annotations")
    os.makedirs(args.out_dir, exist_ok=True)

    import torch

    torch.set_num_threads(args.threads)
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_vesselgraph._napari._annotation_widget import AnnotationWidget
    from napari_vesselgraph._napari._finetune_widget import FinetuneWidget
    from napari_vesselgraph._napari._predict_widget import PredictWidget
    from napari_vesselgraph._napari._widget_utils import camera
    from napari_vesselgraph.checkpoints import read_metadata
    from napari_vesselgraph.inference import predict
    from napari_vesselgraph.metrics import evaluate

    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer = napari.Viewer(title="napari-vesselgraph tutorial", show=True)
    app = QApplication.instance()
    viewer.window._qt_window.resize(width, height)
    (retina,) = viewer.open_sample("napari-vesselgraph", "retina")
    image = np.asarray(retina.data)

    # ---- 1. predict with the bundled checkpoint
    pw = PredictWidget(viewer)
    viewer.window.add_dock_widget(pw, name="Predict graph", area="right")
    for i in range(pw.method_combo.count()):
        d = pw.method_combo.itemData(i)
        if isinstance(d, dict) and d.get("name") == "vessel2d-fluo":
            pw.method_combo.setCurrentIndex(i)
            break
    else:
        raise SystemExit("the bundled checkpoint vessel2d-fluo is not installed")
    t = time.perf_counter()
    pw.run()
    _wait_for(app, lambda: pw.worker is None)
    if pw.last_result is None:
        raise SystemExit(f"the prediction failed: {pw.status_label.text()}")
    print(f"step 1: {pw.status_label.text()} ({time.perf_counter() - t:.0f} s)")
    before_layers = pw.last_result.layers
    for layer in before_layers.values():
        if type(layer).__name__ == "Points":
            layer.size = 5
        else:
            layer.edge_width = 2.5

    # the reference ("corrected") graph and the three patches
    reference = predict(image, method="skeleton")
    corners = choose_patches(reference)
    lo = np.min(corners, axis=0)
    hi = np.max(corners, axis=0) + PATCH
    centre = (lo + hi) / 2.0
    cam = camera(viewer)
    viewer.reset_view()  # the whole photo: where did the model find vessels?
    _shoot(app, viewer, os.path.join(args.out_dir, "tutorial_1_predict.png"))

    def zoom_on_patches() -> None:
        cam.center = (0.0, *centre)
        h, w = (float(v) for v in viewer.canvas.size)
        cam.zoom = 0.9 * min(h / (hi[0] - lo[0] + 40), w / (hi[1] - lo[1] + 40))

    # ---- 2. annotate three patches
    aw = AnnotationWidget(viewer)
    viewer.window.add_dock_widget(aw, name="Annotate patches", area="right", tabify=True)
    aw.open_project(project, retina)
    assert aw.size_spin.value() == PATCH, aw.size_spin.value()
    model_name = pw.last_result.name + " nodes"
    aw.source_combo.setCurrentText(model_name)
    edits = []
    for corner in corners:
        pid = aw.add_patch(origin=corner)
        start = aw.store.load_graph(pid)
        fixed = corrected_graph(reference, corner)
        aw.set_patch_graph(pid, aw.store.to_image(pid, fixed))
        aw.store.set_status(pid, "done")
        edits.append((pid, corner, start.n_nodes, start.n_edges, fixed.n_nodes, fixed.n_edges))
        print(f"step 2: {pid} at {list(corner)}: prediction {start.n_nodes} nodes / {start.n_edges} edges -> "
              f"corrected {fixed.n_nodes} / {fixed.n_edges}")
    aw._refresh_list()
    for layer in before_layers.values():
        layer.visible = False
    first = edits[0][0]
    aw.go_to(first)
    zoom_on_patches()
    nodes = aw.patch_layers[first]["nodes"]
    nodes.selected_data = {0, 1} if len(nodes.data) > 1 else set()
    _shoot(app, viewer, os.path.join(args.out_dir, "tutorial_2_annotate.png"))

    # ---- 3. fine-tune
    fw = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(fw, name="Fine-tune", area="right", tabify=True)
    assert fw.folder_edit.text() == str(aw.store.folder)
    fw.select_checkpoint("vessel2d-fluo")
    fw.method_combo.setCurrentText(args.method)
    fw.steps_spin.setValue(args.steps)
    fw.val_every_spin.setValue(args.val_every)
    fw.val_spin.setValue(0.34)
    fw.out_edit.setText(f"retina-{args.method}")
    t = time.perf_counter()
    if not fw.train():
        raise SystemExit(f"fine-tuning did not start: {fw.status_label.text()}")
    _wait_for(app, lambda: not fw.is_running(), report=lambda: print("step 3:", fw.status_label.text()))
    t_train = time.perf_counter() - t
    if not fw.result or fw.result.get("status") != "ok":
        raise SystemExit(f"fine-tuning failed: {fw.status_label.text()}")
    path = fw.result["path"]
    meta = read_metadata(path)
    print(f"step 3: {fw.status_label.text()} ({t_train:.0f} s)")
    zoom_on_patches()
    _shoot(app, viewer, os.path.join(args.out_dir, "tutorial_3_finetune.png"))

    # ---- 4. predict again: the new checkpoint is already selected in the Predict graph widget
    assert pw.method().get("path") == path, (pw.method(), path)
    pw.replace_check.setChecked(False)
    t = time.perf_counter()
    pw.run()
    _wait_for(app, lambda: pw.worker is None)
    after_result = pw.last_result
    print(f"step 4: {pw.status_label.text()} ({time.perf_counter() - t:.0f} s)")
    for layer in after_result.layers.values():
        if type(layer).__name__ == "Points":
            layer.size = 5
        else:
            layer.edge_width = 2.5
    pw.parent().raise_()  # the dock widget wrapping it: show the Predict graph tab again
    for layers in aw.patch_layers.values():  # the corrected graphs hide the new prediction
        for layer in layers.values():
            layer.visible = False
    viewer.layers.selection.active = after_result.layers["nodes"]
    zoom_on_patches()
    _shoot(app, viewer, os.path.join(args.out_dir, "tutorial_4_predict_again.png"))

    # ---- figures
    from napari_vesselgraph._napari.layers import layers_to_graph

    ad = meta["adaptation"]
    # the graphs as shown in the viewer (what a user sees and would save)
    g_before = layers_to_graph(before_layers["nodes"], before_layers["edges"])
    g_after = layers_to_graph(after_result.layers["nodes"], after_result.layers["edges"])
    whole = {}
    for label, g in (("before", g_before), ("after", g_after)):
        whole[label] = evaluate(g, reference, radius=3.0, metrics=["prf", "smd"], image_shape=image.shape[:2])
        whole[label].update(nodes=g.n_nodes, edges=g.n_edges)
    figures = {
        "checkpoint": os.path.basename(path),
        "method": ad["method"],
        "steps_done": ad.get("steps_done"),
        "shots": ad.get("shot_ids"),
        "heldout": ad.get("heldout_ids"),
        "patches": [{"id": e[0], "origin": list(e[1]), "prediction": e[2:4], "corrected": e[4:6]} for e in edits],
        "heldout_before": ad.get("before"),
        "heldout_after": ad.get("after"),
        "whole_image_vs_reference": {
            k: {m: round(float(v[m]), 4) for m in ("node_f1", "edge_f1", "smd", "nodes", "edges")}
            for k, v in whole.items()
        },
        "train_seconds": round(t_train, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "threads": args.threads,
    }
    print("FIGURES " + json.dumps(figures, indent=1))
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
