"""Two writers of one status, on the real API server: the reconciler and the autoscaler run at
once on the same InferenceDeployment, each from its own snapshot of it. With whole-list merge
patches the later writer put back the conditions list it had read, erasing the other's newest
conditions (seen in the live loop: desiredReplicas 0 with no ScalingActive). Conditions are keyed
by type in the CRD and each writer server-side applies only its own."""

from __future__ import annotations

from typing import Any

import pytest

from kubeharness import Cluster, infd

pytestmark = pytest.mark.integration


def _cond(type_: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": reason,
        "lastTransitionTime": "2026-11-30T00:00:00Z",
        "observedGeneration": 1,
    }


def test_each_writer_keeps_the_others_conditions(
    cluster: Cluster, solo: str, operator_running: object
) -> None:
    # solo-*: the session's operator leaves this object alone; the test plays both writers.
    from inference_operator.builders.names import SCALING_MANAGER, WORKLOAD_MANAGER
    from inference_operator.kube import apply as kube

    cluster.apply(infd(solo, "writers", replicas=0))

    def write(manager: str, *conds: dict[str, Any]) -> None:
        kube.apply_status(
            "infer.dev/v1alpha1",
            "InferenceDeployment",
            "writers",
            solo,
            {"conditions": list(conds)},
            manager,
        )

    def now() -> dict[str, tuple[str, str]]:
        obj = cluster.get("InferenceDeployment", "writers", solo) or {}
        return {
            c["type"]: (c["status"], c["reason"])
            for c in (obj.get("status") or {}).get("conditions") or []
        }

    write(
        WORKLOAD_MANAGER,
        _cond("Ready", "False", "ReplicasNotReady"),
        _cond("Stalled", "False", "AsExpected"),
    )
    write(SCALING_MANAGER, _cond("ScalingActive", "True", "ValidMetrics"))
    # The reconciler again, from a snapshot older than the autoscaler's write.
    write(
        WORKLOAD_MANAGER,
        _cond("Ready", "True", "AllReplicasReady"),
        _cond("Stalled", "False", "AsExpected"),
    )
    assert now() == {
        "Ready": ("True", "AllReplicasReady"),
        "Stalled": ("False", "AsExpected"),
        "ScalingActive": ("True", "ValidMetrics"),
    }
    # A type a writer no longer reports is removed; the other writer's stay.
    write(SCALING_MANAGER, _cond("ScalingLimited", "False", "InRange"))
    assert now() == {
        "Ready": ("True", "AllReplicasReady"),
        "Stalled": ("False", "AsExpected"),
        "ScalingLimited": ("False", "InRange"),
    }
