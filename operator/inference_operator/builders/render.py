"""Every object the operator would create for some InferenceDeployment documents, without a
cluster (pure; `python -m inference_operator render` is its command)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from inference_operator.api.errors import spec_errors
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all
from inference_operator.capacity.assess import assess

# Not known before the API server creates the object; review tools ignore it.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


def render(docs: list[Any], available: Available) -> tuple[list[dict[str, Any]], list[str]]:
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or doc.get("kind") != "InferenceDeployment":
            continue
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or f"document {i + 1}")
        if doc.get("apiVersion") != "infer.dev/v1alpha1":
            problems.append(
                f"InferenceDeployment {name}: apiVersion: {doc.get('apiVersion')!r}"
                " is not infer.dev/v1alpha1"
            )
            continue
        if not meta.get("name"):
            problems.append(f"InferenceDeployment {name}: metadata.name: Required value")
            continue
        try:
            spec = InferenceDeploymentSpec.model_validate(doc.get("spec") or {})
        except ValidationError as e:
            problems += [f"InferenceDeployment {name}: {m}" for m in spec_errors(e)]
            continue
        owner = Owner(name, str(meta.get("namespace") or "default"), PLACEHOLDER_UID)
        capacity, _ = assess(spec)
        out += build_all(owner, spec, available, capacity.get("instanceTypes") or None).apply
    return out, problems
