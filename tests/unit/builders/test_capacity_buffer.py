"""Warm capacity: a CapacityBuffer shaped like the vLLM Deployment, removed with the field."""

from __future__ import annotations

from typing import Any

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
    # 2 running + 3 warm, one GPU each.
    assert out["NodePool"]["spec"]["limits"]["nvidia.com/gpu"] == "5"


def test_without_the_field_the_buffer_is_absent() -> None:
    out = build()
    assert "CapacityBuffer" not in kinds(out.apply)
    assert ("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer", "llama", "serving") in out.absent
    assert kinds(out.apply)["NodePool"]["spec"]["limits"]["nvidia.com/gpu"] == "2"


def test_without_the_api_nothing_is_built_or_deleted() -> None:
    spec = InferenceDeploymentSpec.model_validate({**BASE, "capacity": {"warm": {"replicas": 1}}})
    out = build_all(OWNER, spec, Available(karpenter=True))
    assert "CapacityBuffer" not in kinds(out.apply)
    assert not [a for a in out.absent if a[1] == "CapacityBuffer"]
