"""The *Fine-tune* dock widget: adapt a checkpoint to an annotation project in the background.

A thin shell over :func:`napari_vesselgraph.adapt.adapt`: *Train* runs it in a napari ``thread_worker`` with a
``threading.Event`` as its cancel flag (checked by ``adapt`` every step); its ``progress`` callbacks reach the GUI
thread through a queued Qt signal and drive the progress bar, the loss curve (redrawn at most every
:data:`PLOT_INTERVAL_MS`) and the validation table. ``adapt`` writes the checkpoint atomically to the user
checkpoint folder (or the file named under *Save as*), keeps the best one seen on the held-out patches, frees GPU
memory at the end, and on *Cancel* returns the last good checkpoint. The widget then announces the new checkpoint
on the viewer's shared state (``_state.ViewerState.checkpoints_changed``; the *Predict graph* widget selects it) and
shows the before/after metrics that ``adapt`` recorded in its metadata. The annotation folder and, until you choose
one, the base checkpoint (the one that suits the project's image best) come from the *Annotate patches* widget
through the same state.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import Cancelled, VesselGraphError
from ..progress import TimeLeft
from ._qt_parts import browse_row, line_edit
from ._state import state_for
from ._widget_utils import (
    ProgressRelay,
    add_run_controls,
    collapsible,
    compact_combos,
    free_gpu_memory,
    is_out_of_memory,
    notify,
    scroll_body,
    show_warnings,
    theme_colors,
    warning_label,
)

#: what each method does, for the method combo's tooltips
METHOD_HELP = {
    "contrastive": "task loss on source and your patches + contrastive alignment of the two domains' "
    "node/edge embeddings (the project's method)",
    "finetune": "plain fine-tuning: task loss on source and your patches, no alignment term",
    "adversarial": "task loss + domain discriminators behind gradient reversal (Berger et al. 2024)",
    "translation": "learns to translate your images to the source domain's appearance; uses the patch "
    "images only, not their graphs",
    "calibrate": "no training (seconds): the thresholds and the image-support and brightness clean-up chosen on "
    "your patches; the model's weights stay as they are",
}
#: rows of the before/after table: (metadata key, label, larger is better)
COMPARE_ROWS = (
    ("node_f1", "node F1", True),
    ("edge_f1", "edge F1", True),
    ("smd", "SMD", False),
    ("node_precision", "node precision", True),
    ("node_recall", "node recall", True),
    ("edge_precision", "edge precision", True),
    ("edge_recall", "edge recall", True),
)
PLOT_INTERVAL_MS = 400
DEVICES = ("auto", "cpu", "cuda", "mps")


class LogRelay(QObject):
    """Carries ``log(message)`` calls from the worker thread to the GUI thread."""

    logged = Signal(str)

    def __call__(self, message: str) -> None:
        self.logged.emit(str(message))


# ---------------------------------------------------------------- the job run in the worker thread
def run_finetune(config: dict, cancel: threading.Event, progress=None, log=None) -> dict:
    """Run :func:`napari_vesselgraph.adapt.adapt` for the widget (in a worker thread).

    Returns ``{"status": "ok", "path", "meta", "cancelled"}`` or ``{"status": "error", "message"}``; expected
    problems never raise. GPU memory is freed at the end (``adapt`` does it too); no model outlives the call.
    """
    from .. import adapt as adapt_mod
    from ..checkpoints import read_metadata

    try:
        path = adapt_mod.adapt(config, progress=progress, cancel=cancel, log=log or (lambda m: None))
        meta = read_metadata(path)
        return {"status": "ok", "path": str(path), "meta": meta, "cancelled": bool(cancel.is_set())}
    except Cancelled:
        return {"status": "error", "message": "Cancelled before a checkpoint was written."}
    except VesselGraphError as e:
        return {"status": "error", "message": str(e)}
    except MemoryError:
        return {"status": "error", "message": "Ran out of memory; lower the batch size or use fewer patches."}
    except Exception as e:
        if is_out_of_memory(e):
            return {
                "status": "error",
                "message": "The GPU ran out of memory; lower the batch size or choose the CPU as device.",
            }
        raise
    finally:
        free_gpu_memory()


def compare_rows(meta: dict) -> list[tuple[str, float | None, float | None, bool]]:
    """``[(label, before, after, larger is better)]`` from a checkpoint's ``meta["adaptation"]``."""
    ad = meta.get("adaptation") or {}
    before, after = ad.get("before") or {}, ad.get("after") or {}
    out = []
    for key, label, higher in COMPARE_ROWS:
        b, a = before.get(key), after.get(key)
        if b is None and a is None:
            continue
        out.append((label, b, a, higher))
    return out


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{float(v):.3f}"


