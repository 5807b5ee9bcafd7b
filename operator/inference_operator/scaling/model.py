"""Typed inputs and outputs of the scaling decision. Plain frozen dataclasses: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from inference_operator.scaling.bursts import BurstMemory
from inference_operator.scaling.startup import Startup, StartupMemory
from inference_operator.scaling.throughput import Capacity, Prior, Slo, ThroughputMemory
from inference_operator.scaling.warm import WarmMemory


@dataclass(frozen=True)
class Observation:
    """What the fleet looked like at `at` (epoch seconds). A signal is None when unknown."""

    at: float
    # Replicas the scale target currently asks for (spec.replicas); the "no change" answer.
    current_replicas: int
    # Pods Ready and serving, and pods created but not Ready yet (node launch, pull, load).
    ready_replicas: int
    starting_replicas: int = 0
    # Fleet totals, summed over pods (vllm:num_requests_waiting / _running).
    queue: float | None = None
    running: float | None = None
    # vllm:num_requests_waiting per pod (empty: not known per pod). vLLM keeps a request in the
    # queue of the replica that took it, so a backlog concentrated in one pod ties up that pod
    # alone, however many replicas are added.
    queues: tuple[float, ...] = ()
    # Mean KV-cache usage over Ready pods, a 0-1 fraction (vllm:kv_cache_usage_perc).
    kv_cache_utilization: float | None = None
    # Requests per second arriving at the fleet (the gateway, or http_requests_total).
    arrival_rps: float | None = None
    # Requests per second finishing (vllm:request_success_total).
    completion_rps: float | None = None
    # Requests held by the gateway, the only signal that exists at zero replicas.
    gateway_queue: float | None = None
    # When the newest sample behind these signals was taken; None means "at `at`".
    sampled_at: float | None = None
    # For the throughput learner, fleet totals over the rate window: mean inter-token latency,
    # prompt and generated tokens per second (vllm:inter_token_latency_seconds,
    # vllm:prompt_tokens_total, vllm:generation_tokens_total).
    itl_s: float | None = None
    prompt_tps: float | None = None
    generation_tps: float | None = None
    # rate(vllm:time_to_first_token_seconds_bucket) summed over the fleet: cumulative
    # (le, per second), the last le +Inf.
    ttft_buckets: tuple[tuple[float, float], ...] = ()
    # The same of vllm:request_time_per_output_token_seconds (one per finished request).
    tpot_buckets: tuple[tuple[float, float], ...] = ()
    # Start-ups seen lately (pod created -> Ready); the learner keeps the ones it has not seen.
    startups: tuple[Startup, ...] = ()

    @property
    def has_load_signal(self) -> bool:
        return any(
            v is not None
            for v in (self.queue, self.kv_cache_utilization, self.arrival_rps, self.completion_rps)
        )

    @property
    def supply(self) -> int:
        return self.ready_replicas + self.starting_replicas


@dataclass(frozen=True)
class Targets:
    """Per-replica targets: what one replica should carry at the desired operating point."""

    queue_per_replica: float = 4.0
    kv_cache_utilization: float = 0.8
    requests_per_second_per_replica: float | None = None
    tokens_per_second_per_replica: float | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("queuePerReplica", self.queue_per_replica),
            ("kvCacheUtilization", self.kv_cache_utilization),
            ("requestsPerSecondPerReplica", self.requests_per_second_per_replica),
            ("tokensPerSecondPerReplica", self.tokens_per_second_per_replica),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"targets.{name}: {value!r} must be > 0")
        if self.kv_cache_utilization > 1:
            raise ValueError(
                f"targets.kvCacheUtilization: {self.kv_cache_utilization!r} must be <= 1"
            )


@dataclass(frozen=True)
class Schedule:
    """A floor of `min_replicas` for `duration_seconds` from each cron fire, in `timezone`."""

    cron: str
    min_replicas: int
    duration_seconds: float
    timezone: str = "UTC"


@dataclass(frozen=True)
class Policy:
    """How to scale; built from the InferenceDeployment's spec.autoscaling."""

    min_replicas: int = 1
    max_replicas: int = 8
    targets: Targets = field(default_factory=Targets)
    # Time from "create a replica" to "it serves"; the forecast looks this far ahead.
    startup_seconds: float = 120.0
    # Trend look-back for the arrival-rate forecast.
    forecast_window_seconds: float = 300.0
    # The forecast may at most multiply the current arrival rate by this.
    forecast_max_growth: float = 2.0
    # Panic: when demand reaches this multiple of Ready capacity, never scale down for the window.
    panic_threshold: float = 2.0
    panic_window_seconds: float = 60.0
    # Scale up at most by this factor (and at least by `scale_up_min_step`) per decision.
    scale_up_max_factor: float = 10.0
    scale_up_min_step: int = 4
    # A rise of one replica must be asked for over this long (the lowest need in the window
    # wins), so one noisy minute of rates near a boundary does not buy a replica that
    # stabilization then keeps for five minutes. Larger rises and panic act at once.
    scale_up_confirm_seconds: float = 15.0
    # Scale down: highest recommendation over this window, then at most the larger of
    # `scale_down_max_step` replicas and `scale_down_max_percent` % every period.
    scale_down_stabilization_seconds: float = 300.0
    scale_down_max_step: int = 1
    scale_down_max_percent: float = 50.0
    scale_down_period_seconds: float = 60.0
    # Scale to zero after this long without any request (only when min_replicas == 0).
    idle_to_zero_seconds: float = 900.0
    # Observations older than this are stale: hold, never scale down on them.
    stale_after_seconds: float = 90.0
    schedules: tuple[Schedule, ...] = ()
    # Without targets.requestsPerSecondPerReplica: the learned capacity (scaling/throughput.py)
    # against this SLO, starting from the planner's prior, and this fraction of it per replica.
    slo: Slo = field(default_factory=Slo)
    prior: Prior | None = None
    capacity_utilization: float = 0.95
    # spec.gateway.maxPerReplica: the gateway never sends a replica more at a time, so the
    # learned capacity is bounded by it as by the KV cache. None: no gateway of its own.
    max_seqs_per_replica: int | None = None
    # After a burst that was over before the replicas launched for it were Ready, keep this
    # many Ready replicas above what the load before it needed, for this long
    # (scaling/bursts.py; spec.autoscaling.behavior.shortBursts).
    short_burst_spare: int = 2
    short_burst_hold_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValueError(f"minReplicas: {self.min_replicas} must be >= 0")
        if self.max_replicas < max(1, self.min_replicas):
            raise ValueError(
                f"maxReplicas: {self.max_replicas} must be >= max(1, minReplicas="
                f"{self.min_replicas})"
            )

    def with_(self, **changes: Any) -> Policy:
        return replace(self, **changes)


