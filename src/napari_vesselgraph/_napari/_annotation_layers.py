"""The layers the *Annotate patches* widget draws and keeps in step with its project store.

:class:`PatchLayersMixin` holds the part of :class:`~napari_vesselgraph._napari._annotation_widget.AnnotationWidget`
that owns layers: per patch, the editable ``"<id> nodes"`` (Points) and ``"<id> edit edges"`` (Shapes lines)
layers, their debounced saves (:data:`SAVE_DELAY_MS`) and the ``C``/``X`` keys; and the ``"<image> patches"``
Shapes layer with one rectangle per patch box. It expects the widget's ``viewer``, ``store``, ``plan``,
``image_layer`` and status/list methods.
"""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QTimer

from ..errors import VesselGraphError
from ._widget_utils import notify
from .layers import (
    EDIT_COLOR,
    META_KEY,
    ROLE_EDGES,
    ROLE_EDIT,
    ROLE_NODES,
    _vg_meta,
    graph_to_layer_data,
    layers_to_graph,
    link_graph_layers,
)

#: milliseconds between the last change of a patch's layers and its save
SAVE_DELAY_MS = 250
PATCH_COLOR = "orange"
KEY_CONNECT = "c"
KEY_DISCONNECT = "x"
ANNOTATION_KEY = "annotation"


def _rectangles(origin, size) -> list[np.ndarray]:
    """The rectangles that draw a patch box in a Shapes layer (image pixels): one in 2D, one per slice in 3D."""
    o = np.asarray(origin, float)
    s = np.asarray(size, float)
    lo, hi = o[-2:] - 0.5, o[-2:] + s[-2:] - 0.5
    rect = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]], [hi[0], lo[1]]])
    if len(o) == 2:
        return [rect]
    return [np.concatenate([np.full((4, 1), float(z)), rect], axis=1) for z in range(int(o[0]), int(o[0] + s[0]))]


def _pad(arr: np.ndarray, k: int) -> np.ndarray:
    from .layers import _pad as pad

    return pad(np.asarray(arr), k)


def _set_rectangles(layer, shapes, features: dict, color: str) -> None:
    """Replace the rectangles of a box layer (see ``PatchLayersMixin._new_box_layer``) and their features."""
    layer.selected_data = set()
    layer.data = [(s, "rectangle") for s in shapes]
    layer.features = features
    layer.edge_color = color
    layer.face_color = "transparent"
    layer.refresh_text()


