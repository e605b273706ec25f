"""Helpers shared by the napari widgets: notifications, which part of an image layer to predict on,
regions in data coordinates, graph layers of a viewer, GPU clean-up.

Only the widgets import this module (napari loads it when a widget is opened, not at start-up). It
holds no prediction or graph logic: that lives in the napari-free core
(:mod:`napari_vesselgraph.inference`, :mod:`napari_vesselgraph.graph`, :mod:`napari_vesselgraph.io`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QComboBox

from ..errors import VesselGraphError
from .layers import META_KEY, ROLE_EDGES, ROLE_EDIT, ROLE_NODES, _vg_meta, graph_to_layer_data, link_graph_layers

#: entries of the "Image axes" combo of the predict widget
AXES_AUTO = "auto"
AXES_2D = "2D"
AXES_3D = "3D"


# ---------------------------------------------------------------- notifications
def notify(level: str, message: str) -> None:
    """Show a napari notification (``level`` = ``"info"``, ``"warning"`` or ``"error"``).

    The functions are looked up when called so tests can replace them.
    """
    from napari.utils import notifications

    func = {
        "info": notifications.show_info,
        "warning": notifications.show_warning,
        "error": notifications.show_error,
    }[level]
    func(message)


# ---------------------------------------------------------------- which pixels to predict on
@dataclass
class ImagePlan:
    """What the predict widget hands to :func:`napari_vesselgraph.inference.predict` for one image layer."""

    data: Any  # the array (numpy, dask, zarr, ...) after picking the current time point etc.
    spatial_ndim: int  # 2 or 3
    spatial_axes: list[int]  # the spatial axes among the layer's axes
    spatial_shape: tuple[int, ...]
    channel: int | None  # entry of the last axis to use (None: grey or RGB)
    rgb: bool
    scale: tuple[float, ...]  # layer scale of the spatial axes (= physical pixel size)
    translate: tuple[float, ...]
    units: tuple | None  # napari units of the spatial axes (None: pixels)
    unit: str | None  # a short text for the unit (e.g. "µm"), None for pixels
    fixed: dict[str, int] = field(default_factory=dict)  # leading axes fixed at their current position
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        kind = "RGB image" if self.rgb else ("volume" if self.spatial_ndim == 3 else "2D image")
        return f"{kind} {' × '.join(str(n) for n in self.spatial_shape)}"


def _unit_text(unit) -> str | None:
    if unit is None:
        return None
    try:
        text = f"{unit:~}"
    except (TypeError, ValueError):  # not a pint unit
        text = str(unit)
    text = text.strip()
    if text in ("", "px", "pixel", "dimensionless"):
        return None
    return text


def layer_units(layer, axes) -> tuple[tuple | None, str | None]:
    """The layer's units along ``axes`` and one short text for them (None when they are pixels or differ)."""
    units = getattr(layer, "units", None)
    if units is None:
        return None, None
    try:
        sel = tuple(units[a] for a in axes)
    except (IndexError, TypeError):
        return None, None
    texts = {_unit_text(u) for u in sel}
    if len(texts) != 1 or None in texts:
        return (None, None) if texts == {None} else (sel, None)
    return sel, texts.pop()


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def layer_world_axes(viewer, layer) -> list[int]:
    """The viewer (world) axes a layer occupies: napari aligns layers on their last axes."""
    n = viewer.dims.ndim
    return list(range(n - layer.ndim, n))


