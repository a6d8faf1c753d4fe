"""StepProfile: laps go to their phases, the rest of a step is `other`, warm-up is left out."""

from __future__ import annotations

import pytest

from zoo.engine.profile import PHASES, StepProfile, format_table


def _busy(profile: StepProfile, phase: str, work: int) -> None:
    sum(range(work))
    profile.lap(phase)


def test_phases_and_other_add_up_to_the_step_time():
    profile = StepProfile()
    for _ in range(5):
        profile.begin()
        _busy(profile, "forward", 20_000)
        _busy(profile, "backward", 40_000)
        sum(range(10_000))  # claimed by no phase: `other`
    profile.finish()
    summary = profile.summary()
    assert summary["steps"] == 5
    assert summary["forward"] > 0 and summary["backward"] > summary["forward"] * 0.5
    assert summary["other"] > 0
    assert sum(summary[p] for p in PHASES + ("other",)) == pytest.approx(summary["step_ms"], rel=1e-9)


def test_a_lap_outside_a_step_and_the_warm_up_step_are_not_counted():
    profile = StepProfile()
    profile.lap("forward")  # before any step
    profile.begin()
    _busy(profile, "forward", 100_000)
    profile.reset()  # what the loop does after the first step
    profile.lap("loop")
    assert profile.summary()["steps"] == 0 and profile.summary()["forward"] == 0.0
    assert profile.summary()["loop"] == 0.0


def test_the_table_has_every_phase_and_worker_and_shares_that_sum_to_one():
    profiles = [{"steps": 10, "step_ms": 4.0, **dict.fromkeys(PHASES, 0.0), "forward": 1.0, "backward": 2.0,
                 "other": 1.0},
                {"steps": 10, "step_ms": 6.0, **dict.fromkeys(PHASES, 0.0), "forward": 3.0, "backward": 2.0,
                 "other": 1.0}]
    table = format_table(profiles)
    lines = table.splitlines()
    assert "rank 0" in lines[0] and "rank 1" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.split()[0] in PHASES + ("other",)}
    assert set(rows) == set(PHASES) | {"other"}
    assert rows["forward"] == ["1.000", "3.000", "40.0%"]
    assert sum(float(r[-1].rstrip("%")) for r in rows.values()) == pytest.approx(100.0, abs=0.1)