# ---------------------------------------------------------------- the widget
#: what the widget says about a segmentation checkpoint (``kind: segmentation``) as a base
SEGMENTATION_NOTE = ("It adapts here by the method calibrate (its threshold and brightness clean-up chosen on your "
                     "patches); to train it on them, use `vesselgraph train-seg --init` on the command line.")


def _is_segmentation(entry) -> bool:
    from ..checkpoints.meta import is_segmentation

    return isinstance(entry, dict) and is_segmentation(entry.get("meta"))


class FinetuneWidget(QWidget):
    """Adapt a checkpoint to the patches of an annotation project, with a live loss curve."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.result: dict | None = None
        self._cancel: threading.Event | None = None
        self._t0 = 0.0
        self._eta: TimeLeft | None = None  # time-left estimate of the running job
        self.losses: list[tuple[int, float]] = []
        self.val_history: list[dict] = []
        self._plot_dirty = False
        self.plot_draws = 0
        self._checkpoint_touched = False  # the user (or a script) chose the base checkpoint: keep it
        self._auto = 0
        self._auto_folder = ""  # the folder last filled in from Annotate patches (not typed by the user)
        self._warned: set = set()
        self.suitability_warnings: list[str] = []
        self.state = state_for(napari_viewer)
        self.colors = theme_colors(napari_viewer)
        self._relay = ProgressRelay(self)
        self._relay.progressed.connect(self._on_progress)
        self._log = LogRelay(self)
        self._log.logged.connect(self._on_log)
        self._build()
        compact_combos(self)
        self.refresh_checkpoints()
        self._suggest_project()
        self.state.connect("project_changed", self, "_on_project_changed")
        self.state.connect("checkpoints_changed", self, "_on_checkpoints_changed")
        self._plot_timer = QTimer(self)
        self._plot_timer.setInterval(PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._redraw_if_dirty)

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = scroll_body(self)

        box = QGroupBox("Data and model")
        form = QFormLayout(box)
        self.folder_edit = line_edit(
            "an annotation project folder", "The folder of the Annotate patches widget (any dataset folder works)"
        )
        self.folder_edit.editingFinished.connect(self.describe_project)
        form.addRow("Annotations", browse_row(self.folder_edit, self._browse))
        self.project_info = QLabel("")
        self.project_info.setWordWrap(True)
        form.addRow(self.project_info)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip(
            "The model to start from (bundled or your own checkpoints); until you choose, the one that suits the "
            "project's image best"
        )
        self.checkpoint_combo.currentIndexChanged.connect(self._on_checkpoint_changed)
        self.checkpoint_combo.activated.connect(self._on_checkpoint_activated)
        form.addRow("Base checkpoint", self.checkpoint_combo)
        self.checkpoint_info = QLabel("")
        self.checkpoint_info.setWordWrap(True)
        form.addRow(self.checkpoint_info)
        self.suit_label = warning_label(self.viewer)
        form.addRow(self.suit_label)
        self.method_combo = QComboBox()
        from ..adapt import METHODS
        from ..adapt.config import AdaptConfig  # no torch: cheap to import

        for i, m in enumerate(METHODS):
            self.method_combo.addItem(m)
            self.method_combo.setItemData(i, METHOD_HELP.get(m, ""), Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setCurrentText(AdaptConfig().method)
        self.method_combo.currentTextChanged.connect(lambda t: self.method_combo.setToolTip(METHOD_HELP.get(t, "")))
        self.method_combo.setToolTip(METHOD_HELP[AdaptConfig().method])
        form.addRow("Method", self.method_combo)
        outer.addWidget(box)

        box = QGroupBox("Training")
        form = QFormLayout(box)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(AdaptConfig().steps)
        self.steps_spin.setToolTip("Optimisation steps (each one: a batch of source and of your patches)")
        form.addRow("Steps", self.steps_spin)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-1)
        self.lr_spin.setSingleStep(1e-5)
        self.lr_spin.setValue(AdaptConfig().lr)
        form.addRow("Learning rate", self.lr_spin)
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.9)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setDecimals(2)
        self.val_spin.setValue(0.2)
        self.val_spin.valueChanged.connect(lambda *_: self.describe_project())
        self.val_spin.setToolTip(
            "Share of the patches held out (never trained on): the before/after metrics, the choice of the best "
            "checkpoint and its thresholds come from them. At least one when there are two patches or more."
        )
        form.addRow("Held-out share", self.val_spin)
        row = QHBoxLayout()
        self.out_edit = line_edit(
            "automatic name in your checkpoint folder",
            "File name (or path) of the new checkpoint; a bare name goes to your checkpoint folder",
        )
        row.addWidget(self.out_edit, 1)
        form.addRow("Save as", row)
        self.advanced_section, form = collapsible("Validation, batch size, device", form)
        self.val_every_spin = QSpinBox()
        self.val_every_spin.setRange(1, 100_000)
        self.val_every_spin.setValue(50)
        self.val_every_spin.setToolTip("Evaluate on the held-out patches (and keep the best model) this often")
        form.addRow("Validate every", self.val_every_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(8)
        form.addRow("Batch size", self.batch_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        form.addRow("Device", self.device_combo)
        outer.addWidget(box)

        self.train_button, self.cancel_button, self.progress_bar, self.status_label = add_run_controls(
            outer, "Train", self.train, self.cancel
        )

        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4.2, 2.0), dpi=90, layout="constrained")
        self.figure.set_facecolor(self.colors["background"])
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.canvas.setFixedHeight(180)
        self.ax = self.figure.add_subplot(111)
        self.ax2 = self.ax.twinx()
        self._style_axes()
        outer.addWidget(self.canvas)

        self.val_label = QLabel("Validation: –")
        self.val_label.setWordWrap(True)
        outer.addWidget(self.val_label)

        box = QGroupBox("Held-out patches: before → after")
        v = QVBoxLayout(box)
        self.compare_table = QTableWidget(0, 3)
        self.compare_table.setHorizontalHeaderLabels(["before", "after", "change"])
        self.compare_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.compare_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.compare_table.setMinimumHeight(120)
        v.addWidget(self.compare_table)
        self.compare_note = QLabel("")
        self.compare_note.setWordWrap(True)
        v.addWidget(self.compare_note)
        outer.addWidget(box)

        self.log_section, form = collapsible("Log", outer)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(300)
        self.log_view.setFixedHeight(90)
        self.log_view.setPlaceholderText("adaptation log")
        form.addRow(self.log_view)
        outer.addStretch(1)

    def _style_axes(self) -> None:
        """Clear the plot and draw its frame in the napari theme's colours (loss on the left axis, held-out F1 on
        the right one: ``clear()`` moves a twin axis's ticks and label back to the left, so they are put back)."""
        fg, bg = self.colors["text"], self.colors["background"]
        self.ax.clear()
        self.ax2.clear()
        self.ax2.yaxis.tick_right()
        self.ax2.yaxis.set_label_position("right")
        self.ax2.patch.set_visible(False)
        self.ax.set_xlabel("step", fontsize=8, color=fg)
        self.ax.set_ylabel("loss", fontsize=8, color=fg)
        self.ax2.set_ylabel("held-out F1", fontsize=8, color=fg)
        self.ax2.set_ylim(0, 1)
        self.ax.set_facecolor(bg)
        for a in (self.ax, self.ax2):
            a.tick_params(labelsize=7, colors=fg)
            for spine in a.spines.values():
                spine.set_color(fg)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Annotation project folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)
            self.describe_project()

    def _suggest_project(self) -> None:
        """Fill in the project open in the Annotate patches widget (from the viewer's shared state)."""
        if self.state.project:
            self._on_project_changed(self.state.project)
        else:
            self.describe_project()
            self._suggest_checkpoint()

    def _on_project_changed(self, folder=None) -> None:
        """Annotate patches opened (or closed) a project: fill in its folder unless you typed another one, and
        pick the base checkpoint that suits its image unless you chose one."""
        current = self.folder_edit.text().strip()
        if folder and (not current or current == self._auto_folder):
            self.folder_edit.setText(str(folder))
            self._auto_folder = str(folder)
        self.describe_project()
        self._suggest_checkpoint()

    def _on_checkpoints_changed(self, path=None) -> None:
        self.refresh_checkpoints()

    # ------------------------------------------------------------ which checkpoint suits the project
    def project_image(self):
        """``(array, rgb)`` of the image the project annotates: the Annotate widget's image layer, else the first
        patch in the folder, else the viewer's first image layer; None when there is none."""
        layer = self.state.project_image
        if layer is not None and self.state.project == self.folder_edit.text().strip():
            return (layer.data[0] if layer.multiscale else layer.data), bool(layer.rgb)
        folder = self.folder_edit.text().strip()
        if folder:
            try:
                from ..annotations import AnnotationStore

                if AnnotationStore.exists(folder):
                    store = AnnotationStore.open(folder)
                    if store.ids():
                        return store.load_image(store.ids()[0]), store.channels == 3
            except (OSError, VesselGraphError):
                pass
        from napari.layers import Image

        for lyr in self.viewer.layers:
            if isinstance(lyr, Image):
                return (lyr.data[0] if lyr.multiscale else lyr.data), bool(lyr.rgb)
        return None

    def _traits(self):
        from ..checkpoints.suits import image_traits

        found = self.project_image()
        if found is None:
            return None
        data, rgb = found
        key = (id(data), rgb)
        if getattr(self, "_traits_key", None) != key:
            try:
                self._traits_value = image_traits(data, rgb=rgb)
            except Exception:  # noqa: BLE001 - an unreadable image: no advice
                self._traits_value = None
            self._traits_key = key
        return self._traits_value

    def _suggest_checkpoint(self) -> None:
        """Choose the base checkpoint that suits the project's image best unless one was chosen; then say how
        well the chosen one suits it."""
        from ..checkpoints.suits import CANNOT_RUN, rank_checkpoints

        traits = self._traits()
        if traits is not None and not self._checkpoint_touched and self.checkpoint_combo.count():
            entries = [self.checkpoint_combo.itemData(i) for i in range(self.checkpoint_combo.count())]
            ranked = rank_checkpoints(traits, entries)
            if ranked and ranked[0]["score"] > CANNOT_RUN:
                idx = entries.index(ranked[0]["entry"])
                if idx != self.checkpoint_combo.currentIndex():
                    self._auto += 1
                    try:
                        self.checkpoint_combo.setCurrentIndex(idx)
                    finally:
                        self._auto -= 1
        self._update_suitability(traits)

    def _on_checkpoint_activated(self, index: int) -> None:
        self._checkpoint_touched = True

    def _on_checkpoint_changed(self, index: int) -> None:
        if self._auto:
            return  # the widget is filling or choosing: it says how well the final choice suits once done
        self._checkpoint_touched = True
        self._update_suitability(self._traits())

    def _update_suitability(self, traits) -> None:
        from html import escape

        from ..checkpoints.suits import model_purpose, suitability

        entry = self.checkpoint_combo.currentData()
        self._fit_methods(entry)
        if not isinstance(entry, dict):
            self.checkpoint_info.setText("")
            show_warnings(self.suit_label, [])
            return
        text = model_purpose(entry.get("meta"))["text"]
        if _is_segmentation(entry):
            text += f" {SEGMENTATION_NOTE}"
        self.checkpoint_info.setText(escape(text))
        warnings: list[str] = []
        if traits is not None:
            _, warnings = suitability(entry.get("meta") or {}, traits, entry.get("name"))
        self.suitability_warnings = warnings
        show_warnings(self.suit_label, warnings)
        key = (self.folder_edit.text().strip(), entry.get("path"))
        if warnings and key not in self._warned:
            self._warned.add(key)
            notify("warning", " ".join(warnings))

    def _fit_methods(self, entry) -> None:
        """A segmentation checkpoint adapts by ``calibrate`` only: while one is chosen the other methods are greyed
        out and ``calibrate`` is selected; choosing a Relationformer again restores the method you had."""
        seg = _is_segmentation(entry)
        model = self.method_combo.model()
        for i in range(self.method_combo.count()):
            item = model.item(i) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(not seg or self.method_combo.itemText(i) == "calibrate")
        if seg and self.method_combo.currentText() != "calibrate":
            self._method_before_seg = self.method_combo.currentText()
            self.method_combo.setCurrentText("calibrate")
        elif not seg and getattr(self, "_method_before_seg", None):
            self.method_combo.setCurrentText(self._method_before_seg)
            self._method_before_seg = None

    # ------------------------------------------------------------ inputs
    def refresh_checkpoints(self, select: str | None = None) -> None:
        """Fill the base checkpoint combo from :func:`napari_vesselgraph.checkpoints.list_checkpoints`."""

        current = self.checkpoint_combo.currentData()
        want = select or (current or {}).get("path")
        self._auto += 1
        try:
            self._fill_checkpoints(want)
        finally:
            self._auto -= 1
        if select:
            self._checkpoint_touched = True
        if not want:
            self._suggest_checkpoint()
        else:
            self._update_suitability(self._traits())

    def _fill_checkpoints(self, want) -> None:
        from ..checkpoints import checkpoint_ndim, describe_checkpoint, list_checkpoints

        self.checkpoint_combo.clear()
        try:
            entries = list_checkpoints()
        except (OSError, VesselGraphError) as e:  # pragma: no cover
            notify("warning", f"Could not list checkpoints: {e}")
            entries = []
        idx = 0
        for entry in entries:
            if entry.get("error"):
                continue
            meta = entry.get("meta") or {}
            ndim = checkpoint_ndim(meta)
            label = entry["name"] + (f"  ({ndim}D, {meta.get('domain')})" if ndim else "")
            self.checkpoint_combo.addItem(label, entry)
            i = self.checkpoint_combo.count() - 1
            self.checkpoint_combo.setItemData(i, describe_checkpoint(entry), Qt.ItemDataRole.ToolTipRole)
            if want and want in (entry.get("path"), entry.get("name")):
                idx = i
        if self.checkpoint_combo.count():
            self.checkpoint_combo.setCurrentIndex(idx)

    def select_checkpoint(self, name_or_path: str) -> bool:
        """Choose the base checkpoint (kept from then on, like a choice in the combo)."""
        for i in range(self.checkpoint_combo.count()):
            d = self.checkpoint_combo.itemData(i)
            if isinstance(d, dict) and name_or_path in (d.get("name"), d.get("path")):
                self._checkpoint_touched = True
                self.checkpoint_combo.setCurrentIndex(i)
                return True
        return False

    def describe_project(self) -> dict | None:
        """Check the annotation folder and say what it holds; returns its manifest summary or None."""
        from ..synth import dataset_info

        folder = self.folder_edit.text().strip()
        if not folder:
            self.project_info.setText("Choose the folder of an annotation project (Annotate patches widget).")
            return None
        try:
            info = dataset_info(folder)
        except VesselGraphError as e:
            self.project_info.setText(f"⚠ {e}")
            return None
        from ..annotations import AnnotationStore

        n = info["counts"].get("train", 0)
        text = f"{n} patch(es) to learn from ({info['ndim']}D, {info['channels']} channel(s))"
        try:
            patches = AnnotationStore.open(folder).patches()
            drafts = sum(1 for p in patches if p.get("status", "draft") != "done")
            if drafts:
                text += f"; {drafts} still marked draft"
        except VesselGraphError:  # pragma: no cover - a plain dataset folder
            pass
        held = _heldout_count(n, float(self.val_spin.value()))
        text += f". {held} will be held out for validation." if held else ". None held out: no before/after figures."
        self.project_info.setText(text)
        return info

    def config(self) -> dict:
        """The :class:`napari_vesselgraph.adapt.AdaptConfig` fields for the current settings."""
        from ..checkpoints import checkpoint_ndim, user_dir

        folder = self.folder_edit.text().strip()
        if not folder:
            raise VesselGraphError("Choose the annotation project folder first.")
        info = self.describe_project()
        if info is None:
            raise VesselGraphError(self.project_info.text().lstrip("⚠ "))
        if info["counts"].get("train", 0) < 1:
            raise VesselGraphError(f"{folder} holds no patches yet: annotate some with the Annotate patches widget.")
        entry = self.checkpoint_combo.currentData()
        if not isinstance(entry, dict):
            raise VesselGraphError("No base checkpoint: install or train one first.")
        ndim = checkpoint_ndim(entry.get("meta") or {})
        if ndim is not None and ndim != info["ndim"]:
            raise VesselGraphError(
                f"The checkpoint '{entry['name']}' is {ndim}D but the patches are {info['ndim']}D; choose a "
                f"{info['ndim']}D checkpoint."
            )
        if _is_segmentation(entry) and self.method_combo.currentText() != "calibrate":
            raise VesselGraphError(f"'{entry['name']}' is a segmentation model: {SEGMENTATION_NOTE}")
        out = self.out_edit.text().strip() or None
        if out is not None and not Path(out).expanduser().is_absolute() and len(Path(out).parts) == 1:
            out = str(user_dir() / out)
        cfg: dict[str, Any] = {
            "method": self.method_combo.currentText(),
            "checkpoint": entry["path"],
            "target": folder,
            "val_fraction": float(self.val_spin.value()),
            "steps": int(self.steps_spin.value()),
            "lr": float(self.lr_spin.value()),
            "batch_size": int(self.batch_spin.value()),
            "val_every": int(self.val_every_spin.value()),
            "device": self.device_combo.currentText(),
            "threads": 0,  # leave torch's thread count alone
            "out": out,
        }
        return cfg

    # ------------------------------------------------------------ run
    def train(self, config: dict | None = None) -> bool:
        """Start adapting with the widget's settings (or ``config``, a dict of AdaptConfig fields); False when it
        could not start."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            notify("info", "Training is already running: wait for it or press Cancel.")
            return False
        self.state.flush_requested.emit()  # the latest annotation edits are on disk before adapt reads the folder
        try:
            cfg = self.config() if not config else dict(config)
            from ..adapt import AdaptConfig

            AdaptConfig.from_dict(cfg)  # readable errors now rather than in the worker
        except VesselGraphError as e:
            notify("error", str(e))
            self.status_label.setText(f"Cannot start: {e}")
            return False
        self.losses, self.val_history, self.result = [], [], None
        self._style_axes()
        self.canvas.draw_idle()
        self.compare_table.setRowCount(0)
        self.compare_note.setText("")
        self.val_label.setText("Validation: –")
        self.log_view.clear()
        self._cancel = threading.Event()
        self._t0 = time.perf_counter()
        self._eta = TimeLeft(self._t0, val_every=cfg.get("val_every"))
        self._config = cfg
        worker = create_worker(run_finetune, cfg, self._cancel, self._relay, self._log, _start_thread=False)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self.status_label.setText(
            f"Preparing {cfg['method']} on {Path(cfg['target']).name} from {Path(str(cfg['checkpoint'])).stem} "
            "(loading data, measuring the model before training)…"
        )
        self._plot_timer.start()
        worker.start()
        return True

    def cancel(self) -> None:
        """Stop after the current step; the last good checkpoint is kept."""
        if self._cancel is not None:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling: stopping after the current step…")

    def is_running(self) -> bool:
        return self.worker is not None

    def _on_log(self, message: str) -> None:
        self.log_view.appendPlainText(message)
        if message.startswith("warning:"):  # e.g. calibrate's leave-one-out check: not only in the folded log
            notify("warning", "Fine-tune: " + message[len("warning:"):].strip())

    def _on_progress(self, step: int, total: int, info: dict) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(step, total))
        loss = info.get("loss")
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            self.losses.append((int(step), float(loss)))
            self._plot_dirty = True
        val = info.get("val")
        if isinstance(val, dict):
            self.val_history.append({"step": int(step), **val})
            self._plot_dirty = True
            self.val_label.setText(
                f"Validation at step {step}: node F1 {_fmt(val.get('node_f1'))}, edge F1 {_fmt(val.get('edge_f1'))}, "
                f"SMD {_fmt(val.get('smd'))}"
            )
        elapsed = time.perf_counter() - self._t0
        left = self._eta.update(step, total, info) if self._eta is not None else None
        if isinstance(info.get("phase"), str) and step == 0:  # before the first step: say what it is doing
            self.status_label.setText(f"{info['phase'][:1].upper()}{info['phase'][1:]}… · {elapsed:.0f} s")
            return
        if left is not None and not (self._cancel is not None and self._cancel.is_set()):
            self.status_label.setText(
                f"Step {step}/{total}, loss {_fmt(loss)} · {elapsed:.0f} s, about {left:.0f} s left"
            )

    def _redraw_if_dirty(self) -> None:
        if not self._plot_dirty:
            return
        self._plot_dirty = False
        self.redraw()

    def redraw(self) -> None:
        """Draw the loss curve (and held-out F1 points) now."""
        self._style_axes()
        if self.losses:
            xs, ys = zip(*self.losses)
            self.ax.plot(xs, ys, lw=0.8, color="#4fa3ff", alpha=0.6, label="loss")
            if len(ys) >= 10:
                k = max(5, len(ys) // 20)
                sm = [sum(ys[max(0, i - k + 1) : i + 1]) / len(ys[max(0, i - k + 1) : i + 1]) for i in range(len(ys))]
                self.ax.plot(xs, sm, lw=1.6, color="#9fd0ff")
        if self.val_history:
            vx = [v["step"] for v in self.val_history]
            for key, color in (("node_f1", "tab:orange"), ("edge_f1", "tab:green")):
                vy = [v.get(key) for v in self.val_history]
                self.ax2.plot(vx, vy, "o-", ms=3, lw=1, color=color, label=key.replace("_", " "))
            legend = self.ax2.legend(loc="lower right", fontsize=7, facecolor=self.colors["background"],
                                     edgecolor=self.colors["text"], labelcolor=self.colors["text"])  # fmt: skip
            legend.get_frame().set_alpha(0.8)
        self.canvas.draw_idle()
        self.plot_draws += 1

    def _on_returned(self, result: dict) -> None:
        self.result = result
        if result.get("status") != "ok":
            notify("error", result.get("message", "Training failed."))
            self.status_label.setText("Failed: " + result.get("message", ""))
            return
        path, meta = result["path"], result["meta"]
        ad = meta.get("adaptation") or {}
        self.show_comparison(meta)
        self.state.checkpoints_changed.emit(path)  # every checkpoint list refreshes; Predict graph selects it
        updated = (self.state.checkpoint or {}).get("path") == path
        name = Path(path).stem
        ran = self.losses[-1][0] if self.losses else 0
        kept = (ad.get("after") or {}).get("step", ad.get("steps_done"))
        if result.get("cancelled"):
            text = f"Cancelled after {ran} steps. Kept the last good checkpoint '{name}'" + (
                f" (step {kept})." if kept is not None else "."
            )
        else:
            text = f"Done: {ran} steps in {time.perf_counter() - self._t0:.0f} s. Saved '{name}'"
            text += f", the best on the held-out patches (step {kept})." if ad.get("after") else "."
        if updated:
            text += " Selected in the Predict graph widget."
        self.status_label.setText(text)
        notify("info", text + f" Saved to {path}.")

    def _on_errored(self, exc: Exception) -> None:
        notify("error", f"Training failed unexpectedly ({type(exc).__name__}: {exc}).")
        self.status_label.setText(f"Failed: {type(exc).__name__}: {exc}")
        self.result = {"status": "error", "message": str(exc)}

    def _on_finished(self) -> None:
        self.worker = None
        self._cancel = None
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self._plot_timer.stop()
        self._plot_dirty = True
        self._redraw_if_dirty()
        ok = self.result is not None and self.result.get("status") == "ok"
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if ok else 0)

    def show_comparison(self, meta: dict) -> None:
        """Fill the before/after table from a checkpoint's metadata."""
        rows = compare_rows(meta)
        ad = meta.get("adaptation") or {}
        self.compare_table.setRowCount(len(rows))
        self.compare_table.setVerticalHeaderLabels([r[0] for r in rows])
        for r, (_, b, a, higher) in enumerate(rows):
            self.compare_table.setItem(r, 0, QTableWidgetItem(_fmt(b)))
            self.compare_table.setItem(r, 1, QTableWidgetItem(_fmt(a)))
            change, color = "–", None
            if b is not None and a is not None:
                d = float(a) - float(b)
                better = d > 0 if higher else d < 0
                if abs(d) <= 1e-9:
                    change = f"{d:+.3f}"
                elif better:
                    change = f"{d:+.3f} ✓"
                else:  # worse after fine-tuning: say so as clearly as an improvement
                    change, color = f"{d:+.3f} ✗", self.colors["warning"]
            item = QTableWidgetItem(change)
            if color:
                from qtpy.QtGui import QBrush, QColor

                item.setForeground(QBrush(QColor(color)))
                item.setToolTip("worse after fine-tuning")
            self.compare_table.setItem(r, 2, item)
        held = ad.get("heldout_ids") or []
        if not rows:
            self.compare_note.setText(
                "No held-out patches, so nothing to compare: annotate more patches or raise the held-out share."
                if not held
                else "No metrics were recorded (the run stopped before its first validation)."
            )
        else:
            after = ad.get("after") or {}
            note = f"On {len(held)} held-out patch(es): {', '.join(map(str, held))}"
            if after.get("step") is not None:
                note += f"; after = the best checkpoint, at step {after['step']}"
            self.compare_note.setText(note + ".")

    def closeEvent(self, event) -> None:
        self.cancel()
        super().closeEvent(event)


def _heldout_count(pool: int, val_fraction: float) -> int:
    try:
        from ..adapt.data import n_heldout_for

        return int(n_heldout_for(pool, val_fraction))
    except ImportError:  # pragma: no cover
        return 0