class PatchLayersMixin:
    """Per-patch graph layers and the patches (boxes) layer of the Annotate patches widget."""

    # ------------------------------------------------------------ patch layers
    def _layer_kwargs(self, pid: str, graph_img):
        """Layer data tuples (edit Shapes, Points) of a patch graph given in image pixels."""
        side = float(max(self.store.size(pid)))
        tuples = graph_to_layer_data(
            graph_img,
            name=pid,
            scale=self.plan.scale,
            translate=self.plan.translate,
            editable=True,
            color_by=None,
            node_size=max(2.0, side / 16.0),  # a size that fits the patch, not 2 x radius (which hides the image)
            edge_width=max(1.0, side / 48.0),
        )
        out = {}
        for data, kwargs, ltype in tuples:
            meta = kwargs["metadata"][META_KEY]
            if meta["role"] == ROLE_EDGES:
                continue
            meta[ANNOTATION_KEY] = {"patch": pid, "folder": str(self.store.folder)}
            out[meta["role"]] = (data, kwargs, ltype)
        return out

    def _show_patch_layers(self, pid: str) -> None:
        from napari.layers import Layer

        if pid in self.patch_layers:
            self._remove_patch_layers(pid)
        graph = self.store.to_image(pid, self.store.load_graph(pid))
        tuples = self._layer_kwargs(pid, graph)
        layers = {}
        self._syncing += 1
        try:
            for role in (ROLE_EDIT, ROLE_NODES):
                data, kwargs, ltype = tuples[role]
                if ltype == "shapes":
                    kwargs["edge_color"] = EDIT_COLOR
                layer = Layer.create(data, kwargs, ltype)
                self.viewer.add_layer(layer)
                layers[role] = layer
        finally:
            self._syncing -= 1
        nodes, edges = layers[ROLE_NODES], layers[ROLE_EDIT]
        link_graph_layers(nodes)
        nodes.events.data.connect(lambda event, pid=pid: self._on_patch_data(pid, event))
        edges.events.data.connect(lambda event, pid=pid: self._on_patch_data(pid, event))
        nodes.bind_key(KEY_CONNECT, lambda layer, pid=pid: self.connect_selected(pid), overwrite=True)
        nodes.bind_key(KEY_DISCONNECT, lambda layer, pid=pid: self.disconnect_selected(pid), overwrite=True)
        self.patch_layers[pid] = layers

    def _remove_patch_layers(self, pid: str) -> None:
        layers = self.patch_layers.pop(pid, {})
        self._syncing += 1
        try:
            for layer in layers.values():
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        finally:
            self._syncing -= 1

    def _on_layer_removing(self, event) -> None:
        """A patch layer the user removes: save the patch first; the patch stays in the project."""
        if self._syncing:
            return
        layer = self.viewer.layers[event.index] if isinstance(getattr(event, "index", None), int) else None
        if layer is None:
            return
        if layer is self.boxes_layer:
            self.boxes_layer = None
            return
        if layer is self.proposals_layer:
            self.proposals_layer = None
            self.proposals = []
            self._update_accept_enabled()
            return
        for pid, layers in list(self.patch_layers.items()):
            if any(lyr is layer for lyr in layers.values()):
                self.save_patch(pid)
                self.patch_layers.pop(pid, None)
                self._cancel_timer(pid)
                self._status(
                    f"{pid}'s layers were removed; the patch stays in the project (double-click it to show it)."
                )

    def _on_patch_data(self, pid: str, event) -> None:
        if self._syncing:
            return
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing"):  # adding / removing / changing: the change is not done yet
            return
        timer = self._timers.get(pid)
        if timer is None:
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(SAVE_DELAY_MS)
            timer.timeout.connect(lambda pid=pid: self.save_patch(pid))
            self._timers[pid] = timer
        timer.start()

    def _cancel_timer(self, pid: str) -> None:
        timer = self._timers.pop(pid, None)
        if timer is not None:
            timer.stop()
            timer.deleteLater()

    def pending(self) -> list[str]:
        """Patches with a save waiting for its timer."""
        return [pid for pid, t in self._timers.items() if t.isActive()]

    def flush(self) -> None:
        """Save every patch with a change waiting to be saved."""
        for pid in self.pending():
            self._timers[pid].stop()
            self.save_patch(pid)

    def current_graph(self, pid: str):
        """The graph a patch's layers show now, in image pixels."""
        layers = self.patch_layers[pid]
        return layers_to_graph(layers[ROLE_NODES], layers[ROLE_EDIT])

    def save_patch(self, pid: str) -> bool:
        """Write a patch's graph from its layers to the store, then redraw its lines on the nodes they snapped to."""
        if self.store is None or pid not in self.patch_layers or pid not in self.store:
            return False
        layers = self.patch_layers[pid]
        if any(lyr not in self.viewer.layers for lyr in layers.values()):
            return False
        timer = self._timers.get(pid)
        if timer is not None:
            timer.stop()
        try:
            graph = self.current_graph(pid)
        except VesselGraphError as e:
            notify("error", f"Could not read the edits of {pid}: {e}")
            return False
        self._commit(pid, graph)
        return True

    def set_patch_graph(self, pid: str, graph_img) -> None:
        """Replace a patch's graph (given in the image's pixels), save it and show it: what a script does to import
        corrections made elsewhere."""
        if pid not in self.patch_layers:
            self._show_patch_layers(pid)
        self._cancel_timer(pid)
        self._commit(pid, graph_img)

    def _commit(self, pid: str, graph_img) -> None:
        stored = self.store.update_graph(pid, self.store.from_image(pid, graph_img))
        self.last_saved[pid] = time.time()
        self._counts[pid] = (stored.n_nodes, stored.n_edges)
        self._sync_layers(pid, self.store.to_image(pid, stored))
        self._refresh_list(select=self.current_patch())
        self._status(f"Saved {pid} ({stored.n_nodes} nodes, {stored.n_edges} edges) at {time.strftime('%H:%M:%S')}.")

    def _sync_layers(self, pid: str, graph_img) -> None:
        """Make a patch's layers show exactly the stored graph: node ids = rows, one line per edge on its nodes."""
        layers = self.patch_layers.get(pid)
        if not layers:
            return
        nodes, edges = layers[ROLE_NODES], layers[ROLE_EDIT]
        tuples = self._layer_kwargs(pid, graph_img)
        p_data, p_kwargs, _ = tuples[ROLE_NODES]
        s_data, s_kwargs, _ = tuples[ROLE_EDIT]
        gid = _vg_meta(nodes.metadata).get("graph_id")
        self._syncing += 1
        try:
            if len(nodes.data) != len(p_data) or not np.allclose(np.asarray(nodes.data), p_data, atol=1e-6):
                nodes.selected_data = set()
                nodes.data = p_data
                nodes.features = p_kwargs["features"]
                nodes.size = p_kwargs["size"]
            else:
                id_col = _vg_meta(nodes.metadata).get("id_column", "node_id")
                ids = np.arange(len(p_data), dtype=np.int64)
                if id_col not in nodes.features.columns or not np.array_equal(nodes.features[id_col].to_numpy(), ids):
                    nodes.features[id_col] = ids
            nodes.feature_defaults = p_kwargs["feature_defaults"]
            pmeta = dict(p_kwargs["metadata"][META_KEY], graph_id=gid)
            nodes.metadata = {**dict(nodes.metadata), META_KEY: pmeta}

            current = [np.asarray(v, float) for v in edges.data]
            same = len(current) == len(s_data) and all(
                c.shape == np.shape(n) and np.allclose(c, n, atol=1e-6) for c, n in zip(current, s_data)
            )
            smeta = dict(s_kwargs["metadata"][META_KEY], graph_id=gid)
            if not same or list(edges.shape_type) != ["line"] * len(s_data):
                edges.selected_data = set()
                edges.data = [(np.asarray(v), "line") for v in s_data]
                edges.edge_width = s_kwargs["edge_width"]
                edges.edge_color = EDIT_COLOR
            edges.features = s_kwargs["features"]
            edges.feature_defaults = s_kwargs["feature_defaults"]
            edges.metadata = {**dict(edges.metadata), META_KEY: smeta}
        finally:
            self._syncing -= 1

    # ------------------------------------------------------------ key bindings
    def _selected_rows(self, pid: str) -> list[int]:
        nodes = self.patch_layers[pid][ROLE_NODES]
        return sorted(int(i) for i in nodes.selected_data)

    def connect_selected(self, pid: str) -> bool:
        """Add an edge between the two selected nodes of a patch (key ``C``) and save."""
        if pid not in self.patch_layers:
            return False
        sel = self._selected_rows(pid)
        if len(sel) != 2:
            self._status(f"Select exactly two nodes to connect (selected: {len(sel)}).")
            notify("info", f"Select exactly two nodes to connect them (you selected {len(sel)}).")
            return False
        self.flush()
        graph = self.current_graph(pid)
        a, b = sel
        if any({int(u), int(v)} == {a, b} for u, v in graph.edges):
            self._status("These two nodes are already connected.")
            return False
        graph.edges = np.concatenate([graph.edges, [[a, b]]]).astype(np.int64)
        for k, v in list(graph.edge_attrs.items()):
            graph.edge_attrs[k] = _pad(v, 1)
        self._commit(pid, graph)
        return True

    def disconnect_selected(self, pid: str) -> bool:
        """Remove every edge whose two nodes are selected (key ``X``) and save."""
        if pid not in self.patch_layers:
            return False
        sel = set(self._selected_rows(pid))
        if len(sel) < 2:
            self._status("Select two or more nodes to remove the edges between them.")
            notify("info", "Select two or more nodes to remove the edges between them.")
            return False
        self.flush()
        graph = self.current_graph(pid)
        keep = np.array([not (int(u) in sel and int(v) in sel) for u, v in graph.edges], dtype=bool)
        if keep.all():
            self._status("No edges between the selected nodes.")
            return False
        graph.edges = graph.edges[keep]
        graph.edge_attrs = {k: v[keep] for k, v in graph.edge_attrs.items()}
        self._commit(pid, graph)
        return True

    # ------------------------------------------------------------ the patches (boxes) layer
    def _ensure_boxes_layer(self) -> None:
        if self.boxes_layer is not None and self.boxes_layer in self.viewer.layers:
            return
        layer = self._new_box_layer(
            "patches", PATCH_COLOR, {"patch_id": np.array([], dtype=object)},
            {"string": "{patch_id}", "anchor": "upper_left", "color": PATCH_COLOR, "size": 10},
        )  # fmt: skip
        self._syncing += 1
        try:
            self.viewer.add_layer(layer)
        finally:
            self._syncing -= 1
        layer.events.data.connect(self._on_boxes_data)
        self.boxes_layer = layer

    def _new_box_layer(self, role: str, color: str, features: dict, text: dict, shapes=()):
        """A Shapes layer of patch boxes (``role``: ``"patches"`` or ``"proposals"``) on the image, with
        rectangles ``shapes`` (image pixels)."""
        from napari.layers import Shapes

        return Shapes(
            [(s, "rectangle") for s in shapes] if len(shapes) else None,
            ndim=self.plan.spatial_ndim,
            name=f"{self.image_layer.name} {role}",
            scale=self.plan.scale,
            translate=self.plan.translate,
            edge_color=color,
            face_color="transparent",
            edge_width=max(1.0, 0.02 * self.size_spin.value()),
            features=features,
            text=text,
            metadata={META_KEY: {ANNOTATION_KEY: {"role": role, "folder": str(self.store.folder)}}},
        )

    def _box_shapes(self) -> tuple[list[np.ndarray], list[str]]:
        shapes, ids = [], []
        for e in self.store.patches():
            rects = _rectangles(e["origin"], e["size"])  # a box: one rectangle per slice
            shapes += rects
            ids += [e["id"]] * len(rects)
        return shapes, ids

    def _render_boxes(self) -> None:
        self._ensure_boxes_layer()
        layer = self.boxes_layer
        shapes, ids = self._box_shapes()
        self._syncing += 1
        try:
            _set_rectangles(layer, shapes, {"patch_id": np.array(ids, dtype=object)}, PATCH_COLOR)
        finally:
            self._syncing -= 1
        self._expected_boxes = dict(zip(*np.unique(np.array(ids, dtype=object), return_counts=True))) if ids else {}

    def _on_boxes_data(self, event) -> None:
        if self._syncing:
            return
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing") or self._boxes_pending:
            return
        self._boxes_pending = True
        QTimer.singleShot(0, lambda: self._handle_boxes_change(action, tuple(getattr(event, "data_indices", ()) or ())))

    def _handle_boxes_change(self, action: str, indices: tuple) -> None:
        """Turn what the user did to the patches layer into store changes, then redraw the layer from the store."""
        self._boxes_pending = False
        layer = self.boxes_layer
        if self.store is None or layer is None or layer not in self.viewer.layers:
            return
        try:
            if action.endswith("added"):
                new = [i for i in indices if 0 <= i < len(layer.data)] or [len(layer.data) - 1]
                centres = []
                for i in new:
                    v = np.asarray(layer.data[i], float)
                    centres.append((v.min(0) + v.max(0)) / 2.0)
                self._render_boxes()
                for c in centres:
                    self.add_patch(center=c)
                return
            if action.endswith("removed"):
                present = list(layer.features["patch_id"]) if "patch_id" in layer.features.columns else []
                counts = {pid: present.count(pid) for pid in set(present)}
                gone = [pid for pid, n in self._expected_boxes.items() if counts.get(pid, 0) < n]
                self._render_boxes()  # put the rectangles back; deleting the patch removes them again
                for pid in gone:
                    self.delete_patch(pid)
                return
            if action.endswith("changed"):
                self._render_boxes()
                self._status("Patches stay where they were added: delete a patch and add it again to move it.")
        except VesselGraphError as e:
            notify("error", str(e))
            self._render_boxes()
