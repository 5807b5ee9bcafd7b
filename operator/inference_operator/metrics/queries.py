"""Names and label matchers of the signals beside vLLM's own (the gateway's queue), and the
spelling of vLLM's names a Prometheus stores. Pure."""

from __future__ import annotations

# Exported by the gateway for every model it fronts: requests held because no replica could
# take them yet. The only signal that exists while a model is at zero replicas.
GATEWAY_WAITING = "inference_gateway_requests_waiting"
# Not `namespace`: Prometheus sets that target label to the gateway pod's own namespace.
GATEWAY_NAMESPACE_LABEL = "inference_namespace"
GATEWAY_DEPLOYMENT_LABEL = "inference_deployment"


def spelling(names: list[str]) -> str | None:
    """`vllm:` or `vllm_` from the metric names found (both: the colon, the newer)."""
    if not names:
        return None
    return "vllm:" if any(n.startswith("vllm:") for n in names) else "vllm_"
