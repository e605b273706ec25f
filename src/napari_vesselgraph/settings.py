"""Plugin settings kept between sessions: a small JSON file in the user folder.

``settings.json`` lives in :func:`user_home` (``$NAPARI_VESSELGRAPH_HOME`` or ``~/.napari-vesselgraph``), the
folder of everything the plugin keeps for the user (its ``checkpoints`` folder too). Unknown keys are kept; a missing or broken
file reads as the defaults (a broken one is never overwritten silently: :func:`save_settings` replaces it
with a valid file, atomically).

Keys
----
``dask_scheduler``
    Address of a dask.distributed scheduler (``"tcp://host:8786"``) the *Predict graph* widget sends the
    tiles to when *Run on a dask cluster* is ticked (empty: none).
``use_dask_scheduler``
    Whether that box is ticked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {"dask_scheduler": "", "use_dask_scheduler": False}
FILENAME = "settings.json"


def user_home() -> Path:
    """The plugin's folder in the user's home: ``$NAPARI_VESSELGRAPH_HOME``, else ``~/.napari-vesselgraph``."""
    env = os.environ.get("NAPARI_VESSELGRAPH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".napari-vesselgraph"


def settings_path() -> Path:
    return user_home() / FILENAME


def load_settings() -> dict[str, Any]:
    """The saved settings over :data:`DEFAULTS` (the defaults when there is no readable file)."""
    out = dict(DEFAULTS)
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    if isinstance(data, dict):
        out.update(data)
    return out


def save_settings(**values: Any) -> dict[str, Any]:
    """Update the given keys (JSON values), keep the others; returns the settings now saved."""
    from .io import atomic_write

    current = load_settings()
    current.update(values)
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return current


def get_setting(key: str, default: Any = None) -> Any:
    """One setting (its default from :data:`DEFAULTS` when it was never saved, else ``default``)."""
    return load_settings().get(key, default)


def normalize_scheduler_address(address: str) -> str:
    """``"host:8786"`` -> ``"tcp://host:8786"``; other schemes (``tls://``, ``ws://``...) kept; stripped."""
    a = str(address or "").strip()
    if a and "://" not in a:
        a = "tcp://" + a
    return a
