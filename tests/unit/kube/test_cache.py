"""The children cache: what an index keeps of a child, lookups by owner, pods that cannot be
scheduled, and the tolerance of the HPA that KEDA made."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from inference_operator.kube.children import (
    Children,
    first_stuck,
    hpa_tolerance,
    pool_limit_reached,
    startup_of,
    trimmed,
)

DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "llama", "managedFields": [{"manager": "x"}], "labels": {"a": "b"}},
    "spec": {"replicas": 2},
    "status": {"readyReplicas": 2},
}


def test_trimmed_drops_managed_fields_and_copies() -> None:
    kept = trimmed(DEPLOY, keep_status=True).object()
    assert "managedFields" not in kept["metadata"] and kept["status"] == {"readyReplicas": 2}
    kept["spec"]["replicas"] = 9
    assert DEPLOY["spec"]["replicas"] == 2
    assert "status" not in trimmed(DEPLOY, keep_status=False).object()
    assert trimmed(DEPLOY, keep_status=False).name == "llama"


def test_children_reads_only_cached_kinds_of_its_owner() -> None:
    indexes = {"children_deployments": {("serving", "llama"): [trimmed(DEPLOY, True)]}}
    mine = Children(("serving", "llama"), indexes, frozenset({("apps/v1", "Deployment")}))
    assert mine.get("apps/v1", "Deployment", "llama") is not None
    assert mine.get("apps/v1", "Deployment", "other") is None
    assert mine.get("v1", "Service", "llama") is None
    assert mine.is_cached("apps/v1", "Deployment")
    assert not mine.is_cached("keda.sh/v1alpha1", "ScaledObject")
    theirs = Children(("serving", "other"), indexes, frozenset({("apps/v1", "Deployment")}))
    assert theirs.get("apps/v1", "Deployment", "llama") is None


def test_first_stuck_waits_for_the_threshold() -> None:
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    pods = [
        ("llama-b", "2026-11-30T11:59:00Z", "0/3 nodes"),
        ("llama-a", "2026-11-30T11:59:50Z", "x"),
    ]
    assert first_stuck(pods, now, 120) is None
    assert first_stuck(pods, now, 30) == "pod llama-b cannot be scheduled: 0/3 nodes"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({}, 0.1),
        ({"behavior": {"scaleUp": {"policies": []}}}, 0.1),
        ({"behavior": {"scaleUp": {"tolerance": "0"}}}, 0.0),
        ({"behavior": {"scaleUp": {"tolerance": "50m"}}}, 0.05),
        ({"behavior": {"scaleUp": {"tolerance": "nonsense"}}}, 0.1),
    ],
)
def test_hpa_tolerance(spec: dict[str, Any], want: float) -> None:
    assert hpa_tolerance(spec) == pytest.approx(want)


def test_an_apply_that_needs_no_write_makes_no_request_and_no_metric_series() -> None:
    """The bench at 5,000 models found apply() counted under a label made of the live object:
    a new series per object version, hundreds of MB. Kinds are names."""
    from inference_operator import telemetry
    from inference_operator.kube.apply import apply, stamped

    desired = {k: v for k, v in DEPLOY.items() if k != "status"}
    desired["metadata"] = {"name": "llama"}
    live = stamped(desired)

    def series() -> set[tuple[str, ...]]:
        return {
            tuple(s.labels.values())
            for m in telemetry.API_CALLS.collect()
            for s in m.samples
            if s.name.endswith("_total")
        }

    before = series()
    assert apply(desired, live) is None
    assert series() == before
    assert all(len(kind) < 64 for _, kind, _ in series())


def _pool(limits: dict[str, str], used: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"limits": limits}, "status": {"resources": used}}


@pytest.mark.parametrize(
    ("limits", "used", "reached"),
    [
        ({"nvidia.com/gpu": "4"}, {"nvidia.com/gpu": "2"}, False),
        # One more 2-GPU replica would pass the limit of 3.
        ({"nvidia.com/gpu": "3"}, {"nvidia.com/gpu": "2"}, True),
        (
            {"nvidia.com/gpu": "8", "memory": "64Gi"},
            {"nvidia.com/gpu": "2", "memory": "64Gi"},
            True,
        ),
        ({"nvidia.com/gpu": "8", "cpu": "96"}, {"nvidia.com/gpu": "2", "cpu": "95500m"}, False),
        ({"nvidia.com/gpu": "8"}, {}, False),
        ({"nvidia.com/gpu": "lots"}, {"nvidia.com/gpu": "9"}, False),
    ],
)
def test_pool_limit_reached(limits: dict[str, str], used: dict[str, str], reached: bool) -> None:
    why = pool_limit_reached(_pool(limits, used), "nvidia.com/gpu", 2)
    assert (why is not None) == reached
    if why:
        assert why.startswith("NodePool p is at its limits")
    assert pool_limit_reached(None, "nvidia.com/gpu", 2) is None


def _pod(created: str, scheduled: str, ready: str | None, restarts: int = 0) -> dict[str, Any]:
    conds = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": scheduled}]
    if ready:
        conds.append({"type": "Ready", "status": "True", "lastTransitionTime": ready})
    return {
        "metadata": {"creationTimestamp": created, "labels": {"infer.dev/deployment": "llama"}},
        "status": {"conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


def test_a_pods_start_up_and_whether_it_waited_for_a_node() -> None:
    found = startup_of(_pod("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", "2026-11-30T10:01:30Z"))
    assert found is not None and found[1] == 90.0 and found[2] is False
    launched = startup_of(
        _pod("2026-11-30T10:00:00Z", "2026-11-30T10:01:40Z", "2026-11-30T10:03:55Z")
    )
    assert launched is not None and launched[1] == 235.0 and launched[2] is True
    # Not Ready yet, restarted (its Ready time measures the crash), or not a vLLM pod.
    assert startup_of(_pod("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", None)) is None
    assert (
        startup_of(_pod("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", "2026-11-30T10:09:00Z", 2))
        is None
    )
    gateway = _pod("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", "2026-11-30T10:00:05Z")
    gateway["metadata"]["labels"]["app.kubernetes.io/component"] = "gateway"
    assert startup_of(gateway) is None
