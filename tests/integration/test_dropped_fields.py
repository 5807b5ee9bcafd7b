"""A field the spec stops asking for leaves the children, on the real API server.

Server-side apply removes a field from an object only when the field manager that set it applies
again without it; an operator that skips the apply because "live already holds everything I
want" keeps every dropped field forever. Each row edits one InferenceDeployment from `before` to
`after` and checks the children for what must be gone (and what must be there)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import kubeharness
from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration

Live = Callable[[str], dict[str, Any] | None]  # kind -> the child of that kind, or None


@dataclass(frozen=True)
class Edit:
    name: str
    before: dict[str, Any]
    after: dict[str, Any]
    # check(live) is True once the spec before (after) the edit has landed.
    before_ok: Callable[[Live], bool]
    after_ok: Callable[[Live], bool]


def _container(live: Live) -> dict[str, Any]:
    return dict((live("deployment") or {})["spec"]["template"]["spec"]["containers"][0])


def _required_types(live: Live) -> list[str]:
    affinity = (live("deployment") or {})["spec"]["template"]["spec"].get("affinity") or {}
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    return [
        v
        for term in required.get("nodeSelectorTerms") or []
        for e in term.get("matchExpressions") or []
        for v in e.get("values") or []
    ]


def _env(live: Live) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in _container(live).get("env") or []}


def _trigger_types(live: Live) -> list[str]:
    return [t["type"] for t in (live("scaledobject") or {})["spec"]["triggers"]]


def _auth_refs(live: Live) -> list[Any]:
    """References to the Prometheus TriggerAuthentication (the scaler's TLS one, a
    ClusterTriggerAuthentication, stays whatever the spec says)."""
    return [
        t["authenticationRef"]
        for t in (live("scaledobject") or {})["spec"]["triggers"]
        if t.get("authenticationRef")
        and t["authenticationRef"].get("kind", "TriggerAuthentication") == "TriggerAuthentication"
    ]


AUTH = {"prometheusTriggers": True, "prometheus": {"authSecretRef": {"name": "prom", "key": "t"}}}
POOL = {
    "create": True,
    "zones": ["us-east-1a", "us-east-1b"],
    "capacityTypes": ["spot", "on-demand"],
}

EDITS = [
    Edit(
        "accelerator types dropped: the required node affinity goes",
        {"accelerator": {"kind": "nvidia", "types": ["g6e.xlarge"]}},
        {"accelerator": {"kind": "nvidia"}},
        lambda live: _required_types(live) == ["g6e.xlarge"],
        lambda live: _required_types(live) == [],
    ),
    Edit(
        "an env var dropped",
        {"engine": {"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]}},
        {},
        lambda live: _env(live).get("VLLM_LOGGING_LEVEL") == "DEBUG",
        lambda live: "VLLM_LOGGING_LEVEL" not in _env(live),
    ),
    Edit(
        "Prometheus triggers dropped: only the operator's scaler stays",
        {"autoscaling": {"prometheusTriggers": True}},
        {"autoscaling": {}},
        lambda live: "prometheus" in _trigger_types(live),
        lambda live: _trigger_types(live) == ["external"],
    ),
    Edit(
        "auth dropped: the TriggerAuthentication and every authenticationRef go",
        {"autoscaling": AUTH},
        {"autoscaling": {"prometheusTriggers": True}},
        lambda live: live("triggerauthentication") is not None and len(_auth_refs(live)) > 0,
        lambda live: live("triggerauthentication") is None and _auth_refs(live) == [],
    ),
    Edit(
        "a NodePool zone dropped",
        {"nodePool": POOL},
        {"nodePool": {**POOL, "zones": ["us-east-1a"]}},
        lambda live: "us-east-1b" in str((live("nodepool") or {}).get("spec")),
        lambda live: "us-east-1b" not in str((live("nodepool") or {}).get("spec")),
    ),
    Edit(
        "the NodePool dropped",
        {"nodePool": POOL},
        {},
        lambda live: live("nodepool") is not None,
        lambda live: live("nodepool") is None,
    ),
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.name.split(":")[0].replace(" ", "-"))
def test_dropped_field_leaves_the_children(
    cluster: Cluster, namespace: str, operator_running: object, edit: Edit
) -> None:
    name = "drop"

    def live(kind: str) -> dict[str, Any] | None:
        if kind == "nodepool":
            return cluster.get(kind, f"{namespace}-{name}")
        child = name if kind != "triggerauthentication" else f"{name}-prometheus"
        return cluster.get(kind, child, namespace)

    def spec(extra: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {
            "accelerator": {"kind": "nvidia", "types": ["L40S"]},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        }
        return kubeharness.infd(namespace, name, **{**base, **extra})

    def holds(check: Callable[[Live], bool]) -> bool:
        try:
            return check(live)
        except (TypeError, KeyError, IndexError):  # a child not made yet
            return False

    cluster.apply(spec(edit.before))
    eventually(lambda: holds(edit.before_ok), timeout=60, what=f"before: {edit.name}")
    cluster.apply(spec(edit.after))
    eventually(lambda: holds(edit.after_ok), timeout=60, what=f"after: {edit.name}")