def plan_image(layer, viewer, axes: str = AXES_AUTO, channel: int | None = None) -> ImagePlan:
    """Decide which array and which axes of ``layer`` to predict on.

    * RGB(A) layers are 2D colour images.
    * ``channel`` (not for RGB layers) picks an entry of the last axis: the image has its channels last.
    * The remaining axes: the last two (``axes="2D"``) or three (``"3D"``) are spatial; ``"auto"`` takes
      three when there are at least three (a volume), else two.
    * Axes before the spatial ones (time, a channel slider, ...) are fixed at the viewer's current
      position; ``plan.fixed`` says where.
    """
    if getattr(layer, "multiscale", False):
        data = layer.data[0]
        notes = ["the layer is multiscale: predicting on its full-resolution level"]
    else:
        data = layer.data
        notes = []
    shape = tuple(int(n) for n in data.shape)
    rgb = bool(getattr(layer, "rgb", False))
    n_layer = int(layer.ndim)  # axes of the layer (the RGB axis is not one of them)
    if rgb and channel is not None:
        channel = None
    n_avail = n_layer - (1 if channel is not None else 0)
    if rgb:
        if axes == AXES_3D:
            raise VesselGraphError(f"'{layer.name}' is an RGB image, which is 2D; set 'Image axes' to auto or 2D")
        d = 2
    elif axes == AXES_2D:
        d = 2
    elif axes == AXES_3D:
        d = 3
    else:
        d = 2 if n_avail <= 2 else 3
    if n_avail < d:
        raise VesselGraphError(
            f"'{layer.name}' has {n_avail} spatial ax{'i' if n_avail == 1 else 'e'}s"
            f"{' besides its channel axis' if channel is not None else ''}, but {d} are needed "
            f"(shape {shape}); {'untick channels-last or ' if channel is not None else ''}set 'Image axes' to "
            f"{'2D' if d == 3 and n_avail == 2 else 'auto'}"
        )
    if channel is not None:
        n_ch = shape[-1]
        if not 0 <= channel < n_ch:
            raise VesselGraphError(
                f"channel {channel} does not exist: the last axis of '{layer.name}' has {n_ch} entries (0 to {n_ch - 1})"
            )
    lead = n_avail - d
    spatial_axes = list(range(lead, lead + d))
    fixed: dict[str, int] = {}
    if lead:
        point = np.asarray(viewer.dims.point, dtype=float)[-n_layer:]
        pos = np.asarray(layer.world_to_data(point), dtype=float)
        idx = [int(np.clip(np.round(pos[a]), 0, shape[a] - 1)) for a in range(lead)]
        labels = list(viewer.dims.axis_labels)[-n_layer:]
        for a, i in enumerate(idx):
            fixed[str(labels[a]) if a < len(labels) else f"axis {a}"] = i
        data = data[tuple(idx)]
    scale = tuple(float(layer.scale[a]) for a in spatial_axes)
    translate = tuple(float(layer.translate[a]) for a in spatial_axes)
    units, unit = layer_units(layer, spatial_axes)
    spatial_shape = tuple(int(n) for n in data.shape[:d])
    return ImagePlan(
        data=data,
        spatial_ndim=d,
        spatial_axes=spatial_axes,
        spatial_shape=spatial_shape,
        channel=channel,
        rgb=rgb,
        scale=scale,
        translate=translate,
        units=units,
        unit=unit,
        fixed=fixed,
        notes=notes,
    )


def _world_to_spatial(viewer, layer, plan: ImagePlan, world: np.ndarray) -> np.ndarray:
    """(K, viewer ndim) world points -> (K, D) data coordinates of the plan's spatial axes."""
    n_layer = int(layer.ndim)
    out = []
    for w in np.atleast_2d(world):
        data = np.asarray(layer.world_to_data(np.asarray(w, dtype=float)[-n_layer:]), dtype=float)
        out.append(data[plan.spatial_axes])
    return np.asarray(out, dtype=float).reshape(-1, plan.spatial_ndim)


def _box_to_region(lo: np.ndarray, hi: np.ndarray, whole: np.ndarray, plan: ImagePlan, what: str, name: str):
    """Pixel ranges (one slice per spatial axis) covering ``[lo, hi]``; axes flagged ``whole`` are taken whole."""
    region = []
    for ax, n in enumerate(plan.spatial_shape):
        if whole[ax]:
            region.append(slice(0, n))
            continue
        a = max(0, math.floor(lo[ax]))
        b = min(n, math.ceil(hi[ax]) + 1)
        if b - a < 1:
            raise VesselGraphError(f"{what} does not overlap '{name}'; move it over the image or choose 'Whole image'")
        region.append(slice(a, b))
    return tuple(region)


