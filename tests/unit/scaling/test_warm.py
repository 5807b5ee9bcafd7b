"""Warm capacity from the brain: the largest demand growth within one start-up time, for an hour."""

from __future__ import annotations

from inference_operator.scaling import Observation, Policy, State, recommend
from inference_operator.scaling.warm import (
    BIN_SECONDS,
    WINDOW_SECONDS,
    WarmMemory,
    remember,
    warm_replicas,
)

STARTUP = 120.0


def test_a_step_is_remembered_as_the_growth_over_what_existed_one_startup_earlier() -> None:
    m = WarmMemory()
    # Steady at 2 for five minutes, then demand asks for 5 while 2 run.
    for t in range(0, 300, 15):
        m = remember(m, float(t), 2, 2, STARTUP)
    assert warm_replicas(m, 300.0, 8, 2, 16)[0] == 0
    m = remember(m, 300.0, 5, 2, STARTUP)
    # The next decisions run at 5 already, but 5 - 2 stays the largest growth of the hour.
    for t in range(315, 600, 15):
        m = remember(m, float(t), 5, 5, STARTUP)
    n, why = warm_replicas(m, 600.0, 8, 5, 16)
    assert n == 3
    assert "rose by up to 3 replicas" in why


def test_slow_growth_within_one_startup_does_not_add_up_to_a_burst() -> None:
    m = WarmMemory()
    # One replica more every three minutes: each rise is 1 over what ran a start-up earlier.
    replicas = 1
    for t in range(0, 3600, 15):
        need = 1 + t // 180
        m = remember(m, float(t), need, replicas, STARTUP)
        replicas = need
    assert warm_replicas(m, 3600.0, 8, replicas, 64)[0] == 1


def test_bounded_by_the_ceiling_and_by_max_replicas() -> None:
    m = remember(WarmMemory(), 0.0, 10, 0, STARTUP)
    n, why = warm_replicas(m, 10.0, 4, 0, 16)
    assert n == 4 and "auto.maxReplicas 4" in why
    n, why = warm_replicas(m, 10.0, 8, 14, 16)
    assert n == 2 and "maxReplicas leaves room for 2" in why
    assert warm_replicas(m, 10.0, 8, 16, 16)[0] == 0


def test_a_quiet_hour_returns_the_buffer_to_zero() -> None:
    m = remember(WarmMemory(), 0.0, 3, 0, STARTUP)
    t = 0.0
    while t < WINDOW_SECONDS + BIN_SECONDS:
        t += 15
        m = remember(m, t, 3, 3, STARTUP)
        if t < WINDOW_SECONDS - BIN_SECONDS:
            assert warm_replicas(m, t, 8, 3, 16)[0] == 3
    assert warm_replicas(m, t, 8, 3, 16)[0] == 0
    # The memory stays a few numbers: one start-up of supply, one peak per bin at most.
    assert len(m.peaks) <= WINDOW_SECONDS / BIN_SECONDS
    assert len(m.supply) <= STARTUP / 15 + 1


def test_the_recommender_records_growth_and_it_survives_status() -> None:
    policy = Policy(min_replicas=0, max_replicas=16, startup_seconds=STARTUP)
    state = State()
    # Requests held at the gateway wake a model at zero: the first replica is growth too.
    obs = Observation(at=0.0, current_replicas=0, ready_replicas=0, gateway_queue=3.0)
    rec, state = recommend(obs, policy, state, 0.0)
    assert rec.replicas == 1
    busy = Observation(
        at=15.0,
        current_replicas=1,
        ready_replicas=1,
        queue=40.0,
        running=8.0,
        kv_cache_utilization=0.9,
    )
    rec, state = recommend(busy, policy, state, 15.0)
    restored = State.from_dict(state.to_dict())
    assert restored == state
    n, _ = warm_replicas(restored.warm, 15.0, 8, rec.replicas, policy.max_replicas)
    assert n == min(8, 16 - rec.replicas) and n > 1
