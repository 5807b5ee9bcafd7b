"""KEDA and Karpenter objects: accepted by the real upstream CRDs (the AWS NodePool variant with
its CEL rules), updated in place, and cleaned up with their owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all
from inference_operator.capacity.assess import assess
from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

LLAMA8 = {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}
LLAMA70 = {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"}
SPECS: dict[str, dict[str, Any]] = {
    "nvidia-tp1-zero": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia", "types": ["L40S"]},
        "autoscaling": {"minReplicas": 0, "scaleToZero": {"idleAfter": "10m"}},
        "nodePool": {"create": True},
    },
    "fallback-triggers-with-auth": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia"},
        "autoscaling": {
            "prometheusTriggers": True,
            "prometheus": {"authSecretRef": {"name": "prom-token", "key": "token"}},
            "targets": {"requestsPerSecondPerReplica": 2.5},
        },
    },
    "nvidia-tp2": {
        "model": LLAMA70,
        "accelerator": {"kind": "nvidia", "perReplica": 2, "types": ["h200"]},
        "nodePool": {"create": True, "capacityTypes": ["on-demand"]},
    },
    "nvidia-tp4-spot-first": {
        "model": LLAMA70,
        "accelerator": {"kind": "nvidia", "perReplica": 4},
        "nodePool": {"create": True, "capacityTypes": ["spot", "on-demand"]},
    },
    "nvidia-tp8-zones": {
        "model": {"uri": "s3://m/llama-3.1-405b", "dtype": "fp8"},
        "accelerator": {"kind": "nvidia", "perReplica": 8, "types": ["p5"]},
        "nodePool": {"create": True, "zones": ["us-east-1a", "us-east-1b"]},
    },
    "spot-only": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia", "types": ["g6e", "g5"]},
        "nodePool": {"create": True, "capacityTypes": ["spot"]},
    },
    "unknown-model-families": {
        "model": {"uri": "pvc://w/custom"},
        "accelerator": {"kind": "nvidia", "types": ["g6e", "A10G"]},
        "nodePool": {"create": True},
    },
    "neuron-inf2": {
        "model": {"uri": "hf://mistralai/Mistral-7B-v0.3"},
        "accelerator": {"kind": "neuron", "perReplica": 2, "types": ["inf2"]},
        "nodePool": {"create": True},
    },
    "neuron-any": {
        "model": {"uri": "pvc://w/x", "parameters": "1B"},
        "accelerator": {"kind": "neuron", "perReplica": 8},
        "nodePool": {"create": True},
    },
    "rps-target-and-auth": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia"},
        "autoscaling": {
            "targets": {"requestsPerSecondPerReplica": 3.5},
            "prometheus": {
                "url": "https://prom.example:9090",
                "authSecretRef": {"name": "prom", "key": "token"},
            },
        },
    },
    "slow-scale-down": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia"},
        "autoscaling": {
            "minReplicas": 2,
            "maxReplicas": 40,
            "behavior": {"scaleDown": {"stabilizationWindow": "15m", "maxPercent": 10}},
        },
    },
    "hyperpod": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia", "types": ["g5.xlarge"]},
        "nodePool": {
            "create": True,
            "nodeClassRef": {
                "group": "karpenter.sagemaker.amazonaws.com",
                "kind": "HyperpodNodeClass",
                "name": "ig-1",
            },
        },
    },
    "existing-pool-no-autoscaling": {
        "model": LLAMA8,
        "accelerator": {"kind": "nvidia"},
        "autoscaling": {"enabled": False},
        "nodePool": {"create": False, "name": "gpu"},
    },
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_emitted_object_is_accepted_by_the_upstream_crds(
    cluster: Cluster, namespace: str, name: str
) -> None:
    spec = InferenceDeploymentSpec.model_validate(SPECS[name])
    owner = Owner(name, namespace, "00000000-0000-0000-0000-000000000000")
    capacity, _ = assess(spec)
    objects: list[dict[str, Any]] = []
    # Prometheus triggers only, and the operator's external scaler (with and without them).
    for scaler in (None, "inference-operator.inference-system.svc:6000"):
        everything = Available(pod_monitor=True, keda=True, karpenter=True, scaler_address=scaler)
        desired = build_all(owner, spec, everything, capacity.get("instanceTypes") or None)
        kinds = {o["kind"] for o in desired.apply}
        assert ("ScaledObject" in kinds) == spec.autoscaling.enabled
        assert ("NodePool" in kinds) == bool(spec.node_pool and spec.node_pool.create)
        objects += desired.apply
    for obj in objects:
        if (
            obj["kind"] == "NodePool"
            and obj["spec"]["template"]["spec"]["nodeClassRef"]["group"] != "karpenter.k8s.aws"
        ):
            # The AWS variant's CEL refuses non-AWS node classes; HyperPod runs its own.
            continue
        cluster.dry_run(obj)


def test_operator_creates_updates_in_place_and_cleans_up(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    body = {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "pooled", "namespace": namespace},
        "spec": {**SPECS["nvidia-tp1-zero"], "replicas": 0},
    }
    cluster.apply(body)
    pool_name = f"{namespace}-pooled"
    so = eventually(lambda: cluster.get("scaledobject", "pooled", namespace), what="ScaledObject")
    pool = eventually(lambda: cluster.get("nodepool", pool_name), what="NodePool")
    assert so["spec"]["scaleTargetRef"]["kind"] == "InferenceDeployment"
    assert so["spec"]["minReplicaCount"] == 0
    # maxReplicas 4 + one surging replica, on 1-GPU g6e.xlarge nodes.
    assert pool["spec"]["limits"]["nvidia.com/gpu"] == "5"

    body["spec"]["autoscaling"] = {**body["spec"]["autoscaling"], "maxReplicas": 6}
    cluster.apply(body)

    def updated() -> bool:
        s, p = cluster.get("scaledobject", "pooled", namespace), cluster.get("nodepool", pool_name)
        return bool(
            s
            and p
            and s["spec"]["maxReplicaCount"] == 6
            and p["spec"]["limits"]["nvidia.com/gpu"] == "7"
        )

    eventually(updated, what="maxReplicas followed")
    same_so = cluster.get("scaledobject", "pooled", namespace) or {}
    same_pool = cluster.get("nodepool", pool_name) or {}
    assert same_so["metadata"]["uid"] == so["metadata"]["uid"]
    assert same_pool["metadata"]["uid"] == pool["metadata"]["uid"]

    cluster.kubectl("delete", "infd", "pooled", "-n", namespace, "--wait=true")
    eventually(lambda: cluster.get("nodepool", pool_name) is None, what="NodePool deleted")
    eventually(
        lambda: cluster.get("scaledobject", "pooled", namespace) is None,
        what="ScaledObject collected",
    )


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples" / "karpenter").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_node_classes_are_accepted(cluster: Cluster, path: Path) -> None:
    cluster.dry_run(yaml.safe_load(path.read_text()))
