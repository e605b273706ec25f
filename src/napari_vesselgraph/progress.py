"""Progress reporting for the command line: a one-line text bar (no napari, no Qt).

Long work takes ``progress(done, total, info)`` callbacks; :class:`TextProgress` is the one the ``vesselgraph``
commands (``cli``, ``adapt.cli``, ``importers.cli``) pass. It lives here, not in ``cli``, so the sub-command
modules need not import the CLI module that imports them. :func:`read_config` and :func:`exit_code` are the
other two things those commands share: reading a ``--config`` JSON file, and the one line and exit status a
command ends with on an error or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .errors import Cancelled, VesselGraphError

#: the exceptions :func:`exit_code` turns into a line and an exit status
CLI_ERRORS = (VesselGraphError, FileNotFoundError, Cancelled, KeyboardInterrupt)


def read_config(path) -> dict:
    """The JSON object in the ``--config`` file ``path``; :class:`VesselGraphError` when it cannot be read or holds
    something else."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise VesselGraphError(f"cannot read config {path}: {e}") from None
    if not isinstance(d, dict):
        raise VesselGraphError(f"config {path} must hold a JSON object")
    return d


def exit_code(e: BaseException, prog: str = "", cancelled: str = "cancelled") -> int:
    """Print the line a command ends with on ``e`` (one of :data:`CLI_ERRORS`) to stderr and return its exit
    status: 130 for Ctrl-C or a cancel (``"\\n<prog>: <cancelled>"``), else 2 (``"<prog>: error: ..."``)."""
    head = f"{prog}: " if prog else ""
    if isinstance(e, (Cancelled, KeyboardInterrupt)):
        print(f"\n{head}{cancelled}", file=sys.stderr)
        return 130
    if isinstance(e, FileNotFoundError):
        print(f"{head}error: file not found: {e.filename or e}", file=sys.stderr)
        return 2
    print(f"{head}error: {e}", file=sys.stderr)
    return 2


class TimeLeft:
    """Seconds left of a run, from the pace since the first step reported.

    The set-up before the first step (reading the target, measuring the source on held-out samples) is not
    repeated, so it must not slow the estimate down; before a second step is seen the pace since ``t0`` is used.
    With ``val_every`` and the progress reports fed to :meth:`update`, held-out validations are counted apart:
    one costs what the source measurement before step 1 took (the report flagged ``info["validation"]``), the
    step pace leaves out the validations already run, and those still to come (every ``val_every`` steps and a
    final one) are added. Otherwise the first validations would land after the 10 % mark unseen and the estimate
    would fall short. The Fine-tune widget shows it; ``benchmarks/fewshot_speed.py`` measures how close it is."""

    def __init__(self, t0: float | None = None, val_every: int | None = None):
        self.t0 = time.perf_counter() if t0 is None else float(t0)
        self.val_every = int(val_every) if val_every else None
        self.first: tuple[int, float] | None = None  # (step, time) of the first step reported
        self.val_cost: float | None = None  # seconds of one held-out validation
        self.n_val = 0  # validations run since the first step
        self._val_from: float | None = None

    def update(self, step: int, total: int, info: dict | None = None, now: float | None = None) -> float | None:
        """Feed one progress report; returns the estimate (None for a report before the first step)."""
        now = time.perf_counter() if now is None else now
        info = info or {}
        if self._val_from is not None:  # the report after the source measurement: what one validation costs
            self.val_cost = now - self._val_from
            self._val_from = None
        if info.get("validation"):
            self._val_from = now
        if step <= 0 or info.get("phase"):
            return None
        if "val" in info and self.first is not None and step > self.first[0]:
            self.n_val += 1
        return self.estimate(step, total, now)

    def estimate(self, step: int, total: int, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        if self.first is None:
            self.first = (int(step), now)
        s0, t0 = self.first
        if step <= s0:
            return (now - self.t0) / max(step, 1) * (total - step)
        if not (self.val_every and self.val_cost):
            return (now - t0) / (step - s0) * (total - step)
        pace = max(now - t0 - self.n_val * self.val_cost, 0.0) / (step - s0)
        ve = self.val_every
        to_come = total // ve - step // ve + (0 if total % ve == 0 else 1)  # periodic ones and the final one
        return pace * (total - step) + to_come * self.val_cost


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