@dataclass(frozen=True)
class State:
    """What must survive between decisions (and an operator restart: it is kept in status)."""

    # (time, raw desired) over the scale-down stabilization window.
    recent: tuple[tuple[float, int], ...] = ()
    # (time, arrival rps) over the forecast window.
    arrivals: tuple[tuple[float, float], ...] = ()
    panic_until: float = 0.0
    last_scale_down_at: float = 0.0
    last_active_at: float | None = None
    last_replicas: int | None = None
    # First decision of this brain (or since an operator restart without stored state).
    started_at: float | None = None
    # Demand growth within one start-up time, for warm capacity (scaling/warm.py).
    warm: WarmMemory = field(default_factory=WarmMemory)
    # (time, requests in flight: running + waiting + held at the gateway) over the rate window,
    # so arrivals = completions + the change in flight.
    inflight: tuple[tuple[float, float], ...] = ()
    throughput: ThroughputMemory = field(default_factory=ThroughputMemory)
    # When the fleet last was catching up (starting replicas, a backlog, requests held), and
    # since when it had been.
    unsettled_at: float | None = None
    unsettled_since: float | None = None
    startups: StartupMemory = field(default_factory=StartupMemory)
    bursts: BurstMemory = field(default_factory=BurstMemory)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recent": [list(x) for x in self.recent],
            "arrivals": [list(x) for x in self.arrivals],
            "panicUntil": self.panic_until,
            "lastScaleDownAt": self.last_scale_down_at,
            "lastActiveAt": self.last_active_at,
            "lastReplicas": self.last_replicas,
            "startedAt": self.started_at,
            "supply": [list(x) for x in self.warm.supply],
            "peaks": [list(x) for x in self.warm.peaks],
            "inflight": [list(x) for x in self.inflight],
            "throughput": self.throughput.to_dict(),
            "unsettledAt": self.unsettled_at,
            "unsettledSince": self.unsettled_since,
            "startups": self.startups.to_list(),
            "bursts": self.bursts.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> State:
        if not raw:
            return cls()
        return cls(
            recent=tuple((float(t), int(r)) for t, r in raw.get("recent", [])),
            arrivals=tuple((float(t), float(v)) for t, v in raw.get("arrivals", [])),
            panic_until=float(raw.get("panicUntil", 0.0)),
            last_scale_down_at=float(raw.get("lastScaleDownAt", 0.0)),
            last_active_at=None if raw.get("lastActiveAt") is None else float(raw["lastActiveAt"]),
            last_replicas=None if raw.get("lastReplicas") is None else int(raw["lastReplicas"]),
            started_at=None if raw.get("startedAt") is None else float(raw["startedAt"]),
            warm=WarmMemory(
                tuple((float(t), int(r)) for t, r in raw.get("supply", [])),
                tuple((float(t), int(g)) for t, g in raw.get("peaks", [])),
            ),
            inflight=tuple((float(t), float(v)) for t, v in raw.get("inflight", [])),
            throughput=ThroughputMemory.from_dict(raw.get("throughput")),
            unsettled_at=None if raw.get("unsettledAt") is None else float(raw["unsettledAt"]),
            unsettled_since=(
                None if raw.get("unsettledSince") is None else float(raw["unsettledSince"])
            ),
            startups=StartupMemory.from_list(raw.get("startups")),
            bursts=BurstMemory.from_dict(raw.get("bursts")),
        )


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    reason: str
    # What each signal alone asks for (None: the signal was missing).
    by_signal: dict[str, int | None]
    panic: bool = False
    # True when min/max or a rate limit changed the answer; `limited_by` says which.
    limited: bool = False
    limited_by: str = ""
    # For a limit set outside the spec (an InferencePolicy's budget): which, in words.
    limit_detail: str = ""
    holding: bool = False
    # The per-replica capacity the rps signal used (None: no rate signal or no capacity).
    capacity: Capacity | None = None
    # Where the arrival rate came from: gateway, completions+inflight, burst, completions or none.
    arrival_source: str = "none"
    # The start-up time the decision looked ahead by, and whether it was learned.
    startup_seconds: float = 0.0
    startup_learned: bool = False