def field_of_view_region(viewer, layer, plan: ImagePlan) -> tuple[slice, ...]:
    """The part of the image visible on the canvas (2D view): one slice per spatial axis.

    Spatial axes that are not displayed (e.g. z of a volume seen slice by slice) are taken whole.
    """
    if viewer.dims.ndisplay != 2:
        raise VesselGraphError(
            "'Current field of view' needs the 2D view: switch to 2D (the square/cube button at the bottom left) "
            "or choose 'Whole image' or a Shapes rectangle"
        )
    cam = camera(viewer)
    zoom = float(cam.zoom)
    if not zoom > 0:
        raise VesselGraphError("the camera zoom is not positive; reset the view (Ctrl+R) and try again")
    height, width = (float(v) for v in viewer.canvas.size)
    displayed = list(viewer.dims.displayed)[-2:]
    center = np.asarray(cam.center, dtype=float)[-2:]
    half = np.array([height, width]) / zoom / 2.0
    base = np.asarray(viewer.dims.point, dtype=float)
    corners = []
    for sy in (-1, 1):
        for sx in (-1, 1):
            w = base.copy()
            w[displayed[0]] = center[0] + sy * half[0]
            w[displayed[1]] = center[1] + sx * half[1]
            corners.append(w)
    pts = _world_to_spatial(viewer, layer, plan, np.asarray(corners))
    world_axes = layer_world_axes(viewer, layer)
    spatial_world = [world_axes[a] for a in plan.spatial_axes]
    whole = np.array([w not in displayed for w in spatial_world])
    return _box_to_region(pts.min(0), pts.max(0) - 1e-9, whole, plan, "the field of view", layer.name)


def shapes_region(viewer, layer, plan: ImagePlan, shapes_layer) -> tuple[slice, ...]:
    """The bounding box of the selected shapes (or of the last shape) of ``shapes_layer`` in the image's pixels.

    Axes along which the shapes are flat (a rectangle drawn on one slice of a volume) are taken whole; draw
    rectangles on two slices and select both to limit z too.
    """
    if shapes_layer is None:
        raise VesselGraphError("choose a Shapes layer for the region (or add one and draw a rectangle in it)")
    if len(shapes_layer.data) == 0:
        raise VesselGraphError(
            f"the Shapes layer '{shapes_layer.name}' is empty: draw a rectangle in it (rectangle tool) first"
        )
    sel = sorted(int(i) for i in shapes_layer.selected_data) or [len(shapes_layer.data) - 1]
    verts = np.concatenate([np.asarray(shapes_layer.data[i], dtype=float) for i in sel])
    n_world = viewer.dims.ndim
    s = int(shapes_layer.ndim)
    base = np.asarray(viewer.dims.point, dtype=float)
    world = np.repeat(base[None], len(verts), axis=0)
    for k, v in enumerate(verts):
        world[k, n_world - s :] = np.asarray(shapes_layer.data_to_world(v), dtype=float)
    pts = _world_to_spatial(viewer, layer, plan, world)
    lo, hi = pts.min(0), pts.max(0)
    whole = (hi - lo) < 1.0
    if whole.all():
        raise VesselGraphError(f"the selected shape in '{shapes_layer.name}' has no area; draw a rectangle")
    return _box_to_region(lo, hi, whole, plan, f"the shape in '{shapes_layer.name}'", layer.name)


