"""The plugin settings file (JSON in the user folder)."""

import json

from napari_vesselgraph import settings


def test_round_trip_defaults_and_broken_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_VESSELGRAPH_HOME", str(tmp_path / "home"))
    assert settings.load_settings() == settings.DEFAULTS  # no file yet
    saved = settings.save_settings(dask_scheduler="tcp://10.0.0.5:8786", use_dask_scheduler=True)
    assert settings.settings_path() == tmp_path / "home" / "settings.json"
    assert json.loads(settings.settings_path().read_text())["dask_scheduler"] == "tcp://10.0.0.5:8786"
    assert settings.load_settings() == saved
    settings.save_settings(use_dask_scheduler=False, other="kept")
    s = settings.load_settings()
    assert s["dask_scheduler"] == "tcp://10.0.0.5:8786" and s["use_dask_scheduler"] is False and s["other"] == "kept"
    assert settings.get_setting("dask_scheduler") == "tcp://10.0.0.5:8786"
    settings.settings_path().write_text("{not json")
    assert settings.load_settings() == settings.DEFAULTS
    assert settings.save_settings(dask_scheduler="x")["dask_scheduler"] == "x"  # replaced by a valid file


def test_scheduler_address():
    assert settings.normalize_scheduler_address(" host:8786 ") == "tcp://host:8786"
    assert settings.normalize_scheduler_address("tls://h:1") == "tls://h:1"
    assert settings.normalize_scheduler_address("") == ""
