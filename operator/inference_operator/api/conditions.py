"""kstatus-style conditions, computed as pure functions of what was observed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cond:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def rfc3339(at: dt.datetime) -> str:
    """The timestamp form Kubernetes writes in status: UTC, seconds, a Z."""
    return at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def without_nulls(value: Any) -> Any:
    """A status value as it reads back after a JSON merge patch, where null means "delete":
    compare and write this form, or every pass sees a difference and writes again."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def replacing(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A merge-patch value that replaces `old` with `new`: keys `new` dropped are set to null
    (a merge patch would otherwise keep them, and the next pass would see a difference)."""
    return {**{k: None for k in (old or {}) if k not in new}, **new}


def set_conditions(
    existing: list[dict[str, Any]], new: list[Cond], now: str, generation: int | None
) -> list[dict[str, Any]]:
    """Merge `new` into `existing`, keeping lastTransitionTime when a status did not change."""
    by_type = {c.get("type"): c for c in existing}
    for c in new:
        old = by_type.get(c.type)
        since = (
            now
            if old is None or old.get("status") != c.status
            else old.get("lastTransitionTime", now)
        )
        by_type[c.type] = {
            "type": c.type,
            "status": c.status,
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": since,
            "observedGeneration": generation,
        }
    return [by_type[k] for k in sorted(by_type, key=str)]


def conditions_equal(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(cs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                c.get("message"),
                c.get("observedGeneration"),
            )
            for c in cs
        )

    return key(a) == key(b)


@dataclass(frozen=True)
class WorkloadView:
    """What the Deployment and its pods say."""

    desired: int
    replicas: int
    ready: int
    updated: int
    unschedulable: str | None = None  # the scheduler's message, when pods wait too long
    invalid: str | None = None  # a spec problem the schema could not see


def workload_conditions(v: WorkloadView) -> list[Cond]:
    if v.invalid:
        return [
            Cond("Ready", "False", "InvalidSpec", v.invalid),
            Cond("Progressing", "False", "InvalidSpec", v.invalid),
            Cond("Degraded", "True", "InvalidSpec", v.invalid),
        ]
    rolling = v.updated < v.desired or v.replicas > v.desired
    ready = v.ready >= v.desired and not rolling
    if v.desired == 0:
        ready_c = Cond("Ready", "True", "ScaledToZero", "no replicas are requested")
    elif ready:
        ready_c = Cond(
            "Ready", "True", "AllReplicasReady", f"{v.ready}/{v.desired} replicas are ready"
        )
    else:
        ready_c = Cond(
            "Ready", "False", "ReplicasNotReady", f"{v.ready}/{v.desired} replicas are ready"
        )
    progressing = (
        Cond(
            "Progressing",
            "True",
            "RollingOut",
            f"{v.updated}/{v.desired} replicas updated, {v.ready} ready",
        )
        if not ready and v.desired > 0
        else Cond("Progressing", "False", "Stable", "the rollout is complete")
    )
    if v.unschedulable:
        degraded = Cond("Degraded", "True", "InsufficientCapacity", v.unschedulable)
    else:
        degraded = Cond("Degraded", "False", "AsExpected", "no problems seen")
    return [ready_c, progressing, degraded]
