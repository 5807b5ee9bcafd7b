"""Short bursts: spare Ready replicas after a burst that was over before its replicas were Ready."""

from __future__ import annotations

from inference_operator.scaling import Observation, Policy, State, Targets, recommend
from inference_operator.scaling.bursts import BurstMemory, spare_floor, watch
from inference_operator.scaling.model import Recommendation
from inference_operator.scaling.report import scaling_limited

T0 = 1_700_000_000.0
STARTUP = 240.0
HOUR = 3600.0


def tick(
    m: BurstMemory, t: float, rps: float, *, panic: bool = False, spare: int = 2
) -> BurstMemory:
    return watch(
        m,
        t,
        panic=panic,
        rps=rps,
        base_rps=8.0,
        target_rps=5.0,
        startup_seconds=STARTUP,
        spare=spare,
    )


def test_a_burst_over_before_its_replicas_are_ready_leaves_spares_above_the_load_before_it() -> (
    None
):
    m = tick(BurstMemory(), T0, 40.0, panic=True)
    assert m.onset == T0 and spare_floor(m, T0, HOUR) == 0
    m = tick(m, T0 + 120, 8.0)
    assert spare_floor(m, T0 + 120, HOUR) == 0  # not judged before one start-up time
    m = tick(m, T0 + STARTUP, 8.0)
    # 8 req/s needed two replicas at 5 each; two spares on top.
    assert spare_floor(m, T0 + STARTUP, HOUR) == 4
    assert spare_floor(m, T0 + STARTUP + HOUR - 1, HOUR) == 4
    assert spare_floor(m, T0 + STARTUP + HOUR, HOUR) == 0


def test_a_burst_still_on_when_its_replicas_come_up_leaves_none() -> None:
    m = tick(BurstMemory(), T0, 40.0, panic=True)
    m = tick(m, T0 + STARTUP, 38.0)
    assert m.onset is None and spare_floor(m, T0 + STARTUP, HOUR) == 0


def test_panic_without_more_arrivals_is_no_burst() -> None:
    # A queue or KV cache alone put the fleet in panic; the arrivals ask for what they did.
    m = tick(BurstMemory(), T0, 9.0, panic=True)
    assert m.onset is None


def test_an_earlier_short_burst_keeps_its_spares_while_a_long_one_is_judged() -> None:
    m = tick(BurstMemory(), T0, 40.0, panic=True)
    m = tick(m, T0 + STARTUP, 8.0)
    m = tick(m, T0 + 600, 40.0, panic=True)
    m = tick(m, T0 + 600 + STARTUP, 40.0)
    assert spare_floor(m, T0 + 900, HOUR) == 4


def test_spare_zero_turns_it_off() -> None:
    m = tick(BurstMemory(), T0, 40.0, panic=True, spare=0)
    assert m == BurstMemory()


def test_the_memory_survives_a_round_trip_through_status() -> None:
    m = tick(BurstMemory(), T0, 40.0, panic=True)
    assert BurstMemory.from_dict(m.to_dict()) == m
    m = tick(m, T0 + STARTUP, 8.0)
    assert BurstMemory.from_dict(m.to_dict()) == m
    assert BurstMemory.from_dict(None) == BurstMemory()


# --- through recommend() ----------------------------------------------------------------------


def _policy(**overrides: object) -> Policy:
    return Policy(
        min_replicas=1,
        max_replicas=40,
        targets=Targets(requests_per_second_per_replica=5.0),
        startup_seconds=STARTUP,
    ).with_(**overrides)


def _run(
    policy: Policy, rps_at: list[tuple[float, float]], until: float
) -> list[tuple[float, int, str, Recommendation]]:
    """Ticks every 15 s; replicas become Ready one start-up time after they are asked for."""
    state = State(started_at=T0 - HOUR)
    asked: list[tuple[float, int]] = [(T0 - HOUR, 2)]
    out = []
    t = T0
    while t <= until:
        rps = next(v for at, v in reversed(rps_at) if at <= t)
        current = asked[-1][1]
        ready = max([n for at, n in asked if at <= t - STARTUP], default=current)
        ready = min(ready, current)
        o = Observation(
            at=t,
            current_replicas=current,
            ready_replicas=ready,
            queue=0.0,
            running=4.0 * ready if rps else 0.0,
            kv_cache_utilization=0.4 if rps else 0.0,
            arrival_rps=rps,
        )
        rec, state = recommend(o, policy, state, t)
        if rec.replicas != current:
            asked.append((t, rec.replicas))
        out.append((t, rec.replicas, rec.reason, rec))
        t += 15.0
    assert State.from_dict(state.to_dict()) == state
    return out


# 8 req/s (two replicas), 40 req/s for two minutes, then 8 again.
SPIKE = [(T0 - HOUR, 8.0), (T0 + 300, 40.0), (T0 + 420, 8.0)]


def test_after_a_short_burst_the_fleet_keeps_two_spares_for_an_hour() -> None:
    run = _run(_policy(), SPIKE, T0 + 300 + STARTUP + 1.5 * HOUR)
    spare_until = T0 + 300 + STARTUP + HOUR
    # Well after the burst's replicas are given back, and before the hour is over: 2 + 2.
    held = [x for x in run if T0 + 1800 <= x[0] < spare_until - 15]
    assert held and all(x[1] == 4 for x in held), held[:3]
    assert "limited by shortBursts" in held[-1][2]
    limited = scaling_limited(held[-1][3])
    assert (limited.status, limited.reason) == ("True", "ShortBurstSpares")
    assert "keeping 4 Ready replicas" in limited.message
    # Then back to what the load needs.
    assert run[-1][1] == 2, run[-1]


def test_spares_off_the_fleet_returns_to_the_load() -> None:
    run = _run(_policy(short_burst_spare=0), SPIKE, T0 + 2400)
    assert run[-1][1] == 2 and "shortBursts" not in run[-1][2]


def test_a_step_that_stays_leaves_no_spares() -> None:
    step = [(T0 - HOUR, 8.0), (T0 + 300, 40.0), (T0 + 1500, 8.0)]
    run = _run(_policy(), step, T0 + 3000)
    assert run[-1][1] == 2, run[-1]


def test_an_idle_model_keeps_no_spares_and_reaches_zero() -> None:
    """Load stops after a short burst: once idle for idle_to_zero_seconds the spares go, and a
    model at minReplicas 0 reaches zero within the hour the spares would have been held."""
    stops = [(T0 - HOUR, 8.0), (T0 + 300, 40.0), (T0 + 420, 8.0), (T0 + 1500, 0.0)]
    run = _run(_policy(min_replicas=0, idle_to_zero_seconds=300.0), stops, T0 + 3000)
    assert any("shortBursts" in x[2] for x in run), "the short burst was not seen"
    assert run[-1][1] == 0, run[-1][2]
