"""One training loop for training (:mod:`.train`) and adaptation (:mod:`napari_vesselgraph.adapt`).

:class:`TrainingLoop` owns what every long optimisation job does the same way:

- stop at ``max_steps``, after ``budget_s`` seconds (a time budget; ``elapsed_before`` counts time spent
  before a resume) or when ``cancel.is_set()`` (checked exactly once before every step);
- the learning rate: every step each param group of ``optimizer`` gets ``base_lr * lr_schedule(step, frac)``
  where ``frac`` is the fraction of the run done, ``max(step / max_steps, elapsed / budget_s)``
  (:func:`warmup_cosine` is the schedule both training and adaptation use);
- the update: ``step_fn`` returns a :class:`StepOutput`; when it carries a ``loss`` the loop minimises it
  (``zero_grad``, ``backward``, gradient clipping, ``optimizer.step()``) unless it is not finite, in which case
  the batch is skipped with a log line ``step N: non-finite loss, batch skipped``; ``step_fn`` may also
  update its models itself and return no loss (a GAN with two optimisers);
- hooks: ``after_update(loop)`` after an optimiser step (weight EMA), ``on_step(loop, logs, skipped)`` after
  every step (log lines, history), ``validate(loop, reason)`` every ``validate_every`` steps and at the last
  step (``reason`` ``"periodic"`` or ``"final"``; it returns metrics or None, and typically saves the model if
  best), ``progress(step, max_steps, info)`` after that (``info``: the step's logs, ``elapsed``, ``step`` and,
  after a validation, ``val``);
- after the loop: ``on_stop(loop, reason)``, then one more ``validate(loop, "final")`` if the last step was
  not validated (``final_validation``: ``"always"``, ``"unless_cancelled"`` or ``"never"``);
- GPU memory: :func:`free_device` when :meth:`TrainingLoop.run` ends, however it ends.

The loop draws no random numbers: a job's random streams are those of its own ``step_fn`` and hooks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

STOP_MAX_STEPS = "max_steps"
STOP_CANCELLED = "cancelled"
STOP_BUDGET = "time budget"


@dataclass
class StepOutput:
    """What one step returns: ``logs`` (floats, shown and recorded) and, optionally, the ``loss`` tensor the
    loop should minimise with its optimiser (None: the step updated the models itself)."""

    logs: dict[str, float] = field(default_factory=dict)
    loss: Any = None


def warmup_cosine(warmup: int, min_ratio: float) -> Callable[[int, float], float]:
    """Learning-rate factor: linear warm-up over ``warmup`` steps (``(step + 1) / warmup``), then a cosine from
    1 down to ``min_ratio`` over the fraction ``frac`` of the run (clipped to ``[0, 1]``)."""

    def factor(step: int, frac: float) -> float:
        if step < warmup:
            return (step + 1) / warmup
        f = min(max(frac, 0.0), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * f))

    return factor


def free_device(device) -> None:
    """Give cached GPU memory back (CUDA, Apple MPS) once a job has finished with ``device``; no-op on cpu."""
    if device is None:
        return
    kind = getattr(device, "type", None) or str(device).split(":")[0]
    if kind not in ("cuda", "mps"):
        return
    import torch

    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif kind == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


class TrainingLoop:
    """Runs ``step_fn`` until ``max_steps``, the time budget or a cancel (see the module doc).

    The state the hooks read: ``step`` (steps done), ``max_steps``, :meth:`elapsed`, :meth:`frac`,
    ``last_validated`` (the step of the last validation, -1 for none), ``stop_reason`` (after the loop).
    ``step_fn(loop)`` sees ``loop.step`` as the index of the step it runs (0 for the first).
    """

    def __init__(
        self,
        *,
        max_steps: int,
        step: int = 0,
        budget_s: float | None = None,
        elapsed_before: float = 0.0,
        start_time: float | None = None,
        cancel=None,
        progress: Callable[[int, int, dict], None] | None = None,
        progress_keys: Sequence[str] | None = None,
        log: Callable[[str], None] = print,
        optimizer=None,
        params=None,
        grad_clip: float = 0.0,
        lr_schedule: Callable[[int, float], float] | None = None,
        base_lrs: Sequence[float] | None = None,
        after_update: Callable[[TrainingLoop], None] | None = None,
        on_step: Callable[[TrainingLoop, dict, bool], None] | None = None,
        on_stop: Callable[[TrainingLoop, str], None] | None = None,
        validate: Callable[[TrainingLoop, str], dict | None] | None = None,
        validate_every: int = 0,
        last_validated: int = -1,
        final_validation: str = "always",
        device=None,
    ):
        if final_validation not in ("always", "unless_cancelled", "never"):
            raise ValueError(f"final_validation {final_validation!r}")
        self.max_steps, self.step = int(max_steps), int(step)
        self.budget_s = float(budget_s) if budget_s else None
        self.elapsed_before = float(elapsed_before)
        self.start_time = start_time
        self.cancel, self.progress, self.log = cancel, progress, log
        self.progress_keys = tuple(progress_keys) if progress_keys is not None else None
        self.optimizer, self.grad_clip, self.lr_schedule = optimizer, float(grad_clip or 0.0), lr_schedule
        self.params = list(params) if params is not None else None
        if base_lrs is None and optimizer is not None:
            base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.base_lrs = list(base_lrs) if base_lrs is not None else None
        self.after_update, self.on_step, self.on_stop = after_update, on_step, on_stop
        self.validate_fn, self.validate_every = validate, int(validate_every or 0)
        self.last_validated, self.final_validation = int(last_validated), final_validation
        self.device = device
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------ state
    def elapsed(self) -> float:
        """Seconds of this run so far (plus ``elapsed_before``)."""
        t0 = self.start_time if self.start_time is not None else time.time()
        return self.elapsed_before + time.time() - t0

    def frac(self) -> float:
        """The fraction of the run done: steps, or time when a budget runs out sooner."""
        f = self.step / max(1, self.max_steps)
        if self.budget_s:
            f = max(f, self.elapsed() / self.budget_s)
        return f

    def lr(self, group: int = 0) -> float:
        return float(self.optimizer.param_groups[group]["lr"]) if self.optimizer is not None else float("nan")

    def run_validation(self, reason: str) -> dict | None:
        """Call the ``validate`` hook now and note the step (hooks may call this too)."""
        self.last_validated = self.step
        return self.validate_fn(self, reason) if self.validate_fn is not None else None

    # ------------------------------------------------------------------ the loop
    def _should_stop(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return STOP_CANCELLED
        if self.budget_s and self.elapsed() >= self.budget_s:
            return STOP_BUDGET
        return None

    def _set_lr(self) -> None:
        if self.lr_schedule is None or self.optimizer is None:
            return
        f = self.lr_schedule(self.step, self.frac())
        for g, lr0 in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr0 * f

    def _update(self, loss) -> bool:
        """Minimise ``loss`` with the optimiser; False (nothing changed) when it is not finite."""
        import torch

        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        if not bool(torch.isfinite(loss)):
            self.log(f"step {self.step}: non-finite loss, batch skipped")
            return False
        loss.backward()
        if self.grad_clip:
            params = self.params
            if params is None:
                params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        opt.step()
        return True

    def run(self, step_fn: Callable[[TrainingLoop], StepOutput]) -> str:
        """Run the steps; returns why it stopped (``"max_steps"``, ``"cancelled"`` or ``"time budget"``)."""
        if self.start_time is None:
            self.start_time = time.time()
        try:
            reason = STOP_MAX_STEPS
            while self.step < self.max_steps:
                stop = self._should_stop()
                if stop is not None:
                    reason = stop
                    break
                self._set_lr()
                out = step_fn(self)
                skipped = False
                if out.loss is not None:
                    if self.optimizer is None:
                        raise ValueError("step_fn returned a loss but the loop has no optimizer")
                    skipped = not self._update(out.loss)
                if not skipped and self.after_update is not None:
                    self.after_update(self)
                self.step += 1
                logs = dict(out.logs)
                if self.on_step is not None:
                    self.on_step(self, logs, skipped)
                met = None
                last = self.step >= self.max_steps
                if self.validate_fn is not None and (
                    (self.validate_every and self.step % self.validate_every == 0) or last
                ):
                    met = self.run_validation("final" if last else "periodic")
                if self.progress is not None:
                    keys = self.progress_keys
                    info: dict[str, Any] = {k: v for k, v in logs.items() if keys is None or k in keys}
                    info.update(elapsed=self.elapsed(), step=self.step)
                    if met is not None:
                        info["val"] = {k: met[k] for k in ("node_f1", "edge_f1", "smd") if k in met}
                    self.progress(self.step, self.max_steps, info)
            self.stop_reason = reason
            if self.on_stop is not None:
                self.on_stop(self, reason)
            final = self.final_validation == "always" or (
                self.final_validation == "unless_cancelled" and reason != STOP_CANCELLED
            )
            if final and self.validate_fn is not None and self.last_validated != self.step:
                self.run_validation("final")
            return reason
        finally:
            free_device(self.device)
