"""The InferenceDeployment's status as a pure function of its old status and what a pass
observed: the handler gathers, calls `status_patch`, writes the patch and posts the Events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference_operator.api.conditions import (
    WORKLOAD_CONDITIONS,
    Cond,
    WorkloadView,
    conditions_equal,
    owned,
    replacing,
    set_conditions,
    without_nulls,
    workload_conditions,
)

# Keys of status.capacity the autoscaler writes (what it learned); the reconciler's pass neither
# writes nor removes them.
LEARNED_CAPACITY = ("perReplica", "startup")
# Conditions whose arrival (or change of reason) is worth a Warning Event.
_WARN = {("Degraded", "True"), ("CapacityPlanned", "False")}


@dataclass(frozen=True)
class Observed:
    """What one reconcile pass saw."""

    generation: int | None  # the InferenceDeployment's metadata.generation
    view: WorkloadView
    selector: str
    spec_replicas: int
    autoscaling: bool  # spec.autoscaling.enabled
    capacity: dict[str, Any] = field(default_factory=dict)
    planned: Cond | None = None  # CapacityPlanned
    gateway: dict[str, Any] | None = None


@dataclass(frozen=True)
class StatusUpdate:
    patch: dict[str, Any]  # a JSON merge patch of .status, conditions aside; empty: no write
    warnings: list[Cond]  # conditions to announce as Warning Events
    # The reconciler's own conditions, all of them, to server-side apply; None: unchanged.
    conditions: list[dict[str, Any]] | None = None


def status_patch(old: Mapping[str, Any], seen: Observed, stamp: str) -> StatusUpdate:
    patch: dict[str, Any] = {}
    capacity = without_nulls(seen.capacity)
    planned = {k: v for k, v in (old.get("capacity") or {}).items() if k not in LEARNED_CAPACITY}
    if planned != capacity:
        patch["capacity"] = replacing(planned, capacity)
    if old.get("gateway") != seen.gateway:
        patch["gateway"] = seen.gateway
    before = list(old.get("conditions") or [])
    new = [*workload_conditions(seen.view), *([seen.planned] if seen.planned else [])]
    conds = set_conditions(before, new, stamp, seen.generation)
    wanted: dict[str, Any] = {
        "observedGeneration": seen.generation,
        "replicas": seen.view.replicas,
        "readyReplicas": seen.view.ready,
        "selector": seen.selector,
    }
    if not seen.autoscaling:
        # With autoscaling, desiredReplicas is the recommender's alone (handlers/autoscale):
        # two writers would overwrite each other's value from their own snapshots.
        wanted["desiredReplicas"] = seen.spec_replicas
    patch.update({k: v for k, v in wanted.items() if old.get(k) != v})
    warnings: list[Cond] = []
    changed: list[dict[str, Any]] | None = None
    if not conditions_equal(before, conds):
        changed = owned(conds, WORKLOAD_CONDITIONS)
        was = {c.get("type"): c for c in before}
        warnings = [
            c
            for c in new
            if (c.type, c.status) in _WARN and (was.get(c.type) or {}).get("reason") != c.reason
        ]
    return StatusUpdate(patch, warnings, changed)


def invalid_status_patch(
    old: Mapping[str, Any],
    message: str,
    generation: int | None,
    stamp: str,
    reason: str = "InvalidSpec",
) -> StatusUpdate:
    """A spec the schema let through but the models refuse (InvalidSpec), or one an
    InferencePolicy forbids (PolicyDenied): reported once per generation and message."""
    before = list(old.get("conditions") or [])
    view = WorkloadView(0, 0, 0, 0, invalid=message, invalid_reason=reason)
    conds = set_conditions(before, workload_conditions(view), stamp, generation)
    if conditions_equal(before, conds) and old.get("observedGeneration") == generation:
        return StatusUpdate({}, [])
    return StatusUpdate(
        {"observedGeneration": generation},
        [Cond("Degraded", "True", reason, message)],
        owned(conds, WORKLOAD_CONDITIONS),
    )
