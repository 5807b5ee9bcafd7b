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
    GATEWAY_WAITING,
    spelling,
)

BY_POD = "namespace, pod"
ANY_POD = 'pod!=""'

# signal -> PromQL answering one series per (namespace, pod), or per gateway route.
FLEET_QUERIES = {
    "queue": f"sum by ({BY_POD}) ({vllm_series('num_requests_waiting', ANY_POD)})",
    "running": f"sum by ({BY_POD}) ({vllm_series('num_requests_running', ANY_POD)})",
    # Mean over the pod's engines of one value per series (old and new KV names alike).
    "kvCache": f"avg by ({BY_POD}) (max without (__name__) "
    f"({vllm_series('(kv|gpu)_cache_usage_perc', ANY_POD)}))",
    "rps": f"sum by ({BY_POD}) (rate({vllm_series('request_success_total', ANY_POD)}[1m]))",
    "sampledAt": f"max by ({BY_POD}) (timestamp({vllm_series('num_requests_waiting', ANY_POD)}))",
    # Which spelling this Prometheus stores, per pod.
    "spelling": f"count by (__name__, {BY_POD}) ({vllm_series('num_requests_waiting', ANY_POD)})",
    "gateway": f"sum by ({GATEWAY_NAMESPACE_LABEL}, {GATEWAY_DEPLOYMENT_LABEL}) "
    f"({GATEWAY_WAITING})",
}

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
    gateway: dict[tuple[str, str], float] = field(default_factory=dict)

    def samples(self, owner: Owner) -> dict[str, float | None]:
        key = (owner.namespace, owner.name)

        def values(signal: str) -> list[float]:
            return self.pods.get(signal, {}).get(key, [])

        def total(signal: str) -> float | None:
            v = values(signal)
            return sum(v) if v else None

        kv = values("kvCache")
        sampled = values("sampledAt")
        return {
            "queue": total("queue"),
            "running": total("running"),
            "kvCache": sum(kv) / len(kv) if kv else None,
            "rps": total("rps"),
            "gateway": self.gateway.get(key),
            "sampledAt": max(sampled) if sampled else None,
        }

    def metric_prefix(self, owner: Owner) -> str | None:
        return spelling(self.names.get((owner.namespace, owner.name), []))


def snapshot(answers: Mapping[str, list[tuple[Series, float]]]) -> Snapshot:
    """FLEET_QUERIES' answers (signal -> [(labels, value)]) split by InferenceDeployment."""
    out = Snapshot()
    for signal, rows in answers.items():
        for labels, value in rows:
            if signal == "gateway":
                gw = (
                    labels.get(GATEWAY_NAMESPACE_LABEL, ""),
                    labels.get(GATEWAY_DEPLOYMENT_LABEL, ""),
                )
                out.gateway[gw] = out.gateway.get(gw, 0.0) + value
                continue
            deployment = owner_of_pod(labels.get("pod", ""))
            if deployment is None:
                continue
            key = (labels.get("namespace", ""), deployment)
            if signal == "spelling":
                out.names.setdefault(key, []).append(labels.get("__name__", ""))
            else:
                out.pods.setdefault(signal, {}).setdefault(key, []).append(value)
    return out
