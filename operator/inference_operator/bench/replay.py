"""Replay one trace through each policy on the fleet simulator and measure cost and SLO."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_operator.api.models import WarmAuto
from inference_operator.bench.policies import (
    AibrixApa,
    KedaHpa,
    KnativeKpa,
    Ours,
    Static,
    Wva,
)
from inference_operator.bench.product import product_policy, product_spec
from inference_operator.bench.references import (
    WINDOW_S,
    Fluid,
    cheapest_static,
    fluid_bound,
    tuned_oracle,
)
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
    "keda-tuned",
    "knative-kpa",
    "aibrix-apa",
    "wva",
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
    # SLO misses of requests that arrived while a replica was starting (a scale-up under way),
    # and of all the others.
    misses_in_startup: int = 0
    misses_outside_startup: int = 0
    # Ours: the per-replica capacity and start-up time it ended with, and where they came from.
    learned_rps: float | None = None
    learned_bound: str | None = None
    learned_startup_s: float | None = None
    result: SimResult | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in self.__dict__.items()
            if k != "result"
        }


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by rank (0 for none): the one the bench reports everywhere."""
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
    starting_spans = _merge(
        [
            (r.created_at, min(r.ready_at, r.ended_at if r.ended_at is not None else r.ready_at))
            for r in result.replicas
            if r.ready_at > r.created_at
        ]
    )
    in_startup = sum(1 for r in reqs if not slo.met(r) and _inside(r.arrival, starting_spans))
    missed = sum(1 for r in reqs if not slo.met(r))
    return PolicyReport(
        gpu_hours=total * dev / hours,
        gpu_hours_serving=serving * dev / hours,
        gpu_hours_idle=(total - starting - serving) * dev / hours,
        gpu_hours_starting=starting * dev / hours,
        slo_attainment=sum(1 for r in reqs if slo.met(r)) / max(1, len(reqs)),
        ttft_p50_s=percentile(ttfts, 0.50),
        ttft_p95_s=percentile(ttfts, 0.95),
        ttft_p99_s=percentile(ttfts, 0.99),
        tpot_p95_s=percentile(tpots, 0.95),
        scaling_events=len(result.scale_changes),
        flaps=flaps(result.scale_changes),
        reaction_time_p95_s=percentile(reactions, 0.95),
        unfinished=len(reqs) - len(finished),
        misses_in_startup=in_startup,
        misses_outside_startup=missed - in_startup,
        result=result,
    )


def _inside(t: float, spans: list[tuple[float, float]]) -> bool:
    """Whether `t` falls in one of `spans` (merged, sorted, disjoint)."""
    i = bisect.bisect_right(spans, (t, math.inf)) - 1
    return i >= 0 and spans[i][0] <= t < spans[i][1]


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@dataclass(frozen=True)
class BenchConfig:
    profile: EngineProfile
    scenario: StartupScenario
    slo: Slo = Slo()
    min_replicas: int = 1
    max_replicas: int = 64
    # What a careful user keeps below a measured capacity (ours-hinted, keda-tuned).
    rps_headroom: float = 0.85
    queue_per_replica: float = 4.0
    seed: int = 0
    calibration_seeds: int = 5
    # The gateway's maxPerReplica, modelled (None: every request goes straight to a pod, as
    # the standard set runs; docs/simulator.md says why and what the cap changes).
    gateway_slots: int | None = None


def calibrate_mean(cfg: BenchConfig, trace: Trace) -> Capacity:
    """The calibration averaged over seeds: one seed's Poisson draw moves it by several %."""
    runs = [
        calibrate(cfg.profile, trace, cfg.slo, seed=k + 1) for k in range(cfg.calibration_seeds)
    ]
    return Capacity(
        sum(c.rps for c in runs) / len(runs), sum(c.concurrency for c in runs) / len(runs)
    )


def our_policy(cfg: BenchConfig, hint: float | None = None) -> Policy:
    """The operator's policy for this replica with the shipped defaults; `hint`: the
    requestsPerSecondPerReplica a user who measured the capacity would set."""
    return product_policy(
        product_spec(cfg.profile, cfg.min_replicas, cfg.max_replicas, hint, cfg.gateway_slots)
    )


# Each baseline's main knob: (name in the curves, the values swept, the value of its row).
KNOBS: dict[str, tuple[str, tuple[float, ...], float]] = {
    "keda-default": ("queueTarget", (1.0, 2.0, 4.0, 8.0, 16.0), 4.0),
    "keda-tuned": ("capacityFraction", (0.5, 0.7, 0.85, 1.0, 1.2), 0.85),
    "knative-kpa": ("concurrencyFraction", (0.5, 0.75, 1.0, 1.5, 2.0), 1.0),
    "aibrix-apa": ("concurrencyFraction", (0.5, 0.75, 1.0, 1.5, 2.0), 1.0),
    "wva": ("kvThreshold", (0.5, 0.6, 0.7, 0.8, 0.9), 0.8),
}
BASELINES = tuple(KNOBS)
# Given a capacity number, these can be given a wrong one (the capacity-error runs).
CAPACITY_USERS = ("ours-hinted", "keda-tuned", "knative-kpa")
CAPACITY_ERRORS = (0.7, 1.3)


@dataclass(frozen=True)
class Setting:
    """What the baselines are configured from: the trace's capacity, its peak, the start-up."""

    cfg: BenchConfig
    capacity: Capacity
    peak: int
    lead: float


