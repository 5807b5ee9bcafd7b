"""Both periodic passes share one timer: each runs at its own period."""

from __future__ import annotations

from inference_operator.scaling.cadence import Cadence


def runs(cadence: Cadence, tick: float, ticks: int) -> list[int]:
    return [n for n in range(ticks) if cadence.due("uid", n * tick)]


def test_a_first_pass_runs_at_once_and_then_every_period() -> None:
    assert runs(Cadence(1.0, 1.0, first=True), 1.0, ticks=4) == [0, 1, 2, 3]


def test_a_waiting_pass_waits_a_period_then_runs_every_period() -> None:
    assert runs(Cadence(3.0, 1.0, first=False), 1.0, ticks=10) == [3, 6, 9]


def test_a_tick_a_little_early_or_late_does_not_make_a_period_slip() -> None:
    c = Cadence(2.0, 1.0, first=False)
    assert not c.due("u", 0.0)
    assert c.due("u", 1.6)  # early by less than half a tick
    assert not c.due("u", 2.6)
    assert c.due("u", 3.7)  # late


def test_objects_keep_their_own_phase_and_a_forgotten_one_starts_again() -> None:
    c = Cadence(2.0, 1.0, first=False)
    assert not c.due("a", 0.0)
    assert not c.due("b", 1.0)
    assert c.due("a", 2.0)
    assert not c.due("b", 2.0)
    assert c.due("b", 3.0)
    c.forget("a")
    assert not c.due("a", 4.0)


def test_objects_that_are_gone_are_forgotten() -> None:
    c = Cadence(10, 1, first=True)
    assert c.due("a", 0.0) and c.due("b", 0.0)
    c.keep_only({"b"})
    assert c.due("a", 0.5)  # a first tick again: "a" was forgotten
    assert not c.due("b", 0.5)
