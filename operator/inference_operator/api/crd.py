"""Render the InferenceDeployment CRD from the pydantic models (pure; see hack/gen_crds.py)."""

from __future__ import annotations

from typing import Any

from inference_operator.api.models import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    VERSION,
    InferenceDeployment,
    InferenceDeploymentSpec,
    InferenceDeploymentStatus,
)
from inference_operator.api.policy import (
    POLICY_KIND,
    POLICY_PLURAL,
    POLICY_SHORT_NAME,
    InferencePolicy,
    InferencePolicySpec,
)

_DROP = {"title", "additionalProperties", "$defs"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """JSON Schema from pydantic -> a Kubernetes structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_structural(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # Optional[X] arrives as anyOf [X, null]: the field is simply not required.
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                rest.pop("default")
            return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "additionalProperties" and isinstance(value, dict):
            # A map (dict[str, str]): the API server keeps its keys only when told their type.
            out[key] = _structural(value, defs)
            continue
        if key in _DROP:
            continue
        if key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "properties":
            out[key] = {k: _structural(v, defs) for k, v in value.items()}
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "default" in out:
        # Object defaults would be frozen copies of today's defaults; the scalars inside carry
        # their own, which the API server applies wherever the object is given.
        out.pop("default")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


NAME_RULE = (
    "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
    "letter, at most 63 characters): it names the model's Service"
)


def _status_schema() -> dict[str, Any]:
    schema = openapi_schema(InferenceDeploymentStatus)
    # The operator records extra bookkeeping (the recommender's state, the capacity plan) as it
    # grows; keep it rather than have the API server prune it away.
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def render_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(InferenceDeploymentSpec)
    spec_schema["description"] = InferenceDeploymentSpec.__doc__
    cond = '.status.conditions[?(@.type=="Ready")].status'
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
                "categories": ["all", "inference"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Ready", "type": "string", "jsonPath": cond},
                        {
                            "name": "Replicas",
                            "type": "integer",
                            "jsonPath": ".status.readyReplicas",
                        },
                        {
                            "name": "Desired",
                            "type": "integer",
                            "jsonPath": ".status.desiredReplicas",
                        },
                        {"name": "Queue", "type": "number", "jsonPath": ".status.signals.queue"},
                        {
                            "name": "KV%",
                            "type": "number",
                            "jsonPath": ".status.signals.kvCacheUtilization",
                        },
                        {
                            "name": "RPS",
                            "type": "number",
                            "jsonPath": ".status.signals.requestsPerSecond",
                        },
                        {
                            "name": "RPS/Replica",
                            "type": "number",
                            "jsonPath": ".status.capacity.perReplica.requestsPerSecond",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": InferenceDeployment.__doc__,
                            "required": ["spec"],
                            # The name becomes a Service's name: a DNS-1035 label, which the
                            # CRD's own name rule (a DNS-1123 subdomain) would let through.
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self.metadata.name.size() <= 63 && "
                                    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                                    "message": NAME_RULE,
                                }
                            ],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_policy_crd() -> dict[str, Any]:
    """The cluster-scoped InferencePolicy CRD: a tenant with rights in a namespace cannot write
    the policy that governs it."""
    spec_schema = openapi_schema(InferencePolicySpec)
    spec_schema["description"] = InferencePolicySpec.__doc__
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{POLICY_PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": POLICY_KIND,
                "listKind": f"{POLICY_KIND}List",
                "plural": POLICY_PLURAL,
                "singular": POLICY_KIND.lower(),
                "shortNames": [POLICY_SHORT_NAME],
                "categories": ["inference"],
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {
                            "name": "Devices/Namespace",
                            "type": "integer",
                            "jsonPath": ".spec.maxDevicesPerNamespace",
                        },
                        {
                            "name": "Devices/Deployment",
                            "type": "integer",
                            "jsonPath": ".spec.maxDevicesPerDeployment",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": InferencePolicy.__doc__,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                            },
                        }
                    },
                }
            ],
        },
    }
