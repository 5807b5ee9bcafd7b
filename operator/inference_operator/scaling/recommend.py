"""The scaling decision: a pure function of (observation, policy, state, now).

The shape follows Knative's decider: every signal says how many replicas it needs, the largest
wins; scale up at once (bounded), scale down only to the highest need seen over a stabilization
window, a replica at a time; no data means no change.
"""

from __future__ import annotations

import math
from dataclasses import replace

from inference_operator.scaling.bursts import spare_floor, watch
from inference_operator.scaling.forecast import forecast_rate
from inference_operator.scaling.model import Observation, Policy, Recommendation, State
from inference_operator.scaling.schedule import schedule_floor
from inference_operator.scaling.startup import estimate, lookahead, observe
from inference_operator.scaling.throughput import (
    WINDOW_S,
    Capacity,
    EngineModel,
    Evidence,
    Prior,
    capacity,
    learn,
    within,
)
from inference_operator.scaling.warm import WarmMemory, remember

# Ratios are rounded up, but float noise (0.8 / 0.8 * 3 = 3.0000000000000004) must not buy a
# replica: anything within this of an integer counts as that integer.
_EPSILON = 1e-6


# Without a planner's prior (a model or accelerator the catalogue lacks) the learner starts from
# this generic engine and trusts itself only after this many windows of evidence.
GENERIC_PRIOR = Prior(EngineModel(0.03, 0.0003, 0.0001))
MIN_SAMPLES_WITHOUT_PRIOR = 20
# A backlog is spread over at least this long, however fast replicas start (a pod on a ready node
# with a cached image can go Ready within the second it was created).
MIN_DRAIN_S = 15.0
# The shortest span a change in flight is read over: one scrape interval, less its jitter.
MIN_RATE_SPAN_S = 10.0
# The short span's rate replaces the long one's from this multiple on: below it, the short
# span's noise (a Poisson fleet's in-flight count moves by its square root within a scrape)
# would buy replicas; above it, the long span still averages half a minute of the old rate in.
BURST_RATIO = 1.5
# The longest a catch-up keeps the windows after it out of the latency evidence.
MAX_SETTLE_S = 600.0


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _EPSILON))


def per_replica_capacity(policy: Policy, state: State) -> Capacity | None:
    """The rps one replica carries: the spec's override, else the learned capacity."""
    t = policy.targets
    if t.requests_per_second_per_replica is not None:
        return Capacity(t.requests_per_second_per_replica, 0.0, "spec", 0, "spec")
    memory = state.throughput
    if policy.prior is None and memory.samples < MIN_SAMPLES_WITHOUT_PRIOR:
        return None
    # rps 0: even an empty replica's step is slower than the TPOT objective; status shows it,
    # and the rate signal stays out of the decision.
    return capacity(
        memory,
        policy.prior or GENERIC_PRIOR,
        policy.slo,
        t.kv_cache_utilization,
        policy.max_seqs_per_replica,
    )


def _target_rps(policy: Policy, cap: Capacity) -> float:
    # A spec target is the user's operating point already; a learned capacity is the edge of the
    # SLO, so the fleet runs at a fraction of it.
    return cap.rps if cap.source == "spec" else cap.rps * policy.capacity_utilization


def _excess_queue(obs: Observation, policy: Policy) -> float:
    """Requests waiting beyond `queue_per_replica` per Ready replica."""
    return max(0.0, (obs.queue or 0.0) - obs.ready_replicas * policy.targets.queue_per_replica)


