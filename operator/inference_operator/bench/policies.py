"""Scaling policies replayed on the simulator: ours (the real `recommend`), and the baselines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from inference_operator.bench.simulator.fleet import FleetView, Sample
from inference_operator.scaling import Observation, Policy, Recommendation, State, recommend
from inference_operator.scaling.hpa import DEFAULT_TOLERANCE, hpa_replicas, metric_value
from inference_operator.scaling.startup import Startup
from inference_operator.scaling.throughput import WINDOW_S
from inference_operator.scaling.warm import warm_replicas


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n))


@dataclass
class Ours:
    """The operator's path, end to end: Prometheus scrapes every `scrape_interval`; the
    operator's timer runs `recommend` every `timer_seconds` at its own phase against the HPA,
    feeding it what the fleet queries read (1-minute rates of vLLM's counters, no arrival count:
    arrivals are completions plus the change in flight) and the Deployment's Ready count, live;
    the decision reaches the HPA through the external scaler's metric (scaling/hpa.py) under the
    HPA's tolerance on the HPA's 15-second sync; KEDA scales 0 <-> 1 on IsActive after its
    cooldown. With a gateway in the path, its count of requests received is read too."""

    policy: Policy
    name: str = "ours"
    scrape_interval: float = 15.0
    # The HPA's sync period (the simulator calls `decide` at it).
    interval: float = 15.0
    # The operator's INFOP_AUTOSCALE_SECONDS and the offset of its timer against the HPA's.
    timer_seconds: float = 15.0
    timer_phase: float = 7.0
    tolerance: float = DEFAULT_TOLERANCE
    # KEDA's cooldownPeriod with the operator's scaler (builders/autoscaling.py).
    cooldown: float = 30.0
    state: State = field(default_factory=State)
    # spec.capacity.warm.auto.maxReplicas; None: no warm capacity.
    warm_ceiling: int | None = None
    # A gateway in the path (bench --gateway-slots): the fleet queries return its count of
    # requests received, and the recommender reads arrivals from it.
    gateway: bool = False
    last: Recommendation | None = None
    _warm: int = 0
    _next_tick: float | None = None
    # (recommended replicas, pods when decided): what the scaler serves the HPA.
    _decision: tuple[int, int] | None = None
    _inactive_since: float | None = None

    def warm(self) -> int:
        """Spare replicas' worth of nodes, as the operator sizes the CapacityBuffer."""
        return self._warm

    def observe(self, now: float, view: FleetView) -> Observation | None:
        s = view.latest(now, self.scrape_interval)
        if s is None:
            return None

        def rate(counter: str) -> float | None:
            return view.rate(now, WINDOW_S, self.scrape_interval, counter)

        itl_sum, itl_count = rate("itl_sum"), rate("itl_count")
        return Observation(
            at=now,
            current_replicas=view.target,
            # As the operator reads them (handlers/autoscale.py): the Deployment's, not the
            # last scrape's; starting is what the scale target asks for beyond Ready.
            ready_replicas=view.ready,
            starting_replicas=max(0, view.target - view.ready),
            queue=s.queue,
            queues=tuple(float(q) for q in s.queues),
            running=s.running,
            kv_cache_utilization=s.kv_cache_utilization,
            completion_rps=rate("completions"),
            arrival_rps=rate("arrivals") if self.gateway else None,
            gateway_queue=s.held,
            sampled_at=s.at,
            itl_s=itl_sum / itl_count if itl_sum is not None and itl_count else None,
            prompt_tps=rate("prompt_tokens"),
            generation_tps=rate("generation_tokens"),
            startups=tuple(Startup(*x) for x in view.startups if x[0] <= now),
            ttft_buckets=view.histogram_rates(now, WINDOW_S, self.scrape_interval, ttft=True),
            tpot_buckets=view.histogram_rates(now, WINDOW_S, self.scrape_interval, ttft=False),
        )

    def _tick(self, now: float, view: FleetView) -> None:
        obs = self.observe(now, view)
        if obs is None:
            return
        self.last, self.state = recommend(obs, self.policy, self.state, now)
        if self.warm_ceiling:
            self._warm, _ = warm_replicas(
                self.state.warm,
                now,
                self.warm_ceiling,
                self.last.replicas,
                self.policy.max_replicas,
            )
        self._decision = (self.last.replicas, view.target)

    def decide(self, now: float, view: FleetView) -> int:
        if self._next_tick is None:
            self._next_tick = now + self.timer_phase
        while self._next_tick <= now:
            self._tick(self._next_tick, view)
            self._next_tick += self.timer_seconds
        if self._decision is None:
            return view.target
        recommended, pods_then = self._decision
        current = view.target
        if recommended == 0:
            # IsActive says no: KEDA scales to zero once the cooldown has passed.
            self._inactive_since = self._inactive_since if self._inactive_since else now
            return 0 if now - self._inactive_since >= self.cooldown else current
        self._inactive_since = None
        if current == 0:
            return 1  # KEDA's activation; the HPA takes over from one replica
        value = metric_value(recommended, pods_then, tolerance=self.tolerance)
        want = hpa_replicas(
            value, current, tolerance_up=self.tolerance, tolerance_down=self.tolerance
        )
        return _clamp(want, max(1, self.policy.min_replicas), self.policy.max_replicas)