# ---------------------------------------------------------------- memory
def add_run_controls(outer, label: str, on_run, on_cancel):
    """Add the *run* / *Cancel* buttons, a progress bar and a status line to a layout.

    Returns ``(run_button, cancel_button, progress_bar, status_label)``; Cancel starts disabled."""
    from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton

    row = QHBoxLayout()
    run_button = QPushButton(label)
    run_button.clicked.connect(on_run)
    cancel_button = QPushButton("Cancel")
    cancel_button.setEnabled(False)
    cancel_button.clicked.connect(on_cancel)
    row.addWidget(run_button)
    row.addWidget(cancel_button)
    outer.addLayout(row)
    progress_bar = QProgressBar()
    progress_bar.setRange(0, 1)
    progress_bar.setValue(0)
    outer.addWidget(progress_bar)
    status_label = QLabel("")
    status_label.setWordWrap(True)
    outer.addWidget(status_label)
    return run_button, cancel_button, progress_bar, status_label


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA/MPS out-of-memory error (torch.cuda.OutOfMemoryError or a RuntimeError saying so)."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_gpu_memory() -> None:
    """Give cached GPU memory back (only when torch is already imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    import gc

    gc.collect()
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        mps = getattr(torch, "mps", None)
        backend = getattr(torch.backends, "mps", None)
        if mps is not None and backend is not None and backend.is_available():
            mps.empty_cache()
    except (RuntimeError, AttributeError):  # pragma: no cover - best effort
        pass


# ---------------------------------------------------------------- graph layers
def graph_groups(layers) -> list[dict]:
    """The graphs shown in ``layers``: ``[{"graph_id", "name", "nodes", "edges", "edit_edges"}]`` in layer order,
    only graphs with a nodes layer."""
    groups: dict[str, dict] = {}
    for layer in layers:
        meta = _vg_meta(getattr(layer, "metadata", None))
        gid, role = meta.get("graph_id"), meta.get("role")
        if not gid or role not in (ROLE_NODES, ROLE_EDGES, ROLE_EDIT):
            continue
        g = groups.setdefault(gid, {"graph_id": gid, ROLE_NODES: None, ROLE_EDGES: None, ROLE_EDIT: None})
        if g[role] is None:
            g[role] = layer
    out = []
    for g in groups.values():
        if g[ROLE_NODES] is not None:
            g["name"] = g[ROLE_NODES].name
            out.append(g)
    return out


def edges_layer_of(group: dict):
    """The layer that holds a graph's edges: the editable Shapes layer when there is one, else the Vectors."""
    return group.get(ROLE_EDIT) or group.get(ROLE_EDGES)


def add_graph_layers(
    viewer,
    graph,
    name: str,
    scale,
    translate,
    units=None,
    color_by: str | None = "confidence",
    edge_color: str | None = None,
) -> dict[str, Any]:
    """Add the Points + Vectors layers of ``graph`` (with the image's scale, translate and units).

    ``edge_color``: draw the edges in this one colour (e.g. :func:`contrast_color` of the image) instead of by
    ``color_by``; the inspector's *Colour by* can still colour them by a feature. Returns ``{role: layer}``.
    """
    from napari.layers import Layer

    out: dict[str, Any] = {}
    for data, kwargs, ltype in graph_to_layer_data(
        graph, name=name, scale=scale, translate=translate, color_by=color_by
    ):
        if units is not None:
            kwargs["units"] = units
        if edge_color and ltype in ("vectors", "shapes"):
            for key in ("edge_colormap", "edge_contrast_limits"):
                kwargs.pop(key, None)
            kwargs["edge_color"] = edge_color
            meta = kwargs["metadata"][META_KEY]
            meta.update(color_by="", plain_color=edge_color)
        layer = Layer.create(data, kwargs, ltype)
        viewer.add_layer(layer)
        out[kwargs["metadata"][META_KEY]["role"]] = layer
    if ROLE_NODES in out:
        link_graph_layers(out[ROLE_NODES])
    return out


def _prefix(layer_or_type) -> str:
    name = layer_or_type if isinstance(layer_or_type, str) else type(layer_or_type).__name__
    return "face_" if name.lower() == "points" else "edge_"


