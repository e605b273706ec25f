"""What the plugin's widgets of one viewer share: a small evented state object per viewer.

napari hands each dock widget its own ``PublicOnlyProxy`` of the viewer, so two widgets of the same viewer
cannot recognise each other by ``widget.viewer is viewer``. :func:`state_for` unwraps the proxy and keys the
state on the real viewer. The widgets never look for one another: they read and set the state and connect to
its signals.

* ``checkpoint`` / ``checkpoint_changed``: the checkpoint entry chosen in *Predict graph* (the *Annotate
  patches* widget takes its patch size from it);
* ``project`` / ``project_image`` / ``project_changed``: the annotation project open in *Annotate patches*
  (the *Fine-tune* widget fills in its folder and picks a base checkpoint for its image);
* ``checkpoints_changed(path)``: a checkpoint was written or added (*Fine-tune* emits it; every widget with a
  checkpoint list refreshes it, and *Predict graph* selects the new one);
* ``flush_requested``: save edits waiting for their timer now (*Fine-tune* emits it before reading the folder).

Slots are connected with :meth:`ViewerState.connect`, which holds the widget weakly and drops the connection
when the widget (or its Qt object) is gone.
"""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal


def real_viewer(viewer):
    """The viewer behind napari's ``PublicOnlyProxy`` (or the object itself)."""
    seen = 0
    while seen < 8:
        try:
            inner = object.__getattribute__(viewer, "__wrapped__")
        except AttributeError:
            return viewer
        if inner is viewer:
            return viewer
        viewer = inner
        seen += 1
    return viewer


def _qt_alive(obj) -> bool:
    """False when ``obj`` is a Qt object whose C++ side was deleted."""
    try:
        from qtpy import sip  # PyQt

        return not sip.isdeleted(obj)
    except (ImportError, TypeError, AttributeError):
        pass
    try:
        import shiboken6  # PySide6

        return shiboken6.isValid(obj)
    except (ImportError, TypeError, AttributeError):
        return True


class ViewerState:
    """The state the plugin's widgets of one viewer share (see the module docstring)."""

    checkpoint_changed = Signal(object)
    project_changed = Signal(object)
    checkpoints_changed = Signal(object)
    flush_requested = Signal()

    def __init__(self) -> None:
        self.checkpoint: dict | None = None
        self.project: str | None = None
        self._project_image: Any = None  # a weak reference to the project's image layer

    # ------------------------------------------------------------ values
    def set_checkpoint(self, entry: dict | None) -> None:
        """Publish the checkpoint chosen in *Predict graph* (an entry of ``list_checkpoints()``, or None)."""
        same = (entry or {}).get("path") == (self.checkpoint or {}).get("path") and entry is not None
        self.checkpoint = entry
        if not same:
            self.checkpoint_changed.emit(entry)

    @property
    def project_image(self):
        ref = self._project_image
        return ref() if ref is not None else None

    def set_project(self, folder, image_layer=None) -> None:
        """Publish the annotation project folder (None: closed) and the image layer it annotates."""
        self.project = None if folder is None else str(folder)
        try:
            self._project_image = None if image_layer is None else weakref.ref(image_layer)
        except TypeError:  # pragma: no cover - not weak-referenceable
            self._project_image = lambda layer=image_layer: layer
        self.project_changed.emit(self.project)

    # ------------------------------------------------------------ connections
    def connect(self, signal_name: str, widget, method_name: str) -> None:
        """Call ``widget.<method_name>(*args)`` on each emission of ``signal_name``, as long as the widget lives."""
        signal = getattr(self, signal_name)
        ref = weakref.ref(widget)

        def call(*args):
            w = ref()
            if w is None or not _qt_alive(w):
                signal.disconnect(call)
                return
            getattr(w, method_name)(*args)

        signal.connect(call)
        destroyed = getattr(widget, "destroyed", None)
        if destroyed is not None:
            try:
                destroyed.connect(lambda *_: signal.disconnect(call, missing_ok=True))
            except (TypeError, RuntimeError):  # pragma: no cover
                pass


_STATES: dict[int, tuple[weakref.ref, ViewerState]] = {}


def state_for(viewer) -> ViewerState:
    """The shared state of ``viewer`` (a napari Viewer or a proxy of one); made on first use."""
    real = real_viewer(viewer)
    key = id(real)
    held = _STATES.get(key)
    if held is not None and held[0]() is real:
        return held[1]
    state = ViewerState()
    try:
        ref = weakref.ref(real, lambda _r, key=key: _STATES.pop(key, None))
    except TypeError:  # pragma: no cover - not weak-referenceable: keep it for the session
        ref = lambda real=real: real
    _STATES[key] = (ref, state)
    return state
