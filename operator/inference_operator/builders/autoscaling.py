"""KEDA ScaledObject and TriggerAuthentication for an InferenceDeployment (pure)."""

from __future__ import annotations

import math
from typing import Any

from inference_operator.api.defaults import DEFAULT_PROMETHEUS_URL
from inference_operator.api.durations import seconds
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.scaling.hpa import TARGET_PER_REPLICA

# The metric the operator's external scaler serves (KEDA prefixes it with the trigger index).
SCALER_METRIC = "recommendedReplicas"


def pod_matcher(owner: Owner) -> str:
    """PromQL label matchers for this deployment's pods (as a PodMonitor labels them)."""
    return f'namespace="{owner.namespace}",pod=~"{owner.name}-[a-z0-9]+-[a-z0-9]+"'


def vllm_series(metric: str, matcher: str) -> str:
    """A selector for a vLLM metric under either spelling a real Prometheus may store.

    vLLM names its metrics `vllm:x`. Scraped as OpenMetrics (what Prometheus 2.x asks for first),
    prometheus_client writes the samples as `vllm_x`; scraped as text, or by a Prometheus 3 that
    negotiates UTF-8 names, they keep the colon. Which one a user's TSDB holds is not ours to
    choose, so every query matches both (`metric` may itself be a regex alternation).
    """
    return f'{{__name__=~"vllm[:_]{metric}",{matcher}}}'


def kv_usage_by_pod(matcher: str) -> str:
    # vLLM < 0.9.2 exposes only gpu_cache_usage_perc, >= 0.12 only kv_cache_usage_perc, and the
    # releases between expose both with one value: the max per series keeps one of them.
    return f"max without (__name__) ({vllm_series('(kv|gpu)_cache_usage_perc', matcher)})"


def queries(owner: Owner) -> dict[str, str]:
    m = pod_matcher(owner)
    return {
        "queue": f"sum({vllm_series('num_requests_waiting', m)})",
        "kvCache": f"sum({kv_usage_by_pod(m)})",
        "rps": f"sum(rate({vllm_series('request_success_total', m)}[1m]))",
        # Two rates added, not one over both names: rate() drops the metric name, and two series
        # with the same labels left in one vector are an error in PromQL.
        "tokens": f"sum(rate({vllm_series('prompt_tokens_total', m)}[1m])) + "
        f"sum(rate({vllm_series('generation_tokens_total', m)}[1m]))",
    }


def _number(x: float) -> str:
    return f"{x:g}"


def build_trigger_authentication(
    owner: Owner, spec: InferenceDeploymentSpec
) -> dict[str, Any] | None:
    ref = spec.autoscaling.prometheus.auth_secret_ref
    if ref is None:
        return None
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": owner.metadata(f"{owner.name}-prometheus", component="autoscaling"),
        # A reference only: KEDA reads the Secret; its value never passes through us.
        "spec": {
            "secretTargetRef": [{"parameter": "bearerToken", "name": ref.name, "key": ref.key}]
        },
    }


def external_trigger(
    owner: Owner, scaler_address: str, tls_auth: str | None = None
) -> dict[str, Any]:
    """The operator's own scaler: KEDA asks it IsActive/GetMetrics and the HPA lands on the
    recommender's replica count (scaling/hpa.py explains the arithmetic). With `tls_auth`, KEDA
    dials it over TLS with the CA (and client certificate) of that ClusterTriggerAuthentication."""
    trigger: dict[str, Any] = {
        "type": "external",
        "name": "recommender",
        "metricType": "AverageValue",
        "metadata": {
            "scalerAddress": scaler_address,
            "inferenceDeployment": owner.name,
            "metricName": SCALER_METRIC,
            "targetSize": _number(TARGET_PER_REPLICA),
        },
    }
    if tls_auth is not None:
        trigger["metadata"]["enableTLS"] = "true"
        trigger["authenticationRef"] = {"name": tls_auth, "kind": "ClusterTriggerAuthentication"}
    return trigger


def _policy(kind: str, value: int, period: int) -> dict[str, Any]:
    return {"type": kind, "value": value, "periodSeconds": period}


