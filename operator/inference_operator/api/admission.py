"""The ValidatingAdmissionPolicy that enforces InferencePolicies at admission: CEL run by the API
server itself, no webhook to deploy or keep up (pure; hack/gen_crds.py writes it into the chart).

Every InferencePolicy is a parameter (`paramRef.selector: {}`); the API server evaluates the
validations once per policy and admits a request only when all pass. Each validation first asks
whether the policy selects the request's namespace (`namespaceObject`'s labels). The rules and
their messages are those of `api/guardrails.py`, word for word.

Only creates and spec changes are checked (`matchConditions`): the operator's own writes (its
finalizer, kopf's annotations) must go through on an object admitted before a policy existed,
or it could never be deleted.
"""

from __future__ import annotations

from typing import Any

from inference_operator.api.models import (
    GROUP,
    PLURAL,
    VERSION,
    AutoscalingSpec,
    InferenceDeploymentSpec,
    NodePoolSpec,
)
from inference_operator.api.policy import DEFAULT_IMAGE_PREFIXES, POLICY_KIND

NAME = f"guardrails.{GROUP}"

_DEFAULT_MAX = AutoscalingSpec().max_replicas
_DEFAULT_REPLICAS = InferenceDeploymentSpec.model_fields["replicas"].default
_DEFAULT_CAPACITY_TYPES = NodePoolSpec.model_fields["capacity_types"].default_factory()  # type: ignore[misc,call-arg]