@dataclass
class Static:
    replicas: int
    name: str = "static-peak"
    interval: float = 3600.0

    def decide(self, now: float, view: FleetView) -> int:
        return self.replicas


@dataclass
class KedaHpa:
    """KEDA's Prometheus triggers behind an HPA with its defaults: 15 s sync, 10% tolerance,
    scale-up max(100%, 4 pods) per 15 s, scale-down stabilization 300 s then 100% per 15 s; KEDA's
    activation 0->1 and a 300 s cooldown to 0. keda-default has one trigger, the vLLM queue
    (AverageValue per replica); keda-tuned, as a competent user configures it given a per-replica
    capacity, adds requests/s per replica and KV-cache usage, and the HPA takes the largest."""

    queue_target: float
    min_replicas: int
    max_replicas: int
    rps_target: float | None = None
    kv_target: float | None = None
    scrape_interval: float = 15.0
    interval: float = 15.0
    tolerance: float = 0.1
    stabilization: float = 300.0
    cooldown: float = 300.0
    name: str = "keda-default"
    _history: list[tuple[float, int]] = field(default_factory=list)
    _last_active: float = -math.inf

    def decide(self, now: float, view: FleetView) -> int:
        s = view.latest(now, self.scrape_interval)
        if s is None:
            return view.target
        queue = float(s.queue + s.held)
        rps = view.rate(now, 60.0, self.scrape_interval, "completions") or 0.0
        current = view.target
        if queue > 0 or (self.rps_target is not None and rps > 0):
            self._last_active = now
        if current == 0:
            # KEDA's activation: any queue wakes the target to 1; HPA takes over from there.
            return max(self.min_replicas, 1 if queue > 0 else 0)
        if self.min_replicas == 0 and now - self._last_active >= self.cooldown:
            return 0

        def hpa(value: float, target: float) -> int:
            # The HPA's own arithmetic (scaling/hpa.py: KEDA's milli-quantities, the band).
            return hpa_replicas(
                value,
                current,
                target=target,
                tolerance_up=self.tolerance,
                tolerance_down=self.tolerance,
            )

        proposals = [hpa(queue, self.queue_target)]
        if self.rps_target is not None:
            proposals.append(hpa(rps, self.rps_target))
        if self.kv_target is not None and s.kv_cache_utilization is not None and s.ready:
            # A Utilization-style average over the pods reporting it.
            ratio = s.kv_cache_utilization / self.kv_target
            proposals.append(
                math.ceil(s.ready * ratio - 1e-9) if abs(ratio - 1) > self.tolerance else current
            )
        raw = _clamp(max(proposals), max(1, self.min_replicas), self.max_replicas)
        self._history = [(t, r) for t, r in self._history if t > now - self.stabilization]
        self._history.append((now, raw))
        if raw > current:
            return min(raw, max(2 * current, current + 4))
        return max(r for _, r in self._history) if raw < current else current


