"""One timer per InferenceDeployment: each pass runs at its own period."""

from __future__ import annotations

from inference_operator.handlers import timer


def runs(period: float, tick: float, first: bool, ticks: int) -> list[int]:
    last: dict[str, float] = {}
    return [n for n in range(ticks) if timer.due(last, "uid", period, n * tick, first=first)]


def test_the_recommender_runs_at_once_and_then_every_period() -> None:
    assert runs(timer.TICK_SECONDS, timer.TICK_SECONDS, first=True, ticks=4) == [0, 1, 2, 3]


def test_the_resync_waits_a_period_then_runs_every_period() -> None:
    tick = timer.TICK_SECONDS
    assert runs(3 * tick, tick, first=False, ticks=10) == [3, 6, 9]


def test_a_late_tick_does_not_make_a_period_slip() -> None:
    last: dict[str, float] = {}
    tick = timer.TICK_SECONDS
    assert not timer.due(last, "u", 2 * tick, 0.0, first=False)
    # The timer fires a little early or late: half a tick of slack either way.
    assert timer.due(last, "u", 2 * tick, 1.6 * tick, first=False)
    assert not timer.due(last, "u", 2 * tick, 2.6 * tick, first=False)
    assert timer.due(last, "u", 2 * tick, 3.7 * tick, first=False)
