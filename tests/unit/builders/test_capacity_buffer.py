"""Warm capacity: a CapacityBuffer shaped like the vLLM Deployment, removed with the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all

OWNER = Owner("llama", "serving", "u")
BASE: dict[str, Any] = {
    "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
    "accelerator": {"kind": "nvidia", "types": ["L40S"]},
    "replicas": 2,
    "autoscaling": {"enabled": False},
    "nodePool": {"create": True},
}
KARPENTER = Available(karpenter=True, capacity_buffer=True)


def build(**spec: Any) -> Any:
    return build_all(OWNER, InferenceDeploymentSpec.model_validate({**BASE, **spec}), KARPENTER)


def kinds(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def test_warm_replicas_become_a_buffer_on_the_deployment_and_room_in_the_pool() -> None:
    out = kinds(build(capacity={"warm": {"replicas": 3}}).apply)
    buffer = out["CapacityBuffer"]
    assert buffer["apiVersion"] == "autoscaling.x-k8s.io/v1beta1"
    assert buffer["metadata"]["namespace"] == "serving"
    assert buffer["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert buffer["spec"] == {
        "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "llama"},
        "replicas": 3,
    }
    # 2 running + 3 warm + 1 surging in a rolling update, one GPU each.
    assert out["NodePool"]["spec"]["limits"]["nvidia.com/gpu"] == "6"


def test_without_the_field_the_buffer_is_absent() -> None:
    out = build()
    assert "CapacityBuffer" not in kinds(out.apply)
    assert ("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer", "llama", "serving") in out.absent
    assert kinds(out.apply)["NodePool"]["spec"]["limits"]["nvidia.com/gpu"] == "3"


def test_without_the_api_nothing_is_built_or_deleted() -> None:
    spec = InferenceDeploymentSpec.model_validate({**BASE, "capacity": {"warm": {"replicas": 1}}})
    out = build_all(OWNER, spec, Available(karpenter=True))
    assert "CapacityBuffer" not in kinds(out.apply)
    assert not [a for a in out.absent if a[1] == "CapacityBuffer"]


def test_auto_takes_the_brains_number_and_the_pool_leaves_room_for_the_ceiling() -> None:
    spec = InferenceDeploymentSpec.model_validate(
        {**BASE, "capacity": {"warm": {"auto": {"maxReplicas": 6}}}}
    )
    out = kinds(build_all(OWNER, spec, KARPENTER, warm_replicas=2).apply)
    assert out["CapacityBuffer"]["spec"]["replicas"] == 2
    assert out["NodePool"]["spec"]["limits"]["nvidia.com/gpu"] == "9"
    # Nothing asked for yet: an empty buffer, not a deleted one (no churn as demand comes and goes).
    idle = kinds(build_all(OWNER, spec, KARPENTER).apply)
    assert idle["CapacityBuffer"]["spec"]["replicas"] == 0


def test_fixed_replicas_ignore_the_brain() -> None:
    spec = InferenceDeploymentSpec.model_validate({**BASE, "capacity": {"warm": {"replicas": 1}}})
    out = kinds(build_all(OWNER, spec, KARPENTER, warm_replicas=5).apply)
    assert out["CapacityBuffer"]["spec"]["replicas"] == 1


@pytest.mark.parametrize("warm", [{}, {"replicas": 2, "auto": {}}])
def test_exactly_one_of_replicas_or_auto(warm: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of replicas"):
        InferenceDeploymentSpec.model_validate({**BASE, "capacity": {"warm": warm}})


def test_limits_count_whole_nodes_and_max_devices_caps_them() -> None:
    # A 1-GPU replica on a 4-GPU g6e.12xlarge uses 4 GPUs of the pool's limit (Karpenter counts
    # node capacity): 2 replicas + 1 surge = 12, never 3, which would let no node launch at all.
    big = {**BASE, "accelerator": {"kind": "nvidia", "types": ["g6e.12xlarge"]}}
    spec = InferenceDeploymentSpec.model_validate(big)
    pool = kinds(build_all(OWNER, spec, KARPENTER, ["g6e.12xlarge"]).apply)["NodePool"]
    assert pool["spec"]["limits"]["nvidia.com/gpu"] == "12"
    capped = InferenceDeploymentSpec.model_validate(
        {**big, "nodePool": {"create": True, "maxDevices": 4}}
    )
    pool = kinds(build_all(OWNER, capped, KARPENTER, ["g6e.12xlarge"]).apply)["NodePool"]
    assert pool["spec"]["limits"]["nvidia.com/gpu"] == "4"
