"""spec.autoscaling -> Policy: the one place the API's names meet the recommender's."""

from __future__ import annotations

from inference_operator.api.durations import seconds
from inference_operator.api.models import AutoscalingSpec, GatewaySpec
from inference_operator.scaling.model import Policy, Schedule, Targets
from inference_operator.scaling.throughput import Prior, Slo

# Without spec.autoscaling.scaleToZero a model at minReplicas 0 still waits this long idle.
DEFAULT_IDLE_TO_ZERO_SECONDS = 900.0


def policy_from_spec(
    a: AutoscalingSpec, prior: Prior | None = None, gateway: GatewaySpec | None = None
) -> Policy:
    """`prior`: the planner's expectation of one replica (capacity/performance.prior_for);
    `gateway`: spec.gateway, whose maxPerReplica bounds what one replica is sent at a time."""
    down = a.behavior.scale_down
    return Policy(
        min_replicas=a.min_replicas,
        max_replicas=a.max_replicas,
        targets=Targets(
            queue_per_replica=a.targets.queue_per_replica,
            kv_cache_utilization=a.targets.kv_cache_utilization,
            requests_per_second_per_replica=a.targets.requests_per_second_per_replica,
            tokens_per_second_per_replica=a.targets.tokens_per_second_per_replica,
        ),
        startup_seconds=seconds(a.startup_time),
        slo=Slo(seconds(a.slo.ttft), seconds(a.slo.tpot), a.slo.percentile),
        prior=prior,
        capacity_utilization=a.targets.capacity_utilization,
        max_seqs_per_replica=gateway.max_per_replica if gateway is not None else None,
        panic_threshold=a.behavior.scale_up.panic_threshold,
        scale_up_max_factor=a.behavior.scale_up.max_factor,
        scale_down_stabilization_seconds=seconds(down.stabilization_window),
        scale_down_max_percent=down.max_percent,
        short_burst_spare=a.behavior.short_bursts.spare_replicas,
        short_burst_hold_seconds=seconds(a.behavior.short_bursts.hold_for),
        idle_to_zero_seconds=(
            seconds(a.scale_to_zero.idle_after)
            if a.scale_to_zero is not None
            else DEFAULT_IDLE_TO_ZERO_SECONDS
        ),
        schedules=tuple(
            Schedule(
                cron=s.cron,
                min_replicas=s.min_replicas,
                duration_seconds=seconds(s.duration),
                timezone=s.timezone,
            )
            for s in a.schedules
        ),
    )
