"""ScalingActive / ScalingLimited for each situation, with messages stable across ticks."""

from __future__ import annotations

import pytest

from inference_operator.scaling import Observation, Policy, Recommendation
from inference_operator.scaling.report import scaling_active, scaling_limited, signals_status

POLICY = Policy(min_replicas=0)


@pytest.mark.parametrize(
    ("obs", "error", "status", "reason"),
    [
        (
            Observation(at=100, current_replicas=2, ready_replicas=2, queue=1),
            None,
            "True",
            "ReadingMetrics",
        ),
        (
            Observation(at=100, current_replicas=2, ready_replicas=2),
            "refused",
            "False",
            "PrometheusUnavailable",
        ),
        (
            Observation(at=500, current_replicas=2, ready_replicas=2, queue=1, sampled_at=100),
            None,
            "False",
            "MetricsStale",
        ),
        (Observation(at=100, current_replicas=2, ready_replicas=2), None, "False", "NoMetrics"),
        (Observation(at=100, current_replicas=0, ready_replicas=0), None, "True", "ScaledToZero"),
        (
            Observation(at=100, current_replicas=0, ready_replicas=0, gateway_queue=3),
            None,
            "True",
            "ReadingMetrics",
        ),
    ],
)
def test_scaling_active(obs: Observation, error: str | None, status: str, reason: str) -> None:
    c = scaling_active(obs, POLICY, error, "http://prom:9090")
    assert (c.type, c.status, c.reason) == ("ScalingActive", status, reason)
    if error:
        assert error in c.message


@pytest.mark.parametrize(
    ("limited_by", "status", "reason"),
    [
        ("maxReplicas", "True", "TooManyReplicas"),
        ("minReplicas", "True", "TooFewReplicas"),
        ("scaleDownRate", "True", "ScaleDownLimited"),
        ("", "False", "DesiredWithinRange"),
    ],
)
def test_scaling_limited(limited_by: str, status: str, reason: str) -> None:
    rec = Recommendation(
        4, "scale up to 4: queue asks 9", {}, limited=bool(limited_by), limited_by=limited_by
    )
    c = scaling_limited(rec)
    assert (c.status, c.reason) == (status, reason)
    assert "queue asks" not in c.message  # live numbers would cost a status write per tick


def test_signals_are_rounded_so_noise_costs_no_write() -> None:
    a = Observation(
        at=1, current_replicas=1, ready_replicas=1, queue=3.01, kv_cache_utilization=0.50001
    )
    b = Observation(
        at=1, current_replicas=1, ready_replicas=1, queue=3.04, kv_cache_utilization=0.50004
    )
    assert signals_status(a, "t") == signals_status(b, "t")


def test_learned_numbers_are_written_when_a_user_would_see_them_change() -> None:
    from inference_operator.scaling.model import Recommendation, State
    from inference_operator.scaling.report import learned_changed, learned_status
    from inference_operator.scaling.throughput import Capacity

    def rec(rps: float, source: str = "learned") -> Recommendation:
        return Recommendation(
            2, "", {}, capacity=Capacity(rps, rps * 1000, source, 7, "tpot"), startup_seconds=90.4
        )

    first = learned_status(rec(3.94), State(), "t1")
    assert first["perReplica"] == {
        "requestsPerSecond": 3.9,
        "tokensPerSecond": 3900.0,
        "source": "learned",
        "boundBy": "tpot",
        "samples": 7,
        "updatedAt": "t1",
    }
    assert first["startup"]["seconds"] == 90 and first["startup"]["source"] == "spec"
    # 3.94 -> 3.91 rounds alike, and samples and time are not news: no write.
    assert not learned_changed(first, learned_status(rec(3.91), State(), "t2"))
    assert learned_changed(first, learned_status(rec(3.2), State(), "t2"))
    assert learned_changed(first, learned_status(rec(3.94, "prior"), State(), "t2"))
