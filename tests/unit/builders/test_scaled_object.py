"""The ScaledObject with the operator's external scaler: which triggers, which HPA behavior,
and a TriggerAuthentication only when a Prometheus trigger needs it."""

from __future__ import annotations

from typing import Any

import pytest

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all

OWNER = Owner("llama", "serving", "u")
AUTH = {"prometheus": {"authSecretRef": {"name": "prom", "key": "token"}}}


def objects(autoscaling: dict[str, Any], scaler: str | None) -> dict[str, dict[str, Any]]:
    spec = InferenceDeploymentSpec.model_validate(
        {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "accelerator": {"kind": "nvidia"},
            "autoscaling": autoscaling,
        }
    )
    desired = build_all(OWNER, spec, Available(keda=True, scaler_address=scaler))
    return {o["kind"]: o for o in desired.apply}


@pytest.mark.parametrize(
    ("autoscaling", "scaler", "triggers", "auth"),
    [
        ({}, "op.system.svc:6000", ["external"], False),
        (AUTH, "op.system.svc:6000", ["external"], False),
        (
            {**AUTH, "prometheusTriggers": True},
            "op.system.svc:6000",
            ["external", "prometheus", "prometheus"],
            True,
        ),
        (AUTH, None, ["prometheus", "prometheus"], True),
    ],
)
def test_triggers_and_authentication(
    autoscaling: dict[str, Any], scaler: str | None, triggers: list[str], auth: bool
) -> None:
    got = objects(autoscaling, scaler)
    assert [t["type"] for t in got["ScaledObject"]["spec"]["triggers"]] == triggers
    assert ("TriggerAuthentication" in got) == auth


def test_with_the_scaler_the_hpa_passes_the_recommendation_through() -> None:
    so = objects({"behavior": {"scaleUp": {"maxFactor": 4}}}, "op:6000")["ScaledObject"]["spec"]
    (external,) = so["triggers"]
    assert external["metricType"] == "AverageValue"
    assert external["metadata"] == {
        "scalerAddress": "op:6000",
        "inferenceDeployment": "llama",
        "metricName": "recommendedReplicas",
        "targetSize": "1",
    }
    behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["policies"][0] == {
        "type": "Percent",
        "value": 300,
        "periodSeconds": 15,
    }
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 0
    assert so["cooldownPeriod"] == 30


def test_a_tls_scaler_is_dialled_with_the_cluster_trigger_authentication() -> None:
    spec = InferenceDeploymentSpec.model_validate(
        {"model": {"uri": "hf://m/llama"}, "accelerator": {"kind": "nvidia"}}
    )
    available = Available(keda=True, scaler_address="op:6000", scaler_tls_auth="scaler-tls")
    (so,) = [o for o in build_all(OWNER, spec, available).apply if o["kind"] == "ScaledObject"]
    (external,) = so["spec"]["triggers"]
    assert external["metadata"]["enableTLS"] == "true"
    assert external["authenticationRef"] == {
        "name": "scaler-tls",
        "kind": "ClusterTriggerAuthentication",
    }
    plain = build_all(OWNER, spec, Available(keda=True, scaler_address="op:6000")).apply
    (so,) = [o for o in plain if o["kind"] == "ScaledObject"]
    assert "enableTLS" not in so["spec"]["triggers"][0]["metadata"]


def test_a_tokens_target_becomes_a_prometheus_trigger_without_the_scaler() -> None:
    got = objects({"targets": {"tokensPerSecondPerReplica": 2500}}, None)
    triggers = {t["name"]: t for t in got["ScaledObject"]["spec"]["triggers"]}
    assert set(triggers) == {"queue", "kvCache", "tokens"}
    tokens = triggers["tokens"]["metadata"]
    assert tokens["threshold"] == "2500"
    # Prompt plus generated, each its own rate (tests/e2e/test_promql.py runs it on Prometheus).
    assert "prompt_tokens_total" in tokens["query"]
    assert "generation_tokens_total" in tokens["query"]
