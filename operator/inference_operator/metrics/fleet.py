"""Fleet-wide reads: one PromQL query per signal per tick for every model a Prometheus serves,
split by labels, instead of six queries per model (200 queries/s at 500 models every 15 s).
Pure: the queries, and the split of their answers into each InferenceDeployment's samples.

Per pod, the same arithmetic as the ScaledObject's per-deployment queries
(builders/autoscaling.queries); a deployment's pods are those named `<name>-<hash>-<hash>`,
as pod_matcher selects them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from inference_operator.builders.autoscaling import vllm_series
from inference_operator.builders.names import Owner
from inference_operator.metrics.queries import (
    GATEWAY_DEPLOYMENT_LABEL,
    GATEWAY_NAMESPACE_LABEL,
    GATEWAY_RECEIVED,
    GATEWAY_WAITING,
    spelling,
)

BY_POD = "namespace, pod"
ANY_POD = 'pod!=""'

# Per (namespace, pod, le): a histogram's buckets, for the latency objectives.
BY_POD_LE = "namespace, pod, le"
GATEWAY_ROUTE = f"{GATEWAY_NAMESPACE_LABEL}, {GATEWAY_DEPLOYMENT_LABEL}"
# vLLM >= 0.11 names inter-token latency inter_token_latency_seconds; older releases
# time_per_output_token_seconds (some releases export both, with one value: sum and count
# double together, their ratio does not change).
ITL = "(inter_token_latency|time_per_output_token)_seconds"


def _rate_by_pod(metric: str) -> str:
    return f"sum by ({BY_POD}) (rate({vllm_series(metric, ANY_POD)}[1m]))"


# signal -> PromQL answering one series per (namespace, pod), or per gateway route.
FLEET_QUERIES = {
    "queue": f"sum by ({BY_POD}) ({vllm_series('num_requests_waiting', ANY_POD)})",
    "running": f"sum by ({BY_POD}) ({vllm_series('num_requests_running', ANY_POD)})",
    # Mean over the pod's engines of one value per series (old and new KV names alike).
    "kvCache": f"avg by ({BY_POD}) (max without (__name__) "
    f"({vllm_series('(kv|gpu)_cache_usage_perc', ANY_POD)}))",
    "rps": _rate_by_pod("request_success_total"),
    # For the throughput learner (scaling/throughput.py): step times, tokens, latency tails.
    "itlSum": _rate_by_pod(f"{ITL}_sum"),
    "itlCount": _rate_by_pod(f"{ITL}_count"),
    "promptTokens": _rate_by_pod("prompt_tokens_total"),
    "generationTokens": _rate_by_pod("generation_tokens_total"),
    "ttftBuckets": f"sum by ({BY_POD_LE}) "
    f"(rate({vllm_series('time_to_first_token_seconds_bucket', ANY_POD)}[1m]))",
    "tpotBuckets": f"sum by ({BY_POD_LE}) "
    f"(rate({vllm_series('request_time_per_output_token_seconds_bucket', ANY_POD)}[1m]))",
    "sampledAt": f"max by ({BY_POD}) (timestamp({vllm_series('num_requests_waiting', ANY_POD)}))",
    # Which spelling this Prometheus stores, per pod.
    "spelling": f"count by (__name__, {BY_POD}) ({vllm_series('num_requests_waiting', ANY_POD)})",
    "gateway": f"sum by ({GATEWAY_ROUTE}) ({GATEWAY_WAITING})",
    "gatewayReceived": f"sum by ({GATEWAY_ROUTE}) (rate({GATEWAY_RECEIVED}_total[1m]))",
}
# Signals answered per gateway route, and per pod and bucket.
_BY_ROUTE = ("gateway", "gatewayReceived")
_HISTOGRAMS = ("ttftBuckets", "tpotBuckets")

_POD = re.compile(r"^(?P<deployment>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[a-z0-9]+-[a-z0-9]+$")

Series = Mapping[str, str]  # a result's labels


def owner_of_pod(pod: str) -> str | None:
    """The Deployment a ReplicaSet pod belongs to: its name without the two hash suffixes."""
    m = _POD.match(pod)
    return m.group("deployment") if m else None


@dataclass
class Snapshot:
    """One tick's answers, grouped by (namespace, InferenceDeployment name)."""

    # signal -> key -> per-pod values
    pods: dict[str, dict[tuple[str, str], list[float]]] = field(default_factory=dict)
    names: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # signal (gateway, gatewayReceived) -> route -> value
    routes: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict)
    # histogram -> key -> le -> rate summed over the pods
    buckets: dict[str, dict[tuple[str, str], dict[float, float]]] = field(default_factory=dict)

    def samples(self, owner: Owner) -> dict[str, float | None]:
        key = (owner.namespace, owner.name)

        def values(signal: str) -> list[float]:
            return self.pods.get(signal, {}).get(key, [])

        def total(signal: str) -> float | None:
            v = values(signal)
            return sum(v) if v else None

        kv = values("kvCache")
        sampled = values("sampledAt")
        itl_sum, itl_count = total("itlSum"), total("itlCount")
        return {
            "queue": total("queue"),
            "running": total("running"),
            "kvCache": sum(kv) / len(kv) if kv else None,
            "rps": total("rps"),
            "gateway": self.routes.get("gateway", {}).get(key),
            "arrivals": self.routes.get("gatewayReceived", {}).get(key),
            "sampledAt": max(sampled) if sampled else None,
            "itl": itl_sum / itl_count if itl_sum is not None and itl_count else None,
            "promptTokens": total("promptTokens"),
            "generationTokens": total("generationTokens"),
        }

    def queues(self, owner: Owner) -> tuple[float, ...]:
        """Requests waiting in each of the model's pods (the recommender's backlog is per pod:
        vLLM drains a queued request only in the pod that took it)."""
        return tuple(self.pods.get("queue", {}).get((owner.namespace, owner.name), []))

    def histogram(self, owner: Owner, signal: str) -> tuple[tuple[float, float], ...]:
        """A histogram's cumulative (le, rate) over the model's pods, +Inf last; () if none."""
        by_le = self.buckets.get(signal, {}).get((owner.namespace, owner.name), {})
        return tuple(sorted(by_le.items()))

    def metric_prefix(self, owner: Owner) -> str | None:
        return spelling(self.names.get((owner.namespace, owner.name), []))


def snapshot(answers: Mapping[str, list[tuple[Series, float]]]) -> Snapshot:
    """FLEET_QUERIES' answers (signal -> [(labels, value)]) split by InferenceDeployment."""
    out = Snapshot()
    for signal, rows in answers.items():
        for labels, value in rows:
            if signal in _BY_ROUTE:
                gw = (
                    labels.get(GATEWAY_NAMESPACE_LABEL, ""),
                    labels.get(GATEWAY_DEPLOYMENT_LABEL, ""),
                )
                route = out.routes.setdefault(signal, {})
                route[gw] = route.get(gw, 0.0) + value
                continue
            deployment = owner_of_pod(labels.get("pod", ""))
            if deployment is None:
                continue
            key = (labels.get("namespace", ""), deployment)
            if signal == "spelling":
                out.names.setdefault(key, []).append(labels.get("__name__", ""))
            elif signal in _HISTOGRAMS:
                try:
                    le = float(labels.get("le", ""))
                except ValueError:
                    continue
                by_le = out.buckets.setdefault(signal, {}).setdefault(key, {})
                by_le[le] = by_le.get(le, 0.0) + value
            else:
                out.pods.setdefault(signal, {}).setdefault(key, []).append(value)
    return out
