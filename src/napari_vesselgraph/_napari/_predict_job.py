"""What the *Predict graph* widget runs in its worker thread, and what it keeps of each run."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import Cancelled, VesselGraphError
from ._widget_utils import free_gpu_memory, is_out_of_memory


# ---------------------------------------------------------------- the job run in the worker thread
def run_prediction(job: dict, cancel: threading.Event, progress=None) -> dict:
    """Run :func:`napari_vesselgraph.inference.predict` for the widget (in a worker thread).

    Returns ``{"status": "ok", "graph", "fell_back"}``, ``{"status": "cancelled"}`` or
    ``{"status": "error", "message"}``: expected problems never raise, so no traceback reaches the user.
    A CUDA/MPS out-of-memory error is retried once on the CPU. GPU memory is freed at the end.
    """
    from .. import inference

    kwargs = dict(job)
    kwargs.update(cancel=cancel, progress=progress, keep_raw=True)
    fell_back = None
    try:
        try:
            graph = inference.predict(**kwargs)
        except Exception as e:
            if not is_out_of_memory(e) or kwargs.get("method") != "model" or str(kwargs.get("device")) == "cpu":
                raise
            fell_back = str(e).splitlines()[0] if str(e) else type(e).__name__
            free_gpu_memory()
            kwargs["device"] = "cpu"
            graph = inference.predict(**kwargs)
        return {"status": "ok", "graph": graph, "fell_back": fell_back}
    except Cancelled:
        return {"status": "cancelled"}
    except VesselGraphError as e:
        return {"status": "error", "message": str(e)}
    except MemoryError:
        return {
            "status": "error",
            "message": "Ran out of memory. Predict a smaller region (Region: current field of view or a rectangle) "
            "or lower the batch size.",
        }
    except Exception as e:
        if is_out_of_memory(e):
            return {
                "status": "error",
                "message": "Ran out of memory, on the CPU too. Predict a smaller region (Region: current field of "
                "view or a rectangle) or lower the batch size.",
            }
        raise
    finally:
        free_gpu_memory()


# ---------------------------------------------------------------- results
@dataclass
class PredictionResult:
    """One run's output kept by the widget: the raw graph (all candidates) and the layers showing it."""

    key: tuple[str, str]  # (image layer name, method label)
    name: str  # layer name prefix: "<image> graph (<method>)"
    raw: Any  # VesselGraph with every candidate and its confidence
    layers: dict[str, Any]  # role -> napari layer
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    node_threshold: float = 0.5
    edge_threshold: float = 0.5
    info: dict = field(default_factory=dict)

    def alive(self, viewer) -> bool:
        nodes = self.layers.get("nodes")
        return nodes is not None and nodes in viewer.layers
