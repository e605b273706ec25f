"""The *Graph inspector* dock widget: statistics, histograms and segments of a graph shown in napari,
colouring by features, saving and handing the graph to the console.

The graph is always rebuilt from the current (possibly edited) layers with
:func:`napari_vesselgraph._napari.layers.layers_to_graph`; statistics come from
:func:`napari_vesselgraph.graph.graph_statistics` and :func:`napari_vesselgraph.graph.segments`, computed in a
napari ``thread_worker`` so that large graphs do not freeze the viewer. The histograms are drawn in that
worker too (matplotlib's Agg renderer on a figure of its own); the GUI thread only shows the finished image,
so a 100k-edge graph costs the viewer a table update and a pixmap, not a figure layout and draw.
"""

from __future__ import annotations

import gc
import math
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from qtpy.QtCore import QAbstractTableModel, Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import VesselGraphError
from ._qt_parts import wrapped_label
from ._widget_utils import (
    camera,
    color_legend,
    compact_combos,
    edges_layer_of,
    graph_groups,
    layer_units,
    notify,
    scroll_body,
    set_color_by,
)

PLAIN = "(plain colour)"
FILE_FILTERS = {
    "graphml": "GraphML (*.graphml)",
    "json": "JSON node-link (*.json)",
    "csv": "CSV node + edge tables (*.csv)",
    "swc": "SWC, trees only (*.swc)",
    "swc_tree": "SWC, cycles broken into a spanning tree (*.swc)",
    "vtk": "VTK polydata (*.vtk)",
}
STAT_ROWS = [
    ("nodes", "Nodes"),
    ("edges", "Edges"),
    ("branch_points", "Branch points (degree ≥ 3)"),
    ("endpoints", "Endpoints (degree 1)"),
    ("components", "Connected components"),
    ("segments", "Segments (branch to branch)"),
    ("total_length", "Total length"),
    ("mean_segment_length", "Mean segment length"),
    ("mean_tortuosity", "Mean tortuosity (length / chord)"),
]
LENGTH_KEYS = ("total_length", "mean_segment_length")


_GC_LOCK = threading.Lock()
_GC_HOLDERS = [0, False]  # [workers inside _gc_paused, whether gc was enabled before the first]


@contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while a worker computes statistics.

    The statistics of a large graph allocate a few hundred thousand small lists and tuples; each time that
    triggers a full collection, the collector walks every object of the napari session (millions) while
    holding the GIL: the GUI thread then stalls for about half a second, again and again. Nothing the
    worker builds is cyclic garbage, so collection can wait until it is done (the collector is restored
    when the last worker leaves).
    """
    with _GC_LOCK:
        if _GC_HOLDERS[0] == 0:
            _GC_HOLDERS[1] = gc.isenabled()
            gc.disable()
        _GC_HOLDERS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_HOLDERS[0] -= 1
            if _GC_HOLDERS[0] == 0 and _GC_HOLDERS[1]:
                gc.enable()


def inspect_graph(graph, render: dict | None = None) -> dict:
    """Everything the inspector shows about ``graph`` (run in a worker thread; no Qt, no napari).

    ``render``: ``{"width", "height", "dpi", "fg", "bg", "unit"}`` to also draw the histograms
    (:func:`render_histograms`): ``figure`` and ``histogram_image`` (RGBA array) in the result.
    """
    with _gc_paused():
        return _inspect_graph(graph, render)


def _inspect_graph(graph, render: dict | None) -> dict:
    from ..graph import graph_statistics, morphometrics

    m = morphometrics(graph)
    stats = graph_statistics(graph, m)
    radius = graph.node_attrs.get("radius")
    if radius is not None and np.asarray(radius).dtype.kind in "fiu":
        radius = np.asarray(radius, dtype=float)
        radius = radius[np.isfinite(radius)]
    else:
        radius = None
    out = {
        "graph": graph,
        "statistics": stats,
        "segments": m["segments"],
        "segment_nodes": m["segment_nodes"],
        "degree": m["nodes"]["degree"],
        "radius": radius,
    }
    if render is not None:
        out["figure"], out["histogram_image"] = render_histograms(out, **render)
    return out


def render_histograms(result: dict | None, width: int, height: int, dpi: float = 90.0, fg="#f0f1f2",
                      bg="#262930", unit: str = ""):  # fmt: skip
    """``(figure, rgba)``: the three histograms (segment length, degree, radius) of an :func:`inspect_graph`
    result drawn by Agg on a figure of their own (safe in a worker thread: no pyplot, no Qt)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width, 100) / dpi, max(height, 60) / dpi), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fig.set_facecolor(bg)
    axes = fig.subplots(1, 3)
    panels = [
        ("segment length" + (f" ({unit})" if unit else ""), None if result is None else result["segments"]["length"]),
        ("degree", None if result is None else result["degree"]),
        ("radius (px)", None if result is None else result["radius"]),
    ]
    for ax, (title, values) in zip(axes, panels):
        ax.set_facecolor(bg)
        ax.set_title(title, fontsize=8, color=fg)
        ax.tick_params(labelsize=7, colors=fg)
        for spine in ax.spines.values():
            spine.set_color(fg)
        if values is None or len(values) == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=8, color=fg, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if title == "degree":
            top = int(values.max()) if len(values) else 0
            ax.hist(values, bins=np.arange(-0.5, top + 1.5, 1.0), color="#4fa3ff", edgecolor=bg)
        else:
            ax.hist(values, bins=min(30, max(5, len(values) // 5)), color="#4fa3ff", edgecolor=bg)
    canvas.draw()
    return fig, np.asarray(canvas.buffer_rgba()).copy()


def graph_unit(graph, nodes_layer=None) -> str:
    """The length unit to print: the graph's ``unit`` metadata, else the layer's units, else px / scale units."""
    unit = (graph.metadata or {}).get("unit")
    if unit:
        return str(unit)
    if nodes_layer is not None:
        _, text = layer_units(nodes_layer, range(nodes_layer.ndim))
        if text:
            return text
    return "px" if np.allclose(graph.scale, 1.0) else "scale units"


def format_value(key: str, value, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if key in LENGTH_KEYS:
        return (f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}") + f" {unit}"
    if key == "mean_tortuosity":
        return f"{value:.3f}"
    return f"{int(value):,}"


class SegmentsModel(QAbstractTableModel):
    """A read-only table over numpy columns (fast for 10⁵ rows); sorting reorders a row index."""

    COLUMNS: ClassVar[list[tuple[str, str | None]]] = [("#", None), ("length", "length"), ("chord", "chord"), ("tort.", "tortuosity"),
               ("edges", "n_edges"), ("start", "start"), ("end", "end")]  # fmt: skip

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cols: dict[str, np.ndarray] = {}
        self._order = np.zeros(0, dtype=np.int64)
        self.unit = ""

    def set_data(self, columns: dict[str, np.ndarray], unit: str) -> None:
        self.beginResetModel()
        self._cols = columns
        n = len(next(iter(columns.values()))) if columns else 0
        self._order = np.arange(n, dtype=np.int64)
        self.unit = unit
        self.endResetModel()

    def segment_index(self, row: int) -> int:
        return int(self._order[row])

    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._order)

    def columnCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section][0]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        seg = int(self._order[index.row()])
        key = self.COLUMNS[index.column()][1]
        if key is None:
            return str(seg)
        v = self._cols[key][seg]
        if key in ("n_edges", "start", "end"):
            return str(int(v))
        return "–" if not np.isfinite(v) else f"{float(v):.4g}"

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not self._cols:
            return
        key = self.COLUMNS[column][1]
        n = len(self._order)
        values = np.arange(n, dtype=float) if key is None else np.asarray(self._cols[key], dtype=float)
        values = np.where(np.isfinite(values), values, np.inf)
        idx = np.argsort(values, kind="stable")
        if order == Qt.SortOrder.DescendingOrder:
            idx = idx[::-1]
        self.layoutAboutToBeChanged.emit()
        self._order = idx.astype(np.int64)
        self.layoutChanged.emit()


class InspectorWidget(QWidget):
    """Statistics, histograms, segments, colouring and export of a graph shown as napari layers."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.result: dict | None = None  # last output of inspect_graph for the chosen graph
        self._generation = 0
        self._watched: list = []
        self._group: dict | None = None
        self._build()
        compact_combos(self)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(300)
        self._refresh_timer.timeout.connect(self.refresh_statistics)
        self._histogram_timer = QTimer(self)  # redraw the histograms at the label's new width after a resize
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.setInterval(150)
        self._histogram_timer.timeout.connect(self._redraw_histograms)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self.viewer.layers.events.moved.connect(self._on_layers_changed)
        self.refresh_graphs()

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = scroll_body(self)
        row = QHBoxLayout()
        self.graph_combo = QComboBox()
        self.graph_combo.setToolTip("A graph shown in the viewer, by its nodes (Points) layer")
        self.graph_combo.currentIndexChanged.connect(self._on_graph_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Recompute the statistics from the layers (done automatically after edits)")
        self.refresh_button.clicked.connect(self.refresh_statistics)
        row.addWidget(QLabel("Graph"))
        row.addWidget(self.graph_combo, 1)
        row.addWidget(self.refresh_button)
        outer.addLayout(row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        outer.addWidget(self.status_label)

        self.stats_table = QTableWidget(len(STAT_ROWS), 2)
        self.stats_table.setHorizontalHeaderLabels(["Statistic", "Value"])
        self.stats_table.verticalHeader().setVisible(False)
        self.stats_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.stats_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.stats_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for r, (_, label) in enumerate(STAT_ROWS):
            self.stats_table.setItem(r, 0, QTableWidgetItem(label))
            self.stats_table.setItem(r, 1, QTableWidgetItem("–"))
        row_h = self.fontMetrics().height() + 8
        self.stats_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.stats_table.verticalHeader().setDefaultSectionSize(row_h)
        self.stats_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header_h = self.stats_table.horizontalHeader().sizeHint().height()
        self.stats_table.setFixedHeight(header_h + row_h * len(STAT_ROWS) + 2 * self.stats_table.frameWidth() + 2)
        outer.addWidget(self.stats_table)

        # the histograms: an image rendered off the GUI thread (see render_histograms)
        self.figure = None
        self.histogram_label = QLabel()
        self.histogram_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.histogram_label.setMinimumWidth(200)
        self.histogram_label.setFixedHeight(175)
        self.histogram_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.histogram_label.installEventFilter(self)
        outer.addWidget(self.histogram_label)

        box = QGroupBox("Segments: choose one to select its nodes and centre the view")
        self.segments_box = box
        v = QVBoxLayout(box)
        self.segments_model = SegmentsModel(self)
        self.segments_view = QTableView()
        self.segments_view.setModel(self.segments_model)
        self.segments_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.segments_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.segments_view.setSortingEnabled(True)
        self.segments_view.verticalHeader().setVisible(False)
        self.segments_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.segments_view.horizontalHeader().setMinimumSectionSize(30)
        self.segments_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.segments_view.setToolTip(
            "length: along the segment; chord: straight end-to-end distance; tort.: length / chord; "
            "start, end: node numbers (rows of the nodes layer)"
        )
        self.segments_view.selectionModel().currentRowChanged.connect(self._on_segment_row)
        self.segments_view.setMinimumHeight(140)
        self.segments_view.setMaximumHeight(320)
        v.addWidget(self.segments_view)
        outer.addWidget(box, 1)

        box = QGroupBox("Colour by")
        form = QFormLayout(box)
        self.node_color_combo = QComboBox()
        self.node_color_combo.setToolTip("Colour the nodes (Points) by a feature column")
        self.node_color_combo.activated.connect(lambda _: self._on_color("nodes"))
        self.edge_color_combo = QComboBox()
        self.edge_color_combo.setToolTip("Colour the edges (Vectors) by a feature column")
        self.edge_color_combo.activated.connect(lambda _: self._on_color("edges"))
        form.addRow("Nodes", self.node_color_combo)
        form.addRow("Edges", self.edge_color_combo)
        self.legend_label = wrapped_label(rich=True, tip="What the colours of the graph's nodes and edges mean")
        form.addRow(self.legend_label)
        outer.addWidget(box)

        row = QHBoxLayout()
        self.save_button = QPushButton("Save graph…")
        self.save_button.setToolTip("Write the graph as it is now in the layers (edits included)")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.console_button = QPushButton("Copy to console")
        self.console_button.setToolTip("Put the graph into napari's console as vessel_graph and nx_graph")
        self.console_button.clicked.connect(self.copy_to_console)
        row.addWidget(self.save_button)
        row.addWidget(self.console_button)
        outer.addLayout(row)
        self._draw_histograms(None)

    # ------------------------------------------------------------ which graph
    def _on_layers_changed(self, event=None) -> None:
        self.refresh_graphs()
        # a graph just added (a prediction, a file opened) becomes the one inspected
        layer = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        if layer is not None:
            from .layers import ROLE_NODES, _vg_meta

            meta = _vg_meta(getattr(layer, "metadata", None))
            if meta.get("role") == ROLE_NODES and meta.get("graph_id"):
                idx = self.graph_combo.findData(meta["graph_id"])
                if idx >= 0 and idx != self.graph_combo.currentIndex():
                    self.graph_combo.setCurrentIndex(idx)

    def refresh_graphs(self) -> None:
        """Re-list the graphs of the viewer, keeping the current choice when it still exists."""
        groups = graph_groups(self.viewer.layers)
        current = self.graph_combo.currentData()
        ids = [g["graph_id"] for g in groups]
        same = ids == [self.graph_combo.itemData(i) for i in range(self.graph_combo.count())] and [
            g["name"] for g in groups
        ] == [self.graph_combo.itemText(i) for i in range(self.graph_combo.count())]
        if same:
            return
        self.graph_combo.blockSignals(True)
        self.graph_combo.clear()
        for g in groups:
            self.graph_combo.addItem(g["name"], g["graph_id"])
        if current in ids:
            self.graph_combo.setCurrentIndex(ids.index(current))
        self.graph_combo.blockSignals(False)
        if self.graph_combo.currentData() != current or current is None:
            self._on_graph_changed()

    def select_graph(self, layer_or_name) -> None:
        """Choose the graph whose nodes layer is ``layer_or_name`` (a layer or its name)."""
        name = getattr(layer_or_name, "name", layer_or_name)
        idx = self.graph_combo.findText(str(name))
        if idx < 0:
            raise VesselGraphError(f"no graph with a nodes layer named {name!r}")
        self.graph_combo.setCurrentIndex(idx)

    def group(self) -> dict | None:
        gid = self.graph_combo.currentData()
        for g in graph_groups(self.viewer.layers):
            if g["graph_id"] == gid:
                return g
        return None

    def _watch(self, group: dict | None) -> None:
        for layer in self._watched:
            try:
                layer.events.data.disconnect(self._schedule_refresh)
            except (TypeError, ValueError, RuntimeError):  # pragma: no cover
                pass
        self._watched = []
        if group is None:
            return
        for role in ("nodes", "edges", "edit_edges"):
            layer = group.get(role)
            if layer is not None:
                layer.events.data.connect(self._schedule_refresh)
                self._watched.append(layer)

    def _on_graph_changed(self, *_) -> None:
        group = self.group()
        self._group = group
        self._watch(group)
        self._fill_color_combos(group)
        self.refresh_statistics()

    def _schedule_refresh(self, event=None) -> None:
        self._refresh_timer.start()

    # ------------------------------------------------------------ the graph
    def current_graph(self):
        """The chosen graph rebuilt from its layers as they are now (edits included)."""
        from .layers import layers_to_graph

        group = self.group()
        if group is None:
            raise VesselGraphError(
                "No graph to inspect: run Predict graph, open a graph file, or open a sample with a ground truth."
            )
        return layers_to_graph(group["nodes"], edges_layer_of(group))

    def refresh_statistics(self) -> None:
        """Rebuild the graph from its layers and compute its statistics in a worker thread."""
        from napari.qt.threading import create_worker

        self._generation += 1
        gen = self._generation
        if self.group() is None:
            self.result = None
            self._show(None)
            self.status_label.setText("No graph in the viewer yet.")
            return
        try:
            graph = self.current_graph()
        except VesselGraphError as e:
            self.status_label.setText(str(e))
            notify("error", f"Cannot read the graph from its layers: {e}")
            return
        self.status_label.setText(f"Computing statistics of {graph.n_nodes:,} nodes and {graph.n_edges:,} edges…")
        group = self.group()
        render = self._render_options(graph_unit(graph, group["nodes"] if group else None))
        worker = create_worker(inspect_graph, graph, render, _start_thread=False)
        worker.returned.connect(lambda res, gen=gen: self._on_result(gen, res))
        worker.errored.connect(lambda exc, gen=gen: self._on_error(gen, exc))
        worker.finished.connect(lambda gen=gen: self._on_worker_finished(gen))
        self.worker = worker
        worker.start()

    def _on_worker_finished(self, gen: int) -> None:
        if gen == self._generation:
            self.worker = None

    def _on_error(self, gen: int, exc: Exception) -> None:
        if gen == self._generation:
            self.status_label.setText(f"Statistics failed: {type(exc).__name__}: {exc}")

    def _on_result(self, gen: int, result: dict) -> None:
        if gen != self._generation:
            return  # a newer request is running
        self.result = result
        self._show(result)
        g = result["graph"]
        self.status_label.setText(f"{g.ndim}D graph, scale {tuple(round(s, 4) for s in g.scale)}")

    # ------------------------------------------------------------ display
    def _show(self, result: dict | None) -> None:
        if result is None:
            for r in range(len(STAT_ROWS)):
                self.stats_table.item(r, 1).setText("–")
            self.segments_model.set_data({}, "")
            self._draw_histograms(None)
            self.legend_label.setText("")
            return
        group = self.group()
        unit = graph_unit(result["graph"], group["nodes"] if group else None)
        result["unit"] = unit
        stats = result["statistics"]
        for r, (key, _) in enumerate(STAT_ROWS):
            self.stats_table.item(r, 1).setText(format_value(key, stats.get(key), unit))
        self.segments_model.set_data(result["segments"], unit)
        self.segments_box.setTitle(
            f"Segments ({len(result['segment_nodes']):,}; lengths in {unit}): choose one to select its nodes"
        )
        self._draw_histograms(result)
        self.update_legend()

    def _render_options(self, unit: str = "") -> dict:
        fg, bg = _theme_colors(self.viewer)
        ratio = (
            float(self.histogram_label.devicePixelRatioF())
            if hasattr(self.histogram_label, "devicePixelRatioF")
            else 1.0
        )
        width = max(120, self.histogram_label.width())
        return {
            "width": int(width * ratio), "height": int(self.histogram_label.height() * ratio), "dpi": 90.0 * ratio,
            "fg": fg, "bg": bg, "unit": unit,
        }  # fmt: skip

    def _draw_histograms(self, result: dict | None) -> None:
        """Show the histograms the worker drew (or draw the empty panels here, for no graph)."""
        from qtpy.QtGui import QImage, QPixmap

        if result is not None and "histogram_image" in result:
            fig, rgba = result["figure"], result["histogram_image"]
        else:
            fig, rgba = render_histograms(None, **self._render_options())
        self.figure = fig
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        ratio = (
            float(self.histogram_label.devicePixelRatioF())
            if hasattr(self.histogram_label, "devicePixelRatioF")
            else 1.0
        )
        room = int(max(self.histogram_label.width(), 1) * ratio)
        if w > room:  # drawn for a wider label: shrink it until the redraw at this width, never crop a title
            image = image.scaledToWidth(room, Qt.TransformationMode.SmoothTransformation)
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(ratio)
        self.histogram_label.setPixmap(pixmap)
        self._histogram_width = self.histogram_label.width()

    def eventFilter(self, obj, event) -> bool:
        from qtpy.QtCore import QEvent

        resized = obj is self.histogram_label and event.type() == QEvent.Type.Resize
        if resized and self.histogram_label.width() != getattr(self, "_histogram_width", None):
            self._histogram_timer.start()
        return super().eventFilter(obj, event)

    def _redraw_histograms(self) -> None:
        """Draw the histograms again at the label's current width (after the dock was resized)."""
        result = self.result
        if result is not None:
            unit = result.get("unit", "")
            result = dict(result)
            result["figure"], result["histogram_image"] = render_histograms(result, **self._render_options(unit))
        self._draw_histograms(result)

    # ------------------------------------------------------------ segments
    def select_segment(self, segment: int) -> None:
        """Select the nodes of ``segment`` in the nodes layer and centre the view on them."""
        if self.result is None:
            return
        group = self.group()
        if group is None:
            return
        points = group["nodes"]
        nodes = [i for i in self.result["segment_nodes"][segment] if 0 <= i < len(points.data)]
        if not nodes:
            return
        points.selected_data = set(nodes)
        self.viewer.layers.selection.active = points
        self._centre_on(points, np.asarray(points.data)[nodes])

    def _on_segment_row(self, current, previous=None) -> None:
        if current is None or not current.isValid():
            return
        self.select_segment(self.segments_model.segment_index(current.row()))

    def _centre_on(self, layer, data_points: np.ndarray) -> None:
        world = np.array([layer.data_to_world(p) for p in data_points], dtype=float)
        centre = world.mean(axis=0)
        n_world = self.viewer.dims.ndim
        offset = n_world - len(centre)
        displayed = list(self.viewer.dims.displayed)
        for k, value in enumerate(centre):
            w = offset + k
            if w not in displayed:
                self.viewer.dims.set_point(w, float(value))
        cam = [float(centre[w - offset]) if w >= offset else float(self.viewer.dims.point[w]) for w in displayed]
        camera(self.viewer).center = tuple(cam)

    # ------------------------------------------------------------ colour
    def _fill_color_combos(self, group: dict | None) -> None:
        from .layers import _vg_meta

        for combo, role in ((self.node_color_combo, "nodes"), (self.edge_color_combo, "edges")):
            combo.blockSignals(True)
            combo.clear()
            layer = None if group is None else (group.get(role) if role == "nodes" else edges_layer_of(group))
            if layer is None:
                combo.setEnabled(False)
                combo.blockSignals(False)
                continue
            combo.setEnabled(True)
            cols = [str(c) for c in layer.features.columns]
            combo.addItems([PLAIN, *cols])
            meta = _vg_meta(layer.metadata)
            current = meta.get("color_by")
            if current is None:
                current = "confidence" if "confidence" in cols else ""
            idx = combo.findText(current) if current else 0
            combo.setCurrentIndex(max(idx, 0))
            combo.blockSignals(False)

    def update_legend(self) -> None:
        """Say what the node and edge colours of the chosen graph mean (swatches read from the layers)."""
        from .layers import _vg_meta

        group = self.group()
        parts = []
        for role, what in (("nodes", "Nodes"), ("edges", "Edges")):
            layer = None if group is None else (group.get("nodes") if role == "nodes" else edges_layer_of(group))
            if layer is None or not len(layer.data):
                continue
            column = _vg_meta(layer.metadata).get("color_by")
            if column is None:
                column = "confidence" if "confidence" in layer.features.columns else ""
            parts.append(f"{what}: {color_legend(layer, column or None)}")
        self.legend_label.setText("<br>".join(parts))

    def set_color_by(self, role: str, column: str | None) -> None:
        """Colour the chosen graph's nodes (``role="nodes"``) or edges (``"edges"``) by a feature column."""
        group = self.group()
        if group is None:
            return
        layer = group.get("nodes") if role == "nodes" else edges_layer_of(group)
        if layer is None:
            return
        if column and column not in layer.features.columns:
            raise VesselGraphError(f"'{layer.name}' has no feature {column!r}")
        set_color_by(layer, column or None)
        self.update_legend()
        combo = self.node_color_combo if role == "nodes" else self.edge_color_combo
        idx = combo.findText(column) if column else 0
        if idx >= 0 and combo.currentIndex() != idx:
            combo.blockSignals(True)
            combo.setCurrentIndex(idx)
            combo.blockSignals(False)

    def _on_color(self, role: str) -> None:
        combo = self.node_color_combo if role == "nodes" else self.edge_color_combo
        text = combo.currentText()
        try:
            self.set_color_by(role, None if text == PLAIN else text)
        except (VesselGraphError, ValueError, TypeError) as e:
            notify("error", f"Cannot colour by {text!r}: {e}")

    # ------------------------------------------------------------ export
    def _on_save_clicked(self) -> None:
        group = self.group()
        if group is None:
            notify("error", "No graph to save: choose one under 'Graph' first.")
            return
        default = str(Path.home() / f"{group['nodes'].name.removesuffix(' nodes')}.graphml")
        filters = ";;".join(FILE_FILTERS.values())
        path, chosen = QFileDialog.getSaveFileName(self, "Save graph", default, filters)
        if not path:
            return
        if not Path(path).suffix:
            fmt = next((k for k, v in FILE_FILTERS.items() if v == chosen), "graphml")
            path += f".{fmt.removesuffix('_tree')}"
        self.save_graph(path, break_cycles=chosen == FILE_FILTERS["swc_tree"] and path.lower().endswith(".swc"))

    def save_graph(self, path: str | Path, format: str | None = None, break_cycles: bool = False) -> list[str]:
        """Write the chosen graph, as it is now in the layers, to ``path`` (format from the suffix).

        Problems (no graph, unknown format, a cycle in a graph saved as SWC, ...) become an error notification
        and nothing is written; returns the written paths (empty on failure). ``break_cycles`` (SWC): write the
        spanning forest instead (``io.write_graph``); the removed edges become a warning notification.
        """
        import warnings

        from ..errors import GraphFileWarning
        from ..io import write_graph

        try:
            graph = self.current_graph()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GraphFileWarning)
                written = write_graph(graph, str(path), format=format, break_cycles=break_cycles)
        except VesselGraphError as e:
            hint = ""
            if "SWC can only store trees" in str(e):
                hint = f". Or choose '{FILE_FILTERS['swc_tree'].split(' (')[0]}' as the file type"
            notify("error", f"Nothing was saved: {e}{hint}")
            return []
        except OSError as e:
            notify("error", f"Nothing was saved: cannot write {path}: {e}")
            return []
        for w in caught:
            if issubclass(w.category, GraphFileWarning):
                notify("warning", str(w.message))
            else:  # pragma: no cover - not ours: pass it on
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        n_edges = graph.n_edges
        if break_cycles:  # the forest written: one edge fewer than nodes per connected component
            from ..graph.morphometrics import connected_components

            n_edges = min(n_edges, graph.n_nodes - connected_components(graph)[0])
        notify("info", f"Saved {graph.n_nodes:,} nodes and {n_edges:,} edges to {', '.join(written)}")
        return list(written)

    def copy_to_console(self) -> dict[str, Any] | None:
        """Push the graph into napari's console as ``vessel_graph`` (VesselGraph) and ``nx_graph`` (networkx)."""
        try:
            graph = self.current_graph()
        except VesselGraphError as e:
            notify("error", str(e))
            return None
        variables = {"vessel_graph": graph, "nx_graph": graph.to_networkx()}
        self.viewer.update_console(variables)
        notify(
            "info",
            f"In the console (>_ button, bottom left): vessel_graph ({graph.n_nodes:,} nodes, {graph.n_edges:,} edges) "
            "and nx_graph (networkx).",
        )
        return variables


def _theme_colors(viewer) -> tuple[str, str]:
    """(foreground, background) colours of the viewer's theme for the histograms."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return theme.text.as_hex(), theme.background.as_hex()
    except (KeyError, AttributeError, ValueError, ImportError):  # pragma: no cover
        return "#f0f1f2", "#262930"