def _signals(
    obs: Observation,
    policy: Policy,
    state: State,
    now: float,
    rate: float | None,
    cap: Capacity | None,
) -> dict[str, int | None]:
    t = policy.targets
    out: dict[str, int | None] = {
        "queue": None,
        "kvCache": None,
        "rps": None,
        "tokens": None,
        "gateway": None,
    }
    if obs.queue is not None:
        rate_signal = rate is not None and cap is not None and cap.rps > 0
        out["queue"] = _queue_demand(obs, policy, rate_signal)
    if obs.kv_cache_utilization is not None and obs.ready_replicas > 0:
        # HPA's Utilization arithmetic over the pods the mean was taken over: the starting ones
        # carry no KV cache yet, and counting them would dilute the pressure and add them twice.
        out["kvCache"] = _ceil(_scraped(obs) * obs.kv_cache_utilization / t.kv_cache_utilization)
    if rate is not None and cap is not None and cap.rps > 0:
        points = [*state.arrivals, (now, rate)]
        expected = forecast_rate(points, policy.startup_seconds, policy.forecast_max_growth)
        # The backlog adds to the arrivals: replicas sized for the arrivals alone drain it only
        # through their headroom, so what those replicas' queue allowance cannot hold is spread
        # over one start-up time on top of them. (Counted against the fleet the arrivals ask
        # for, not the Ready one: a queue the right-sized fleet holds is no backlog, and would
        # otherwise add a replica that is given back once it is Ready.)
        target = _target_rps(policy, cap)
        out["rps"] = _ceil(expected / target + _backlog_replicas(obs, policy, expected, target))
    tokens = _token_rate(obs)
    if t.tokens_per_second_per_replica is not None and tokens is not None:
        # HPA's AverageValue arithmetic on prompt + generated tokens/s.
        out["tokens"] = _ceil(tokens / t.tokens_per_second_per_replica)
    if obs.gateway_queue is not None and (obs.ready_replicas == 0 or out["rps"] is None):
        # Waking from zero (or with no rate to size by): HPA's AverageValue on what is held.
        # With Ready replicas and a rate, the backlog term holds it: 2,000 held for slots on a
        # burst are not 500 replicas' worth of waiting.
        out["gateway"] = _ceil(obs.gateway_queue / t.queue_per_replica)
    return out


def _backlog_replicas(obs: Observation, policy: Policy, expected: float, target: float) -> float:
    """Replicas' worth of capacity the waiting backlog (in the pods, and held at the gateway for
    a free slot) takes over one start-up time, on top of the replicas the arrivals need.

    Per pod where known: vLLM drains a request only in the replica that took it, so a pod's
    waiting beyond `queue_per_replica` occupies that pod alone, and at most wholly: 2,000 stuck
    in one pod cost one replica's worth of serving, not the fifteen that would drain them within
    a start-up time if the queue could be spread (the spike held 12 replicas for 11 minutes
    where 7 served). Without the split, the total's excess over what the rate-sized fleet holds
    is spread over one start-up time."""
    drain = max(policy.startup_seconds, MIN_DRAIN_S)
    q = policy.targets.queue_per_replica
    # The gateway hands what it holds to the first slot any replica frees, a new one included:
    # that backlog is the fleet's, wholly spread.
    gateway = (obs.gateway_queue or 0.0) / (target * drain)
    if obs.queues:
        return gateway + sum(min(1.0, max(0.0, w - q) / (target * drain)) for w in obs.queues)
    held = _ceil(expected / target) * q
    return gateway + max(0.0, (obs.queue or 0.0) - held) / drain / target


def _scraped(obs: Observation) -> int:
    """The pods the vLLM signals were read from: one queue series each. Ready comes from the
    Deployment's status, live, and a pod Ready within the last scrape interval has no series
    yet; fleet totals divided by the Ready count would read it as idle."""
    return len(obs.queues) or obs.ready_replicas


def _token_rate(obs: Observation) -> float | None:
    if obs.prompt_tps is None and obs.generation_tps is None:
        return None
    return (obs.prompt_tps or 0.0) + (obs.generation_tps or 0.0)


def _queue_demand(obs: Observation, policy: Policy, rate_signal: bool) -> int:
    """Up to `queue_per_replica` waiting per Ready replica this is HPA's AverageValue arithmetic
    (waiting / target). Beyond it, without a rate signal, the excess asks for the replicas that
    would drain it within one start-up time: a burst that the Ready replicas clear before a new
    one could serve buys nothing but idle GPUs, while a queue that persists keeps asking until
    it is gone.

    With a rate signal the excess is already in it (the backlog term), and counting it here
    again would ratchet: vLLM queues requests in the replica that took them, so a backlog stays
    where it is while new replicas come up empty, and `ready + excess` grew with every replica
    that became Ready (on the spike, one full replica took the fleet to 18 where 6 served)."""
    t = policy.targets
    queue = obs.queue or 0.0
    allowed = obs.ready_replicas * t.queue_per_replica
    if rate_signal and obs.queues:
        # A pod counts up to its own allowance: a backlog in one pod asks for that pod, not for
        # every Ready one (the rate signal holds what the backlog costs).
        queue = sum(min(w, t.queue_per_replica) for w in obs.queues)
    if queue <= allowed or rate_signal:
        return _ceil(min(queue, allowed) / t.queue_per_replica)
    return obs.ready_replicas + _ceil(_excess_queue(obs, policy) / t.queue_per_replica)


