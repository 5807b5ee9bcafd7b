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


def build_capacity_buffer(
    owner: Owner, spec: InferenceDeploymentSpec, auto_replicas: int = 0
) -> dict[str, Any] | None:
    """`auto_replicas`: what the scaling brain asks for (status.warm) when the spec says auto;
    0 keeps the buffer, empty, rather than deleting and recreating it as demand comes and goes."""
    warm = spec.capacity.warm
    if warm is None:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": owner.metadata(),
        "spec": {
            "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": owner.name},
            "replicas": warm.replicas if warm.replicas is not None else auto_replicas,
        },
    }
