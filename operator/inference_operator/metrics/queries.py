"""Names and label matchers of the signals beside vLLM's own (the gateway's queue), and the
spelling of vLLM's names a Prometheus stores. Pure."""

from __future__ import annotations

# Exported by the gateway for every model it fronts: requests held because no replica could
# take them yet. The only signal that exists while a model is at zero replicas.
GATEWAY_WAITING = "inference_gateway_requests_waiting"
# Counted by the gateway as each request arrives: the arrival rate, which vLLM's own counters
# (they count completions) cannot give while the fleet is overloaded.
GATEWAY_RECEIVED = "inference_gateway_requests_received"
# Not `namespace`: Prometheus sets that target label to the gateway pod's own namespace.
GATEWAY_NAMESPACE_LABEL = "inference_namespace"
GATEWAY_DEPLOYMENT_LABEL = "inference_deployment"


def spelling(names: list[str]) -> str | None:
    """`vllm:` or `vllm_` from the metric names found (both: the colon, the newer)."""
    if not names:
        return None
    return "vllm:" if any(n.startswith("vllm:") for n in names) else "vllm_"


# vllm:time_to_first_token_seconds' bucket boundaries (vllm/v1/metrics/loggers.py; the catalogue
# in ../shared/upstream/vllm-metrics.md). The simulator records its TTFTs into the same buckets,
# so the learner reads the same resolution there as from a real Prometheus.
VLLM_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
# vllm:inter_token_latency_seconds' and vllm:request_time_per_output_token_seconds' boundaries.
VLLM_TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
