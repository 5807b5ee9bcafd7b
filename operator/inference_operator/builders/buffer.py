"""A Karpenter CapacityBuffer for one InferenceDeployment's warm capacity (pure).

The buffer points at the vLLM Deployment (`scalableRef`): Karpenter shapes its virtual pods like
the Deployment's, so the spare nodes fit a replica exactly, in the NodePool the replicas use.
"""

from __future__ import annotations

from typing import Any

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner

API_VERSION = "autoscaling.x-k8s.io/v1beta1"
KIND = "CapacityBuffer"


def build_capacity_buffer(owner: Owner, spec: InferenceDeploymentSpec) -> dict[str, Any] | None:
    warm = spec.capacity.warm
    if warm is None:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": owner.metadata(),
        "spec": {
            "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": owner.name},
            "replicas": warm.replicas,
        },
    }
