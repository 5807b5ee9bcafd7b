"""Start-up time learned from the pods (pure)."""

from __future__ import annotations

from inference_operator.scaling.startup import (
    KEEP,
    Startup,
    StartupMemory,
    estimate,
    lookahead,
    observe,
)


def test_the_default_holds_until_pods_have_started() -> None:
    assert lookahead(StartupMemory(), 180.0) == 180.0
    assert estimate(StartupMemory()) is None


def test_the_longer_kind_is_the_look_ahead_and_each_kind_is_kept_apart() -> None:
    seen = [Startup(float(i), 90.0 + i % 5, False) for i in range(30)]
    seen += [Startup(100.0 + i, 230.0 + i % 7, True) for i in range(30)]
    memory = observe(StartupMemory(), seen)
    assert sum(1 for s in memory.observed if s.new_node) == KEEP
    assert sum(1 for s in memory.observed if not s.new_node) == KEEP
    assert 90 <= (estimate(memory, False) or 0) <= 94
    assert 230 <= (estimate(memory, True) or 0) <= 236
    assert lookahead(memory, 180.0) == estimate(memory, True)


def test_a_start_up_seen_twice_is_counted_once_and_survives_status() -> None:
    one = Startup(10.0, 95.0, False)
    memory = observe(observe(StartupMemory(), [one]), [one])
    assert memory.observed == (one,)
    again = StartupMemory.from_list(memory.to_list())
    assert again.observed == memory.observed