@dataclass
class KnativeKpa:
    """Knative's KPA on in-flight requests per replica: 60 s stable and 6 s panic windows, panic at
    200% of target, target utilization 70%, max scale-down rate 2x, 30 s grace to zero, and
    scale-down-delay (the highest decision over the delay holds; a competent user sets it to at
    least the start-up time, so a dip shorter than a start-up never costs a replica)."""

    concurrency_target: float
    min_replicas: int
    max_replicas: int
    interval: float = 2.0
    stable_window: float = 60.0
    panic_window: float = 6.0
    panic_threshold: float = 2.0
    utilization: float = 0.7
    scale_down_delay: float = 0.0
    name: str = "knative-kpa"
    _decisions: list[tuple[float, int]] = field(default_factory=list)
    _panic_until: float = -math.inf
    _panic_max: int = 0
    _zero_since: float | None = None

    def decide(self, now: float, view: FleetView) -> int:
        stable = view.window(now, self.stable_window)
        if not stable:
            return view.target
        panic = [s for s in stable if s.at > now - self.panic_window]
        per_pod = self.concurrency_target * self.utilization

        def load(samples: Sequence[object]) -> float:
            return sum(s.running + s.queue + s.held for s in samples) / len(samples)  # type: ignore[attr-defined]

        want_stable = math.ceil(load(stable) / per_pod)
        want_panic = math.ceil(load(panic) / per_pod) if panic else want_stable
        ready = max(1, stable[-1].ready)
        if want_panic / ready >= self.panic_threshold:
            self._panic_until = now + self.stable_window
        if now < self._panic_until:
            self._panic_max = max(self._panic_max, want_panic, view.target)
            want = self._panic_max
        else:
            self._panic_max = 0
            want = max(want_stable, math.ceil(ready / 2))
        if want == 0:
            self._zero_since = self._zero_since if self._zero_since is not None else now
            if now - self._zero_since < 30.0:
                want = min(view.target, 1)
        else:
            self._zero_since = None
        want = _clamp(want, self.min_replicas, self.max_replicas)
        if self.scale_down_delay > 0:
            self._decisions = [
                (t, n) for t, n in self._decisions if t > now - self.scale_down_delay
            ]
            self._decisions.append((now, want))
            want = max(n for _, n in self._decisions)
        return want


@dataclass
class AibrixApa:
    """AIBrix's pod autoscaler with its defaults (v0.8): in-flight requests per pod averaged over
    a 180 s stable and a 60 s panic window, panic at 2x the target, a 10% tolerance band, at most
    2x up or down per decision, and no scale-down within 300 s of the last scale-up."""

    concurrency_target: float
    min_replicas: int
    max_replicas: int
    interval: float = 15.0
    stable_window: float = 180.0
    panic_window: float = 60.0
    panic_threshold: float = 2.0
    tolerance: float = 0.1
    cooldown: float = 300.0
    max_rate: float = 2.0
    name: str = "aibrix-apa"
    _last_up: float = -math.inf

    def decide(self, now: float, view: FleetView) -> int:
        stable = view.window(now, self.stable_window)
        if not stable:
            return view.target
        panic = [s for s in stable if s.at > now - self.panic_window] or stable[-1:]
        current = max(1, view.target)

        def per_pod(samples: list[Sample]) -> float:
            return sum((s.running + s.queue + s.held) / max(1, s.ready) for s in samples) / len(
                samples
            )

        ratio_stable = per_pod(stable) / self.concurrency_target
        ratio_panic = per_pod(panic) / self.concurrency_target
        ratio = ratio_panic if ratio_panic >= self.panic_threshold else ratio_stable
        if abs(ratio - 1.0) <= self.tolerance:
            return _clamp(view.target, self.min_replicas, self.max_replicas)
        want = math.ceil(current * ratio - 1e-9)
        want = min(want, math.ceil(current * self.max_rate))
        want = max(want, math.floor(current / self.max_rate))
        if want > view.target:
            self._last_up = now
        elif want < view.target and now - self._last_up < self.cooldown:
            want = view.target
        return _clamp(want, self.min_replicas, self.max_replicas)


