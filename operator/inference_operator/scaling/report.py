"""A decision as the InferenceDeployment's status shows it: signals, recommendation and the
ScalingActive / ScalingLimited conditions (HPA's names, so `kubectl describe` reads alike). Pure."""

from __future__ import annotations

import math
from typing import Any

from inference_operator.api.conditions import Cond, without_nulls
from inference_operator.scaling.model import Observation, Policy, Recommendation, State
from inference_operator.scaling.startup import estimate

LIMIT_REASONS = {
    "minReplicas": "TooFewReplicas",
    "schedule": "ScheduleFloor",
    "shortBursts": "ShortBurstSpares",
    "maxReplicas": "TooManyReplicas",
    "scaleUpRate": "ScaleUpLimited",
    "scaleDownRate": "ScaleDownLimited",
    "panic": "PanicMode",
    "budget": "LimitedByBudget",
}


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def signals_status(
    obs: Observation, stamp: str, rec: Recommendation | None = None
) -> dict[str, Any]:
    # Rounded so that noise in the last digits does not cost a status write.
    out: dict[str, Any] = {
        "queue": _round(obs.queue, 1),
        "kvCacheUtilization": _round(obs.kv_cache_utilization, 3),
        "requestsPerSecond": _round(
            obs.arrival_rps if obs.arrival_rps is not None else obs.completion_rps, 2
        ),
        "gatewayQueue": _round(obs.gateway_queue, 1),
        "observedAt": stamp,
    }
    if rec is not None and rec.arrival_source != "none":
        out["arrivalSource"] = rec.arrival_source
    return out


def _significant(v: float, digits: int = 2) -> float:
    """Two significant digits: a capacity that drifts by a percent is not worth a write."""
    if v <= 0:
        return 0.0
    return round(v, -math.floor(math.log10(v)) + digits - 1)


def learned_status(rec: Recommendation, state: State, stamp: str) -> dict[str, Any]:
    """status.capacity.perReplica and .startup: what one replica sustains and how long one takes
    to start, and where each number comes from (updatedAt is when the numbers last changed)."""
    out: dict[str, Any] = {}
    cap = rec.capacity
    if cap is not None:
        out["perReplica"] = {
            "requestsPerSecond": _significant(cap.rps),
            "tokensPerSecond": _significant(cap.tokens_per_s) if cap.tokens_per_s else None,
            "source": cap.source,
            "boundBy": cap.bound_by,
            "samples": cap.samples,
            "updatedAt": stamp,
        }
    new_node, found = estimate(state.startups, True), estimate(state.startups, False)
    out["startup"] = {
        "seconds": round(rec.startup_seconds),
        "source": "learned" if rec.startup_learned else "spec",
        "newNodeSeconds": None if new_node is None else round(new_node),
        "existingNodeSeconds": None if found is None else round(found),
        "samples": len(state.startups.observed),
        "updatedAt": stamp,
    }
    return {k: without_nulls(v) for k, v in out.items()}


def learned_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the learned numbers differ in what a user reads (not in samples or time)."""

    def visible(d: dict[str, Any]) -> dict[str, Any]:
        return {
            part: {
                k: v for k, v in (d.get(part) or {}).items() if k not in ("samples", "updatedAt")
            }
            for part in ("perReplica", "startup")
        }

    return visible(old) != visible(new)


def scaling_active(obs: Observation, policy: Policy, error: str | None, source: str) -> Cond:
    if error is not None:
        return Cond(
            "ScalingActive",
            "False",
            "PrometheusUnavailable",
            f"cannot read metrics ({error}); holding replicas, never scaling down without data",
        )
    if obs.sampled_at is not None and obs.at - obs.sampled_at > policy.stale_after_seconds:
        return Cond(
            "ScalingActive",
            "False",
            "MetricsStale",
            f"the newest vLLM sample is {obs.at - obs.sampled_at:.0f}s old (stale after "
            f"{policy.stale_after_seconds:.0f}s); holding replicas",
        )
    if not obs.has_load_signal and obs.gateway_queue is None:
        if obs.current_replicas == 0:
            return Cond(
                "ScalingActive",
                "True",
                "ScaledToZero",
                "at zero replicas; the gateway's waiting requests wake the model",
            )
        return Cond(
            "ScalingActive",
            "False",
            "NoMetrics",
            f"{source} has no vLLM series for these pods yet (are they scraped? a PodMonitor "
            "or scrape annotations); holding replicas",
        )
    return Cond("ScalingActive", "True", "ReadingMetrics", f"signals read from {source}")


def scaling_limited(rec: Recommendation) -> Cond:
    # Messages without live numbers: a condition that changes every tick costs a write per tick.
    if rec.limited and rec.limited_by in LIMIT_REASONS:
        return Cond(
            "ScalingLimited",
            "True",
            LIMIT_REASONS[rec.limited_by],
            rec.limit_detail or f"the recommendation ({rec.replicas}) is held by {rec.limited_by}",
        )
    return Cond(
        "ScalingLimited",
        "False",
        "DesiredWithinRange",
        "the recommendation is what the signals ask for",
    )