def color_kwargs(layer_type: str, features, column: str | None, plain: str | None = None) -> dict:
    """Colour settings for a graph layer coloured by the feature ``column`` (numeric: viridis over its range,
    otherwise one colour per value); the plain graph colour (``plain``, else the default one) when ``column``
    is empty or missing."""
    from .layers import EDGE_COLOR, NODE_COLOR, _color_kwargs

    prefix = _prefix(layer_type)
    if column and features is not None and column in features.columns:
        kw = _color_kwargs(np.asarray(features[column].to_numpy()), column, prefix)
        if kw:
            return kw
    return {f"{prefix}color": plain or (NODE_COLOR if prefix == "face_" else EDGE_COLOR)}


def apply_color(layer, kwargs: dict) -> None:
    """Apply ``{prefix}color/colormap/contrast_limits`` entries of layer kwargs to an existing layer."""
    prefix = _prefix(layer)
    color = kwargs.get(f"{prefix}color")
    if color is None:
        return
    import warnings

    from .layers import EDGE_COLOR, NODE_COLOR

    features = getattr(layer, "features", None)
    if isinstance(color, str) and features is not None and color in features.columns:
        # back to direct colours first, so that the mode napari picks for the column is not the previous one's
        setattr(layer, f"{prefix}color", NODE_COLOR if prefix == "face_" else EDGE_COLOR)
    with warnings.catch_warnings():
        # integer columns (degree, ...) with few values: napari guesses categories; the colormap is set below
        warnings.filterwarnings("ignore", message=".*looks like categorical data.*")
        setattr(layer, f"{prefix}color", color)
    if f"{prefix}colormap" in kwargs:
        setattr(layer, f"{prefix}colormap", kwargs[f"{prefix}colormap"])
        setattr(layer, f"{prefix}color_mode", "colormap")
        if f"{prefix}contrast_limits" in kwargs:
            setattr(layer, f"{prefix}contrast_limits", kwargs[f"{prefix}contrast_limits"])


def set_color_by(layer, column: str | None) -> None:
    """Colour a graph layer by one of its feature columns (``None``/``""``: plain) and remember the choice in
    its metadata, so that re-thresholding keeps it."""
    plain = _vg_meta(layer.metadata).get("plain_color")
    apply_color(layer, color_kwargs(type(layer).__name__, layer.features, column, plain))
    meta = dict(_vg_meta(layer.metadata))
    if meta:
        meta["color_by"] = column or ""
        layer.metadata = {**dict(layer.metadata), META_KEY: meta}
    layer.refresh()


def update_graph_layers(layers: dict[str, Any], graph, name: str, scale, translate) -> None:
    """Show ``graph`` in existing graph layers (``{role: layer}``) in place.

    The layers keep their graph id, their names and whatever the user changed about them except the data;
    colours follow the column recorded in their metadata (``confidence`` unless the inspector changed it).
    """
    for data, kwargs, ltype in graph_to_layer_data(graph, name=name, scale=scale, translate=translate, color_by=None):
        role = kwargs["metadata"][META_KEY]["role"]
        layer = layers.get(role)
        if layer is None:
            continue
        old = _vg_meta(layer.metadata)
        meta = dict(kwargs["metadata"][META_KEY])
        for key in ("graph_id", "name", "color_by", "plain_color"):
            if key in old:
                meta[key] = old[key]
        layer.data = data
        layer.features = kwargs["features"]
        layer.feature_defaults = kwargs["feature_defaults"]
        if ltype == "points":
            layer.size = kwargs["size"]
        else:
            layer.edge_width = kwargs["edge_width"]
        apply_color(
            layer, color_kwargs(ltype, layer.features, meta.get("color_by", "confidence"), meta.get("plain_color"))
        )
        layer.metadata = {**dict(layer.metadata), META_KEY: meta}
        layer.refresh()


