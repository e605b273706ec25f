"""npe2 sample data: the real retina photograph and one synthetic (image, ground-truth graph) per domain.

Everything heavy is imported inside the functions: napari imports this module while it starts.
"""

from __future__ import annotations

#: synthetic samples offered in File > Open Sample: key -> (synth domain, title, units of the scale)
SYNTHETIC = {
    "vessel2d-fluo": ("vessel2d-fluo", "Vessels 2D (fluorescence, synthetic)", None),
    "vessel2d-fundus": ("vessel2d-fundus", "Vessels 2D (fundus RGB, synthetic)", None),
    "vessel3d-lightsheet": ("vessel3d-lightsheet", "Vessels 3D (light-sheet, synthetic)", "µm"),
    "road-clean": ("road-clean", "Roads (aerial RGB, synthetic)", None),
}


def _fit_view_when_added() -> None:
    """Reset the view once the sample's layers are in an empty viewer.

    napari fits the first layer to the canvas as it is when the layer arrives; the canvas then shrinks (the
    layer controls and docked widgets claim their room), which left a large image such as the retina cut off
    at the canvas edge until *Home* was pressed. Sample functions only return data, so the reset waits for the
    event loop, by which time the layers are added and the canvas has its final size.
    """
    try:
        import napari
        from qtpy.QtCore import QTimer
    except ImportError:  # pragma: no cover
        return
    viewer = napari.current_viewer()
    if viewer is None or len(viewer.layers):
        return  # layers already there: keep the user's view

    def fit() -> None:
        try:
            if len(viewer.layers):
                viewer.reset_view()
        except (RuntimeError, AttributeError):  # pragma: no cover - the viewer was closed meanwhile
            pass

    QTimer.singleShot(0, fit)


def retina() -> list[tuple]:
    """Fundus photograph of a human retina (scikit-image's ``data.retina()``, RGB, 1411 x 1411)."""
    from skimage import data

    image = data.retina()
    _fit_view_when_added()
    return [(image, {"name": "Retina (fundus photo)", "rgb": True}, "image")]


def synthetic_sample(key: str) -> list[tuple]:
    """A synthetic sample as layer data tuples: the image (with its pixel size as ``scale``) and its ground-truth
    graph (Vectors + Points, hidden; tick their eye in the layer list to compare with a prediction)."""
    from ..samples import load_sample
    from .layers import graph_to_layer_data

    domain, title, units = SYNTHETIC[key]
    image, scale, graph = load_sample(domain)
    rgb = image.ndim == 3 and len(scale) == 2 and image.shape[-1] in (3, 4)
    image_kwargs = {"name": title, "scale": tuple(scale), "rgb": rgb}
    if not rgb:
        image_kwargs.update(colormap="gray", contrast_limits=(0.0, 1.0))
    if units:
        image_kwargs["units"] = units
    out = [(image, image_kwargs, "image")]
    _fit_view_when_added()
    if graph is not None:
        for data, kwargs, ltype in graph_to_layer_data(graph, name=f"{title} ground truth", scale=scale):
            kwargs["visible"] = False
            if units:
                kwargs["units"] = units
            out.append((data, kwargs, ltype))
    return out


def vessel2d_fluo() -> list[tuple]:
    """Synthetic 2D fluorescence angiogram (128 x 128) with its ground-truth graph."""
    return synthetic_sample("vessel2d-fluo")


def vessel2d_fundus() -> list[tuple]:
    """Synthetic 2D RGB fundus image (128 x 128) with its ground-truth graph."""
    return synthetic_sample("vessel2d-fundus")


def vessel3d_lightsheet() -> list[tuple]:
    """Synthetic 3D light-sheet volume (64³ voxels, in µm) with its ground-truth graph."""
    return synthetic_sample("vessel3d-lightsheet")


def road_clean() -> list[tuple]:
    """Synthetic aerial RGB road image (128 x 128) with its ground-truth road graph."""
    return synthetic_sample("road-clean")
