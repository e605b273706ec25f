"""The *Annotate patches* dock widget: mark target patches on an image and correct their graphs.

A thin shell over :class:`napari_vesselgraph.annotations.AnnotationStore`: every change in napari is written to
the project folder at once (debounced by :data:`SAVE_DELAY_MS`), so closing or killing napari loses at most the
edit in progress, and opening the folder again brings every patch back.

Layers it makes (all aligned with the image layer):

* ``"<image> patches"``: a Shapes layer with one rectangle per patch (in 3D, one rectangle per slice of the
  box). Draw a rectangle in it and it becomes a patch of the fixed patch size, centred where you drew;
  delete a rectangle and the widget asks whether to delete the patch.
* ``"<image> proposals"``: a Shapes layer with the patches *Propose patches* suggests (ranked by the model's
  uncertainty, :func:`napari_vesselgraph.annotations.propose_patches`, run in a ``thread_worker``), labelled with
  their rank and score; *Accept* turns the selected ones (or all) into patches, as a drawn rectangle does.
* per patch, ``"<id> nodes"`` (Points, editable) and ``"<id> edit edges"`` (Shapes lines, editable), the same
  graph layers as :func:`napari_vesselgraph._napari.layers.graph_to_layer_data` makes, in image pixels.
  Lines snap to the nearest nodes when the patch is saved (and are redrawn there), lines of a moved node
  follow it, and the keys ``C``/``X`` on a nodes layer connect/disconnect the selected nodes.

napari 0.9 keeps no undo history for Points and Shapes layers (only Labels has one), so there is nothing
for this widget to break there; the store keeps the last saved state of each patch.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QWidget,
)

from ..errors import VesselGraphError
from ._annotation_layers import (  # noqa: F401  (re-exported: the widget's names before the split)
    ANNOTATION_KEY,
    KEY_CONNECT,
    KEY_DISCONNECT,
    PATCH_COLOR,
    SAVE_DELAY_MS,
    PatchLayersMixin,
    _pad,
    _rectangles,
)
from ._annotation_proposals import PROPOSAL_COLOR, ProposalsMixin  # noqa: F401
from ._qt_parts import browse_row, line_edit, spin_box
from ._state import state_for
from ._widget_utils import (
    LayerCombo,
    ProgressRelay,
    camera,
    collapsible,
    compact_combos,
    edges_layer_of,
    graph_groups,
    notify,
    plan_image,
    scroll_body,
)
from .layers import (
    ROLE_NODES,
    _vg_meta,
    layers_to_graph,
)

EMPTY_LABEL = "empty graph"

KEY_HELP = (
    "<b>Keys</b> (on a patch's <i>nodes</i> layer):<br>"
    "<b>P</b> / <b>2</b> add nodes · <b>S</b> / <b>3</b> select (shift-click for more, drag to move) · "
    "<b>Delete</b> remove the selected nodes and their edges<br>"
    f"<b>{KEY_CONNECT.upper()}</b> connect the two selected nodes · "
    f"<b>{KEY_DISCONNECT.upper()}</b> remove the edges between the selected nodes<br>"
    "On a patch's <i>edit edges</i> layer: <b>L</b> draw a line between two nodes (it snaps to the nearest "
    "nodes), <b>S</b> select, <b>Delete</b> remove the selected lines.<br>"
    "Draw a rectangle (<b>R</b>) in the <i>patches</i> layer to add a patch there. "
    "Every change is saved to the project folder at once."
)


def ask_yes_no(parent, title: str, text: str) -> bool:
    """A Yes/No question (No is the default). Tests replace it."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def default_patch_size(viewer, ndim: int) -> tuple[int, str]:
    """``(size, where it comes from)``: the patch size of the checkpoint chosen in the Predict graph widget (the
    viewer's shared state), else of the first installed checkpoint of this dimensionality, else 64."""
    from ._predict_widget import checkpoint_ndim

    data = state_for(viewer).checkpoint or {}
    meta = data.get("meta") or {}
    if checkpoint_ndim(meta) == ndim and meta.get("patch_size"):
        return int(max(meta["patch_size"])), f"patch size of {data.get('name')}"
    try:
        from ..checkpoints import list_checkpoints

        for entry in list_checkpoints():
            meta = entry.get("meta") or {}
            if checkpoint_ndim(meta) == ndim and meta.get("patch_size"):
                return int(max(meta["patch_size"])), f"patch size of {entry['name']}"
    except (OSError, VesselGraphError):  # pragma: no cover
        pass
    return 64, "default"


