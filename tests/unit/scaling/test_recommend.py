"""recommend(): table tests of behaviour, and hypothesis properties."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_operator.scaling import Observation, Policy, Schedule, State, Targets, recommend

T0 = 1_700_000_000.0


def policy(**overrides: object) -> Policy:
    base = Policy(
        min_replicas=1,
        max_replicas=20,
        targets=Targets(
            queue_per_replica=4, kv_cache_utilization=0.8, requests_per_second_per_replica=5.0
        ),
        startup_seconds=120.0,
    )
    return base.with_(**overrides)


def obs(**overrides: object) -> Observation:
    base = Observation(
        at=T0,
        current_replicas=2,
        ready_replicas=2,
        queue=0,
        running=4,
        kv_cache_utilization=0.4,
        arrival_rps=8.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


DEFAULT_POLICY = policy()
# A brain that has been running for an hour (a fresh one starts in panic: see its own case).
EMPTY = State(started_at=T0 - 3600)


@dataclass
class Case:
    name: str
    observation: Observation
    want: int
    policy: Policy = DEFAULT_POLICY
    state: State = EMPTY
    reason_has: str = ""


CASES = [
    Case("steady load keeps the count", obs(), 2, reason_has="keep 2"),
    Case("rps asks ceil(12/5)=3", obs(arrival_rps=12.0), 3, reason_has="rps asks 3"),
    Case(
        "kv over target: ceil(2*0.96/0.8)=3",
        obs(kv_cache_utilization=0.96),
        3,
        reason_has="kvCache asks 3",
    ),
    Case("queue within 4 per ready replica: HPA arithmetic", obs(queue=8), 2),
    Case(
        "a backlog the rate-sized fleet drains in its headroom buys nothing: 92 over 120 s",
        obs(queue=100),
        2,
        reason_has="queue asks 2, kvCache asks 1, rps asks 2",
    ),
    Case(
        "a backlog beyond the headroom adds to the arrivals: (8 + 692/120) / 5",
        obs(queue=700),
        3,
        reason_has="rps asks 3",
    ),
    Case(
        "without a rate signal the queue's excess drains over start-up: 2 + ceil(92/4)",
        obs(queue=100, arrival_rps=None),
        20,
        reason_has="queue asks 25",
    ),
    Case("largest signal wins", obs(arrival_rps=20.0, kv_cache_utilization=0.96), 4),
    Case(
        "kv ignores starting replicas (no double counting)",
        obs(
            current_replicas=3,
            ready_replicas=2,
            starting_replicas=1,
            kv_cache_utilization=1.0,
            arrival_rps=0.0,
        ),
        3,
    ),
    Case(
        "never above max",
        obs(current_replicas=4, ready_replicas=4, arrival_rps=1000.0),
        20,
        reason_has="maxReplicas",
    ),
    Case(
        "scale-up rate: at most 10x or +4",
        obs(current_replicas=1, ready_replicas=1, arrival_rps=100.0),
        10,
        policy=policy(max_replicas=50),
        reason_has="scaleUpRate",
    ),
    Case(
        "no data: hold, never scale down",
        obs(
            current_replicas=5,
            queue=None,
            kv_cache_utilization=None,
            arrival_rps=None,
            running=None,
        ),
        5,
        reason_has="no load signal",
    ),
    Case(
        "stale data: hold",
        obs(current_replicas=5, arrival_rps=0.0, kv_cache_utilization=0.0, sampled_at=T0 - 600),
        5,
        reason_has="old",
    ),
    Case(
        "stale data still honours minReplicas",
        obs(current_replicas=1, sampled_at=T0 - 600),
        3,
        policy=policy(min_replicas=3),
    ),
    Case(
        "scale-down waits for the stabilization window",
        obs(current_replicas=6, ready_replicas=6, arrival_rps=5.0, kv_cache_utilization=0.1),
        6,
        state=replace(EMPTY, recent=((T0 - 100, 6),)),
        reason_has="stabilization",
    ),
    Case(
        "scale-down is rate limited: 50% per period",
        obs(current_replicas=8, ready_replicas=8, arrival_rps=1.0, kv_cache_utilization=0.05),
        4,
        reason_has="scaleDownRate",
    ),
    Case(
        "panic holds capacity after a burst",
        obs(current_replicas=6, ready_replicas=6, arrival_rps=5.0, kv_cache_utilization=0.1),
        6,
        state=replace(EMPTY, panic_until=T0 + 30),
        reason_has="panic",
    ),
    Case(
        "gateway queue wakes a model at zero",
        obs(
            current_replicas=0,
            ready_replicas=0,
            queue=None,
            running=None,
            kv_cache_utilization=None,
            arrival_rps=None,
            gateway_queue=3,
        ),
        1,
        policy=policy(min_replicas=0),
    ),
    Case(
        "gateway queue alone is a signal at zero",
        obs(
            current_replicas=0,
            ready_replicas=0,
            queue=None,
            running=None,
            kv_cache_utilization=None,
            arrival_rps=0.0,
            gateway_queue=9,
        ),
        3,
        policy=policy(min_replicas=0),
    ),
    Case(
        "idle but recently active: keep one warm",
        obs(
            current_replicas=1,
            ready_replicas=1,
            queue=0,
            running=0,
            arrival_rps=0.0,
            kv_cache_utilization=0.0,
        ),
        1,
        policy=policy(min_replicas=0),
        state=replace(EMPTY, last_active_at=T0 - 60),
    ),
    Case(
        "idle past idleAfter: scale to zero",
        obs(
            current_replicas=1,
            ready_replicas=1,
            queue=0,
            running=0,
            arrival_rps=0.0,
            kv_cache_utilization=0.0,
        ),
        0,
        policy=policy(min_replicas=0),
        state=replace(EMPTY, last_active_at=T0 - 1000),
    ),
    Case(
        "minReplicas floor",
        obs(arrival_rps=0.0, kv_cache_utilization=0.0, current_replicas=3, ready_replicas=3),
        3,
        policy=policy(min_replicas=3),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_recommend_table(case: Case) -> None:
    rec, _ = recommend(case.observation, case.policy, case.state, T0)
    assert rec.replicas == case.want, rec.reason
    assert case.reason_has in rec.reason


def test_schedule_sets_a_floor_that_starts_one_startup_early() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = policy(
        schedules=(Schedule("0 8 * * 1-5", 6, 10 * 3600, "Europe/Berlin"),), startup_seconds=300
    )
    quiet = obs(arrival_rps=0.0, kv_cache_utilization=0.0, current_replicas=1, ready_replicas=1)
    monday = datetime(2026, 11, 23, tzinfo=berlin)

    def at(h: int, m: int) -> float:
        return monday.replace(hour=h, minute=m).timestamp()

    for t, want in [(at(7, 50), 1), (at(7, 56), 6), (at(12, 0), 6), (at(18, 10), 1)]:
        rec, _ = recommend(replace(quiet, at=t), p, State(), t)
        assert rec.replicas == want, (datetime.fromtimestamp(t, berlin), rec.reason)


def test_state_round_trips_through_status() -> None:
    _, state = recommend(obs(arrival_rps=30.0), policy(), State(), T0)
    assert State.from_dict(state.to_dict()) == state


def test_bad_policy_names_field_and_value() -> None:
    with pytest.raises(ValueError, match=r"maxReplicas: 2 must be >= max\(1, minReplicas=3\)"):
        Policy(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError, match=r"targets.kvCacheUtilization: 1.5 must be <= 1"):
        Targets(kv_cache_utilization=1.5)


# --- properties --------------------------------------------------------------------------------

signal = st.one_of(st.none(), st.floats(0, 500, allow_nan=False))
observations = st.builds(
    Observation,
    at=st.just(T0),
    current_replicas=st.integers(0, 30),
    ready_replicas=st.integers(0, 30),
    starting_replicas=st.integers(0, 5),
    queue=signal,
    running=signal,
    kv_cache_utilization=st.one_of(st.none(), st.floats(0, 1)),
    arrival_rps=signal,
    gateway_queue=st.one_of(st.none(), st.floats(0, 50)),
)
policies = st.builds(
    lambda lo, span, panic, down: policy(
        min_replicas=lo,
        max_replicas=max(1, lo) + span,
        panic_threshold=panic,
        scale_down_max_percent=down,
    ),
    st.integers(0, 5),
    st.integers(0, 30),
    st.floats(1.1, 4),
    st.floats(0, 100),
)
states = st.builds(
    State,
    recent=st.lists(st.tuples(st.floats(T0 - 299, T0 - 1), st.integers(0, 40)), max_size=5).map(
        tuple
    ),
    panic_until=st.sampled_from([0.0, T0 + 10]),
    last_scale_down_at=st.sampled_from([0.0, T0 - 10]),
    last_active_at=st.sampled_from([None, T0 - 10, T0 - 5000]),
    started_at=st.sampled_from([None, T0 - 3600]),
)


@settings(max_examples=400, deadline=None)
@given(observations, policies, states)
def test_never_outside_min_max(o: Observation, p: Policy, s: State) -> None:
    rec, _ = recommend(o, p, s, T0)
    assert p.min_replicas <= rec.replicas <= p.max_replicas


@settings(max_examples=400, deadline=None)
@given(observations, policies, states, st.floats(0, 100), st.floats(0, 100), st.floats(0, 0.5))
def test_monotone_in_load(
    o: Observation, p: Policy, s: State, dq: float, drps: float, dkv: float
) -> None:
    more = replace(
        o,
        queue=None if o.queue is None else o.queue + dq,
        arrival_rps=None if o.arrival_rps is None else o.arrival_rps + drps,
        kv_cache_utilization=None
        if o.kv_cache_utilization is None
        else min(1.0, o.kv_cache_utilization + dkv),
    )
    low, _ = recommend(o, p, s, T0)
    high, _ = recommend(more, p, s, T0)
    assert high.replicas >= low.replicas, (low.reason, high.reason)


@settings(max_examples=300, deadline=None)
@given(observations, policies, states, st.integers(91, 10_000))
def test_no_decrease_without_data(o: Observation, p: Policy, s: State, age: int) -> None:
    no_data = replace(o, queue=None, running=None, kv_cache_utilization=None, arrival_rps=None)
    stale = replace(o, sampled_at=T0 - age)
    for view in (no_data, stale):
        rec, _ = recommend(view, p, s, T0)
        assert rec.replicas >= min(o.current_replicas, p.max_replicas)


@settings(max_examples=150, deadline=None)
@given(st.floats(0.5, 80), st.floats(0, 1), st.floats(0, 40), policies)
def test_no_flapping_on_a_stationary_signal(rps: float, kv: float, queue: float, p: Policy) -> None:
    """Fed the same signal every 15 s, the count settles and then never changes direction."""
    state, current, changes = State(), p.min_replicas, []
    for i in range(200):
        now = T0 + 15 * i
        o = Observation(
            at=now,
            current_replicas=current,
            ready_replicas=current,
            queue=queue,
            running=1.0,
            kv_cache_utilization=kv,
            arrival_rps=rps,
        )
        rec, state = recommend(o, p, state, now)
        if rec.replicas != current:
            changes.append(rec.replicas - current)
        current = rec.replicas
    # Ready capacity follows the count here, so kv and queue pressure shift as it changes; what
    # must not happen is a reversal of direction (up, down, up ...).
    signs = [c > 0 for c in changes]
    assert all(a == signs[0] for a in signs), changes


def test_a_start_up_learned_as_instant_does_not_divide_by_zero() -> None:
    """kwok (and a pod whose image and node were ready) can go Ready within its creation's
    second: the learned look-ahead is then 0, and a backlog must still ask for replicas."""
    from inference_operator.scaling.startup import Startup

    o = obs(queue=40, startups=(Startup(T0 - 10, 0.0, False),))
    rec, state = recommend(o, policy(), State(), T0)
    assert rec.startup_learned and rec.replicas > o.current_replicas
    assert state.startups.observed


def test_an_engine_slower_than_the_tpot_objective_has_no_rate_signal() -> None:
    """A replica whose empty step already exceeds the TPOT objective sustains 0 within it:
    the capacity says 0 (status shows it), and the rate signal stays out of the decision."""
    from inference_operator.scaling.throughput import EngineModel, Prior

    slow = Prior(EngineModel(0.5, 0.001, 1e-4), kv_tokens=100_000)
    p = policy(targets=Targets(queue_per_replica=4, kv_cache_utilization=0.8), prior=slow)
    rec, _ = recommend(obs(completion_rps=8.0, arrival_rps=None), p, State(), T0)
    assert rec.capacity is not None and rec.capacity.rps == 0
    assert rec.by_signal["rps"] is None


def test_arrivals_are_completions_plus_the_change_in_flight() -> None:
    """Completions saturate under overload; the rise of requests in flight is the rest of the
    arrivals. With the gateway's count in the path, that is used instead."""
    from inference_operator.scaling.recommend import arrival_rate

    p = policy()
    _, state = recommend(
        obs(arrival_rps=None, completion_rps=5.0, queue=0, running=10), p, State(), T0
    )
    later = obs(at=T0 + 60, arrival_rps=None, completion_rps=5.0, queue=60, running=10)
    rate, source = arrival_rate(later, state, T0 + 60)
    assert source == "completions+inflight" and rate == 5.0 + 60 / 60
    assert arrival_rate(replace(later, arrival_rps=7.5), state, T0 + 60) == (7.5, "gateway")
    # No history yet: completions alone.
    assert arrival_rate(later, State(), T0 + 60) == (5.0, "completions")