def _inflight(obs: Observation) -> float | None:
    if obs.queue is None and obs.running is None and obs.gateway_queue is None:
        return None
    return (obs.queue or 0.0) + (obs.running or 0.0) + (obs.gateway_queue or 0.0)


def arrival_rate(obs: Observation, state: State, now: float) -> tuple[float | None, str]:
    """Requests/s arriving: the gateway's count where one is in the path; otherwise completions
    plus the change in flight over the rate window (completions alone saturate under overload:
    a full fleet finishes no faster however many requests arrive).

    The change in flight is read over half the rate window and, like Knative's panic window,
    over the last scrape interval too: where the short span says BURST_RATIO times the long
    one, a burst has begun that the long span would take half a minute to show, and the short
    one is used (`burst`; on the spike its first tick asked for 5 replicas where the long span
    asked for 3)."""
    if obs.arrival_rps is not None:
        return obs.arrival_rps, "gateway"
    if obs.completion_rps is None:
        return None, "none"
    now_in = _inflight(obs)
    at = _sampled(obs, now)
    old = [p for p in state.inflight if at - p[0] >= WINDOW_S / 2]
    if now_in is None or not old:
        return obs.completion_rps, "completions"

    completions = obs.completion_rps

    def over(t0: float, v0: float) -> float:
        return max(0.0, completions + (now_in - v0) / (at - t0))

    slow = over(*old[-1])
    recent = [p for p in state.inflight if at - p[0] >= MIN_RATE_SPAN_S]
    fast = over(*recent[-1]) if recent else slow
    if fast >= BURST_RATIO * max(slow, _EPSILON):
        return fast, "burst"
    return slow, "completions+inflight"


def _sampled(obs: Observation, now: float) -> float:
    return obs.sampled_at if obs.sampled_at is not None else now


def _catching_up(obs: Observation, policy: Policy) -> bool:
    return (
        obs.starting_replicas > 0 or (obs.gateway_queue or 0) > 0 or _excess_queue(obs, policy) > 0
    )


def _settled(state: State, policy: Policy, now: float) -> bool:
    """Whether the window's requests all lived after the last catch-up: the rate window, the
    TTFT objective, and as long again as the catch-up lasted (the requests it delayed finish,
    slow, for about that long after the backlog is gone)."""
    if state.unsettled_at is None:
        return True
    lasted = state.unsettled_at - (state.unsettled_since or state.unsettled_at)
    wait = WINDOW_S + policy.slo.ttft_s + min(lasted, MAX_SETTLE_S)
    return now - state.unsettled_at >= wait


def _evidence(obs: Observation, policy: Policy, settled: bool, arrivals: float | None) -> Evidence:
    ready = max(1, _scraped(obs))
    buckets = obs.ttft_buckets

    def per(v: float | None) -> float | None:
        return None if v is None else v / ready

    return Evidence(
        ready=obs.ready_replicas,
        batch=(obs.running or 0.0) / ready,
        itl_s=obs.itl_s,
        prompt_tps=per(obs.prompt_tps),
        output_tps=per(obs.generation_tps),
        completion_rps=per(obs.completion_rps),
        kv=obs.kv_cache_utilization,
        ttft_ok=within(buckets, policy.slo.ttft_s),
        first_tokens=buckets[-1][1] * WINDOW_S if buckets else 0.0,
        tpot_ok=within(obs.tpot_buckets, policy.slo.tpot_s),
        finished=obs.tpot_buckets[-1][1] * WINDOW_S if obs.tpot_buckets else 0.0,
        settled=settled,
        load=per(arrivals),
    )


def _growth(state: State, policy: Policy, now: float, need: int, current: int) -> WarmMemory:
    """Warm capacity's memory of this decision (scaling/warm.py); beyond maxReplicas no buffer
    could help."""
    return remember(
        state.warm, now, min(need, policy.max_replicas), current, policy.startup_seconds
    )