def run_proposal(data, channel, checkpoint, patch_size, n, exclude, cancel=None, progress=None) -> dict:
    """The *Propose patches* job (run in a worker thread): ``{"status": "ok", "proposals", "checkpoint",
    "seconds"}``, or ``{"status": "cancelled" | "error", "message"}``.

    ``checkpoint``: a name or path; ``None``: the installed Relationformer that suits the image best
    (:func:`napari_vesselgraph.inference.predict.suited_checkpoint`; a segmentation checkpoint has no window
    confidences to rank patches by)."""
    from ..annotations import propose_patches
    from ..errors import Cancelled

    t0 = time.perf_counter()
    try:
        if checkpoint is None:
            from ..inference.predict import suited_checkpoint

            checkpoint, _ = suited_checkpoint(data, channel, tiled=True, warn=False)
        proposals = propose_patches(
            data, checkpoint=checkpoint, patch_size=patch_size, n=n, exclude=exclude, channel=channel,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    except Cancelled:
        return {"status": "cancelled", "message": "Cancelled."}
    except (VesselGraphError, OSError, MemoryError) as e:
        return {"status": "error", "message": str(e) or type(e).__name__}
    name = Path(str(checkpoint)).stem if checkpoint is not None else "the default checkpoint"
    return {"status": "ok", "proposals": proposals, "checkpoint": name, "seconds": time.perf_counter() - t0}


def _annotation_meta(layer) -> dict:
    return dict(_vg_meta(getattr(layer, "metadata", None)).get(ANNOTATION_KEY) or {})


class AnnotationWidget(PatchLayersMixin, ProposalsMixin, QWidget):
    """Mark patches of an image layer, correct their graphs, and keep them in a project folder."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = None
        self.image_layer = None
        self.plan = None
        self.boxes_layer = None
        self.proposals_layer = None
        #: the patches proposed last (``annotations.Proposal``), in rank order; accepted ones leave the list
        self.proposals: list = []
        self.propose_worker = None
        self._propose_cancel = None
        self._propose_relay = ProgressRelay()
        self._propose_relay.progressed.connect(self._on_propose_progress)
        #: patch id -> {"nodes": Points, "edit_edges": Shapes}
        self.patch_layers: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, QTimer] = {}
        self._syncing = 0
        self._boxes_pending = False
        self.last_saved: dict[str, float] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # patch id -> (nodes, edges) as stored
        self.state = state_for(napari_viewer)
        self._build()
        compact_combos(self)
        self.viewer.layers.events.removing.connect(self._on_layer_removing)
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.flush)  # quitting napari saves the edit waiting for its timer
        self._update_patch_size_hint()
        self.state.connect("flush_requested", self, "flush")
        self.state.connect("checkpoint_changed", self, "_on_checkpoint_changed")

    def _on_checkpoint_changed(self, entry=None) -> None:
        if self.store is None:  # a new project takes the chosen checkpoint's patch size
            self._update_patch_size_hint()

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        from napari.layers import Image

        outer = scroll_body(self)

        box = QGroupBox("Project")
        form = QFormLayout(box)
        self.image_combo = LayerCombo(self.viewer, Image, self)
        self.image_combo.setToolTip("The image whose patches you annotate")
        self.image_combo.currentIndexChanged.connect(lambda *_: self._update_patch_size_hint())
        form.addRow("Image", self.image_combo)
        self.folder_edit = line_edit(
            "a new or existing project folder",
            "Patches and their graphs are saved here on every change. The folder is also a dataset that the "
            "Fine-tune widget, `vesselgraph adapt --target` and `vesselgraph evaluate --dataset` read.",
        )
        form.addRow("Folder", browse_row(self.folder_edit, self._browse))
        self.open_button = QPushButton("Open / create project")
        self.open_button.clicked.connect(self._open_clicked)
        form.addRow(self.open_button)
        self.project_label = QLabel("No project open.")
        self.project_label.setWordWrap(True)
        form.addRow(self.project_label)
        outer.addWidget(box)

        box = QGroupBox("Patches")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.size_spin = spin_box(8, 4096, 64, "Side of a new patch (a square in 2D, a cube in 3D)", " px")
        self.size_hint = QLabel("")
        row.addWidget(self.size_spin)
        row.addWidget(self.size_hint, 1)
        form.addRow("Patch size", row)
        self.source_combo = QComboBox()
        self.source_combo.setToolTip(
            "A new patch starts from this graph, cut to the patch (edges crossing its border end on the border), "
            "or from an empty graph"
        )
        form.addRow("Start from", self.source_combo)
        self.add_button = QPushButton("Add patch at view centre")
        self.add_button.clicked.connect(self.add_patch_at_view_centre)
        form.addRow(self.add_button)
        self.patch_list = QListWidget()
        self.patch_list.setToolTip("Double-click a patch to go to it (and show its layers again)")
        self.patch_list.itemDoubleClicked.connect(lambda item: self.go_to(item.data(Qt.ItemDataRole.UserRole)))
        self.patch_list.currentItemChanged.connect(self._on_current_patch)
        form.addRow(self.patch_list)
        row = QHBoxLayout()
        self.go_button = QPushButton("Go to")
        self.go_button.clicked.connect(lambda: self.go_to(self.current_patch()))
        self.done_check = QCheckBox("done")
        self.done_check.setToolTip("Mark the patch as fully corrected (draft otherwise)")
        self.done_check.toggled.connect(self._on_done_toggled)
        self.delete_button = QPushButton("Delete patch…")
        self.delete_button.clicked.connect(lambda: self.delete_patch(self.current_patch()))
        row.addWidget(self.go_button)
        row.addWidget(self.done_check)
        row.addWidget(self.delete_button)
        form.addRow(row)
        outer.addWidget(box)

        self._build_proposals(outer)

        self.keys_section, form = collapsible("Keys for correcting a patch", outer)
        self.keys_label = QLabel(KEY_HELP)
        self.keys_label.setTextFormat(Qt.TextFormat.RichText)
        self.keys_label.setWordWrap(True)
        form.addRow(self.keys_label)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        outer.addWidget(self.status_label)
        outer.addStretch(1)
        self._set_project_enabled(False)
        self.viewer.layers.events.inserted.connect(self._refresh_sources)
        self.viewer.layers.events.removed.connect(self._refresh_sources)
        self._refresh_sources()

    def _set_project_enabled(self, on: bool) -> None:
        for w in (self.add_button, self.patch_list, self.go_button, self.done_check, self.delete_button):
            w.setEnabled(on)
        self.propose_button.setEnabled(on)
        self._update_accept_enabled()

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Project folder (new or existing)", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)

    def _update_patch_size_hint(self) -> None:
        layer = self.image_combo.layer()
        ndim = 2
        if layer is not None:
            try:
                ndim = plan_image(layer, self.viewer).spatial_ndim
            except VesselGraphError:
                pass
        if self.store is not None and self.store.patch_size:
            self.size_spin.setValue(int(max(self.store.patch_size)))
            self.size_hint.setText("as in the project")
            return
        size, where = default_patch_size(self.viewer, ndim)
        self.size_spin.setValue(size)
        self.size_hint.setText(where)

    # ------------------------------------------------------------ graph sources
    def _refresh_sources(self, *_) -> None:
        current = self.source_combo.currentText()
        names = [EMPTY_LABEL]
        for g in graph_groups(self.viewer.layers):
            if not _annotation_meta(g[ROLE_NODES]):
                names.append(g["name"])
        if names == [self.source_combo.itemText(i) for i in range(self.source_combo.count())]:
            return
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        self.source_combo.addItems(names)
        # keep the choice; else the newest graph (the last one added is the last in the layer list)
        idx = names.index(current) if current in names and current != EMPTY_LABEL else len(names) - 1
        self.source_combo.setCurrentIndex(idx)
        self.source_combo.blockSignals(False)

    def _source_graph_in_image_pixels(self):
        """The graph chosen under 'Start from', in the image's pixel coordinates (None: empty)."""
        name = self.source_combo.currentText()
        if not name or name == EMPTY_LABEL:
            return None
        for g in graph_groups(self.viewer.layers):
            if g["name"] == name:
                nodes = g[ROLE_NODES]
                graph = layers_to_graph(nodes, edges_layer_of(g))
                d = graph.ndim
                if d != self.plan.spatial_ndim:
                    raise VesselGraphError(
                        f"the graph '{name}' is {d}D but the image is {self.plan.spatial_ndim}D; choose another "
                        "graph or start from an empty one"
                    )
                world = graph.nodes * np.asarray(nodes.scale)[-d:] + np.asarray(nodes.translate)[-d:]
                graph.nodes = (world - np.asarray(self.plan.translate)) / np.asarray(self.plan.scale)
                return graph
        return None

    # ------------------------------------------------------------ project
    def _open_clicked(self) -> None:
        try:
            self.open_project(self.folder_edit.text())
        except VesselGraphError as e:
            notify("error", str(e))

    def open_project(self, folder, image_layer=None):
        """Open the project in ``folder`` (create it when it has no manifest) for the chosen image layer, and show
        its patches as layers. Returns the store."""
        from ..annotations import AnnotationStore

        if image_layer is not None:
            self.image_combo.set_layer(image_layer)
        layer = self.image_combo.layer()
        if layer is None:
            raise VesselGraphError("Choose an image layer first (open an image or File > Open Sample).")
        if not str(folder).strip():
            raise VesselGraphError("Choose a project folder (Browse…).")
        folder = Path(str(folder)).expanduser()
        plan = plan_image(layer, self.viewer)
        channels = 3 if plan.rgb else 1
        source = getattr(getattr(layer, "source", None), "path", None) or layer.name
        self.close_project()
        if AnnotationStore.exists(folder):
            store = AnnotationStore.open(folder)
            if store.ndim != plan.spatial_ndim or store.channels != channels:
                raise VesselGraphError(
                    f"the project in {folder} holds {store.ndim}D patches with {store.channels} channel(s), but "
                    f"'{layer.name}' is a {plan.description}; choose the image it was made from"
                )
            if store.source_image not in (None, source, layer.name):
                notify(
                    "warning",
                    f"This project was made on '{store.source_image}', not on '{layer.name}': patches are placed by "
                    "their pixel position in the image.",
                )
            verb = "Opened"
        else:
            store = AnnotationStore.create(
                folder,
                scale=plan.scale,
                ndim=plan.spatial_ndim,
                channels=channels,
                source_image=source,
                patch_size=int(self.size_spin.value()),
                source_shape=plan.spatial_shape,
            )
            verb = "Created"
        self.store, self.image_layer, self.plan = store, layer, plan
        self._counts = {}
        self.folder_edit.setText(str(folder))
        if store.patch_size:
            self.size_spin.setValue(int(max(store.patch_size)))
            self.size_hint.setText("as in the project")
        self._ensure_boxes_layer()
        for pid in store.ids():
            self._show_patch_layers(pid)
        self._render_boxes()
        self._refresh_list()
        self._set_project_enabled(True)
        self.project_label.setText(f"{verb} {folder}: {len(store)} patch(es) of '{layer.name}'.")
        self.keys_section.expand(animate=False)
        self.state.set_project(store.folder, layer)  # Fine-tune fills in this folder
        return store

    def close_project(self) -> None:
        """Save what is pending and remove the project's layers from the viewer (the folder keeps everything)."""
        self.flush()
        if self.store is None:
            return
        self._syncing += 1
        try:
            for pid in list(self.patch_layers):
                self._remove_patch_layers(pid)
            if self.boxes_layer is not None and self.boxes_layer in self.viewer.layers:
                self.viewer.layers.remove(self.boxes_layer)
        finally:
            self._syncing -= 1
        self.cancel_proposal()
        self.clear_proposals()
        self.boxes_layer = None
        self.store = None
        self.patch_list.clear()
        self._set_project_enabled(False)
        self.project_label.setText("No project open.")
        if self.state.project is not None:
            self.state.set_project(None)

    # ------------------------------------------------------------ patches
    def patch_size(self) -> tuple[int, ...]:
        d = self.plan.spatial_ndim if self.plan is not None else 2
        return (int(self.size_spin.value()),) * d

    def _require_store(self) -> None:
        if self.store is None:
            raise VesselGraphError("Open or create a project first (Project > Open / create project).")

    def view_centre(self) -> np.ndarray:
        """The centre of the canvas in the image's pixels (spatial axes)."""
        from ._widget_utils import _world_to_spatial

        w = np.asarray(self.viewer.dims.point, dtype=float).copy()
        displayed = list(self.viewer.dims.displayed)
        c = np.asarray(camera(self.viewer).center, dtype=float)[-len(displayed) :]
        w[displayed] = c
        return _world_to_spatial(self.viewer, self.image_layer, self.plan, w[None])[0]

    def add_patch_at_view_centre(self) -> str | None:
        try:
            self._require_store()
            return self.add_patch(self.view_centre())
        except VesselGraphError as e:
            notify("error", str(e))
            return None

    def add_patch(self, center=None, origin=None, graph=None) -> str:
        """Add a patch of the current size centred on ``center`` (image pixels) or with corner ``origin``.

        Its graph is ``graph`` (image pixels; ``None``: the 'Start from' graph cut to the patch). Returns the id.
        """
        from ..annotations import cut_patch, initial_graph, snap_origin

        self._require_store()
        size = self.patch_size()
        shape = self.plan.spatial_shape
        if origin is None:
            origin = snap_origin(center, size, shape)
        origin = tuple(int(v) for v in origin)
        if any(s > n for s, n in zip(size, shape)):
            notify("warning", f"The patch ({size}) is larger than the image ({shape}); the rest is padded with zeros.")
        for e in self.store.patches():
            o, s = np.asarray(e.get("origin") or (0,) * len(size)), np.asarray(e.get("size") or size)
            if np.all(np.asarray(origin) < o + s) and np.all(o < np.asarray(origin) + np.asarray(size)):
                notify("warning", f"The new patch overlaps {e['id']}; overlapping training and validation patches "
                       "make the validation figures look better than they are.")
                break
        image = cut_patch(self.plan.data, origin, size)
        if graph is None:
            graph = self._source_graph_in_image_pixels()
        local = initial_graph(graph, origin, size)
        pid = self.store.add_patch(image, origin, local)
        self._show_patch_layers(pid)
        self._render_boxes()
        self._refresh_list(select=pid)
        self._status(f"Added {pid} at {list(origin)} ({local.n_nodes} nodes, {local.n_edges} edges); saved.")
        return pid

    def current_patch(self) -> str | None:
        item = self.patch_list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def confirm(self, title: str, text: str) -> bool:
        return ask_yes_no(self, title, text)

    def delete_patch(self, pid: str | None, ask: bool = True) -> bool:
        """Delete a patch from the project (asks first). Returns whether it was deleted."""
        if pid is None or self.store is None or pid not in self.store:
            return False
        if ask and not self.confirm(
            "Delete patch", f"Delete {pid} and its graph from the project? This cannot be undone."
        ):
            self._status(f"{pid} kept.")
            return False
        self._cancel_timer(pid)
        self.store.delete_patch(pid)
        self._remove_patch_layers(pid)
        self._render_boxes()
        self._refresh_list()
        self._status(f"Deleted {pid}.")
        return True

    def go_to(self, pid: str | None) -> None:
        """Centre the view on a patch and make its nodes layer the active layer (re-adding its layers if needed)."""
        if pid is None or self.store is None or pid not in self.store:
            return
        if pid not in self.patch_layers:
            self._show_patch_layers(pid)
        origin = np.asarray(self.store.origin(pid), float)
        size = np.asarray(self.store.size(pid), float)
        centre = origin + (size - 1) / 2.0
        world = centre * np.asarray(self.plan.scale) + np.asarray(self.plan.translate)
        d = len(world)
        point = list(self.viewer.dims.point)
        point[-d:] = list(world)
        self.viewer.dims.point = point
        cam = camera(self.viewer)
        disp = list(self.viewer.dims.displayed)
        cam.center = tuple(np.asarray(point)[disp])
        try:
            h, w = (float(v) for v in self.viewer.canvas.size)
            extent = float(np.max(size[-2:] * np.asarray(self.plan.scale)[-2:]))
            if extent > 0 and min(h, w) > 0:
                cam.zoom = 0.8 * min(h, w) / extent
        except (AttributeError, TypeError, ValueError):  # pragma: no cover
            pass
        nodes = self.patch_layers.get(pid, {}).get(ROLE_NODES)
        if nodes is not None:
            self.viewer.layers.selection.active = nodes

    def _on_current_patch(self, *_) -> None:
        pid = self.current_patch()
        self.done_check.blockSignals(True)
        self.done_check.setChecked(bool(pid and self.store and self.store.get(pid).get("status") == "done"))
        self.done_check.blockSignals(False)

    def _on_done_toggled(self, on: bool) -> None:
        pid = self.current_patch()
        if pid and self.store is not None:
            self.store.set_status(pid, "done" if on else "draft")
            self._refresh_list(select=pid)

    def _refresh_list(self, select: str | None = None) -> None:
        if select is None:
            select = self.current_patch()
        self.patch_list.blockSignals(True)
        self.patch_list.clear()
        current = None
        for e in self.store.patches() if self.store is not None else []:
            try:
                if e["id"] not in self._counts:
                    g = self.store.load_graph(e["id"])
                    self._counts[e["id"]] = (g.n_nodes, g.n_edges)
                n_nodes, n_edges = self._counts[e["id"]]
                counts = f"{n_nodes} nodes, {n_edges} edges"
            except (OSError, VesselGraphError):
                counts = "graph unreadable"
            item = QListWidgetItem(f"{e['id']}  {e.get('status', 'draft')}  ·  {counts}  ·  {e.get('split', 'train')}")
            item.setData(Qt.ItemDataRole.UserRole, e["id"])
            self.patch_list.addItem(item)
            if e["id"] == select:
                current = item
        if current is None and self.patch_list.count():
            current = self.patch_list.item(self.patch_list.count() - 1)
        if current is not None:
            self.patch_list.setCurrentItem(current)
        self.patch_list.blockSignals(False)
        self._on_current_patch()
        if self.store is not None:
            self.project_label.setText(f"{self.store.folder}: {len(self.store)} patch(es).")

    def propose(self, n: int | None = None, checkpoint=None) -> bool:
        """Propose ``n`` patches (default: the spin box) of the current size in a worker thread; the result comes
        as the proposals layer. ``checkpoint``: a name or path (default: see :meth:`_proposal_checkpoint`).
        Returns False when it could not start."""
        from napari.qt.threading import create_worker

        try:
            self._require_store()
        except VesselGraphError as e:
            notify("error", str(e))
            return False
        if self.propose_worker is not None:
            notify("info", "Proposing is already running: wait for it or press Cancel.")
            return False
        self.flush()
        ckpt = checkpoint if checkpoint is not None else self._proposal_checkpoint()
        n = int(self.propose_spin.value() if n is None else n)
        self._propose_cancel = threading.Event()
        worker = create_worker(
            run_proposal, self.plan.data, self.plan.channel, ckpt, self.patch_size(), n, self.store.patches(),
            self._propose_cancel, self._propose_relay, _start_thread=False,
        )  # fmt: skip
        worker.returned.connect(self._on_proposed)
        worker.errored.connect(self._on_propose_error)
        worker.finished.connect(self._on_propose_finished)
        self.propose_worker = worker
        self.propose_button.setText("Cancel")
        self.propose_progress.setRange(0, 0)
        self.propose_progress.setVisible(True)
        self.proposal_label.setText("Running the model over the image…")
        worker.start()
        return True

    # ------------------------------------------------------------ misc
    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def closeEvent(self, event) -> None:
        self.flush()
        self.cancel_proposal()
        super().closeEvent(event)