def _quoted(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# Absent fields read as their API defaults (`?.` optional selection, then orValue).
VARIABLES = {
    "labels": "namespaceObject.metadata.?labels.orValue({})",
    "selected": (
        "params.spec.?namespaceSelector.?matchLabels.orValue({}).all(k, "
        "k in variables.labels && "
        "variables.labels[k] == params.spec.namespaceSelector.matchLabels[k])"
        " && params.spec.?namespaceSelector.?matchExpressions.orValue([]).all(r, "
        "r.operator == 'In' ? (r.key in variables.labels && "
        "r.?values.orValue([]).exists(v, v == variables.labels[r.key])) : "
        "r.operator == 'NotIn' ? !(r.key in variables.labels && "
        "r.?values.orValue([]).exists(v, v == variables.labels[r.key])) : "
        "r.operator == 'Exists' ? r.key in variables.labels : !(r.key in variables.labels))"
    ),
    "autoscaled": "object.spec.?autoscaling.?enabled.orValue(true)",
    "devices": (
        "object.spec.accelerator.?perReplica.orValue(1) * (variables.autoscaled ? "
        f"object.spec.?autoscaling.?maxReplicas.orValue({_DEFAULT_MAX}) : "
        f"object.spec.?replicas.orValue({_DEFAULT_REPLICAS}))"
    ),
    "types": "object.spec.accelerator.?types.orValue([])",
    "allowedTypes": "params.spec.?accelerators.?types.orValue([])",
    "prefixes": f"params.spec.?images.?prefixes.orValue({_quoted(DEFAULT_IMAGE_PREFIXES)})",
    "createsPool": "object.spec.?nodePool.?create.orValue(false)",
}


def _message(field: str, value: str, allowed: str) -> str:
    """The CEL twin of guardrails._refused."""
    return (
        f"'InferencePolicy ' + params.metadata.name + ': ' + ({field}) + ' ' + ({value}) + "
        f"' is not allowed (allowed: ' + ({allowed}) + ')'"
    )


def _rule(expression: str, field: str, value: str, allowed: str, static: str) -> dict[str, Any]:
    return {
        "expression": f"!variables.selected || ({expression})",
        # messageExpression falls back to message if it cannot be evaluated.
        "message": f"an InferencePolicy does not allow {static}",
        "messageExpression": _message(field, value, allowed),
        "reason": "Forbidden",
    }


VALIDATIONS = [
    _rule(
        "params.spec.?accelerators.?kinds.orValue([]).size() == 0 || "
        "object.spec.accelerator.kind in params.spec.accelerators.kinds",
        "'spec.accelerator.kind'",
        "object.spec.accelerator.kind",
        "params.spec.accelerators.kinds.join(', ')",
        "spec.accelerator.kind",
    ),
    _rule(
        "variables.allowedTypes.size() == 0 || (variables.types.size() > 0 && "
        "variables.types.all(t, variables.allowedTypes.exists(a, "
        "t.lowerAscii() == a.lowerAscii() || t.lowerAscii().startsWith(a.lowerAscii() + '.'))))",
        "'spec.accelerator.types'",
        "'[' + variables.types.join(', ') + ']'",
        "'a non-empty list of ' + variables.allowedTypes.join(', ')",
        "spec.accelerator.types",
    ),
    _rule(
        "!object.spec.?engine.?image.hasValue() || "
        "variables.prefixes.exists(p, object.spec.engine.image.startsWith(p))",
        "'spec.engine.image'",
        "object.spec.engine.image",
        "variables.prefixes.join(', ')",
        "spec.engine.image",
    ),
    _rule(
        "!params.spec.?maxDevicesPerDeployment.hasValue() || "
        "variables.devices <= params.spec.maxDevicesPerDeployment",
        "(variables.autoscaled ? 'spec.autoscaling.maxReplicas' : 'spec.replicas')",
        "'x accelerator.perReplica = ' + string(variables.devices) + ' devices'",
        "'at most ' + string(params.spec.maxDevicesPerDeployment) + ' devices per "
        "InferenceDeployment'",
        "this many devices",
    ),
    _rule(
        "!variables.createsPool || params.spec.?nodePools.?create.orValue(false)",
        "'spec.nodePool.create'",
        "'true'",
        "'false: use an existing pool'",
        "spec.nodePool.create",
    ),
    _rule(
        "!variables.createsPool || !params.spec.?nodePools.?maxDevices.hasValue() || "
        "object.spec.nodePool.?maxDevices.orValue(params.spec.nodePools.maxDevices + 1) <= "
        "params.spec.nodePools.maxDevices",
        "'spec.nodePool.maxDevices'",
        "object.spec.nodePool.?maxDevices.hasValue() ? "
        "string(object.spec.nodePool.maxDevices) : '(unset)'",
        "'set, at most ' + string(params.spec.nodePools.maxDevices)",
        "spec.nodePool.maxDevices",
    ),
    _rule(
        "!variables.createsPool || params.spec.?nodePools.?capacityTypes.orValue([]).size() == 0 "
        f"|| object.spec.nodePool.?capacityTypes.orValue({_quoted(_DEFAULT_CAPACITY_TYPES)})"
        ".all(c, c in params.spec.nodePools.capacityTypes)",
        "'spec.nodePool.capacityTypes'",
        f"'[' + object.spec.nodePool.?capacityTypes.orValue({_quoted(_DEFAULT_CAPACITY_TYPES)})"
        ".join(', ') + ']'",
        "params.spec.nodePools.capacityTypes.join(', ')",
        "spec.nodePool.capacityTypes",
    ),
    _rule(
        "variables.createsPool || !object.spec.?nodePool.?name.hasValue() || "
        "params.spec.?nodePools.?names.orValue([]).size() == 0 || "
        "object.spec.nodePool.name in params.spec.nodePools.names",
        "'spec.nodePool.name'",
        "object.spec.nodePool.name",
        "params.spec.nodePools.names.join(', ')",
        "spec.nodePool.name",
    ),
    _rule(
        "!object.spec.?capacity.?warm.hasValue() || params.spec.?warmCapacity.orValue(false)",
        "'spec.capacity.warm'",
        "'(set)'",
        "'none: warmCapacity is false'",
        "spec.capacity.warm",
    ),
]


def admission_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": f"{GROUP}/{VERSION}", "kind": POLICY_KIND},
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [PLURAL],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "creates-or-changes-spec",
                    "expression": "oldObject == null || object.spec != oldObject.spec",
                }
            ],
            "variables": [{"name": k, "expression": v} for k, v in VARIABLES.items()],
            "validations": VALIDATIONS,
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAME},
        "spec": {
            "policyName": NAME,
            "validationActions": ["Deny"],
            # Every InferencePolicy; none at all admits everything.
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
        },
    }
    return [policy, binding]
