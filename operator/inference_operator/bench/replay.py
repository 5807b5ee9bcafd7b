"""Replay one trace through each policy on the fleet simulator and measure cost and SLO."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_operator.api.models import WarmAuto
from inference_operator.bench.policies import (
    KedaHpaDefaults,
    KnativeKpa,
    LeadOracle,
    Ours,
    Static,
    needed_replicas,
)
from inference_operator.bench.product import product_policy, product_spec
from inference_operator.bench.simulator.engine import Replica, Request
from inference_operator.bench.simulator.fleet import FleetSimulator, ScalingPolicy, SimResult
from inference_operator.bench.simulator.profiles import EngineProfile, StartupScenario
from inference_operator.bench.traces import Trace
from inference_operator.scaling import Policy

POLICY_NAMES = (
    "ours",
    "ours-hinted",
    "ours-buffered",
    "static-peak",
    "keda-default",
    "knative-kpa",
    "oracle",
)


@dataclass(frozen=True)
class Slo:
    ttft_s: float = 2.0
    tpot_s: float = 0.100

    def met(self, r: Request) -> bool:
        ttft, tpot = r.ttft, r.tpot
        return (
            not r.failed
            and ttft is not None
            and tpot is not None
            and ttft <= self.ttft_s
            and tpot <= self.tpot_s
        )


@dataclass(frozen=True)
class Capacity:
    """What one replica sustains on this trace's mix within the SLO (a loadtest's answer)."""

    rps: float
    concurrency: float  # mean in-flight requests at that rate (Little's law, measured)


def calibrate(
    profile: EngineProfile, trace: Trace, slo: Slo, seconds: float = 600.0, seed: int = 1
) -> Capacity:
    """Bisect the Poisson rate one replica serves with >= 99% SLO attainment."""
    rng = random.Random(seed)
    mix = [(r.prompt_tokens, r.output_tokens) for r in trace.requests]

    def attempt(rate: float) -> tuple[float, float]:
        replica = Replica(profile, 0.0)
        reqs: list[Request] = []
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t > seconds:
                break
            p, o = mix[rng.randrange(len(mix))]
            req = Request(t, p, o)
            replica.advance(t)
            replica.enqueue(req)
            reqs.append(req)
        replica.advance(seconds * 20)
        ok = sum(1 for r in reqs if slo.met(r)) / max(1, len(reqs))
        in_flight = sum((r.finished_at or t) - r.arrival for r in reqs) / seconds
        return ok, in_flight

    lo, hi = 0.05, 64.0
    conc = 1.0
    for _ in range(12):
        mid = math.sqrt(lo * hi)
        ok, in_flight = attempt(mid)
        if ok >= 0.99:
            lo, conc = mid, in_flight
        else:
            hi = mid
    return Capacity(lo, max(1.0, conc))


@dataclass
class PolicyReport:
    gpu_hours: float
    gpu_hours_serving: float
    gpu_hours_idle: float
    gpu_hours_starting: float
    slo_attainment: float
    ttft_p50_s: float
    ttft_p95_s: float
    ttft_p99_s: float
    tpot_p95_s: float
    scaling_events: int
    flaps: int
    reaction_time_p95_s: float
    unfinished: int
    result: SimResult | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in self.__dict__.items()
            if k != "result"
        }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def flaps(changes: list[tuple[float, int, int]], window: float = 600.0) -> int:
    """Direction reversals (up then down, or down then up) within `window` seconds."""
    count = 0
    for (t0, a0, b0), (t1, a1, b1) in itertools.pairwise(changes):
        if (b0 - a0) * (b1 - a1) < 0 and t1 - t0 <= window:
            count += 1
    return count


def reaction_times(
    result: SimResult, need: list[int], bin_seconds: float, start: float
) -> list[float]:
    """For each rise of the fluid need above Ready replicas: seconds until Ready caught up."""
    out: list[float] = []
    pending: tuple[float, int] | None = None
    for p in result.timeline:
        b = int((p.at - start) // bin_seconds)
        level = need[b] if 0 <= b < len(need) else 0
        if pending is not None and p.ready >= pending[1]:
            out.append(p.at - pending[0])
            pending = None
        if pending is None and level > p.ready:
            pending = (p.at, level)
    return out


def measure(
    result: SimResult, slo: Slo, need: list[int], bin_seconds: float, start: float
) -> PolicyReport:
    hours = 3600.0
    total = starting = serving = 0.0
    for r in result.replicas:
        end = r.ended_at if r.ended_at is not None else result.end
        life = max(0.0, end - r.created_at)
        total += life
        starting += max(0.0, min(r.ready_at, end) - r.created_at)
        serving += min(r.engine.busy_seconds, max(0.0, end - r.ready_at))
    # Spare nodes held for a buffer cost as much as a replica's node, all of it idle.
    total += sum(
        max(0.0, (n.ended_at if n.ended_at is not None else result.end) - n.launched_at)
        for n in result.spares
    )
    dev = result.devices_per_replica
    reqs = result.requests
    finished = [r for r in reqs if r.finished_at is not None and not r.failed]
    ttfts = [r.ttft if r.ttft is not None else math.inf for r in reqs]
    tpots = [r.tpot for r in finished if r.tpot is not None]
    reactions = reaction_times(result, need, bin_seconds, start)
    return PolicyReport(
        gpu_hours=total * dev / hours,
        gpu_hours_serving=serving * dev / hours,
        gpu_hours_idle=(total - starting - serving) * dev / hours,
        gpu_hours_starting=starting * dev / hours,
        slo_attainment=sum(1 for r in reqs if slo.met(r)) / max(1, len(reqs)),
        ttft_p50_s=_pct(ttfts, 0.50),
        ttft_p95_s=_pct(ttfts, 0.95),
        ttft_p99_s=_pct(ttfts, 0.99),
        tpot_p95_s=_pct(tpots, 0.95),
        scaling_events=len(result.scale_changes),
        flaps=flaps(result.scale_changes),
        reaction_time_p95_s=_pct(reactions, 0.95),
        unfinished=len(reqs) - len(finished),
        result=result,
    )


@dataclass(frozen=True)
class BenchConfig:
    profile: EngineProfile
    scenario: StartupScenario
    slo: Slo = Slo()
    min_replicas: int = 1
    max_replicas: int = 64
    # Our rps target is this fraction of the measured per-replica capacity (the headroom).
    rps_headroom: float = 0.85
    queue_per_replica: float = 4.0
    oracle_bin_seconds: float = 30.0
    seed: int = 0


def our_policy(cfg: BenchConfig, hint: float | None = None) -> Policy:
    """The operator's policy for this replica with the shipped defaults; `hint`: the
    requestsPerSecondPerReplica a user who measured the capacity would set."""
    return product_policy(product_spec(cfg.profile, cfg.min_replicas, cfg.max_replicas, hint))


def build_policies(
    cfg: BenchConfig, trace: Trace, capacity: Capacity, names: tuple[str, ...]
) -> dict[str, ScalingPolicy]:
    arrivals = [r.at for r in trace.requests]
    need = needed_replicas(arrivals, capacity.rps, cfg.oracle_bin_seconds, trace.duration)
    peak = max(needed_replicas(arrivals, capacity.rps, 60.0, trace.duration))
    lead = cfg.scenario.total_s * (1 + cfg.scenario.jitter)
    made: dict[str, ScalingPolicy] = {
        "ours": Ours(our_policy(cfg)),
        # Told the true capacity (the calibration), at the headroom a careful user would keep:
        # what learning costs.
        "ours-hinted": Ours(our_policy(cfg, capacity.rps * cfg.rps_headroom), name="ours-hinted"),
        # spec.capacity.warm.auto with its default ceiling: a CapacityBuffer sized by the brain.
        "ours-buffered": Ours(
            our_policy(cfg), name="ours-buffered", warm_ceiling=WarmAuto().max_replicas
        ),
        "static-peak": Static(max(cfg.min_replicas, 1, peak)),
        "keda-default": KedaHpaDefaults(cfg.queue_per_replica, cfg.min_replicas, cfg.max_replicas),
        "knative-kpa": KnativeKpa(capacity.concurrency, cfg.min_replicas, cfg.max_replicas),
        "oracle": LeadOracle(need, cfg.oracle_bin_seconds, 0.0, lead, cfg.min_replicas),
    }
    return {n: made[n] for n in names}


def replay(
    trace: Trace,
    cfg: BenchConfig,
    names: tuple[str, ...] = POLICY_NAMES,
    capacity: Capacity | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, PolicyReport]:
    capacity = capacity or calibrate(cfg.profile, trace, cfg.slo)
    arrivals = [r.at for r in trace.requests]
    need = needed_replicas(arrivals, capacity.rps, cfg.oracle_bin_seconds, trace.duration)
    policies = build_policies(cfg, trace, capacity, names)
    # Every policy starts from a fleet sized for the opening load, as if it had been running:
    # otherwise the trace's first start-up time measures a cold start, not the policy.
    lead = cfg.scenario.total_s * (1 + cfg.scenario.jitter) + 15.0
    opening = max([cfg.min_replicas, 1, *need[: int(lead // cfg.oracle_bin_seconds) + 1]])
    out: dict[str, PolicyReport] = {}
    for name, policy in policies.items():
        requests = [Request(r.at, r.prompt_tokens, r.output_tokens) for r in trace.requests]
        initial = policy.replicas if isinstance(policy, Static) else opening
        sim = FleetSimulator(
            cfg.profile,
            cfg.scenario,
            policy,
            initial_replicas=initial,
            seed=cfg.seed,
            warm=policy.warm if isinstance(policy, Ours) and policy.warm_ceiling else None,
        )
        tick = (lambda t, n=name: progress(n, t)) if progress else None
        result = sim.run(requests, tick)
        out[name] = measure(result, cfg.slo, need, cfg.oracle_bin_seconds, 0.0)
    return out
