"""The *Predict graph* dock widget: a thin shell over :func:`napari_vesselgraph.inference.predict`.

The model runs once per click on *Run* (in a napari ``thread_worker``) and returns every candidate node and
edge with its confidence (``keep_raw=True``); the threshold sliders then re-apply
:func:`napari_vesselgraph.inference.postprocess.finish_raw` (thresholds + the prediction's clean-up) to that raw graph and update the layers in place,
without running the model again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ..checkpoints import checkpoint_ndim, checkpoint_thresholds, describe_checkpoint
from ..errors import VesselGraphError
from ._predict_job import PredictionResult, run_prediction
from ._qt_parts import wrapped_label
from ._state import state_for
from ._widget_utils import (
    AXES_2D,
    AXES_3D,
    AXES_AUTO,
    LayerCombo,
    ProgressRelay,
    add_graph_layers,
    add_run_controls,
    collapsible,
    color_legend,
    compact_combos,
    contrast_color,
    displayed_pixels,
    field_of_view_region,
    notify,
    plan_image,
    scroll_body,
    shapes_region,
    show_warnings,
    update_graph_layers,
    warning_label,
)

SKELETON_LABEL = "classical skeleton"
BROWSE_LABEL = "Browse…"
REGION_WHOLE = "Whole image"
REGION_VIEW = "Current field of view"
REGION_SHAPES = "Rectangle in a Shapes layer"
DEVICES = ("auto", "cpu", "cuda", "mps")
SKELETON_THRESHOLD = 0.0  # the skeleton is already thresholded: keep all of it by default


# ---------------------------------------------------------------- the widget
class PredictWidget(QWidget):
    """Predict the graph of an image layer with a Relationformer checkpoint or the classical skeleton baseline."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.last_result: PredictionResult | None = None
        self.results: dict[tuple[str, str], PredictionResult] = {}
        self._cancel: threading.Event | None = None
        self._job_info: dict = {}
        self._thresholds_touched = False
        self._setting_thresholds = False
        self._previous_method = 0
        self._method_touched = False  # the user (or a script, or Fine-tune) chose the method: keep it
        self._auto = 0  # > 0 while the widget itself changes the method
        self._traits_cache: dict = {}
        self._warned: set = set()
        self.suitability_warnings: list[str] = []
        self.state = state_for(napari_viewer)
        self._relay = ProgressRelay(self)
        self._relay.progressed.connect(self._on_progress)
        self._build()
        compact_combos(self)
        self.refresh_checkpoints()
        self._on_image_changed()
        self.state.connect("checkpoints_changed", self, "_on_checkpoints_changed")
        self._rethreshold_timer = QTimer(self)
        self._rethreshold_timer.setSingleShot(True)
        self._rethreshold_timer.setInterval(120)
        self._rethreshold_timer.timeout.connect(self.apply_thresholds)
        QTimer.singleShot(0, self._describe_devices)

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        from napari.layers import Image, Shapes

        outer = scroll_body(self)

        # input
        box = QGroupBox("Image")
        form = QFormLayout(box)
        self.image_combo = LayerCombo(self.viewer, Image, self)
        self.image_combo.setToolTip("The image layer to turn into a graph")
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        form.addRow("Image", self.image_combo)
        self.image_info = QLabel("")
        self.image_info.setWordWrap(True)
        form.addRow(self.image_info)
        self.axes_section, form = collapsible("Axes and channels", form)
        self.axes_combo = QComboBox()
        self.axes_combo.addItem("auto", AXES_AUTO)
        self.axes_combo.addItem("2D: last two axes (Y, X)", AXES_2D)
        self.axes_combo.addItem("3D: last three axes (Z, Y, X)", AXES_3D)
        self.axes_combo.setToolTip(
            "Which axes are spatial. auto: a volume when the layer has 3 or more axes (besides channels), else 2D.\n"
            "Axes before the spatial ones (time, ...) are taken at the current slider position."
        )
        form.addRow("Image axes", self.axes_combo)
        row = QHBoxLayout()
        self.channel_check = QCheckBox("in the last axis")
        self.channel_check.setToolTip(
            "For a multichannel layer with its channels in the last axis: predict on one channel"
        )
        self.channel_spin = QSpinBox()
        self.channel_spin.setRange(0, 15)
        self.channel_spin.setPrefix("use channel ")
        self.channel_spin.setMinimumWidth(self.channel_spin.fontMetrics().horizontalAdvance("use channel 00") + 50)
        self.channel_check.toggled.connect(self.channel_spin.setEnabled)
        self.channel_spin.setEnabled(False)
        row.addWidget(self.channel_check)
        row.addWidget(self.channel_spin)
        form.addRow("Channels", row)
        self.axes_combo.currentIndexChanged.connect(self._on_image_changed)
        self.channel_check.toggled.connect(self._on_image_changed)
        self.channel_spin.valueChanged.connect(self._on_image_changed)
        outer.addWidget(box)

        # method
        box = QGroupBox("Method")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        self.method_combo.setToolTip(
            "A Relationformer checkpoint (bundled or your own), a .safetensors file, or the classical skeleton"
        )
        self.method_combo.activated.connect(self._on_method_activated)
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        form.addRow("Method", self.method_combo)
        self.method_info = QLabel("")
        self.method_info.setWordWrap(True)
        self.method_info.setTextFormat(Qt.TextFormat.RichText)
        form.addRow(self.method_info)
        self.suit_label = warning_label(self.viewer)
        self.suit_label.setToolTip("How well the chosen checkpoint suits this image (from its metadata)")
        form.addRow(self.suit_label)
        self.advanced_section, form = collapsible("Device, batch size, overlap, cluster", form)
        row = QHBoxLayout()
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto picks cuda, then mps, then cpu")
        self.device_label = QLabel("auto → …")
        row.addWidget(self.device_combo)
        row.addWidget(self.device_label, 1)
        form.addRow("Device", row)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.batch_spin.setValue(8)
        self.batch_spin.setToolTip("Patches per model call; lower it if the GPU runs out of memory")
        form.addRow("Batch size", self.batch_spin)
        self.overlap_spin = QDoubleSpinBox()
        self.overlap_spin.setRange(0.0, 0.9)
        self.overlap_spin.setSingleStep(0.05)
        self.overlap_spin.setDecimals(2)
        self.overlap_spin.setValue(0.25)
        self.overlap_spin.setToolTip(
            "Fraction of a patch shared with its neighbours (more overlap: fewer seams, slower)"
        )
        form.addRow("Patch overlap", self.overlap_spin)
        row = QHBoxLayout()  # a dask.distributed cluster; its address is kept in the plugin settings
        self.cluster_check = QCheckBox("on a dask cluster")
        self.cluster_edit = QLineEdit()
        self.cluster_edit.setPlaceholderText("tcp://host:8786")
        tip = (
            "Send the tiles to the workers of a running dask.distributed scheduler and stitch here.\n"
            "The workers need napari-vesselgraph installed; the address is remembered (plugin settings)."
        )
        self.cluster_check.setToolTip(tip)
        self.cluster_edit.setToolTip(tip)
        self._load_cluster_settings()
        self.cluster_check.toggled.connect(self.cluster_edit.setEnabled)
        row.addWidget(self.cluster_check)
        row.addWidget(self.cluster_edit, 1)
        form.addRow("Run", row)
        outer.addWidget(box)

        # thresholds
        from superqt import QLabeledDoubleSlider

        box = QGroupBox("Confidence thresholds (update the result live)")
        form = QFormLayout(box)
        self.node_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.edge_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        for s, tip in ((self.node_slider, "nodes"), (self.edge_slider, "edges")):
            s.setRange(0.0, 1.0)
            s.setSingleStep(0.01)
            s.setDecimals(2)
            s.setValue(0.5)
            s.setToolTip(f"Keep {tip} whose confidence is at least this")
            s.valueChanged.connect(self._on_threshold_changed)
        form.addRow("Nodes", self.node_slider)
        form.addRow("Edges", self.edge_slider)
        self.threshold_target = QLabel("")
        self.threshold_target.setWordWrap(True)
        form.addRow(self.threshold_target)
        self.legend_label = wrapped_label(
            rich=True, tip="What the colours of the result mean (the inspector can colour by other features)"
        )
        form.addRow(self.legend_label)
        outer.addWidget(box)

        # region + output
        box = QGroupBox("Region and output")
        form = QFormLayout(box)
        self.region_combo = QComboBox()
        self.region_combo.addItems([REGION_WHOLE, REGION_VIEW, REGION_SHAPES])
        self.region_combo.setToolTip(
            "Whole image; the part visible on the canvas (2D view); or the selected (else last) rectangle of a "
            "Shapes layer"
        )
        form.addRow("Region", self.region_combo)
        self.shapes_combo = LayerCombo(self.viewer, Shapes, self)
        self.shapes_combo.setEnabled(False)
        self.region_combo.currentTextChanged.connect(lambda t: self.shapes_combo.setEnabled(t == REGION_SHAPES))
        form.addRow("Shapes layer", self.shapes_combo)
        self.replace_check = QCheckBox("replace the previous result of this image and method")
        self.replace_check.setChecked(True)
        form.addRow(self.replace_check)
        outer.addWidget(box)

        # run
        self.run_button, self.cancel_button, self.progress_bar, self.status_label = add_run_controls(
            outer, "Run", self.run, self.cancel
        )
        outer.addStretch(1)

    # ------------------------------------------------------------ dask cluster (plugin settings)
    def _load_cluster_settings(self) -> None:
        from ..settings import load_settings

        saved = load_settings()
        self.cluster_edit.setText(str(saved.get("dask_scheduler") or ""))
        self.cluster_check.setChecked(bool(saved.get("use_dask_scheduler")) and bool(self.cluster_edit.text()))
        self.cluster_edit.setEnabled(self.cluster_check.isChecked())

    def _cluster_address(self) -> str | None:
        """The scheduler address to run on (saved to the settings), or None when the box is not ticked."""
        from ..settings import normalize_scheduler_address, save_settings

        address = normalize_scheduler_address(self.cluster_edit.text())
        use = self.cluster_check.isChecked()
        if use and not address:
            raise VesselGraphError("'on a dask cluster' is ticked but no scheduler address is given (tcp://host:8786)")
        try:
            save_settings(dask_scheduler=address, use_dask_scheduler=use)
        except OSError as e:  # pragma: no cover - read-only home
            notify("warning", f"Could not save the cluster address in the settings: {e}")
        return address if use else None

    # ------------------------------------------------------------ devices
    def _describe_devices(self) -> None:
        try:
            import torch

            from ..model.predictor import select_device
        except ImportError:
            self.device_label.setText("PyTorch is not installed: only the classical skeleton can run")
            return
        dev = select_device("auto")
        text = f"auto → {dev.type}"
        if dev.type == "cuda":
            try:
                text += f" ({torch.cuda.get_device_name(dev)})"
            except (RuntimeError, AssertionError):  # pragma: no cover
                pass
        self.device_label.setText(text)
        self.device_label.setToolTip(text)
        mps = getattr(torch.backends, "mps", None)
        available = {
            "auto": True,
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": bool(mps and mps.is_available()),
        }
        model = self.device_combo.model()
        for i, name in enumerate(DEVICES):
            item = model.item(i)
            if item is not None:
                item.setEnabled(available[name])
                item.setToolTip("" if available[name] else f"{name} is not available on this computer")

    # ------------------------------------------------------------ checkpoints
    def refresh_checkpoints(self, select: str | None = None) -> None:
        """Fill the method combo: bundled + user checkpoints, files added with Browse…, the skeleton, Browse…."""
        from ..checkpoints import list_checkpoints

        extra = [self.method_combo.itemData(i) for i in range(self.method_combo.count())]
        extra = [d for d in extra if isinstance(d, dict) and d.get("source") == "file"]
        current = self.method_combo.currentData()
        current_path = current.get("path") if isinstance(current, dict) else None
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        try:
            entries = list_checkpoints()
        except (OSError, VesselGraphError) as e:  # pragma: no cover - unreadable folder
            notify("warning", f"Could not list checkpoints: {e}")
            entries = []
        for entry in [*entries, *extra]:
            self._add_checkpoint_item(entry)
        self.method_combo.addItem(SKELETON_LABEL, {"kind": "skeleton", "name": "skeleton"})
        self.method_combo.addItem(BROWSE_LABEL, {"kind": "browse"})
        self.method_combo.blockSignals(False)
        want = select or current_path
        idx = None
        for i in range(self.method_combo.count()):
            d = self.method_combo.itemData(i)
            if want and isinstance(d, dict) and want in (d.get("path"), d.get("name")):
                idx = i
                break
        self._auto += 1
        try:
            if idx is None:  # nothing chosen yet: the checkpoint that suits the image best
                idx = self._best_method_index()
            self.method_combo.setCurrentIndex(idx)
            self._on_method_changed(idx)
        finally:
            self._auto -= 1

    def _add_checkpoint_item(self, entry: dict, index: int | None = None) -> None:
        meta = entry.get("meta") or {}
        ndim = checkpoint_ndim(meta)
        label = entry["name"]
        if ndim:
            label += f"  ({ndim}D{', ' + str(meta['domain']) if meta.get('domain') else ''})"
        data = {"kind": "model", **entry}
        if index is None:
            self.method_combo.addItem(label, data)
        else:
            self.method_combo.insertItem(index, label, data)
        i = self.method_combo.count() - 1 if index is None else index
        self.method_combo.setItemData(i, describe_checkpoint(entry), Qt.ItemDataRole.ToolTipRole)

    def add_checkpoint_file(self, path: str | Path) -> bool:
        """Add a .safetensors file to the method combo and select it (what Browse… does)."""
        from ..checkpoints import read_metadata

        path = Path(path)
        try:
            meta = read_metadata(path)
        except VesselGraphError as e:
            notify("error", f"Cannot use this checkpoint: {e}")
            return False
        for i in range(self.method_combo.count()):
            d = self.method_combo.itemData(i)
            if isinstance(d, dict) and d.get("path") == str(path):
                self.method_combo.setCurrentIndex(i)
                return True
        entry = {"name": meta.get("name") or path.stem, "path": str(path), "source": "file", "meta": meta}
        index = self.method_combo.findText(SKELETON_LABEL)
        self._add_checkpoint_item(entry, index=index)
        self.method_combo.setCurrentIndex(index)
        return True

    def _on_method_activated(self, index: int) -> None:
        data = self.method_combo.itemData(index)
        self._method_touched = True  # chosen in the combo, even when it was already the current one
        if isinstance(data, dict) and data.get("kind") == "browse":
            path, _ = QFileDialog.getOpenFileName(
                self, "Open a napari-vesselgraph checkpoint", str(Path.home()), "Checkpoints (*.safetensors)"
            )
            if not path or not self.add_checkpoint_file(path):
                self.method_combo.setCurrentIndex(min(self._previous_method, self.method_combo.count() - 1))

    def _on_method_changed(self, index: int) -> None:
        data = self.method_combo.itemData(index)
        if not isinstance(data, dict) or data.get("kind") == "browse":
            return
        if not self._auto:
            self._method_touched = True
        self._previous_method = index
        if data["kind"] == "skeleton":
            self.method_info.setText(
                "Classical pipeline: vesselness → threshold → skeleton → graph. No model, runs on the CPU, "
                "2D and 3D; its confidence is the normalised vesselness."
            )
            node_t = edge_t = SKELETON_THRESHOLD
            model = False
        else:
            self.method_info.setText(describe_checkpoint(data, purpose=True))
            node_t, edge_t = map(float, checkpoint_thresholds(data.get("meta") or {}))
            model = True
        for w in (self.device_combo, self.batch_spin, self.overlap_spin, self.cluster_check):
            w.setEnabled(model)
        self.cluster_edit.setEnabled(model and self.cluster_check.isChecked())
        if not self._thresholds_touched:
            self._set_thresholds(node_t, edge_t)
        self.state.set_checkpoint(data if model else None)
        self._update_suitability()

    def method(self) -> dict:
        data = self.method_combo.currentData()
        if not isinstance(data, dict) or data.get("kind") == "browse":
            return {"kind": "skeleton", "name": "skeleton"}
        return data

    # ------------------------------------------------------------ image
    def _on_image_changed(self, *_) -> None:
        layer = self.image_combo.layer()
        if layer is None:
            self.image_info.setText("No image layer: open an image or a sample (File > Open Sample > Vessel Graph).")
            return
        shape = tuple(layer.data[0].shape if layer.multiscale else layer.data.shape)
        channels_last = (not layer.rgb) and layer.ndim >= 3 and shape[-1] <= 4 and shape[-1] < min(shape[-3:-1])
        self.channel_check.setChecked(channels_last)
        self.channel_spin.setRange(0, max(0, min(shape[-1], 16) - 1))
        kind = "RGB" if layer.rgb else f"{layer.ndim}D"
        self.image_info.setText(f"{kind} layer, shape {shape}, {layer.dtype}")
        if channels_last or layer.ndim > 3 or (layer.ndim == 3 and not layer.rgb and shape[0] <= 4):
            self.axes_section.expand(animate=False)  # time points or channels: show the axes settings
        self._suggest_method()

    # ------------------------------------------------------------ which checkpoint suits the image
    def image_traits(self) -> dict | None:
        """:func:`checkpoints.suits.image_traits` of the chosen image as it will be predicted (cached)."""
        from ..checkpoints.suits import image_traits

        layer = self.image_combo.layer()
        if layer is None:
            return None
        channel = self.channel_spin.value() if self.channel_check.isChecked() else None
        try:
            plan = plan_image(layer, self.viewer, self.axes_combo.currentData(), channel)
        except VesselGraphError:
            return None
        key = (id(layer), id(plan.data), plan.spatial_ndim, plan.channel, plan.rgb, tuple(plan.fixed.items()))
        if key not in self._traits_cache:
            try:
                traits = image_traits(plan.data, rgb=plan.rgb, ndim=plan.spatial_ndim, channel=plan.channel)
            except Exception as e:  # noqa: BLE001 - an unreadable image: no advice rather than an error
                notify("info", f"Could not look at '{layer.name}' to suggest a checkpoint: {e}")
                traits = None
            self._traits_cache = {key: traits}
        return self._traits_cache[key]

    def _model_entries(self) -> list[tuple[int, dict]]:
        out = []
        for i in range(self.method_combo.count()):
            d = self.method_combo.itemData(i)
            if isinstance(d, dict) and d.get("kind") == "model" and not d.get("error"):
                out.append((i, d))
        return out

    def _best_method_index(self) -> int:
        """The combo index of the checkpoint that suits the image best; the classical skeleton when no installed
        checkpoint can run on it (e.g. no 3D checkpoint for a volume); the first entry without an image."""
        from ..checkpoints.suits import CANNOT_RUN, rank_checkpoints

        entries = self._model_entries()
        traits = self.image_traits()
        skeleton = self.method_combo.findText(SKELETON_LABEL)
        if traits is None:
            return entries[0][0] if entries else max(skeleton, 0)
        ranked = rank_checkpoints(traits, [d for _, d in entries])
        if not ranked or ranked[0]["score"] <= CANNOT_RUN:
            return max(skeleton, 0)
        best = ranked[0]["entry"]
        for i, d in entries:
            if d is best:
                return i
        return entries[0][0]

    def _suggest_method(self) -> None:
        """Choose the best-suited checkpoint for a new image unless a method was chosen already; then say how well
        the current method suits it."""
        if not self._method_touched:
            idx = self._best_method_index()
            if idx != self.method_combo.currentIndex():
                self._auto += 1
                try:
                    self.method_combo.setCurrentIndex(idx)
                finally:
                    self._auto -= 1
        self._update_suitability()

    def _update_suitability(self) -> None:
        """Show (and notify once) the warnings of :func:`checkpoints.suits.suitability` for the chosen method."""
        from ..checkpoints.suits import suitability

        data = self.method_combo.currentData()
        traits = self.image_traits() if isinstance(data, dict) and data.get("kind") == "model" else None
        warnings: list[str] = []
        if traits is not None and not data.get("error"):
            _, warnings = suitability(data.get("meta") or {}, traits, data.get("name"))
        self.suitability_warnings = warnings
        show_warnings(self.suit_label, warnings)
        layer = self.image_combo.layer()
        key = (getattr(layer, "name", None), data.get("path") if isinstance(data, dict) else None)
        if warnings and key not in self._warned:
            self._warned.add(key)
            notify("warning", " ".join(warnings))

    def _on_checkpoints_changed(self, path=None) -> None:
        """A checkpoint was written (Fine-tune) or added: list it, and select it when it is given."""
        self.refresh_checkpoints(select=str(path) if path else None)
        if path and self.method().get("path") != str(path):  # saved outside the checkpoint folders
            self.add_checkpoint_file(path)
        if path and self.method().get("path") == str(path):
            self._method_touched = True

    # ------------------------------------------------------------ thresholds
    def _set_thresholds(self, node: float, edge: float) -> None:
        self._setting_thresholds = True
        try:
            self.node_slider.setValue(node)
            self.edge_slider.setValue(edge)
        finally:
            self._setting_thresholds = False

    def _on_threshold_changed(self, *_) -> None:
        if self._setting_thresholds:
            return
        self._thresholds_touched = True
        self._rethreshold_timer.start()

    def thresholds(self) -> tuple[float, float]:
        return float(self.node_slider.value()), float(self.edge_slider.value())

    def apply_thresholds(self) -> None:
        """Re-apply the slider thresholds to the last result's raw graph and update its layers (no model run)."""
        from ..inference.postprocess import finish_raw

        res = self.last_result
        if res is None:
            return
        if not res.alive(self.viewer):
            self.last_result = None
            self.threshold_target.setText("")
            return
        node_t, edge_t = self.thresholds()
        if (node_t, edge_t) == (res.node_threshold, res.edge_threshold):
            return
        graph = finish_raw(res.raw, node_t, edge_t)
        update_graph_layers(res.layers, graph, res.name, res.scale, res.translate)
        res.node_threshold, res.edge_threshold = node_t, edge_t
        self.update_legend()
        self.status_label.setText(
            f"{res.name}: {graph.n_nodes} nodes, {graph.n_edges} edges at thresholds {node_t:.2f} / {edge_t:.2f}"
        )

    def update_legend(self) -> None:
        """Say what the colours of the last result mean (nodes by confidence, edges in one colour)."""
        from .layers import _vg_meta

        res = self.last_result
        if res is None or not res.alive(self.viewer):
            self.legend_label.setText("")
            return
        parts = []
        for role, what in (("nodes", "Nodes"), ("edges", "Edges")):
            layer = res.layers.get(role)
            if layer is not None and len(layer.data):
                column = _vg_meta(layer.metadata).get("color_by", "confidence") or None
                parts.append(f"{what}: {color_legend(layer, column)}")
        self.legend_label.setText("<br>".join(parts))

    # ------------------------------------------------------------ run
    def _collect(self) -> tuple[dict, dict]:
        """``(job, info)``: the arguments of predict and what the widget needs to show the result."""
        layer = self.image_combo.layer()
        if layer is None:
            raise VesselGraphError(
                "No image layer to predict on: open an image (File > Open…) or a sample "
                "(File > Open Sample > Vessel Graph), then choose it under 'Image'."
            )
        channel = self.channel_spin.value() if self.channel_check.isChecked() else None
        plan = plan_image(layer, self.viewer, self.axes_combo.currentData(), channel)
        method = self.method()
        if method["kind"] == "model":
            if method.get("error"):
                raise VesselGraphError(f"Cannot use checkpoint '{method['name']}': {method['error']}")
            ndim = checkpoint_ndim(method.get("meta") or {})
            if ndim is not None and ndim != plan.spatial_ndim:
                hint = (
                    " or set 'Image axes' to 2D to predict the current slice"
                    if ndim == 2 and plan.spatial_ndim == 3
                    else ""
                )
                raise VesselGraphError(
                    f"The checkpoint '{method['name']}' is {ndim}D but '{layer.name}' is a {plan.spatial_ndim}D "
                    f"{plan.description}. Choose a {plan.spatial_ndim}D checkpoint or the classical skeleton{hint}."
                )
        region_mode = self.region_combo.currentText()
        region = None
        if region_mode == REGION_VIEW:
            region = field_of_view_region(self.viewer, layer, plan)
        elif region_mode == REGION_SHAPES:
            region = shapes_region(self.viewer, layer, plan, self.shapes_combo.layer())
        label = method["name"] if method["kind"] == "model" else "skeleton"
        job: dict[str, Any] = {
            "image": plan.data,
            "method": "model" if method["kind"] == "model" else "skeleton",
            "scale": plan.scale,
            "region": region,
            "channel": plan.channel,
        }
        if method["kind"] == "model":
            node_t, edge_t = self.thresholds()
            job.update(
                checkpoint=method["path"],
                device=self.device_combo.currentText(),
                node_threshold=node_t,
                edge_threshold=edge_t,
                overlap=float(self.overlap_spin.value()),
                batch_size=int(self.batch_spin.value()),
            )
            scheduler = self._cluster_address()
            if scheduler:
                job["scheduler"] = scheduler
        info = {
            "layer": layer.name,
            "label": label,
            "plan": plan,
            "region": region,
            "key": (layer.name, label),
            "name": f"{layer.name} graph ({label})",
        }
        return job, info

    def run(self) -> None:
        """Start a prediction with the current settings (does nothing while one is running)."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            notify("info", "A prediction is already running: wait for it or press Cancel.")
            return
        try:
            job, info = self._collect()
        except VesselGraphError as e:
            notify("error", str(e))
            return
        plan = info["plan"]
        if plan.fixed:
            where = ", ".join(f"{k} = {v}" for k, v in plan.fixed.items())
            notify(
                "info",
                f"'{info['layer']}' has more axes than a {plan.spatial_ndim}D image: predicting at {where} "
                "(the current slider position). Move the slider and press Run again for another one.",
            )
        for note in plan.notes:
            notify("info", note)
        self._cancel = threading.Event()
        self._job_info = info
        worker = create_worker(run_prediction, job, self._cancel, self._relay, _start_thread=False)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)  # busy until the first progress report
        where = (
            ""
            if info["region"] is None
            else " (region " + ", ".join(f"{s.start}:{s.stop}" for s in info["region"]) + ")"
        )
        self.status_label.setText(f"Predicting '{info['layer']}' with {info['label']}{where}…")
        worker.start()

    def cancel(self) -> None:
        """Ask the running prediction to stop; it stops at the next batch and adds no layers."""
        if self._cancel is not None:
            self._cancel.set()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, done: int, total: int, info: dict) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(done, total))
        step = info.get("step") or info.get("stage") or ""
        unit = "patches" if info.get("stage") == "predict" else "steps"
        self.status_label.setText(f"{self._job_info.get('name', '')}: {step} {done}/{total} {unit}")

    def _on_returned(self, result: dict) -> None:
        status = result.get("status")
        if status == "cancelled":
            notify("info", "Prediction cancelled: no layers were added.")
            self.status_label.setText("Cancelled.")
        elif status == "error":
            notify("error", result["message"])
            self.status_label.setText("Failed: " + result["message"])
        else:
            if result.get("fell_back"):
                notify(
                    "warning",
                    "The GPU ran out of memory, so the prediction ran on the CPU instead. To stay on the GPU, lower "
                    f"the batch size or predict a region. ({result['fell_back']})",
                )
            self._show_result(result["graph"])

    def _on_errored(self, exc: Exception) -> None:
        notify("error", f"Prediction failed unexpectedly ({type(exc).__name__}: {exc}). Nothing was added.")
        self.status_label.setText(f"Failed: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._cancel = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if self.last_result is not None else 0)

    def _show_result(self, raw) -> None:
        from ..inference.postprocess import finish_raw

        info = self._job_info
        plan = info["plan"]
        if plan.unit:
            raw.metadata["unit"] = plan.unit
        raw.metadata["image_layer"] = info["layer"]
        node_t, edge_t = self.thresholds()
        graph = finish_raw(raw, node_t, edge_t)
        key = info["key"]
        old = self.results.get(key)
        if self.replace_check.isChecked() and old is not None:
            for layer in old.layers.values():
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        image_layer = next((lyr for lyr in self.viewer.layers if lyr.name == info["layer"]), None)
        pixels = None
        if image_layer is not None:
            pixels = displayed_pixels(image_layer, plan.data if plan.channel is None else None)
        edge_color = contrast_color(pixels)  # a colour that stands out on this image
        layers = add_graph_layers(
            self.viewer, graph, info["name"], plan.scale, plan.translate, plan.units, edge_color=edge_color
        )
        res = PredictionResult(
            key=key,
            name=info["name"],
            raw=raw,
            layers=layers,
            scale=plan.scale,
            translate=plan.translate,
            node_threshold=node_t,
            edge_threshold=edge_t,
            info={k: v for k, v in info.items() if k != "plan"},
        )
        self.results[key] = res
        self.last_result = res
        self.threshold_target.setText(f"The sliders act on '{info['name']}'.")
        self.update_legend()
        secs = raw.metadata.get("elapsed_s")
        device = raw.metadata.get("device", "cpu")
        text = f"{info['name']}: {graph.n_nodes} nodes, {graph.n_edges} edges"
        if secs is not None:
            text += f" in {secs:.1f} s on {device}"
        self.status_label.setText(text)
        notify("info", text)