def _median_rate(state: State, now: float) -> float | None:
    """The median arrival rate over the forecast window, before this decision."""
    before = sorted(v for t, v in state.arrivals if t < now)
    return before[len(before) // 2] if before else None


def _active(obs: Observation) -> bool:
    return any(
        (v or 0) > 0
        for v in (obs.queue, obs.running, obs.arrival_rps, obs.completion_rps, obs.gateway_queue)
    )


def _prune(state: State, policy: Policy, now: float) -> State:
    keep_recent = now - policy.scale_down_stabilization_seconds
    keep_arrivals = now - policy.forecast_window_seconds
    return replace(
        state,
        recent=tuple(x for x in state.recent if x[0] > keep_recent),
        arrivals=tuple(x for x in state.arrivals if x[0] > keep_arrivals),
        inflight=tuple(x for x in state.inflight if x[0] > now - 1.5 * WINDOW_S),
    )


def recommend(
    obs: Observation, policy: Policy, state: State, now: float
) -> tuple[Recommendation, State]:
    state = replace(state, startups=observe(state.startups, obs.startups))
    learned_startup = estimate(state.startups) is not None
    policy = replace(policy, startup_seconds=lookahead(state.startups, policy.startup_seconds))
    state = _prune(state, policy, now)
    if state.started_at is None:
        # Like Knative after a restart: the windows are empty, so the first stabilization window
        # is spent in panic mode (no scale-down) until they hold real history.
        state = replace(
            state,
            started_at=now,
            panic_until=max(state.panic_until, now + policy.scale_down_stabilization_seconds),
        )
    current = obs.current_replicas
    scheduled = schedule_floor(policy.schedules, now, policy.startup_seconds)
    spare = spare_floor(state.bursts, now, policy.short_burst_hold_seconds)
    if state.last_active_at is None or now - state.last_active_at >= policy.idle_to_zero_seconds:
        # Spares serve the next burst of a model in use; an idle one keeps none (and reaches
        # zero when it may).
        spare = 0
    floor = min(policy.max_replicas, max(policy.min_replicas, scheduled, spare))
    gateway_waiting = (obs.gateway_queue or 0) > 0
    if gateway_waiting:
        floor = max(floor, 1)

    age = now - (obs.sampled_at if obs.sampled_at is not None else obs.at)
    if age > policy.stale_after_seconds or not obs.has_load_signal:
        why = (
            f"metrics are {age:.0f}s old (stale after {policy.stale_after_seconds:.0f}s)"
            if obs.has_load_signal
            else "no load signal is available"
        )
        # Requests held at the gateway still say how many replicas to wake (or add) for them.
        waking = _ceil((obs.gateway_queue or 0) / policy.targets.queue_per_replica)
        want = min(policy.max_replicas, max(current, floor, waking))
        reason = f"holding {want} replicas: {why}; never scaling down without data"
        if waking > current:
            reason = (
                f"scale up to {want}: {obs.gateway_queue:g} requests wait at the gateway; "
                f"otherwise {why}"
            )
        rec = Recommendation(
            want,
            reason,
            {},
            holding=True,
            limited=want != current,
            limited_by="minReplicas" if want > current else "",
            capacity=per_replica_capacity(policy, state),
            startup_seconds=policy.startup_seconds,
            startup_learned=learned_startup,
        )
        if waking:
            # Remembered like any need, so stabilization keeps the woken replicas a while.
            state = replace(state, recent=(*state.recent, (now, waking)))
        return rec, replace(
            state, last_replicas=want, warm=_growth(state, policy, now, waking, current)
        )

    rate, source = arrival_rate(obs, state, now)
    inflight = _inflight(obs)
    at = _sampled(obs, now)
    if inflight is not None and (not state.inflight or state.inflight[-1][0] < at):
        # Stamped with the scrape's time: a tick that sees the same scrape again adds nothing.
        state = replace(state, inflight=(*state.inflight, (at, inflight)))
    if _catching_up(obs, policy) or state.started_at == now:
        episode = state.unsettled_since
        if state.unsettled_at is None or now - state.unsettled_at > policy.startup_seconds:
            episode = now
        state = replace(state, unsettled_at=now, unsettled_since=episode)
    settled = _settled(state, policy, now)
    state = replace(
        state,
        throughput=learn(
            state.throughput,
            _evidence(obs, policy, settled, rate),
            now,
            policy.prior or GENERIC_PRIOR,
            policy.slo,
            policy.targets.kv_cache_utilization,
        ),
    )
    cap = per_replica_capacity(policy, state)
    signals = _signals(obs, policy, state, now, rate, cap)
    if rate is not None:
        state = replace(state, arrivals=(*state.arrivals, (now, rate)))
    if _active(obs):
        state = replace(state, last_active_at=now)

    raw = max((v for v in signals.values() if v is not None), default=0)
    idle_for = now - state.last_active_at if state.last_active_at is not None else math.inf
    if raw == 0 and policy.min_replicas == 0 and idle_for < policy.idle_to_zero_seconds:
        # Recently busy: keep one replica warm until the idle period has passed.
        raw = 1 if current > 0 else 0
    state = replace(
        state,
        recent=(*state.recent, (now, raw)),
        warm=_growth(state, policy, now, raw, current),
    )

    panic = raw >= policy.panic_threshold * max(1, obs.ready_replicas) and raw > current
    if panic:
        state = replace(state, panic_until=now + policy.panic_window_seconds)
    target = _target_rps(policy, cap) if cap is not None and cap.rps > 0 else None
    state = replace(
        state,
        bursts=watch(
            state.bursts,
            now,
            panic=panic,
            rps=rate,
            base_rps=_median_rate(state, now),
            target_rps=target,
            startup_seconds=policy.startup_seconds,
            spare=policy.short_burst_spare,
        ),
    )
    in_panic = now < state.panic_until

    limited_by = ""
    if raw == current + 1 and not panic:
        recent = [r for t, r in state.recent if t >= now - policy.scale_up_confirm_seconds]
        if min(recent, default=raw) <= current:
            raw, limited_by = current, "confirming"
    if raw > current:
        step_cap = max(
            math.ceil(current * policy.scale_up_max_factor), current + policy.scale_up_min_step
        )
        want = min(raw, step_cap)
        if want < raw:
            limited_by = "scaleUpRate"
    else:
        stabilized = max(r for _, r in state.recent)
        want = min(current, stabilized)
        # A scale-down decided but not applied yet (KEDA and the HPA act on their own clocks)
        # stands: answering `current` again would flip the decision every tick.
        pending = state.last_replicas
        if pending is None or pending >= current:
            pending = current
        if want < current:
            if in_panic:
                want, limited_by = current, "panic"
            elif now - state.last_scale_down_at < policy.scale_down_period_seconds:
                if pending > want:
                    limited_by = "scaleDownRate"
                want = max(want, pending)
            else:
                step = max(
                    policy.scale_down_max_step,
                    math.floor(current * policy.scale_down_max_percent / 100),
                )
                if current - want > step:
                    want, limited_by = current - step, "scaleDownRate"
        elif stabilized > raw and not limited_by:
            limited_by = "stabilization"

    final = min(policy.max_replicas, max(floor, want))
    if final > want:
        limited_by = (
            "minReplicas"
            if floor == policy.min_replicas
            else "schedule"
            if floor == scheduled
            else "shortBursts"
        )
    elif final < want:
        limited_by = "maxReplicas"
    if final < current and (state.last_replicas is None or final < state.last_replicas):
        state = replace(state, last_scale_down_at=now)
    state = replace(state, last_replicas=final)

    parts = [f"{name} asks {v}" for name, v in signals.items() if v is not None]
    verb = "scale up to" if final > current else "scale down to" if final < current else "keep"
    reason = f"{verb} {final}: " + ", ".join(parts)
    if in_panic:
        reason += f" (panic: demand >= {policy.panic_threshold:g}x ready capacity)"
    if limited_by:
        reason += f"; limited by {limited_by}"
    detail = ""
    if limited_by == "shortBursts":
        detail = (
            f"keeping {spare} Ready replicas (spec.autoscaling.behavior.shortBursts): a burst "
            "was over before the replicas launched for it were Ready"
        )
    rec = Recommendation(
        replicas=final,
        reason=reason,
        by_signal=signals,
        panic=in_panic,
        limited=bool(limited_by) and limited_by != "stabilization",
        limited_by=limited_by,
        limit_detail=detail,
        capacity=cap,
        arrival_source=source,
        startup_seconds=policy.startup_seconds,
        startup_learned=learned_startup,
    )
    return rec, state
