"""Status as a pure function of the old status and what a pass saw: the conditions (ours and
kstatus'), when Ready may be said, and what is written (nothing, at steady state)."""

from __future__ import annotations

from typing import Any

import pytest

from inference_operator.api.conditions import Cond, WorkloadView, deployment_view
from inference_operator.api.status import (
    Observed,
    StatusUpdate,
    invalid_status_patch,
    status_patch,
)

# WorkloadView(desired, replicas, ready, updated, available, generation, observed_generation)
CASES: list[tuple[str, WorkloadView, dict[str, tuple[str, str]]]] = [
    (
        "all ready, rollout seen",
        WorkloadView(2, 2, 2, 2, 2, 3, 3),
        {
            "Ready": ("True", "AllReplicasReady"),
            "Progressing": ("False", "Stable"),
            "Degraded": ("False", "AsExpected"),
            "Reconciling": ("False", "Stable"),
            "Stalled": ("False", "AsExpected"),
        },
    ),
    (
        # Right after a spec edit: the old pods are all ready, but the Deployment controller has
        # not seen generation 4 yet. Saying Ready here is the bug this row pins.
        "spec edited, controller behind",
        WorkloadView(2, 2, 2, 2, 2, 4, 3),
        {"Ready": ("False", "RolloutPending"), "Reconciling": ("True", "RolloutPending")},
    ),
    (
        "new revision rolling: old pods still up",
        WorkloadView(2, 3, 3, 1, 3, 4, 4),
        {"Ready": ("False", "RollingOut"), "Progressing": ("True", "RollingOut")},
    ),
    (
        "updated but not yet available",
        WorkloadView(2, 2, 1, 2, 1, 4, 4),
        {"Ready": ("False", "ReplicasNotReady"), "Reconciling": ("True", "ReplicasNotReady")},
    ),
    (
        "scaling up",
        WorkloadView(3, 3, 1, 3, 1, 2, 2),
        {"Ready": ("False", "ReplicasNotReady"), "Progressing": ("True", "RollingOut")},
    ),
    ("at zero", WorkloadView(0, 0, 0, 0, 0, 2, 2), {"Ready": ("True", "ScaledToZero")}),
    (
        "going to zero, pods left",
        WorkloadView(0, 2, 2, 2, 2, 2, 2),
        {"Ready": ("False", "ScalingDown"), "Reconciling": ("True", "ScalingDown")},
    ),
    (
        "no capacity: stalled, not reconciling",
        WorkloadView(1, 1, 0, 1, 0, 1, 1, unschedulable="0/3 nodes are available"),
        {
            "Degraded": ("True", "InsufficientCapacity"),
            "Stalled": ("True", "InsufficientCapacity"),
            "Reconciling": ("False", "InsufficientCapacity"),
        },
    ),
    (
        "our NodePool at its limits: said so, not 'no capacity'",
        WorkloadView(
            2, 2, 1, 2, 1, 1, 1, unschedulable="0/3 nodes", pool_limit="NodePool p is at its limits"
        ),
        {"Degraded": ("True", "NodePoolLimitReached"), "Stalled": ("True", "NodePoolLimitReached")},
    ),
    (
        "progress deadline exceeded",
        WorkloadView(1, 1, 0, 1, 0, 1, 1, stuck="ReplicaSet has timed out progressing"),
        {
            "Degraded": ("True", "ProgressDeadlineExceeded"),
            "Stalled": ("True", "ProgressDeadlineExceeded"),
        },
    ),
    (
        "invalid spec",
        WorkloadView(0, 0, 0, 0, invalid="spec.x: bad"),
        {"Ready": ("False", "InvalidSpec"), "Stalled": ("True", "InvalidSpec")},
    ),
]


@pytest.mark.parametrize(("name", "view", "want"), CASES, ids=[c[0] for c in CASES])
def test_conditions(name: str, view: WorkloadView, want: dict[str, tuple[str, str]]) -> None:
    from inference_operator.api.conditions import workload_conditions

    got = {c.type: (c.status, c.reason) for c in workload_conditions(view)}
    assert {k: got[k] for k in want} == want
    assert not (got["Reconciling"][0] == "True" and got["Stalled"][0] == "True")


def _deployment(generation: int, observed: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {"observedGeneration": observed, **status},
    }


def test_deployment_view_reads_generations_and_deadline() -> None:
    v = deployment_view(
        2,
        _deployment(
            5,
            4,
            replicas=2,
            readyReplicas=2,
            updatedReplicas=2,
            availableReplicas=2,
            conditions=[
                {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "slow"}
            ],
        ),
    )
    assert (v.generation, v.observed_generation, v.stuck) == (5, 4, "slow")
    assert not v.rollout_done
    assert not deployment_view(1, None).rollout_done  # not made yet: pending
    assert deployment_view(0, None).rollout_done


