"""A Karpenter v1 NodePool for one InferenceDeployment (pure)."""

from __future__ import annotations

from typing import Any

from inference_operator.api.durations import seconds
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import MANAGED_BY, Owner
from inference_operator.builders.placement import (
    INSTANCE_TYPE,
    instance_type,
    is_hyperpod,
    type_label,
)
from inference_operator.builders.workload import device_resource, taint_key
from inference_operator.capacity.catalogue import BY_NAME

OWNER_NAMESPACE = "infer.dev/owner-namespace"
OWNER_NAME = "infer.dev/owner-name"


def nodepool_labels(owner: Owner) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        OWNER_NAMESPACE: owner.namespace,
        OWNER_NAME: owner.name,
    }


def _instance_requirements(
    spec: InferenceDeploymentSpec, planned_types: list[str]
) -> list[dict[str, Any]]:
    hyperpod = is_hyperpod(spec)
    if planned_types:
        values = sorted({instance_type(t, hyperpod) for t in planned_types})
        return [{"key": INSTANCE_TYPE, "operator": "In", "values": values}]
    by_key: dict[str, set[str]] = {}
    for t in spec.accelerator.types:
        label = type_label(t, hyperpod)
        if label is not None:
            by_key.setdefault(label[0], set()).add(label[1])
    if not by_key and not hyperpod:
        key = (
            "karpenter.k8s.aws/instance-gpu-manufacturer"
            if spec.accelerator.kind == "nvidia"
            else "karpenter.k8s.aws/instance-accelerator-manufacturer"
        )
        by_key[key] = {"nvidia" if spec.accelerator.kind == "nvidia" else "aws"}
    return [{"key": k, "operator": "In", "values": sorted(v)} for k, v in sorted(by_key.items())]


def _limits(spec: InferenceDeploymentSpec, replicas: int, planned: list[str]) -> dict[str, str]:
    """Room for `replicas` replicas, each alone on a node. Karpenter counts a node's whole
    capacity against the limits (a 1-GPU replica on a 4-GPU node uses 4), so devices count the
    smallest planned node: the cheapest, which Karpenter launches first; should it need larger
    ones, the limit binds and Degraded says NodePoolLimitReached. spec.nodePool.maxDevices caps
    the devices instead. CPU and memory count the largest planned node, so that they never bind
    before the devices do."""
    n = max(1, replicas)
    shapes = [BY_NAME[t] for t in planned if t in BY_NAME]
    per_node = min(
        (i.devices for i in shapes if i.devices >= spec.accelerator.per_replica),
        default=spec.accelerator.per_replica,
    )
    pool = spec.node_pool
    devices = n * per_node
    if pool is not None and pool.max_devices is not None:
        devices = pool.max_devices
    limits = {device_resource(spec): str(devices)}
    if shapes:
        limits["cpu"] = str(n * max(i.vcpu for i in shapes))
        limits["memory"] = f"{n * max(i.memory_gib for i in shapes)}Gi"
    return limits


def build_nodepool(
    owner: Owner, spec: InferenceDeploymentSpec, planned_types: list[str] | None = None
) -> dict[str, Any]:
    pool = spec.node_pool
    assert pool is not None
    replicas = spec.autoscaling.max_replicas if spec.autoscaling.enabled else spec.replicas
    # Warm capacity holds nodes of this pool too, and a rolling update adds one pod (maxSurge 1):
    # without room for it, a fleet at its maximum could never roll out a new spec.
    replicas += (spec.capacity.warm.ceiling if spec.capacity.warm else 0) + 1
    requirements: list[dict[str, Any]] = [
        {
            "key": "karpenter.sh/capacity-type",
            "operator": "In",
            "values": list(pool.capacity_types),
        },
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        *_instance_requirements(spec, planned_types or []),
    ]
    if pool.zones:
        requirements.append(
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": list(pool.zones)}
        )
    grace = 600 + 15 + 60  # the pods' termination grace, preStop and a margin
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": owner.cluster_name, "labels": nodepool_labels(owner)},
        "spec": {
            "template": {
                "metadata": {"labels": {OWNER_NAMESPACE: owner.namespace, OWNER_NAME: owner.name}},
                "spec": {
                    "nodeClassRef": {
                        "group": pool.node_class_ref.group,
                        "kind": pool.node_class_ref.kind,
                        "name": pool.node_class_ref.name,
                    },
                    "requirements": requirements,
                    "taints": [{"key": taint_key(spec), "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": "720h",
                    "terminationGracePeriod": f"{grace}s",
                },
            },
            # Consolidate only empty nodes, one at a time: a serving pod is never moved to save
            # money, and a drifted or expiring node drains through the pods' preStop and grace.
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": f"{int(seconds(pool.consolidate_after))}s",
                "budgets": [{"nodes": "1"}],
            },
            "limits": _limits(spec, replicas, planned_types or []),
        },
    }
