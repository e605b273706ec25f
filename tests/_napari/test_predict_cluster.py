"""The Predict graph widget on a dask cluster whose address comes from the plugin settings (xvfb-run)."""

from __future__ import annotations

import pytest

from napari_vesselgraph._napari._predict_widget import PredictWidget
from napari_vesselgraph.settings import load_settings, save_settings

from .test_predict_widget import TIMEOUT, choose, tiny_checkpoint


def test_cluster_address_from_the_settings(make_napari_viewer, qtbot, notes):
    from napari_vesselgraph.checkpoints import user_dir

    tiny_checkpoint(user_dir() / "tiny-random.safetensors")
    save_settings(dask_scheduler="tcp://127.0.0.1:1", use_dask_scheduler=True)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget)
    choose(widget, "tiny-random")
    assert widget.cluster_check.isChecked() and widget.cluster_edit.text() == "tcp://127.0.0.1:1"
    job, _ = widget._collect()
    assert job["scheduler"] == "tcp://127.0.0.1:1"
    widget.cluster_check.setChecked(False)
    job, _ = widget._collect()
    assert "scheduler" not in job
    assert load_settings()["use_dask_scheduler"] is False  # remembered
    # the skeleton never runs on the cluster
    choose(widget, "classical skeleton")
    assert not widget.cluster_check.isEnabled()
    # ticked without an address: a clear error, no run
    choose(widget, "tiny-random")
    widget.cluster_check.setChecked(True)
    widget.cluster_edit.setText("  ")
    widget.run()
    assert widget.worker is None and "no scheduler address" in notes["error"][-1]


def test_prediction_runs_on_the_cluster(make_napari_viewer, qtbot, notes):
    distributed = pytest.importorskip("distributed")
    from napari_vesselgraph.checkpoints import user_dir

    tiny_checkpoint(user_dir() / "tiny-random.safetensors")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    try:
        viewer = make_napari_viewer()
        viewer.open_sample("napari-vesselgraph", "vessel2d-fluo")
        widget = PredictWidget(viewer)
        viewer.window.add_dock_widget(widget)
        choose(widget, "tiny-random")
        widget.device_combo.setCurrentText("cpu")
        widget.cluster_check.setChecked(True)
        widget.cluster_edit.setText(cluster.scheduler_address.removeprefix("tcp://"))
        widget.run()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
        assert not notes["error"], notes["error"]
        md = widget.last_result.raw.metadata
        assert md["cluster"] == f"scheduler {cluster.scheduler_address}" and md["model_loads"] == 1
        assert widget.last_result.raw.n_nodes > 0
        assert load_settings()["dask_scheduler"] == cluster.scheduler_address
    finally:
        cluster.close()