def test_a_backlog_adds_to_the_arrivals_instead_of_draining_through_headroom() -> None:
    """Arrivals of 10/s need two replicas at 5/s each; 600 waiting beyond the queue target
    add 600 / 120 s = 5/s: three, where the max of the two signals would have said two."""
    p = policy(targets=Targets(queue_per_replica=4, requests_per_second_per_replica=5.0))
    rec, _ = recommend(obs(arrival_rps=10.0, queue=608, ready_replicas=2), p, State(), T0)
    assert rec.by_signal["rps"] == 3


def test_one_noisy_tick_does_not_buy_a_replica() -> None:
    """A rise of one replica must be asked for on two ticks: one tick's noise, which
    stabilization would then keep for five minutes, buys nothing."""
    p = policy()
    state = State()
    _, state = recommend(obs(arrival_rps=8.0), p, state, T0)
    rec, state = recommend(obs(at=T0 + 15, arrival_rps=12.0), p, state, T0 + 15)
    assert rec.replicas == 2 and rec.by_signal["rps"] == 3
    rec, state = recommend(obs(at=T0 + 30, arrival_rps=12.0), p, state, T0 + 30)
    assert rec.replicas == 3


def test_a_tokens_target_asks_for_prompt_plus_generated_tokens_over_the_target() -> None:
    """Long prompts at a modest request rate: requests say 2 replicas, tokens say 5."""
    p = policy(
        targets=Targets(
            queue_per_replica=4,
            requests_per_second_per_replica=5.0,
            tokens_per_second_per_replica=2000.0,
        )
    )
    o = obs(prompt_tps=8000.0, generation_tps=1200.0)
    rec, _ = recommend(o, p, EMPTY, T0)
    assert rec.by_signal["tokens"] == 5
    assert rec.by_signal["rps"] == 2
    assert rec.replicas == 5
    assert "tokens asks 5" in rec.reason
    # Without the target (or without token counters) the signal stays out.
    assert recommend(o, policy(), EMPTY, T0)[0].by_signal["tokens"] is None
    assert recommend(obs(), p, EMPTY, T0)[0].by_signal["tokens"] is None


