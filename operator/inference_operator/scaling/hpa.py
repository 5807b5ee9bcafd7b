"""The HPA's arithmetic for a KEDA external metric, so the operator's scaler can report a value
that lands the HPA on the recommended replica count.

KEDA turns the scaler's float into a milli-quantity (truncating), and the HPA, for an
`AverageValue` target, computes `ratio = usage / (target * statusReplicas)`: inside the tolerance
band `[1 - down, 1 + up]` it keeps `statusReplicas`, outside it asks for `ceil(usage / target)`
(k8s.io/kubernetes pkg/controller/podautoscaler/replica_calculator.go,
GetExternalPerPodMetricReplicas). The float operations below are the same IEEE-754 doubles in
the same order as the Go code, so the edge cases (10 -> 11 is inside the band, 11/10 == 1.1) agree.
"""

from __future__ import annotations

import math

# kube-controller-manager --horizontal-pod-autoscaler-tolerance, in force when the HPA carries no
# tolerance of its own (ours is dropped by an API server without HPAConfigurableTolerance).
DEFAULT_TOLERANCE = 0.1
# The target the scaler declares in GetMetricSpec: one unit of metric per replica.
TARGET_PER_REPLICA = 1.0


def milli(value: float) -> int:
    """KEDA's float -> resource.Quantity conversion: int64(value * 1000), truncated."""
    return int(value * 1000)


def hpa_replicas(
    metric_value: float,
    status_replicas: int,
    *,
    target: float = TARGET_PER_REPLICA,
    tolerance_up: float = DEFAULT_TOLERANCE,
    tolerance_down: float = DEFAULT_TOLERANCE,
) -> int:
    """What the HPA proposes for one AverageValue external metric, before min/max and behavior."""
    usage, per_pod = milli(metric_value), milli(target)
    ratio = math.inf if status_replicas == 0 else float(usage) / (float(per_pod) * status_replicas)
    if (1.0 - tolerance_down) <= ratio <= (1.0 + tolerance_up):
        return status_replicas
    return math.ceil(float(usage) / float(per_pod))


def metric_value(
    recommended: int, status_replicas: int, *, tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """The value to report so the HPA proposes `recommended`.

    Exact whenever the step leaves the tolerance band. A step inside it (10 -> 11 replicas, or
    10 -> 9) cannot be expressed: on the way up we report the smallest count the HPA will move
    to (never less capacity than recommended), on the way down the HPA holds, which is the
    conservative side.
    """

    def lands(replicas: int) -> int:
        return hpa_replicas(
            float(replicas), status_replicas, tolerance_up=tolerance, tolerance_down=tolerance
        )

    if recommended <= status_replicas or lands(recommended) == recommended:
        return float(recommended)
    step = recommended + 1
    while lands(step) == status_replicas:
        step += 1
    return float(step)
