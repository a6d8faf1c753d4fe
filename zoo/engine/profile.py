"""Where a worker's step time goes: a few clock reads per step, summed per phase.

The loop calls `begin()` when a step starts and `lap(phase)` after each phase; whatever of a
step's wall time no phase claims (triggers, progress messages, the loop's own bookkeeping) is
reported as `other`. The first step is left out (`reset` after it): it pays one-off warm-up.
"""

from __future__ import annotations

import time

#: The phases of one step, in order. `reduce_scatter` and `all_gather` include waiting for the
#: other workers; in replicated mode `optimizer` is what the optimizer does besides its closure.
PHASES = ("batch", "forward_backward", "reduce_scatter", "optimizer", "all_gather")


class StepProfile:
    """Per-phase seconds summed over steps, and the steps' wall time."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget everything measured so far."""
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.steps = 0
        self.wall_s = 0.0
        self._step_start = None
        self._last = None

    def begin(self) -> None:
        """A step starts (closing the previous step's wall time, its bookkeeping included)."""
        now = time.perf_counter()
        if self._step_start is not None:
            self.wall_s += now - self._step_start
            self.steps += 1
        self._step_start = self._last = now

    def lap(self, phase: str) -> None:
        """The time since the last mark belongs to `phase`."""
        now = time.perf_counter()
        if self._last is not None:
            self.seconds[phase] += now - self._last
        self._last = now

    def finish(self) -> None:
        """Close the last step."""
        self.begin()
        self._step_start = self._last = None

    def summary(self) -> dict:
        """Mean milliseconds per step for each phase and `other`, with `steps` and `step_ms`."""
        steps = max(self.steps, 1)
        per_step = {phase: 1000.0 * s / steps for phase, s in self.seconds.items()}
        step_ms = 1000.0 * self.wall_s / steps
        per_step["other"] = max(0.0, step_ms - sum(per_step.values()))
        return {"steps": self.steps, "step_ms": step_ms, **per_step}
