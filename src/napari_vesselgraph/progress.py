"""Progress reporting for the command line: a one-line text bar (no napari, no Qt).

Long work takes ``progress(done, total, info)`` callbacks; :class:`TextProgress` is the one the ``vesselgraph``
commands (``cli``, ``adapt.cli``, ``importers.cli``) pass. It lives here, not in ``cli``, so the sub-command
modules need not import the CLI module that imports them.
"""

from __future__ import annotations

import sys
import time


class TextProgress:
    """A progress callback that draws a one-line bar on stderr."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        extra = ""
        if info:
            extra = " " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total} {now - self.t0:6.1f}s{extra[:60]}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