def _hpa_behavior(spec: InferenceDeploymentSpec, passthrough: bool) -> dict[str, Any]:
    """With the operator's scaler the recommender already stabilizes and rate-limits, so the HPA
    passes its answer through (tolerance 0: 10 -> 11 replicas is not lost in the default 10%
    band); with Prometheus triggers alone the HPA does that work itself.

    `tolerance` needs the HPAConfigurableTolerance gate (beta, on by default since 1.35); an API
    server without it drops the field and the cluster-wide 10% applies: the scaler reads the
    HPA KEDA made and lands on the recommendation under whichever tolerance is in force."""
    b = spec.autoscaling.behavior
    tolerance = "0" if passthrough else _number(b.hpa_tolerance)
    up_percent = math.ceil((b.scale_up.max_factor - 1) * 100) if passthrough else 100
    if passthrough:
        window, down = 0, [_policy("Percent", 100, 15)]
    else:
        window = int(seconds(b.scale_down.stabilization_window))
        down = [
            _policy("Percent", max(1, math.ceil(b.scale_down.max_percent)), 60),
            _policy("Pods", 1, 60),
        ]
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [_policy("Percent", up_percent, 15), _policy("Pods", 4, 15)],
            "tolerance": tolerance,
        },
        "scaleDown": {
            "stabilizationWindowSeconds": window,
            "selectPolicy": "Max",
            "policies": down,
            "tolerance": tolerance,
        },
    }


def build_scaled_object(
    owner: Owner,
    spec: InferenceDeploymentSpec,
    scaler_address: str | None = None,
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
    scaler_tls_auth: str | None = None,
) -> dict[str, Any]:
    a = spec.autoscaling
    q = queries(owner)
    auth = a.prometheus.auth_secret_ref is not None

    def trigger(name: str, threshold: float, activation: float) -> dict[str, Any]:
        meta = {
            "serverAddress": a.prometheus.url or prometheus_url,
            "query": q[name],
            "threshold": _number(threshold),
            "activationThreshold": _number(activation),
            "ignoreNullValues": "true",
        }
        t: dict[str, Any] = {
            "type": "prometheus",
            "name": name,
            "metricType": "AverageValue",
            "metadata": meta,
        }
        if auth:
            meta["authModes"] = "bearer"
            t["authenticationRef"] = {"name": f"{owner.name}-prometheus"}
        return t

    triggers: list[dict[str, Any]] = []
    if scaler_address is not None:
        triggers.append(external_trigger(owner, scaler_address, scaler_tls_auth))
    if scaler_address is None or a.prometheus_triggers:
        # Any waiting request wakes a model at zero; KV and RPS say nothing at zero replicas.
        triggers += [
            trigger("queue", a.targets.queue_per_replica, 0),
            trigger("kvCache", a.targets.kv_cache_utilization, 0),
        ]
        if a.targets.requests_per_second_per_replica is not None:
            triggers.append(trigger("rps", a.targets.requests_per_second_per_replica, 0))
        if a.targets.tokens_per_second_per_replica is not None:
            triggers.append(trigger("tokens", a.targets.tokens_per_second_per_replica, 0))
    behavior = _hpa_behavior(spec, passthrough=scaler_address is not None)
    if scaler_address is not None:
        # The recommender answers 0 only after scaleToZero.idleAfter; KEDA need not wait again.
        cooldown = 30
    else:
        cooldown = int(seconds(a.scale_to_zero.idle_after) if a.scale_to_zero else 300.0)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": owner.metadata(component="autoscaling"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": owner.api_version,
                "kind": owner.kind,
                "name": owner.name,
            },
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": max(1, round(seconds(a.polling_interval))),
            "cooldownPeriod": cooldown,
            # A scaler unreachable three times in a row: keep what runs rather than shrink.
            "fallback": {
                "failureThreshold": 3,
                "replicas": max(1, a.min_replicas),
                "behavior": "currentReplicasIfHigher",
            },
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
            "triggers": triggers,
        },
    }