def test_a_tokens_target_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"targets\.tokensPerSecondPerReplica"):
        Targets(tokens_per_second_per_replica=0.0)


def test_a_backlog_in_one_pod_costs_that_pod_not_a_fleet_to_drain_it() -> None:
    """vLLM drains a queued request only in the pod that took it. 2,000 waiting in one of two
    pods take that pod out of serving arrivals for the look-ahead (one replica's worth): 10/s
    at 5/s each need 2 more, so 3, not the (10 + 2,000/120) / 5 = 6 a spreadable queue asks.
    The queue signal counts that pod once, not every Ready one."""
    p = policy(targets=Targets(queue_per_replica=4, requests_per_second_per_replica=5.0))
    stuck = obs(arrival_rps=10.0, queue=2000, queues=(2000.0, 0.0), current_replicas=2)
    rec, _ = recommend(stuck, p, State(), T0)
    assert rec.by_signal["rps"] == 3 and rec.by_signal["queue"] == 1
    spread, _ = recommend(replace(stuck, queues=()), p, State(), T0)
    assert spread.by_signal["rps"] == 6 and spread.by_signal["queue"] == 2
    # A small backlog per pod still adds what it costs: 2 x 304 over 120 s at 5/s is 1 more.
    even, _ = recommend(replace(stuck, queue=608, queues=(304.0, 304.0)), p, State(), T0)
    assert even.by_signal["rps"] == 3


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0, 5000), min_size=1, max_size=8),
    st.integers(0, 7),
    st.floats(0, 5000),
    st.floats(0, 100),
)
def test_the_per_pod_backlog_is_monotone_and_bounded(
    queues: list[float], i: int, more: float, rps: float
) -> None:
    """More waiting in any pod never asks for fewer replicas, and the backlog never asks more
    than one replica per pod holding it."""
    p = policy(targets=Targets(queue_per_replica=4, requests_per_second_per_replica=5.0))
    i %= len(queues)
    n = len(queues)
    base = obs(arrival_rps=rps, queue=sum(queues), queues=tuple(queues), ready_replicas=n)
    grown = list(queues)
    grown[i] += more
    bigger = replace(base, queue=sum(grown), queues=tuple(grown))
    low, _ = recommend(base, p, State(), T0)
    high, _ = recommend(bigger, p, State(), T0)
    assert low.by_signal["rps"] is not None and high.by_signal["rps"] is not None
    assert high.by_signal["rps"] >= low.by_signal["rps"]
    holding = sum(1 for q in grown if q > 4)
    assert high.by_signal["rps"] <= math.ceil(rps / 5.0 - 1e-6) + holding


