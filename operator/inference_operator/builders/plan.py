"""Everything the operator wants to exist for one InferenceDeployment (pure).

Karpenter's habit: plan first, then act. The handler applies `Desired.apply` and deletes what
`Desired.absent` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inference_operator.api.defaults import DEFAULT_IMAGE, DEFAULT_PROMETHEUS_URL
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders import buffer, inference_pool
from inference_operator.builders.autoscaling import (
    build_scaled_object,
    build_trigger_authentication,
)
from inference_operator.builders.gateway import build_gateway, gateway_name
from inference_operator.builders.names import Owner
from inference_operator.builders.nodepool import build_nodepool
from inference_operator.builders.workload import build_workload


@dataclass(frozen=True)
class Available:
    """Which optional APIs the cluster serves."""

    pod_monitor: bool = False
    keda: bool = False
    karpenter: bool = False
    # Karpenter's CapacityBuffer API (its CapacityBuffer feature gate).
    capacity_buffer: bool = False
    # Where KEDA reaches the operator's external scaler; None: Prometheus triggers only.
    scaler_address: str | None = None
    # The ClusterTriggerAuthentication for a scaler that serves TLS; None: plaintext.
    scaler_tls_auth: str | None = None
    # The Prometheus for specs that name none (the operator's INFOP_PROMETHEUS_URL).
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    # The operator's image, which also runs the gateway.
    operator_image: str = DEFAULT_IMAGE
    # The Gateway API Inference Extension's InferencePool (inference.networking.k8s.io/v1).
    inference_pool: bool = False


GATEWAY_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("v1", "ServiceAccount"),
)


@dataclass
class Desired:
    apply: list[dict[str, Any]] = field(default_factory=list)
    # (apiVersion, kind, name, namespace) of objects we may have made and no longer want.
    absent: list[tuple[str, str, str, str | None]] = field(default_factory=list)


def build_all(
    owner: Owner,
    spec: InferenceDeploymentSpec,
    available: Available,
    planned_types: list[str] | None = None,
    had_gateway: bool = False,
    warm_replicas: int = 0,
) -> Desired:
    """`warm_replicas`: the scaling brain's warm capacity (status.warm) for `warm.auto`."""
    out = Desired(apply=build_workload(owner, spec, available.pod_monitor))
    if available.inference_pool:
        out.apply.append(inference_pool.build_inference_pool(owner))
    out.apply += build_gateway(owner, spec, available.operator_image)
    if spec.gateway is None and had_gateway:
        # Only when status says one was made: a GET per kind on every pass costs the API server.
        name = gateway_name(owner)
        for api_version, kind in GATEWAY_KINDS:
            out.absent.append((api_version, kind, name, owner.namespace))
    keda_objs: list[dict[str, Any]] = []
    if spec.autoscaling.enabled and available.keda:
        scaled = build_scaled_object(
            owner,
            spec,
            available.scaler_address,
            available.prometheus_url,
            available.scaler_tls_auth,
        )
        uses_prometheus = any(t["type"] == "prometheus" for t in scaled["spec"]["triggers"])
        auth = build_trigger_authentication(owner, spec) if uses_prometheus else None
        keda_objs = [*([auth] if auth else []), scaled]
    out.apply += keda_objs
    if available.keda:
        wanted = {(o["kind"], o["metadata"]["name"]) for o in keda_objs}
        for kind, name in (
            ("TriggerAuthentication", f"{owner.name}-prometheus"),
            ("ScaledObject", owner.name),
        ):
            if (kind, name) not in wanted:
                out.absent.append(("keda.sh/v1alpha1", kind, name, owner.namespace))
    if available.karpenter:
        if spec.node_pool is not None and spec.node_pool.create:
            out.apply.append(build_nodepool(owner, spec, planned_types))
        else:
            out.absent.append(("karpenter.sh/v1", "NodePool", owner.cluster_name, None))
    if available.capacity_buffer:
        warm = buffer.build_capacity_buffer(owner, spec, warm_replicas)
        if warm is not None:
            out.apply.append(warm)
        else:
            out.absent.append((buffer.API_VERSION, buffer.KIND, owner.name, owner.namespace))
    return out
