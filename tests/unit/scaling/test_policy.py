"""spec.autoscaling -> Policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inference_operator.api.models import AutoscalingSpec, GatewaySpec
from inference_operator.scaling.policy import DEFAULT_IDLE_TO_ZERO_SECONDS, policy_from_spec


def test_every_spec_field_reaches_the_policy() -> None:
    spec = AutoscalingSpec.model_validate(
        {
            "minReplicas": 0,
            "maxReplicas": 12,
            "targets": {
                "queuePerReplica": 6,
                "kvCacheUtilization": 0.7,
                "requestsPerSecondPerReplica": 2.5,
            },
            "scaleToZero": {"idleAfter": "20m"},
            "behavior": {
                "scaleUp": {"panicThreshold": 3, "maxFactor": 4},
                "scaleDown": {"stabilizationWindow": "10m", "maxPercent": 25},
                "shortBursts": {"spareReplicas": 3, "holdFor": "30m"},
            },
            "schedules": [
                {
                    "cron": "0 8 * * 1-5",
                    "timezone": "Europe/Paris",
                    "minReplicas": 4,
                    "duration": "10h",
                }
            ],
            "startupTime": "4m30s",
        }
    )
    p = policy_from_spec(spec)
    assert (p.min_replicas, p.max_replicas) == (0, 12)
    t = p.targets
    assert (t.queue_per_replica, t.kv_cache_utilization, t.requests_per_second_per_replica) == (
        6,
        0.7,
        2.5,
    )
    assert p.idle_to_zero_seconds == 1200
    assert (p.panic_threshold, p.scale_up_max_factor) == (3, 4)
    assert (p.scale_down_stabilization_seconds, p.scale_down_max_percent) == (600, 25)
    assert p.startup_seconds == 270
    assert (p.short_burst_spare, p.short_burst_hold_seconds) == (3, 1800)
    (s,) = p.schedules
    assert (s.cron, s.timezone, s.min_replicas, s.duration_seconds) == (
        "0 8 * * 1-5",
        "Europe/Paris",
        4,
        36000,
    )


def test_defaults() -> None:
    p = policy_from_spec(AutoscalingSpec())
    assert (p.min_replicas, p.max_replicas, p.startup_seconds) == (1, 4, 180)
    assert p.idle_to_zero_seconds == DEFAULT_IDLE_TO_ZERO_SECONDS
    assert (p.short_burst_spare, p.short_burst_hold_seconds) == (2, 3600)


def test_the_gateways_max_per_replica_bounds_what_a_replica_holds() -> None:
    gateway = GatewaySpec.model_validate({"maxPerReplica": 32})
    assert policy_from_spec(AutoscalingSpec(), gateway=gateway).max_seqs_per_replica == 32
    # Without a gateway of its own the replicas' batch is vLLM's to bound.
    assert policy_from_spec(AutoscalingSpec()).max_seqs_per_replica is None


@pytest.mark.parametrize(
    ("field", "schedule", "message"),
    [
        ("cron", {"cron": "99 99 * * *"}, "'99 99 * * *' is not a 5-field cron expression"),
        ("timezone", {"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA time zone"),
    ],
)
def test_schedules_the_crd_cannot_check_are_refused_with_field_and_value(
    field: str, schedule: dict[str, str], message: str
) -> None:
    raw = {"cron": "0 8 * * *", "minReplicas": 1, "duration": "1h", **schedule}
    with pytest.raises(ValidationError) as e:
        AutoscalingSpec.model_validate({"schedules": [raw]})
    (err,) = e.value.errors()
    assert err["loc"] == ("schedules", 0, field)
    assert message in err["msg"]
