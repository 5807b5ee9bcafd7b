"""The scaling decision: a pure function of (observation, policy, state, now).

The shape follows Knative's decider: every signal says how many replicas it needs, the largest
wins; scale up at once (bounded), scale down only to the highest need seen over a stabilization
window, a replica at a time; no data means no change.
"""

from __future__ import annotations

import math
from dataclasses import replace

from inference_operator.scaling.forecast import forecast_rate
from inference_operator.scaling.model import Observation, Policy, Recommendation, State
from inference_operator.scaling.schedule import schedule_floor
from inference_operator.scaling.warm import WarmMemory, remember

# Ratios are rounded up, but float noise (0.8 / 0.8 * 3 = 3.0000000000000004) must not buy a
# replica: anything within this of an integer counts as that integer.
_EPSILON = 1e-6


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _EPSILON))


def _signals(obs: Observation, policy: Policy, state: State, now: float) -> dict[str, int | None]:
    t = policy.targets
    out: dict[str, int | None] = {"queue": None, "kvCache": None, "rps": None, "gateway": None}
    if obs.queue is not None:
        out["queue"] = _queue_demand(obs, policy)
    if obs.kv_cache_utilization is not None and obs.ready_replicas > 0:
        # HPA's Utilization arithmetic over the Ready replicas only: the starting ones carry no
        # KV cache yet, and counting them would dilute the pressure and add them twice.
        out["kvCache"] = _ceil(
            obs.ready_replicas * obs.kv_cache_utilization / t.kv_cache_utilization
        )
    rate = obs.arrival_rps if obs.arrival_rps is not None else obs.completion_rps
    if rate is not None and t.requests_per_second_per_replica is not None:
        points = [*state.arrivals, (now, rate)]
        expected = forecast_rate(points, policy.startup_seconds, policy.forecast_max_growth)
        out["rps"] = _ceil(expected / t.requests_per_second_per_replica)
    if obs.gateway_queue is not None:
        out["gateway"] = _ceil(obs.gateway_queue / t.queue_per_replica)
    return out


def _queue_demand(obs: Observation, policy: Policy) -> int:
    """Up to `queue_per_replica` waiting per Ready replica this is HPA's AverageValue arithmetic
    (waiting / target). Beyond it, the excess asks for the replicas that would drain it within
    one start-up time: a burst that the Ready replicas clear before a new one could serve buys
    nothing but idle GPUs, while a queue that persists keeps asking until it is gone."""
    t = policy.targets
    queue = obs.queue or 0.0
    allowed = obs.ready_replicas * t.queue_per_replica
    if queue <= allowed:
        return _ceil(queue / t.queue_per_replica)
    excess = queue - allowed
    per_replica = t.queue_per_replica
    if t.requests_per_second_per_replica is not None:
        per_replica = max(per_replica, t.requests_per_second_per_replica * policy.startup_seconds)
    return obs.ready_replicas + _ceil(excess / per_replica)


def _growth(state: State, policy: Policy, now: float, need: int, current: int) -> WarmMemory:
    """Warm capacity's memory of this decision (scaling/warm.py); beyond maxReplicas no buffer
    could help."""
    return remember(
        state.warm, now, min(need, policy.max_replicas), current, policy.startup_seconds
    )


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
    )


def recommend(
    obs: Observation, policy: Policy, state: State, now: float
) -> tuple[Recommendation, State]:
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
    floor = min(
        policy.max_replicas,
        max(policy.min_replicas, schedule_floor(policy.schedules, now, policy.startup_seconds)),
    )
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
        )
        if waking:
            # Remembered like any need, so stabilization keeps the woken replicas a while.
            state = replace(state, recent=(*state.recent, (now, waking)))
        return rec, replace(
            state, last_replicas=want, warm=_growth(state, policy, now, waking, current)
        )

    signals = _signals(obs, policy, state, now)
    rate = obs.arrival_rps if obs.arrival_rps is not None else obs.completion_rps
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
    in_panic = now < state.panic_until

    limited_by = ""
    if raw > current:
        cap = max(
            math.ceil(current * policy.scale_up_max_factor), current + policy.scale_up_min_step
        )
        want = min(raw, cap)
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
        elif stabilized > raw:
            limited_by = "stabilization"

    final = min(policy.max_replicas, max(floor, want))
    if final > want:
        limited_by = "minReplicas" if floor == policy.min_replicas else "schedule"
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
    rec = Recommendation(
        replicas=final,
        reason=reason,
        by_signal=signals,
        panic=in_panic,
        limited=bool(limited_by) and limited_by != "stabilization",
        limited_by=limited_by,
    )
    return rec, state