# ---------------------------------------------------------------- Qt helpers
class ProgressRelay(QObject):
    """Carries ``progress(done, total, info)`` calls from a worker thread to the GUI thread (queued signal)."""

    progressed = Signal(int, int, object)

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        self.progressed.emit(int(done), int(total), dict(info or {}))


class LayerCombo(QComboBox):
    """A combo box listing the viewer's layers of one type (by name); follows additions, removals and renames."""

    def __init__(self, viewer, layer_type, parent=None, allow_none: str | None = None, accept=None):
        super().__init__(parent)
        self._viewer = viewer
        self._type = layer_type
        self._none = allow_none
        self._accept = accept
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.moved.connect(self.refresh)
        for layer in viewer.layers:
            layer.events.name.connect(self.refresh)
        self.refresh()

    def _on_inserted(self, event=None) -> None:
        layer = getattr(event, "value", None)
        if layer is not None:
            layer.events.name.connect(self.refresh)
        self.refresh()

    def layers(self) -> list:
        out = [lyr for lyr in self._viewer.layers if isinstance(lyr, self._type)]
        if self._accept is not None:
            out = [lyr for lyr in out if self._accept(lyr)]
        return out

    def refresh(self, event=None) -> None:
        current = self.currentText()
        names = [lyr.name for lyr in self.layers()]
        if self._none is not None:
            names = [self._none, *names]
        if names == [self.itemText(i) for i in range(self.count())]:
            return
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentIndex(names.index(current))
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        name = self.currentText()
        for lyr in self.layers():
            if lyr.name == name:
                return lyr
        return None

    def set_layer(self, layer) -> None:
        idx = self.findText(layer.name)
        if idx >= 0:
            self.setCurrentIndex(idx)


# ---------------------------------------------------------------- look: theme, scrolling, sections, colours
def theme_colors(viewer) -> dict[str, str]:
    """Hex colours of the viewer's napari theme: ``text``, ``background``, ``foreground``, ``warning``, ``error``,
    ``canvas`` (the dark theme's when the theme cannot be read)."""
    out = {"text": "#f0f1f2", "background": "#262930", "foreground": "#414851", "warning": "#e3b617",
           "error": "#99121f", "canvas": "#000000"}  # fmt: skip
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        for key in out:
            value = getattr(theme, key, None)
            if value is not None:
                out[key] = value.as_hex() if hasattr(value, "as_hex") else str(value)
    except (KeyError, AttributeError, ValueError, ImportError):  # pragma: no cover
        pass
    return out


def _scroll_area_class():
    from qtpy.QtWidgets import QScrollArea

    class VerticalScrollArea(QScrollArea):
        """Scrolls vertically only: asks for the width its contents need and for little height."""

        def _extra(self) -> int:
            return self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

        def minimumSizeHint(self):
            hint = super().minimumSizeHint()
            body = self.widget()
            if body is not None:
                hint.setWidth(max(hint.width(), body.minimumSizeHint().width() + self._extra()))
            return hint

        def sizeHint(self):
            hint = super().sizeHint()
            body = self.widget()
            if body is not None:
                hint.setWidth(max(hint.width(), body.sizeHint().width() + self._extra()))
                hint.setHeight(min(max(hint.height(), body.sizeHint().height()), 600))
            return hint

        # Word-wrapped labels need more height when the dock gets narrower; a scroll area does not ask its
        # contents for their height at the new width by itself, so the labels were cut off.
        def setWidget(self, widget) -> None:
            super().setWidget(widget)
            widget.installEventFilter(self)

        def resizeEvent(self, event) -> None:
            super().resizeEvent(event)
            self._fit_height()

        def eventFilter(self, obj, event) -> bool:
            from qtpy.QtCore import QEvent, QTimer

            if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
                QTimer.singleShot(0, self._fit_height)
            return super().eventFilter(obj, event)

        def _fit_height(self) -> None:
            from qtpy.QtWidgets import QLabel

            body = self.widget()
            if body is None:
                return
            for label in body.findChildren(QLabel):  # form layouts do not always grow a wrapped line on their own
                if label.wordWrap() and label.isVisible() and label.width() > 0:
                    need = label.heightForWidth(label.width())
                    if need > 0 and need != label.minimumHeight():
                        label.setMinimumHeight(need)
            layout = body.layout()
            if layout is not None and layout.hasHeightForWidth():
                height = layout.totalHeightForWidth(self.viewport().width())
                if height > 0 and height != body.minimumHeight():
                    body.setMinimumHeight(height)

    return VerticalScrollArea


