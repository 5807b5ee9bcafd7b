"""The PromQL behind an Observation: the ScaledObject's own queries plus what only the
recommender uses. Pure: strings in, strings out."""

from __future__ import annotations

from inference_operator.builders.autoscaling import (
    kv_usage_by_pod,
    pod_matcher,
    queries,
    vllm_series,
)
from inference_operator.builders.names import Owner

# Exported by the gateway for every model it fronts: requests held because no replica could
# take them yet. The only signal that exists while a model is at zero replicas.
GATEWAY_WAITING = "inference_gateway_requests_waiting"
GATEWAY_NAMESPACE_LABEL = "inference_namespace"
GATEWAY_DEPLOYMENT_LABEL = "inference_deployment"


def gateway_matcher(owner: Owner) -> str:
    # Not `namespace`: Prometheus sets that target label to the gateway pod's own namespace.
    return (
        f'{GATEWAY_NAMESPACE_LABEL}="{owner.namespace}",{GATEWAY_DEPLOYMENT_LABEL}="{owner.name}"'
    )


def signal_queries(owner: Owner) -> dict[str, str]:
    m = pod_matcher(owner)
    scaled_object = queries(owner)
    waiting = vllm_series("num_requests_waiting", m)
    return {
        "queue": scaled_object["queue"],
        "running": f"sum({vllm_series('num_requests_running', m)})",
        # The ScaledObject sums (KEDA divides by replicas); the recommender wants the mean.
        "kvCache": f"avg({kv_usage_by_pod(m)})",
        "rps": scaled_object["rps"],
        "gateway": f"sum({GATEWAY_WAITING}{{{gateway_matcher(owner)}}})",
        # When the newest sample behind these was scraped: stale data must not scale down.
        "sampledAt": f"max(timestamp({waiting}))",
    }


def spelling_query(owner: Owner) -> str:
    """Which name Prometheus stores the waiting gauge under: one series per spelling found."""
    return f"count by (__name__) ({vllm_series('num_requests_waiting', pod_matcher(owner))})"


def spelling(names: list[str]) -> str | None:
    """`vllm:` or `vllm_` from the names spelling_query() found (both: the colon, newest)."""
    if not names:
        return None
    return "vllm:" if any(n.startswith("vllm:") for n in names) else "vllm_"