@dataclass
class Wva:
    """llm-d's Workload Variant Autoscaler in saturation mode with its defaults, as its source
    decides (internal/saturation/analyzer.go, internal/engines/saturation/engine.go):
    - each pod's KV-cache usage and waiting are the peaks of the last minute
      (`max by (pod) (max_over_time(...[1m]))`); requests held at the gateway count as waiting,
      spread over the pods (every baseline here counts what the gateway holds);
    - a pod is saturated at KV >= 0.80 or >= 5 waiting; the spare KV (0.80 - usage) and spare
      queue (5 - waiting) are averaged over the pods that are not (0 when every pod is);
    - one replica more than the pods reporting when either average falls below 0.10 or 3, unless
      pods are pending (the Deployment's replicas - Ready, live);
    - one fewer when at least two pods are unsaturated and their load, spread over one fewer,
      keeps both spares;
    - while some pod has no metrics yet, one more or fewer counts from the Deployment's replicas,
      not from the pods reporting;
    - every 30 s (the engine's polling interval).
    The HPA that carries wva_desired_replicas to the Deployment is not modelled: the target is
    applied as decided."""

    kv_threshold: float
    min_replicas: int
    max_replicas: int
    queue_threshold: float = 5.0
    spare_kv: float = 0.10
    spare_queue: float = 3.0
    scrape_interval: float = 15.0
    interval: float = 30.0
    # The range of WVA's max_over_time queries.
    peak_window: float = 60.0
    name: str = "wva"

    def _peaks(self, now: float, view: FleetView) -> list[tuple[float, float]]:
        """(KV usage, waiting) per pod of the latest scrape, each the peak of the scrapes in the
        last minute (a range selector at `now` holds (now - 1m, now])."""
        latest = view.latest(now, self.scrape_interval)
        if latest is None or not latest.pods:
            return []
        kv = {name: k for name, k, _ in latest.pods}
        waiting = {name: float(q) for name, _, q in latest.pods}
        t = latest.at - self.scrape_interval
        while t > now - self.peak_window:
            s = view.latest(t, self.scrape_interval)
            if s is None:
                break
            for name, k, q in s.pods:
                if name in kv:
                    kv[name] = max(kv[name], k)
                    waiting[name] = max(waiting[name], float(q))
            t -= self.scrape_interval
        held = latest.held / len(latest.pods)
        return [(kv[name], waiting[name] + held) for name in kv]

    def decide(self, now: float, view: FleetView) -> int:
        s = view.latest(now, self.scrape_interval)
        if s is None:
            return view.target
        if view.ready == 0:
            # The scale-from-zero engine wakes a replica for requests waiting at the gateway.
            return max(view.target, 1 if s.held else self.min_replicas)
        pods = self._peaks(now, view)
        current = view.target
        if not pods:
            # No replica metrics (a pod Ready since the last scrape): the analyzer decides nothing.
            return _clamp(current, self.min_replicas, self.max_replicas)
        base = len(pods) if len(pods) == current else current
        free = [(kv, q) for kv, q in pods if kv < self.kv_threshold and q < self.queue_threshold]
        n = len(free)
        spare_kv = sum(self.kv_threshold - kv for kv, _ in free) / n if n else 0.0
        spare_queue = sum(self.queue_threshold - q for _, q in free) / n if n else 0.0
        if spare_kv < self.spare_kv or spare_queue < self.spare_queue:
            pending = current - view.ready
            return _clamp(base if pending > 0 else base + 1, self.min_replicas, self.max_replicas)
        if n >= 2 and base > 1:
            kv_after = sum(kv for kv, _ in free) / (n - 1)
            queue_after = sum(q for _, q in free) / (n - 1)
            if (
                self.kv_threshold - kv_after >= self.spare_kv
                and self.queue_threshold - queue_after >= self.spare_queue
            ):
                return _clamp(base - 1, self.min_replicas, self.max_replicas)
        return _clamp(base, self.min_replicas, self.max_replicas)


@dataclass
class LeadOracle:
    """Knows the future: keeps what the next `lead` seconds need, so replicas are Ready exactly
    when their load arrives (needs per bin come from the trace and the replica's capacity)."""

    need: list[int]  # replicas needed per bin
    bin_seconds: float
    start: float
    lead: float
    min_replicas: int
    interval: float = 15.0
    name: str = "oracle"

    def decide(self, now: float, view: FleetView) -> int:
        lo = int((now - self.start) // self.bin_seconds)
        hi = int((now - self.start + self.lead + self.interval) // self.bin_seconds)
        window = self.need[max(0, lo) : max(0, hi) + 1]
        return max([self.min_replicas, *window])