def scroll_body(widget, min_height: int = 120):
    """Give ``widget`` a vertical scroll area and return the layout to fill: the widget then asks for little
    height, so several docked widgets fit a laptop screen (they scroll instead of growing the window). Call
    :func:`compact_combos` once the widget is built."""
    from qtpy.QtWidgets import QFrame, QVBoxLayout, QWidget

    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = _scroll_area_class()(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumHeight(min_height)
    body = QWidget()
    area.setWidget(body)
    outer.addWidget(area)
    widget.scroll_area = area
    return QVBoxLayout(body)


def compact_combos(widget, chars: int = 14) -> None:
    """Let the combo boxes of ``widget`` be narrower than their longest entry (long checkpoint and layer names
    would otherwise set the dock's width); the full text is in the drop-down list."""
    from qtpy.QtWidgets import QComboBox

    for combo in widget.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(chars)


def collapsible(title: str, layout, expanded: bool = False):
    """A collapsible section (superqt ``QCollapsible``) added to ``layout``; returns ``(section, form)`` where
    ``form`` is the QFormLayout to fill. Closed by default: advanced options stay out of the way."""
    from qtpy.QtWidgets import QFormLayout, QWidget
    from superqt import QCollapsible

    section = QCollapsible(title, expandedIcon="▾", collapsedIcon="▸")
    section.setDuration(0)
    inner = QWidget()
    form = QFormLayout(inner)
    form.setContentsMargins(0, 0, 0, 0)
    section.addWidget(inner)
    if expanded:
        section.expand(animate=False)
    else:
        section.collapse(animate=False)
    if isinstance(layout, QFormLayout):
        layout.addRow(section)
    else:
        layout.addWidget(section)
    return section, form


def warning_label(viewer):
    """A hidden, word-wrapped label in the theme's warning colour, for a mismatch the user should see."""
    from qtpy.QtWidgets import QLabel

    label = QLabel("")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setStyleSheet(f"color: {theme_colors(viewer)['warning']};")
    label.setVisible(False)
    return label


def show_warnings(label, lines: list[str]) -> None:
    label.setText("\n".join(f"⚠ {line}" for line in lines))
    label.setVisible(bool(lines))


#: plain edge colours to choose from: bright and saturated, and none of them yellow, the nodes' colour
EDGE_CANDIDATES = ("cyan", "lime", "magenta", "orange", "white")


def displayed_pixels(layer, data=None, max_side: int = 256) -> np.ndarray | None:
    """A sample of an image layer's pixels as shown (contrast limits and colormap applied), ``(K, 3)`` RGB in
    [0, 1]; only a central crop is read from a lazy array. None when it cannot be read."""
    from ..checkpoints.suits import _central, _is_lazy, _read

    arr = layer.data[0] if getattr(layer, "multiscale", False) else layer.data if data is None else data
    rgb = bool(getattr(layer, "rgb", False))
    shape = tuple(int(n) for n in arr.shape)
    spatial = shape[:-1] if rgb else shape
    if len(spatial) < 2:
        return None
    lead = tuple(n // 2 for n in spatial[:-2])
    try:
        if _is_lazy(arr):
            px = _read(arr, lead + _central(spatial[-2:], (max_side, max_side)))
        else:
            step = max(1, int(np.ceil(max(spatial[-2:]) / max_side)))
            px = np.asarray(arr[lead + (slice(None, None, step), slice(None, None, step))])
    except Exception:  # noqa: BLE001 - an unreadable region: no sample
        return None
    px = px.astype(np.float32)
    lo, hi = (float(v) for v in getattr(layer, "contrast_limits", (float(px.min()), float(px.max()))))
    norm = np.clip((px - lo) / max(hi - lo, 1e-12), 0, 1)
    if rgb:
        return norm[..., :3].reshape(-1, 3)
    try:
        colors = np.asarray(layer.colormap.map(norm.ravel()))[:, :3]
    except (AttributeError, ValueError):
        colors = np.repeat(norm.reshape(-1, 1), 3, axis=1)
    return colors


def contrast_color(pixels: np.ndarray | None, candidates=EDGE_CANDIDATES) -> str:
    """The candidate colour that stands out most against ``pixels`` (``(K, 3)`` RGB in [0, 1]): the largest 10th
    percentile of a CIELAB distance that counts lightness twice (a colour must differ in brightness as well as
    in hue to read as a thin line). A black surround is left out. Cyan without pixels."""
    if pixels is None or len(pixels) == 0:
        return candidates[0]
    from matplotlib.colors import to_rgb
    from skimage.color import rgb2lab

    px = np.asarray(pixels, dtype=float).reshape(-1, 3)
    level = px.max(axis=1)
    keep = level > 0.04 * max(float(level.max()), 1e-12)
    if keep.sum() >= 16:
        px = px[keep]
    if len(px) > 20_000:
        px = px[:: int(np.ceil(len(px) / 20_000))]
    lab = rgb2lab(px[None])[0]
    best, best_score = candidates[0], -1.0
    for name in candidates:
        c = rgb2lab(np.asarray([[to_rgb(name)]], dtype=float))[0, 0]
        d = lab - c
        d[:, 0] *= 2.0
        score = float(np.percentile(np.linalg.norm(d, axis=1), 10))
        if score > best_score:
            best, best_score = name, score
    return best


def color_legend(layer, column: str | None, max_items: int = 8) -> str:
    """Rich text saying what a graph layer's colours mean: one swatch per value of ``column`` (up to
    ``max_items`` values), else swatches at its low, middle and high values; the plain colour otherwise.
    Read from the colours the layer really draws."""
    from html import escape

    from matplotlib.colors import to_hex

    prefix = _prefix(layer)
    colors = np.asarray(getattr(layer, f"{prefix}color", []))
    feats = getattr(layer, "features", None)
    n = len(colors)

    def swatch(rgba) -> str:
        return f'<span style="color:{to_hex(np.asarray(rgba)[:3])}">■</span>'

    if n == 0:
        return ""
    if not column or feats is None or column not in feats.columns or len(feats) != n:
        return f"{swatch(colors[0])} one colour"
    values = feats[column].to_numpy()
    try:
        numeric = values.dtype.kind in "fiub"
    except AttributeError:  # pragma: no cover
        numeric = False
    uniq = np.unique(values[~np.isnan(values.astype(float))] if numeric else values.astype(str))
    parts = []
    if len(uniq) <= max_items:
        for u in uniq:
            idx = int(np.flatnonzero((values == u) if numeric else (values.astype(str) == u))[0])
            label = f"{u:g}" if numeric and isinstance(u, (float, np.floating)) else str(u)
            parts.append(f"{swatch(colors[idx])} {escape(label)}")
    elif numeric:
        v = values.astype(float)
        finite = np.flatnonzero(np.isfinite(v))
        order = finite[np.argsort(v[finite], kind="stable")]
        for q, word in ((0, "low"), (len(order) // 2, "middle"), (len(order) - 1, "high")):
            i = int(order[q])
            parts.append(f"{swatch(colors[i])} {v[i]:.3g}" + (f" ({word})" if word != "middle" else ""))
    else:
        return f"{len(uniq)} values of {escape(column)}, one colour each"
    return f"{escape(column)}: " + " &nbsp;".join(parts)