def _seen(view: WorkloadView, **kw: Any) -> Observed:
    base: dict[str, Any] = {
        "generation": 3,
        "view": view,
        "selector": "infer.dev/deployment=llama",
        "spec_replicas": view.desired,
        "autoscaling": True,
        "capacity": {"fits": True, "note": None},
        "planned": Cond("CapacityPlanned", "True", "Fits", "ok"),
    }
    return Observed(**{**base, **kw})


def _written(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`old` after the API server merges `patch` (null deletes)."""
    out = dict(old)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _written(out[k], v)
        else:
            out[k] = v
    return out


def _after(old: dict[str, Any], update: StatusUpdate) -> dict[str, Any]:
    """`old` after the merge patch and the server-side apply of the conditions (keyed by type:
    the entries of the reconciler's types are replaced, the others kept)."""
    out = _written(old, update.patch)
    if update.conditions is not None:
        mine = {c["type"] for c in update.conditions}
        kept = [c for c in out.get("conditions") or [] if c["type"] not in mine]
        out["conditions"] = [*kept, *update.conditions]
    return out


def test_second_pass_over_the_same_world_writes_nothing() -> None:
    seen = _seen(WorkloadView(2, 2, 2, 2, 2, 1, 1), autoscaling=False)
    first = status_patch({}, seen, "t1")
    assert first.patch["readyReplicas"] == 2 and first.patch["observedGeneration"] == 3
    assert first.patch["desiredReplicas"] == 2
    assert first.conditions is not None
    second = status_patch(_after({}, first), seen, "t2")
    assert second.patch == {} and second.conditions is None and second.warnings == []


def test_desired_replicas_belong_to_the_recommender_when_autoscaling() -> None:
    # Even before it first spoke: two writers of one field overwrite each other's value.
    for old in ({}, {"recommendation": {"replicas": 4}, "desiredReplicas": 4}):
        assert (
            "desiredReplicas" not in status_patch(old, _seen(WorkloadView(2, 2, 2, 2)), "t").patch
        )
    off = _seen(WorkloadView(2, 2, 2, 2), autoscaling=False)
    assert status_patch({"desiredReplicas": 4}, off, "t").patch["desiredReplicas"] == 2


def test_conditions_written_are_the_reconcilers_only() -> None:
    """The autoscaler's conditions in `old` are neither written back nor dropped: a pass that
    read them before the autoscaler changed them must not put the old ones back."""
    scaling = {"type": "ScalingActive", "status": "True", "reason": "ValidMetrics"}
    update = status_patch({"conditions": [scaling]}, _seen(WorkloadView(1, 1, 1, 1, 1, 1, 1)), "t")
    assert update.conditions is not None
    types = {c["type"] for c in update.conditions}
    assert types == {
        "Ready",
        "Progressing",
        "Degraded",
        "Reconciling",
        "Stalled",
        "CapacityPlanned",
    }
    assert "conditions" not in update.patch


def test_warnings_once_per_new_reason() -> None:
    stuck = _seen(WorkloadView(1, 1, 0, 1, 0, 1, 1, unschedulable="no nodes"))
    first = status_patch({}, stuck, "t1")
    assert [c.reason for c in first.warnings] == ["InsufficientCapacity"]
    again = status_patch(_after({}, first), stuck, "t2")
    assert again.warnings == []


def test_dropped_capacity_keys_are_nulled() -> None:
    old = {"capacity": {"fits": True, "weightsGiB": 16}}
    patch = status_patch(old, _seen(WorkloadView(1, 1, 1, 1, 1, 1, 1)), "t").patch
    assert patch["capacity"] == {"weightsGiB": None, "fits": True}


def test_invalid_spec_is_reported_once_per_generation() -> None:
    first = invalid_status_patch({}, "spec.x: bad", 2, "t1")
    assert [c.reason for c in first.warnings] == ["InvalidSpec"]
    again = invalid_status_patch(_after({}, first), "spec.x: bad", 2, "t2")
    assert again.patch == {} and again.conditions is None
    assert invalid_status_patch(_written({}, first.patch), "spec.x: bad", 3, "t3").patch


def test_the_reconciler_neither_writes_nor_drops_what_the_autoscaler_learned() -> None:
    """status.capacity has two writers: the plan is the reconciler's, perReplica and startup
    the autoscaler's. A pass that read old learned numbers must not put them back."""
    learned = {"perReplica": {"requestsPerSecond": 3.9, "source": "learned"}, "startup": {}}
    old = {"capacity": {"fits": True, "weightsGiB": 16, **learned}}
    patch = status_patch(old, _seen(WorkloadView(1, 1, 1, 1, 1, 1, 1)), "t").patch
    assert patch["capacity"] == {"weightsGiB": None, "fits": True}
    assert _written(old, patch)["capacity"] == {"fits": True, **learned}
    same = {"capacity": {"fits": True, **learned}}
    assert "capacity" not in status_patch(same, _seen(WorkloadView(1, 1, 1, 1, 1, 1, 1)), "t").patch