def test_a_burst_is_read_over_the_last_scrape_not_half_a_minute() -> None:
    """At 4/s in flight holds at 25. A burst then adds 300 in flight within one 15-s scrape:
    the last scrape says 4 + 300/15 = 24/s, while half a minute back says 4 + 300/30 = 14/s.
    The short span wins from 1.5x the long one; a small rise stays on the long span."""
    from inference_operator.scaling.recommend import arrival_rate

    p = policy()
    state = State()
    for k, inflight in enumerate((25.0, 25.0, 25.0)):
        t = T0 + 15 * k
        o = obs(at=t, arrival_rps=None, completion_rps=4.0, queue=0, running=inflight)
        _, state = recommend(o, p, state, t)
    burst = obs(at=T0 + 45, arrival_rps=None, completion_rps=4.0, queue=300, running=25)
    rate, source = arrival_rate(burst, state, T0 + 45)
    assert rate == pytest.approx(24.0) and source == "burst"
    small = replace(burst, queue=30)
    rate, source = arrival_rate(small, state, T0 + 45)
    assert rate == pytest.approx(4.0 + 30 / 30) and source == "completions+inflight"
    # The same scrape seen again by a faster timer adds no point (nor a zero span).
    _, again = recommend(replace(burst, sampled_at=T0 + 45), p, state, T0 + 45)
    _, twice = recommend(replace(burst, at=T0 + 50, sampled_at=T0 + 45), p, again, T0 + 50)
    assert len(twice.inflight) == len(again.inflight)


