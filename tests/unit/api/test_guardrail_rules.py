"""InferencePolicy rules as pure functions (the admission twin is tested on the real API server
in tests/integration/test_guardrails.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from inference_operator.api.conditions import WorkloadView, workload_conditions
from inference_operator.api.guardrails import (
    Budget,
    namespace_budget,
    others_devices,
    selects,
    type_allowed,
    violations,
    within_budget,
)
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.api.policy import (
    DEFAULT_IMAGE_PREFIXES,
    InferencePolicySpec,
    NamespaceSelector,
)
from inference_operator.handlers import autoscale, budget, cache
from inference_operator.scaling.model import Recommendation
from inference_operator.scaling.report import scaling_limited


def spec(**over: Any) -> InferenceDeploymentSpec:
    base: dict[str, Any] = {
        "model": {"uri": "hf://org/m"},
        "accelerator": {"kind": "nvidia", "types": ["L4"]},
    }
    return InferenceDeploymentSpec.model_validate({**base, **over})


def pol(**over: Any) -> InferencePolicySpec:
    return InferencePolicySpec.model_validate(over)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"t": "a"}}, {"t": "a", "x": "y"}, True),
        ({"matchLabels": {"t": "a"}}, {"t": "b"}, False),
        ({"matchLabels": {"t": "a"}}, {}, False),
        (
            {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]},
            {"t": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]},
            {"t": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}]}, {"t": ""}, True),
        ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}, {"t": ""}, False),
    ],
)
def test_namespace_selector_semantics(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selects(NamespaceSelector.model_validate(selector), labels) is expected


def test_a_family_allows_its_instance_types_and_names_match_case_insensitively() -> None:
    assert type_allowed("g6e.xlarge", ["g6e"])
    assert type_allowed("l40s", ["L40S"])
    assert not type_allowed("g6e", ["g6e.xlarge"])
    assert not type_allowed("g6", ["g6e"])


def test_a_policy_that_names_nothing_still_limits_images_node_pools_and_warm_capacity() -> None:
    p = [("default", pol())]
    assert violations(spec(), {}, p) == []
    assert violations(spec(engine={"image": "vllm/vllm-openai:v9"}), {}, p) == []
    fields = {
        v.field
        for s in (
            spec(engine={"image": "docker.io/evil/vllm:1"}),
            spec(nodePool={"create": True}),
            spec(capacity={"warm": {"replicas": 1}}),
        )
        for v in violations(s, {}, p)
    }
    assert fields == {"spec.engine.image", "spec.nodePool.create", "spec.capacity.warm"}
    assert all(prefix.endswith(":") for prefix in DEFAULT_IMAGE_PREFIXES)


def test_every_governing_policy_applies_and_others_do_not() -> None:
    a = (
        "a",
        pol(namespaceSelector={"matchLabels": {"t": "a"}}, accelerators={"kinds": ["neuron"]}),
    )
    b = ("b", pol(maxDevicesPerDeployment=2))
    broken = violations(spec(), {"t": "a"}, [b, a])
    assert [(v.policy, v.field) for v in broken] == [
        ("a", "spec.accelerator.kind"),
        ("b", "spec.autoscaling.maxReplicas"),
    ]
    assert str(broken[1]) == (
        "InferencePolicy b: spec.autoscaling.maxReplicas x accelerator.perReplica = 4 devices "
        "is not allowed (allowed: at most 2 devices per InferenceDeployment)"
    )
    assert [v.policy for v in violations(spec(), {"t": "other"}, [a, b])] == ["b"]


def test_static_replicas_count_toward_the_per_deployment_limit() -> None:
    p = [("p", pol(maxDevicesPerDeployment=4))]
    s = spec(replicas=5, autoscaling={"enabled": False})
    assert [v.field for v in violations(s, {}, p)] == ["spec.replicas"]


def test_the_tightest_budget_wins() -> None:
    ps = [
        ("loose", pol(maxDevicesPerNamespace=10)),
        ("tight", pol(maxDevicesPerNamespace=4)),
        ("elsewhere", pol(namespaceSelector={"matchLabels": {"x": "y"}}, maxDevicesPerNamespace=1)),
    ]
    assert namespace_budget({}, ps) == Budget("tight", 4)
    assert namespace_budget({}, []) is None


@pytest.mark.parametrize(
    ("wanted", "per_replica", "budget_", "others", "expected"),
    [(4, 1, 10, 3, 4), (4, 2, 10, 3, 3), (4, 1, 3, 3, 0), (2, 4, 3, 5, 0), (0, 1, 3, 0, 0)],
)
def test_within_budget(
    wanted: int, per_replica: int, budget_: int, others: int, expected: int
) -> None:
    assert within_budget(wanted, per_replica, budget_, others) == expected


def test_others_count_the_larger_of_running_and_granted() -> None:
    held = {"me": 8, "a": 2, "b": 1}
    granted = {"a": 1, "b": 3, "c": 2}
    assert others_devices("me", held, granted) == 2 + 3 + 2


def test_concurrent_grants_never_exceed_the_budget() -> None:
    """Twenty models asking at once, each for 2 devices, under a budget of 9: at most 4 are
    granted (9 // 2), whatever the interleaving."""

    ns = "grant-race"
    limit = Budget("p", 9)
    out: dict[str, int] = {}

    def ask(name: str) -> None:
        out[name] = budget.grant(ns, name, 2, 1, limit, {})[0]

    threads = [threading.Thread(target=ask, args=(f"m{i}",)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(out.values()) * 2 <= 9
    assert sum(out.values()) == 4
    for name in out:
        budget.forget(ns, name)
    assert budget.grant(ns, "late", 2, 1, limit, {}) == (1, 0)
    budget.forget(ns, "late")


def test_conditions_for_a_policy_denial_and_a_budget_hold() -> None:
    denied = {
        c.type: c
        for c in workload_conditions(
            WorkloadView(
                0, 0, 0, 0, invalid="InferencePolicy p: ...", invalid_reason="PolicyDenied"
            )
        )
    }
    assert (denied["Ready"].status, denied["Ready"].reason) == ("False", "PolicyDenied")
    assert (denied["Stalled"].status, denied["Stalled"].reason) == ("True", "PolicyDenied")
    held = {
        c.type: c
        for c in workload_conditions(
            WorkloadView(
                1, 1, 1, 1, generation=1, observed_generation=1, budget="InferencePolicy p"
            )
        )
    }
    assert (held["Degraded"].status, held["Degraded"].reason) == ("True", "LimitedByBudget")
    assert held["Ready"].status == "True"


def test_the_autoscaler_holds_its_decision_to_the_budget_and_says_why() -> None:

    guard = cache.Guard(
        labels={"t": "a"},
        policies=[("team-a", pol(maxDevicesPerNamespace=5))],
        held={"other": 3},
    )
    rec = Recommendation(replicas=4, reason="queue 9 -> 4", by_signal={})
    held = autoscale._within_budget(("ns-auto", "llama"), spec(), rec, guard)
    assert held.replicas == 2
    assert held.limited and held.limited_by == "budget"
    assert "maxDevicesPerNamespace 5 allows 2 of the 4 replicas wanted" in held.reason
    cond = scaling_limited(held)
    assert (cond.status, cond.reason) == ("True", "LimitedByBudget")
    assert "InferencePolicy team-a" in cond.message
    # Within the budget: untouched.
    assert (
        autoscale._within_budget(("ns-auto", "llama"), spec(), rec, cache.Guard({}, [], {})) == rec
    )
    budget.forget("ns-auto", "llama")