def baseline(name: str, st: Setting, knob: float, capacity_error: float = 1.0) -> ScalingPolicy:
    cfg, rps, conc = st.cfg, st.capacity.rps * capacity_error, st.capacity.concurrency
    conc *= capacity_error
    # keda-default as most users deploy it, with maxReplicas at twice the peak need.
    cap = min(cfg.max_replicas, max(2, 2 * st.peak))
    if name == "keda-default":
        return KedaHpa(knob, cfg.min_replicas, cap)
    if name == "keda-tuned":
        return KedaHpa(
            cfg.queue_per_replica,
            cfg.min_replicas,
            cap,
            rps_target=rps * knob,
            kv_target=0.8,
            name="keda-tuned",
        )
    if name == "knative-kpa":
        kpa = KnativeKpa(conc * knob, cfg.min_replicas, cap, scale_down_delay=st.lead)
        return kpa
    if name == "aibrix-apa":
        return AibrixApa(conc * knob, cfg.min_replicas, cap)
    if name == "wva":
        return Wva(knob, cfg.min_replicas, cap)
    raise ValueError(f"unknown baseline {name!r}")


def _ours(cfg: BenchConfig, name: str, st: Setting, capacity_error: float = 1.0) -> Ours:
    gateway = cfg.gateway_slots is not None
    if name == "ours-hinted":
        hint = st.capacity.rps * cfg.rps_headroom * capacity_error
        return Ours(our_policy(cfg, hint), name=name, gateway=gateway)
    # ours-buffered: spec.capacity.warm.auto with its default ceiling, a CapacityBuffer sized by
    # the brain.
    warm = WarmAuto().max_replicas if name == "ours-buffered" else None
    return Ours(our_policy(cfg), name=name, warm_ceiling=warm, gateway=gateway)


@dataclass
class Run:
    """One trace in one start-up scenario: every policy, the references, the curves."""

    trace: str
    scenario: str
    capacity: Capacity
    policies: dict[str, PolicyReport]
    fluid: Fluid
    oracle_margin: float
    cheapest: tuple[int, PolicyReport]
    curves: dict[str, list[tuple[float, PolicyReport]]] = field(default_factory=dict)
    # policy -> capacity error factor -> report
    errors: dict[str, dict[float, PolicyReport]] = field(default_factory=dict)


def replay(
    trace: Trace,
    cfg: BenchConfig,
    names: tuple[str, ...] = POLICY_NAMES,
    capacity: Capacity | None = None,
    progress: Callable[[str, float], None] | None = None,
    curves: bool = False,
    errors: bool = False,
) -> Run:
    capacity = capacity or calibrate_mean(cfg, trace)
    met = cfg.slo.met
    fluid = fluid_bound(
        cfg.profile, cfg.scenario, trace, met, cfg.max_replicas, slots=cfg.gateway_slots
    )
    lead = cfg.scenario.total_s * (1 + cfg.scenario.jitter) + 15.0
    st = Setting(cfg, capacity, max(1, *fluid.need), lead)
    # Every policy starts from a fleet sized for the opening load, as if it had been running:
    # otherwise the trace's first start-up time measures a cold start, not the policy.
    window = int(lead // WINDOW_S) + 1
    opening = max([cfg.min_replicas, 1, *fluid.need[:window]])

    def simulate(policy: ScalingPolicy, label: str) -> SimResult:
        requests = [Request(r.at, r.prompt_tokens, r.output_tokens) for r in trace.requests]
        initial = policy.replicas if isinstance(policy, Static) else opening
        sim = FleetSimulator(
            cfg.profile,
            cfg.scenario,
            policy,
            initial_replicas=initial,
            seed=cfg.seed,
            warm=policy.warm if isinstance(policy, Ours) and policy.warm_ceiling else None,
            slots=cfg.gateway_slots,
        )
        tick = (lambda t: progress(label, t)) if progress else None
        return sim.run(requests, tick)

    def report(result: SimResult) -> PolicyReport:
        return measure(result, cfg.slo, fluid.need, WINDOW_S, 0.0)

    tuned = tuned_oracle(
        lambda p: simulate(p, "oracle"), fluid, lead, max(cfg.min_replicas, 0), met
    )
    static_n, static_result = cheapest_static(
        cfg.profile, cfg.scenario, trace, met, cfg.max_replicas, st.peak, slots=cfg.gateway_slots
    )
    out: dict[str, PolicyReport] = {}
    for name in names:
        if name == "oracle":
            out[name] = report(tuned.result)
        elif name == "static-peak":
            out[name] = report(simulate(Static(st.peak), name))
        elif name in BASELINES:
            out[name] = report(simulate(baseline(name, st, KNOBS[name][2]), name))
        else:
            ours = _ours(cfg, name, st)
            out[name] = report(simulate(ours, name))
            if ours.last is not None and ours.last.capacity is not None:
                out[name].learned_rps = ours.last.capacity.rps
                out[name].learned_bound = ours.last.capacity.bound_by
                out[name].learned_startup_s = ours.last.startup_seconds
    run = Run(
        trace.name,
        cfg.scenario.name,
        capacity,
        out,
        fluid,
        tuned.margin,
        (static_n, report(static_result)),
    )
    if curves:
        for name in BASELINES:
            _, values, default = KNOBS[name]
            points: list[tuple[float, PolicyReport]] = []
            for v in values:
                if v == default and name in out:
                    points.append((v, out[name]))
                else:
                    points.append((v, report(simulate(baseline(name, st, v), name))))
            run.curves[name] = points
    if errors:
        for name in CAPACITY_USERS:
            run.errors[name] = {}
            for e in CAPACITY_ERRORS:
                policy: ScalingPolicy = (
                    _ours(cfg, name, st, e)
                    if name.startswith("ours")
                    else baseline(name, st, KNOBS[name][2], e)
                )
                run.errors[name][e] = report(simulate(policy, name))
    return run
