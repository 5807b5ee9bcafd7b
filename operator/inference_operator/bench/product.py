"""The InferenceDeployment a user would write for a simulated replica, and the policy the
operator derives from it: the bench runs the product's own defaults through the product's own
code (policy_from_spec, the planner's prior), never numbers of its own."""

from __future__ import annotations

from typing import Any

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.bench.simulator.profiles import EngineProfile
from inference_operator.capacity.performance import prior_for
from inference_operator.scaling import Policy
from inference_operator.scaling.policy import policy_from_spec


def product_spec(
    profile: EngineProfile,
    min_replicas: int,
    max_replicas: int,
    requests_per_second_per_replica: float | None = None,
    gateway_slots: int | None = None,
) -> InferenceDeploymentSpec:
    """`gateway_slots`: a gateway of its own in the path, with that maxPerReplica."""
    autoscaling: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas}
    if requests_per_second_per_replica is not None:
        autoscaling["targets"] = {
            "requestsPerSecondPerReplica": round(requests_per_second_per_replica, 3)
        }
    gateway = {"gateway": {"maxPerReplica": gateway_slots}} if gateway_slots is not None else {}
    return InferenceDeploymentSpec.model_validate(
        {
            **gateway,
            "model": {"uri": profile.model_uri},
            "accelerator": {
                "kind": "nvidia",
                "perReplica": profile.devices,
                "types": list(profile.accelerator_types),
            },
            "autoscaling": autoscaling,
        }
    )


def product_policy(spec: InferenceDeploymentSpec) -> Policy:
    """What the operator's autoscale handler runs for `spec`."""
    return policy_from_spec(spec.autoscaling, prior_for(spec.model, spec.accelerator), spec.gateway)
