"""The operator enforces InferencePolicies itself, on the real control plane and with no
admission policy installed (objects admitted before a policy existed, or clusters without the
chart's ValidatingAdmissionPolicy): it builds nothing a policy forbids, says which policy and
field in status and an Event, and holds a namespace to its device budget."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import kubeharness
from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return {}


def policy(name: str, tenant: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferencePolicy",
        "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": {"infer.dev/tenant": tenant}}, **spec},
    }


def static(namespace: str, name: str, replicas: int, types: list[str]) -> dict[str, Any]:
    return kubeharness.infd(
        namespace,
        name,
        accelerator={"kind": "nvidia", "types": types},
        replicas=replicas,
        autoscaling={"enabled": False},
    )


@pytest.fixture
def tenant(cluster: Cluster, namespace: str) -> Iterator[tuple[str, str]]:
    """The test's namespace, labelled for a policy of its own (removed afterwards)."""
    label = uuid.uuid4().hex[:8]
    # No admission policy: this is about the operator's own check.
    cluster.kubectl(
        "delete", "validatingadmissionpolicybinding", "guardrails.infer.dev", "--ignore-not-found"
    )
    cluster.kubectl("label", "namespace", namespace, f"infer.dev/tenant={label}")
    yield namespace, label
    cluster.kubectl("delete", "inferencepolicy", f"p-{label}", "--ignore-not-found")


def test_a_forbidden_spec_builds_nothing_and_says_which_policy_and_field(
    cluster: Cluster, tenant: tuple[str, str], operator_running: object
) -> None:
    namespace, label = tenant
    cluster.apply(policy(f"p-{label}", label, accelerators={"types": ["L4"]}))
    forbidden = static(namespace, "llama", 1, ["H100"])

    def admitted() -> bool:
        # The admission policy's binding was deleted; the API server may take a moment to see
        # it gone (a server-side dry run runs admission and writes nothing).
        res = cluster.kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(forbidden), check=False
        )
        return res.returncode == 0

    eventually(admitted, timeout=120, what="no admission policy in force")
    cluster.apply(forbidden)

    def denied() -> dict[str, Any]:
        c = condition(cluster.get("infd", "llama", namespace), "Ready")
        return c if c.get("reason") == "PolicyDenied" else {}

    c = eventually(denied, timeout=60, what="Ready=False PolicyDenied")
    assert c["status"] == "False"
    assert (
        f"InferencePolicy p-{label}: spec.accelerator.types [H100] is not allowed" in (c["message"])
    )
    stalled = condition(cluster.get("infd", "llama", namespace), "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "PolicyDenied")
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "PolicyDenied" in events and f"p-{label}" in events
    assert cluster.get("deployment", "llama", namespace) is None
    # Level-based: once the policy allows it, the next pass builds it.
    cluster.apply(policy(f"p-{label}", label, accelerators={"types": ["L4", "H100"]}))
    eventually(
        lambda: cluster.get("deployment", "llama", namespace) is not None,
        timeout=60,
        what="the Deployment built once allowed",
    )


def test_the_namespace_budget_holds_replicas_across_inference_deployments(
    cluster: Cluster, tenant: tuple[str, str], operator_running: object
) -> None:
    namespace, label = tenant
    cluster.apply(policy(f"p-{label}", label, maxDevicesPerNamespace=3))
    cluster.apply(static(namespace, "first", 2, ["L40S"]))
    eventually(
        lambda: (
            ((cluster.get("deployment", "first", namespace) or {}).get("spec") or {}).get(
                "replicas"
            )
            == 2
        ),
        timeout=60,
        what="first at 2 replicas",
    )
    cluster.apply(static(namespace, "second", 2, ["L40S"]))

    def held() -> dict[str, Any]:
        c = condition(cluster.get("infd", "second", namespace), "Degraded")
        return c if c.get("reason") == "LimitedByBudget" else {}

    c = eventually(held, timeout=60, what="second Degraded=LimitedByBudget")
    assert f"InferencePolicy p-{label}: maxDevicesPerNamespace 3 allows 1 of the 2" in c["message"]
    second = cluster.get("deployment", "second", namespace)
    assert second is not None and second["spec"]["replicas"] == 1
    first = cluster.get("infd", "first", namespace)
    assert condition(first, "Degraded").get("reason") != "LimitedByBudget"
    # Room freed by the first is taken by the second on its next pass.
    cluster.kubectl("delete", "infd", "first", "-n", namespace, "--wait=true")
    eventually(
        lambda: (
            ((cluster.get("deployment", "second", namespace) or {}).get("spec") or {}).get(
                "replicas"
            )
            == 2
        ),
        timeout=60,
        what="second grows to 2 once the first is gone",
    )
