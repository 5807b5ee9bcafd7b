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


# Who writes which condition types. Each writer applies its own with server-side apply (the
# list is keyed by type), so two writers that run at once never erase each other's conditions,
# as whole-list merge patches did.
WORKLOAD_CONDITIONS = frozenset(
    {"Ready", "Progressing", "Degraded", "Reconciling", "Stalled", "CapacityPlanned"}
)
SCALING_CONDITIONS = frozenset({"ScalingActive", "ScalingLimited"})


def owned(conditions: list[dict[str, Any]], types: frozenset[str]) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") in types]


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

    desired: int  # the InferenceDeployment's spec.replicas
    replicas: int  # the Deployment's status.replicas (pods of every revision, not terminating)
    ready: int
    updated: int  # pods of the newest revision
    available: int | None = None  # None: same as ready (views made before it was read)
    # The Deployment's metadata.generation and status.observedGeneration: until the Deployment
    # controller has seen our newest spec, its counts describe the old one.
    generation: int = 0
    observed_generation: int = 0
    unschedulable: str | None = None  # the scheduler's message, when pods wait too long
    pool_limit: str | None = None  # why our NodePool launches no more nodes (its limits)
    stuck: str | None = None  # the Deployment's ProgressDeadlineExceeded message
    invalid: str | None = None  # a spec problem the schema could not see
    invalid_reason: str = "InvalidSpec"  # or PolicyDenied: an InferencePolicy forbids it
    budget: str | None = None  # why fewer replicas run than asked (the namespace's budget)

    @property
    def rollout_done(self) -> bool:
        """`kubectl rollout status` says complete: the newest spec seen, every pod of it, none
        of an older one, all available."""
        available = self.ready if self.available is None else self.available
        return (
            self.observed_generation >= self.generation
            and self.updated >= self.desired
            and self.replicas <= self.updated
            and available >= self.desired
        )


def workload_conditions(v: WorkloadView) -> list[Cond]:
    """Our conditions plus kstatus' Reconciling and Stalled (what Flux and kstatus read)."""
    if v.invalid:
        why = v.invalid_reason
        return [
            Cond("Ready", "False", why, v.invalid),
            Cond("Progressing", "False", why, v.invalid),
            Cond("Degraded", "True", why, v.invalid),
            Cond("Reconciling", "False", why, v.invalid),
            Cond("Stalled", "True", why, v.invalid),
        ]
    done = v.rollout_done and v.ready >= v.desired
    counts = f"{v.updated}/{v.desired} replicas updated, {v.ready} ready"
    if v.observed_generation < v.generation:
        ready_c = Cond(
            "Ready", "False", "RolloutPending", "the Deployment has not seen the newest spec yet"
        )
    elif v.desired == 0:
        ready_c = (
            Cond("Ready", "True", "ScaledToZero", "no replicas are requested")
            if v.replicas == 0
            else Cond("Ready", "False", "ScalingDown", f"{v.replicas} replicas still running")
        )
    elif done:
        ready_c = Cond(
            "Ready", "True", "AllReplicasReady", f"{v.ready}/{v.desired} replicas are ready"
        )
    elif v.rollout_done or v.updated >= v.desired:
        ready_c = Cond(
            "Ready", "False", "ReplicasNotReady", f"{v.ready}/{v.desired} replicas are ready"
        )
    else:
        ready_c = Cond("Ready", "False", "RollingOut", counts)
    ready = ready_c.status == "True"
    progressing = (
        Cond("Progressing", "False", "Stable", "the rollout is complete")
        if ready
        else Cond("Progressing", "True", "RollingOut", counts)
    )
    if v.unschedulable and v.pool_limit:
        degraded = Cond(
            "Degraded", "True", "NodePoolLimitReached", f"{v.pool_limit}; {v.unschedulable}"
        )
    elif v.unschedulable:
        degraded = Cond("Degraded", "True", "InsufficientCapacity", v.unschedulable)
    elif v.stuck:
        degraded = Cond("Degraded", "True", "ProgressDeadlineExceeded", v.stuck)
    elif v.budget:
        degraded = Cond("Degraded", "True", "LimitedByBudget", v.budget)
    else:
        degraded = Cond("Degraded", "False", "AsExpected", "no problems seen")
    stalled = degraded.status == "True"
    return [
        ready_c,
        progressing,
        degraded,
        # kstatus: Reconciling while work toward the spec goes on; Stalled when it cannot
        # without help. Never both True.
        Cond("Reconciling", "False", "Stable", "the rollout is complete")
        if ready
        else Cond(
            "Reconciling",
            "False" if stalled else "True",
            degraded.reason if stalled else ready_c.reason,
            degraded.message if stalled else ready_c.message,
        ),
        Cond("Stalled", "True", degraded.reason, degraded.message)
        if stalled
        else Cond("Stalled", "False", "AsExpected", "no problems seen"),
    ]


def deployment_view(
    desired: int,
    deploy: dict[str, Any] | None,
    unschedulable: str | None = None,
    pool_limit: str | None = None,
) -> WorkloadView:
    """The view from a Deployment object as the API server returns it (None: not made yet)."""
    d = deploy or {}
    st = d.get("status") or {}
    stuck = next(
        (
            str(c.get("message") or "")
            for c in st.get("conditions") or []
            if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        ),
        None,
    )
    return WorkloadView(
        desired=desired,
        replicas=int(st.get("replicas") or 0),
        ready=int(st.get("readyReplicas") or 0),
        updated=int(st.get("updatedReplicas") or 0),
        available=int(st.get("availableReplicas") or 0),
        # No Deployment yet: generation 1, seen 0 (pending), unless nothing is asked for.
        generation=int((d.get("metadata") or {}).get("generation") or (1 if desired else 0)),
        observed_generation=int(st.get("observedGeneration") or 0),
        unschedulable=unschedulable,
        pool_limit=pool_limit,
        stuck=stuck,
    )
