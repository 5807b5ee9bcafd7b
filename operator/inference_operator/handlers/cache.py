"""kopf indexes that keep the operator's children in memory: one watch per kind, listed before
the handlers start and relisted after a watch breaks, so a restarted operator or a reconnected
stream starts from the truth. Handlers get the indexes as keyword arguments and read them
through kube.children.Children (`children()` below)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from inference_operator.api.errors import spec_errors
from inference_operator.api.guardrails import Named
from inference_operator.api.models import GROUP, VERSION
from inference_operator.api.policy import POLICY_PLURAL, InferencePolicySpec
from inference_operator.builders.names import OWNER_LABEL
from inference_operator.builders.nodepool import OWNER_NAME, OWNER_NAMESPACE
from inference_operator.kube import apply as kube
from inference_operator.kube.children import (
    CHILD_KINDS,
    KEDA_HPAS,
    KEDA_SCALED_OBJECT_LABEL,
    KEEP_STATUS,
    PENDING_PODS,
    STARTED_PODS,
    Cached,
    Children,
    Key,
    Kind,
    hpa_tolerance,
    startup_of,
    trimmed,
)


def _register(kind: Kind) -> None:
    group, version = kind.group_version
    labels = (
        {OWNER_LABEL: kopf.PRESENT}
        if kind.namespaced
        else {OWNER_NAMESPACE: kopf.PRESENT, OWNER_NAME: kopf.PRESENT}
    )

    def index(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Key, Cached]:
        if kind.namespaced:
            key = (str(body.metadata.namespace), str(labels[OWNER_LABEL]))
        else:
            key = (str(labels[OWNER_NAMESPACE]), str(labels[OWNER_NAME]))
        return {key: trimmed(body, keep_status=kind.kind in KEEP_STATUS)}

    kopf.index(group, version, kind.plural, id=kind.index, labels=labels)(index)


for _kind in CHILD_KINDS:
    _register(_kind)


@kopf.index("", "v1", "pods", id=PENDING_PODS, labels={OWNER_LABEL: kopf.PRESENT})
def pending_pods(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Key, tuple[str, str, str]]:
    """Pods the scheduler cannot place: (name, since, message). Others are not kept."""
    status = body.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
            since = str(c.get("lastTransitionTime") or body.metadata.get("creationTimestamp"))
            key = (str(body.metadata.namespace), str(labels[OWNER_LABEL]))
            return {key: (str(body.metadata.name), since, str(c.get("message") or ""))}
    return {}


@kopf.index("", "v1", "pods", id=STARTED_PODS, labels={OWNER_LABEL: kopf.PRESENT})
def started_pods(
    body: kopf.Body, labels: kopf.Labels, **_: Any
) -> dict[Key, tuple[float, float, bool]]:
    """How long each Ready vLLM pod took to start, for the start-up learner."""
    seen = startup_of(body)
    if seen is None:
        return {}
    return {(str(body.metadata.namespace), str(labels[OWNER_LABEL])): seen}


@kopf.index(
    "autoscaling",
    "v2",
    "horizontalpodautoscalers",
    id=KEDA_HPAS,
    labels={KEDA_SCALED_OBJECT_LABEL: kopf.PRESENT},
)
def keda_hpas(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Key, float]:
    """The scale-up tolerance of the HPA that KEDA made for a ScaledObject: ours when the API
    server kept the field (HPAConfigurableTolerance), the cluster-wide 10% otherwise."""
    key = (str(body.metadata.namespace), str(labels[KEDA_SCALED_OBJECT_LABEL]))
    return {key: hpa_tolerance(body.get("spec") or {})}


# Set once at start-up (handlers/__init__.py) to the child kinds the API server serves then.
CACHED: frozenset[tuple[str, str]] = frozenset()


def served_kinds(has_kind: Callable[[str, str], bool]) -> frozenset[tuple[str, str]]:
    return frozenset(
        (k.api_version, k.kind) for k in CHILD_KINDS if has_kind(k.api_version, k.kind)
    )


def children(key: Key, indexes: Mapping[str, Any]) -> Children:
    return Children(key, indexes, CACHED)


def live(
    held: Children, api_version: str, kind: str, name: str, namespace: str | None
) -> dict[str, Any] | None:
    """The child as the cache holds it, or from the API server for a kind not watched."""
    if held.is_cached(api_version, kind):
        return held.get(api_version, kind, name)
    return kube.get(api_version, kind, name, namespace)


# --- InferencePolicy guardrails: the policies, the namespaces' labels and the devices held ---
POLICIES = "inference_policies"
NAMESPACE_LABELS = "namespace_labels"
HELD_DEVICES = "held_devices"


@kopf.index(GROUP, VERSION, POLICY_PLURAL, id=POLICIES)
def inference_policies(
    name: str, spec: kopf.Spec, logger: kopf.Logger, **_: Any
) -> dict[str, Named]:
    try:
        return {"all": (name, InferencePolicySpec.model_validate(dict(spec)))}
    except ValidationError as e:
        # The CRD's schema refuses what the model would; an older CRD might not.
        logger.error(f"InferencePolicy {name} is ignored: {'; '.join(spec_errors(e))}")
        return {}


@kopf.index("", "v1", "namespaces", id=NAMESPACE_LABELS)
def namespace_labels(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


DEVICE_RESOURCES = ("nvidia.com/gpu", "aws.amazon.com/neuroncore")


@kopf.index("apps", "v1", "deployments", id=HELD_DEVICES, labels={OWNER_LABEL: kopf.PRESENT})
def held_devices(
    namespace: str | None, spec: kopf.Spec, labels: kopf.Labels, **_: Any
) -> dict[str, tuple[str, int]]:
    """Devices each model's Deployment asks for: replicas times the devices its pods request.
    The Deployment, not the InferenceDeployment: what runs is what the budget counts (the
    operator may hold a Deployment below its owner's spec.replicas)."""
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    per_pod = 0
    for c in containers:
        limits = (c.get("resources") or {}).get("limits") or {}
        per_pod += sum(int(limits.get(r, 0)) for r in DEVICE_RESOURCES)
    replicas = spec.get("replicas", 1)
    if not per_pod or not isinstance(replicas, int):
        return {}  # the gateway's Deployment: no accelerators
    return {str(namespace): (str(labels[OWNER_LABEL]), per_pod * replicas)}


@dataclass(frozen=True)
class Guard:
    """What the guardrails need to judge one InferenceDeployment."""

    labels: dict[str, str]  # its namespace's
    policies: list[Named]
    held: dict[str, int]  # devices by InferenceDeployment name in its namespace


def guard(namespace: str, indexes: Mapping[str, Any]) -> Guard:
    def values(index_id: str, key: str) -> list[Any]:
        index = indexes.get(index_id)
        return list(index.get(key, ())) if index is not None else []

    labels: dict[str, str] = next(iter(values(NAMESPACE_LABELS, namespace)), {})
    return Guard(
        labels=labels,
        policies=values(POLICIES, "all"),
        held=dict(values(HELD_DEVICES, namespace)),
    )