def test_requests_held_at_the_gateway_for_a_slot_are_a_backlog_the_fleet_drains() -> None:
    """The gateway holds requests beyond maxPerReplica in flight per replica and hands each to
    the first slot any replica frees, new ones included: with Ready replicas that is a backlog
    the whole fleet drains, spread over one start-up time like the fleet's queue. 10/s at 5/s
    each need 2; 600 held add 600 / 120 s = 5/s: 3. Not 600 / 4 = 150 (maxReplicas), the
    arithmetic that wakes a model at zero, where nothing else says how many to start."""
    p = policy(targets=Targets(queue_per_replica=4, requests_per_second_per_replica=5.0))
    held = obs(arrival_rps=10.0, queue=0, queues=(0.0, 0.0), gateway_queue=600.0)
    rec, _ = recommend(held, p, State(), T0)
    assert rec.by_signal["rps"] == 3
    assert rec.by_signal["gateway"] is None
    assert rec.replicas == 3
    # More held never asks for fewer; and at zero Ready replicas the wake-up arithmetic stays.
    more, _ = recommend(replace(held, gateway_queue=1200.0), p, State(), T0)
    assert more.by_signal["rps"] == 4
    cold = replace(held, ready_replicas=0, current_replicas=0, queues=(), running=None)
    assert recommend(cold, p, State(), T0)[0].by_signal["gateway"] == 150


def test_a_pod_ready_before_its_first_scrape_does_not_dilute_what_the_scrape_says() -> None:
    """Ready comes from the Deployment's status, live; the vLLM signals from Prometheus, up to
    a scrape interval behind. For that interval a pod just Ready has no series: the totals
    cover the pods that have them (one queue series each), and dividing them by the Ready
    count read the new pod as idle, lowering the learned capacity, and counted it at the
    others' KV usage. Two pods scraped at KV 0.8 ask 2 of a 0.8 target, not 3 (the HPA, too,
    takes a pod without metrics as empty when scaling up)."""
    p = policy(targets=Targets(queue_per_replica=4, kv_cache_utilization=0.8))
    window = obs(
        arrival_rps=None,
        completion_rps=6.0,
        queue=0,
        queues=(0.0, 0.0),
        running=40,
        kv_cache_utilization=0.8,
        itl_s=0.03,
        prompt_tps=3000.0,
        generation_tps=1200.0,
    )
    scraped, learned_from_two = recommend(window, p, EMPTY, T0)
    ahead, learned_with_third = recommend(
        replace(window, ready_replicas=3, current_replicas=3), p, EMPTY, T0
    )
    assert scraped.by_signal["kvCache"] == 2 and ahead.by_signal["kvCache"] == 2
    assert learned_from_two.throughput.samples == 1
    assert learned_with_third.throughput == learned_from_two.throughput
