"""Where a worker's step time goes: a few clock reads per step, summed per phase.

The loop calls `begin()` when a step starts and `lap(phase)` after each phase; the adapters and
aggregators lap their own phases (forward, synchronisation wait) on the same profile. Whatever of
a step's wall time no phase claims is reported as `other`. The first step is left out (`reset`
after it): it pays one-off warm-up. Recording is always on: a dozen `perf_counter` reads per step
(well under a microsecond each), so `profile=True` on a fit only chooses whether the driver shows it.
"""

from __future__ import annotations

import time

#: The phases of one step, in order, with what each one measures.
PHASE_DOCS = {
    "batch": "slicing this worker's samples into the step's input tensors",
    "forward": "the model's forward pass and the loss (Keras: forward and backward, one compiled call)",
    "backward": "the backward pass, gradients written into the flat gradient buffer",
    "grad_copy": "zeroing the gradient buffer and copying it into the transport's slot or send buffer "
                 "(no copy once the shared-memory slot is the gradient buffer)",
    "sync_wait": "waiting for the host's other workers at the shared-memory barriers",
    "reduce_scatter": "moving gradient shards between workers (over gloo: waiting for peers included)",
    "optimizer": "the optimizer's update (replicated mode: besides the gradient exchange in its closure)",
    "all_gather": "moving the updated weights back to every worker (over gloo: waiting included)",
    "loop": "the loop's own bookkeeping: loss check, end trigger, progress messages to the driver",
    "triggers": "validation and checkpoint triggers, and the work they fire",
}
PHASES = tuple(PHASE_DOCS)
#: Phases spent exchanging gradients and weights (what a faster transport would shrink).
AGGREGATION_PHASES = ("grad_copy", "sync_wait", "reduce_scatter", "all_gather")


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
        """The time since the last mark belongs to `phase` (nothing happens outside a step)."""
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


def format_table(profiles: list[dict]) -> str:
    """A text table of every worker's `StepProfile.summary()`: ms/step per phase, one column per
    rank, and each phase's share of the mean step time over the workers."""
    phases = PHASES + ("other",)
    ranks = [f"rank {r}" for r in range(len(profiles))]
    width = max(len(p) for p in phases + ("step (ms)",))
    mean_step = sum(p["step_ms"] for p in profiles) / max(len(profiles), 1)
    header = f"{'phase (ms/step)':<{width}}" + "".join(f"{r:>10}" for r in ranks) + f"{'share':>8}"
    lines = [header, "-" * len(header)]
    for phase in phases:
        mean = sum(p.get(phase, 0.0) for p in profiles) / max(len(profiles), 1)
        share = mean / mean_step if mean_step > 0 else 0.0
        lines.append(f"{phase:<{width}}" + "".join(f"{p.get(phase, 0.0):>10.3f}" for p in profiles)
                     + f"{share:>8.1%}")
    lines.append("-" * len(header))
    lines.append(f"{'step (ms)':<{width}}" + "".join(f"{p['step_ms']:>10.3f}" for p in profiles) + f"{'100%':>8}")
    lines.append(f"{'steps':<{width}}" + "".join(f"{p['steps']:>10d}" for p in profiles))
    return "\n".join(lines)
