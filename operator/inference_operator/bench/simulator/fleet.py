"""A fleet of simulated vLLM replicas behind the gateway's router (least outstanding requests, or
prefix affinity with bounded load: routing/prefix.py, the gateway's own code), with the start-up
pipeline, a metric pipeline (scrapes, rate windows) and a scaling policy in the loop."""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from inference_operator.bench.simulator.engine import Replica, Request
from inference_operator.bench.simulator.profiles import EngineProfile, StartupScenario
from inference_operator.metrics.queries import VLLM_TPOT_BUCKETS, VLLM_TTFT_BUCKETS
from inference_operator.routing import prefix


@dataclass(frozen=True)
class Sample:
    """What a scrape of every pod saw at `at`, summed over the fleet."""

    at: float
    # Waiting per pod that reports (Ready, draining included), as Prometheus has it per pod.
    queues: tuple[int, ...]
    # (pod name, KV usage, waiting) of each serving pod (Ready, not draining), by pod label.
    pods: tuple[tuple[str, float, int], ...]
    running: int
    arrivals: int  # cumulative requests that reached the fleet
    completions: int  # cumulative
    starting: int
    held: int  # requests held by the gateway (no Ready replica)
    # Cumulative over every replica that ever ran (vLLM's counters, summed by Prometheus).
    prompt_tokens: int = 0
    generation_tokens: int = 0
    itl_sum: float = 0.0
    itl_count: int = 0
    # Cumulative TTFT histogram, Prometheus-style: [i] counts TTFT <= VLLM_TTFT_BUCKETS[i], and
    # the last one every first token (le="+Inf").
    ttft_le: tuple[int, ...] = ()
    tpot_le: tuple[int, ...] = ()

    @property
    def queue(self) -> int:
        """Waiting over the fleet."""
        return sum(self.queues)

    @property
    def ready(self) -> int:
        """Serving pods."""
        return len(self.pods)

    @property
    def kv_cache_utilization(self) -> float | None:
        """Mean KV usage over the serving pods."""
        return sum(kv for _, kv, _ in self.pods) / len(self.pods) if self.pods else None


@dataclass
class FleetView:
    """What a policy may look at: the scrape history, and the replicas asked for and Ready right
    now (the Deployment's status; starting is what is asked for beyond Ready)."""

    samples: list[Sample]
    target: int
    ready: int
    # (ready at, seconds from created to Ready, whether it waited for a new node) of the
    # replicas that have started, as the pods' timestamps tell the operator.
    startups: list[tuple[float, float, bool]] = field(default_factory=list)

    def latest(self, at: float, scrape_interval: float) -> Sample | None:
        """The newest sample a scraper with `scrape_interval` would have taken by `at`."""
        if not self.samples:
            return None
        cutoff = (at // scrape_interval) * scrape_interval
        i = bisect.bisect_right(self.samples, cutoff, key=lambda s: s.at) - 1
        return self.samples[i] if i >= 0 else None

    def rate(self, at: float, window: float, scrape_interval: float, counter: str) -> float | None:
        """Prometheus-style rate() of a cumulative counter over the window ending at the scrape."""
        end = self.latest(at, scrape_interval)
        start = self.latest(at - window, scrape_interval)
        if end is None or start is None or end.at <= start.at:
            return None
        delta = getattr(end, counter) - getattr(start, counter)
        return float(delta) / (end.at - start.at)

    def histogram_rates(
        self, at: float, window: float, scrape_interval: float, ttft: bool
    ) -> tuple[tuple[float, float], ...]:
        """rate(<histogram>_bucket[window]) summed over the fleet, as (le, per second): the
        TTFT histogram, or (ttft False) the per-request TPOT one."""
        end = self.latest(at, scrape_interval)
        start = self.latest(at - window, scrape_interval)
        if end is None or start is None or end.at <= start.at:
            return ()
        bounds = VLLM_TTFT_BUCKETS if ttft else VLLM_TPOT_BUCKETS
        after = end.ttft_le if ttft else end.tpot_le
        before = (start.ttft_le if ttft else start.tpot_le) or (0,) * len(after)
        if not after:
            return ()
        span = end.at - start.at
        return tuple(
            (le, (b - a) / span)
            for le, a, b in zip((*bounds, math.inf), before, after, strict=True)
        )

    def window(self, at: float, seconds: float) -> list[Sample]:
        lo = bisect.bisect_left(self.samples, at - seconds, key=lambda s: s.at)
        hi = bisect.bisect_right(self.samples, at, key=lambda s: s.at)
        return self.samples[lo:hi]


class ScalingPolicy(Protocol):
    name: str
    interval: float

    def decide(self, now: float, view: FleetView) -> int: ...


@dataclass(eq=False)
class SimReplica:
    engine: Replica
    created_at: float
    ready_at: float
    ended_at: float | None = None
    draining: bool = False
    new_node: bool = False
    name: str = ""  # the pod's name, for the router's hashing: stable from run to run

    def serving(self, now: float) -> bool:
        return self.ended_at is None and not self.draining and self.ready_at <= now


@dataclass(eq=False)
class SpareNode:
    """A node Karpenter keeps for a CapacityBuffer: it costs GPU-hours from launch until a
    replica takes it (or the buffer shrinks), and a replica placed on it skips the node launch."""

    launched_at: float
    up_at: float
    ended_at: float | None = None


@dataclass
class TimelinePoint:
    at: float
    arrival_rps: float
    target: int
    ready: int
    starting: int
    queue: int
    running: int


@dataclass
class SimResult:
    requests: list[Request]
    replicas: list[SimReplica]
    timeline: list[TimelinePoint]
    scale_changes: list[tuple[float, int, int]]  # (time, from, to)
    devices_per_replica: int
    end: float
    spares: list[SpareNode] = field(default_factory=list)


@dataclass
class FleetSimulator:
    profile: EngineProfile
    scenario: StartupScenario
    policy: ScalingPolicy
    initial_replicas: int = 1
    seed: int = 0
    sample_interval: float = 1.0
    timeline_interval: float = 10.0
    # After the last arrival, keep going until every request finishes, at most this long.
    drain_limit: float = 900.0
    replicas: list[SimReplica] = field(default_factory=list)
    held: list[Request] = field(default_factory=list)
    target: int = 0
    # Spare replicas' worth of nodes the policy wants kept (a CapacityBuffer); None: no buffer.
    warm: Callable[[], int] | None = None
    spares: list[SpareNode] = field(default_factory=list)
    # The gateway's prefix routing with this load bound (None: least outstanding requests). A
    # request's key is its first prefix, as the gateway's key is its prompt's first characters.
    prefix_epsilon: float | None = None
    # The gateway's maxPerReplica: requests in flight per replica; more wait at the gateway, in
    # arrival order, for the first slot any Ready replica frees (None: no limit).
    slots: int | None = None
    # How often a gateway with waiting requests looks for freed slots (the simulator has no
    # completion events; the real gateway hands a slot over the moment a response ends).
    dispatch_interval: float = 0.05

    def _startup_seconds(self, on_spare: bool = False) -> float:
        s = self.scenario
        return self._jittered(s.total_s - s.node_launch_s if on_spare else s.total_s)

    def _jittered(self, seconds: float) -> float:
        jitter = self.scenario.jitter
        return seconds * (1 + self._rng.uniform(-jitter, jitter))

    def _live_spares(self) -> list[SpareNode]:
        return [n for n in self.spares if n.ended_at is None]

    def _take_spare(self, now: float) -> SpareNode | None:
        live = self._live_spares()
        if not live:
            return None
        node = min(live, key=lambda n: n.up_at)
        node.ended_at = now
        return node

    def _keep_spares(self, now: float) -> None:
        """Karpenter's side of the buffer: launch nodes up to the target, remove the surplus
        (those still launching first)."""
        want = self.warm() if self.warm is not None else 0
        live = self._live_spares()
        for _ in range(want - len(live)):
            launch = self._jittered(self.scenario.node_launch_s)
            self.spares.append(SpareNode(now, now + launch))
        for n in sorted(live, key=lambda n: -n.up_at)[: max(0, len(live) - want)]:
            n.ended_at = now

    def _replica_ended(self, now: float) -> None:
        """The node a drained replica leaves becomes a spare when the buffer is short of one."""
        if self.warm is not None and len(self._live_spares()) < self.warm():
            self.spares.append(SpareNode(now, now))

    def _active(self) -> list[SimReplica]:
        return [r for r in self.replicas if r.ended_at is None and not r.draining]

    def _set_target(self, n: int, now: float) -> None:
        self.target = n
        active = self._active()
        for _ in range(n - len(active)):
            node = self._take_spare(now)
            if node is None:
                ready_at = now + self._startup_seconds()
            else:
                ready_at = max(now, node.up_at) + self._startup_seconds(on_spare=True)
            replica = SimReplica(
                Replica(self.profile, ready_at),
                now,
                ready_at,
                new_node=node is None and self.scenario.node_launch_s > 0,
                name=f"replica-{len(self.replicas)}",
            )
            self.replicas.append(replica)
            heapq.heappush(self._ready_events, (ready_at, id(replica), replica))
        surplus = len(active) - n
        if surplus <= 0:
            return
        # Cancel replicas still starting first (newest first), then drain the least loaded.
        starting = sorted((r for r in active if r.ready_at > now), key=lambda r: -r.created_at)
        for r in starting[:surplus]:
            r.ended_at = now
        surplus -= min(surplus, len(starting))
        ready = sorted((r for r in active if r.ready_at <= now), key=lambda r: r.engine.outstanding)
        for r in ready[:surplus]:
            r.draining = True

    def _route(self, request: Request, now: float) -> bool:
        """Hand `request` to a replica, or hold it at the gateway (False): no Ready replica, no
        free slot, or older requests already waiting for one."""
        ready = [r for r in self.replicas if r.serving(now)]
        for r in ready:
            self._collect(r.engine.advance(now))
        if self.slots is not None:
            ready = [r for r in ready if r.engine.outstanding < self.slots]
        if not ready or (self.held and self.slots is not None):
            self.held.append(request)
            return False
        if self.prefix_epsilon is None or not request.prefixes:
            best = min(ready, key=lambda r: r.engine.outstanding)
        else:
            by_name = {r.name: r for r in ready}
            loads = {name: r.engine.outstanding for name, r in by_name.items()}
            chosen = prefix.choose(request.prefixes[0][0], loads, self.prefix_epsilon)
            assert chosen is not None
            best = by_name[chosen]
        best.engine.enqueue(request)
        return True

    def _dispatch(self, now: float) -> None:
        """Hand waiting requests, oldest first, to the slots the Ready replicas have free."""
        held, self.held = self.held, []
        for i, request in enumerate(held):
            if not self._route(request, now):
                self.held.extend(held[i + 1 :])
                return

    def _collect(self, finished: Iterable[Request]) -> None:
        for _ in finished:
            self._completions += 1

    def _sample(self, now: float) -> Sample:
        running = 0
        queues: list[int] = []
        pods: list[tuple[str, float, int]] = []
        for r in self.replicas:
            if r.ended_at is not None or r.ready_at > now:
                continue
            self._collect(r.engine.advance(now))
            queues.append(len(r.engine.waiting))
            running += len(r.engine.running)
            if not r.draining:
                pods.append((r.name, r.engine.kv_utilization, len(r.engine.waiting)))
            if r.draining and r.engine.outstanding == 0:
                r.ended_at = max(r.engine.last_finish_at, r.ready_at)
                self._replica_ended(r.ended_at)
        starting = sum(1 for r in self.replicas if r.ended_at is None and r.ready_at > now)
        engines = [r.engine for r in self.replicas]
        ttft = [sum(col) for col in zip(*(e.ttft_buckets for e in engines), strict=True)]
        tpot = [sum(col) for col in zip(*(e.tpot_buckets for e in engines), strict=True)]
        return Sample(
            now,
            tuple(queues),
            tuple(pods),
            running,
            self._arrivals,
            self._completions,
            starting,
            len(self.held),
            sum(e.prompt_tokens for e in engines),
            sum(e.generated_tokens for e in engines),
            sum(e.itl_sum for e in engines),
            sum(e.itl_count for e in engines),
            tuple(itertools.accumulate(ttft)),
            tuple(itertools.accumulate(tpot)),
        )

    def run(
        self, requests: list[Request], progress: Callable[[float], None] | None = None
    ) -> SimResult:
        self._rng = random.Random(self.seed)
        self._ready_events: list[tuple[float, int, SimReplica]] = []
        self._arrivals = 0
        self._completions = 0
        samples: list[Sample] = []
        timeline: list[TimelinePoint] = []
        changes: list[tuple[float, int, int]] = []
        start = requests[0].arrival if requests else 0.0
        last_arrival = requests[-1].arrival if requests else 0.0
        # Replicas that exist before the trace starts are already Ready.
        self._set_target(self.initial_replicas, start)
        for r in self.replicas:
            r.ready_at = r.engine.t = r.created_at = start
        self._ready_events.clear()
        next_sample, next_decision, next_timeline = start, start, start
        next_dispatch = float("inf")
        i = 0
        now = start
        end_limit = last_arrival + self.drain_limit
        while now < end_limit:
            next_arrival = requests[i].arrival if i < len(requests) else float("inf")
            next_ready = self._ready_events[0][0] if self._ready_events else float("inf")
            if not self.held or self.slots is None:
                next_dispatch = float("inf")
            elif next_dispatch == float("inf"):
                next_dispatch = now + self.dispatch_interval
            now = min(
                next_arrival, next_ready, next_sample, next_decision, next_timeline, next_dispatch
            )
            if now >= end_limit:
                break
            if now == next_dispatch:
                self._dispatch(now)
                next_dispatch = now + self.dispatch_interval
            elif now == next_ready:
                _, _, replica = heapq.heappop(self._ready_events)
                if replica.ended_at is None and self.held:
                    self._dispatch(now)
            elif now == next_arrival:
                self._arrivals += 1
                self._route(requests[i], now)
                i += 1
            elif now == next_sample:
                samples.append(self._sample(now))
                next_sample += self.sample_interval
                if progress is not None:
                    progress(now - start)
                if (
                    i >= len(requests)
                    and not self.held
                    and all(
                        r.ended_at is not None or r.engine.outstanding == 0 for r in self.replicas
                    )
                ):
                    break
            elif now == next_decision:
                s = samples[-1] if samples else None
                started = [
                    (r.ready_at, r.ready_at - r.created_at, r.new_node)
                    for r in self.replicas
                    if r.created_at < r.ready_at <= now
                    and (r.ended_at is None or r.ended_at >= r.ready_at)
                ]
                view = FleetView(samples, self.target, s.ready if s else 0, started)
                want = self.policy.decide(now, view)
                if want != self.target:
                    changes.append((now, self.target, want))
                    self._set_target(want, now)
                self._keep_spares(now)
                next_decision += self.policy.interval
            else:
                s = samples[-1] if samples else None
                window = [x for x in samples[-60:] if x.at > now - 60]
                rps = (
                    (window[-1].arrivals - window[0].arrivals)
                    / max(1.0, window[-1].at - window[0].at)
                    if len(window) > 1
                    else 0.0
                )
                timeline.append(
                    TimelinePoint(
                        now,
                        rps,
                        self.target,
                        s.ready if s else 0,
                        s.starting if s else 0,
                        s.queue if s else 0,
                        s.running if s else 0,
                    )
                )
                next_timeline += self.timeline_interval
        for r in self.replicas:
            if r.ended_at is None:
                self._collect(r.engine.advance(now))
                r.ended_at = max(now, r.created_at)
        for n in self._live_spares():
            n.ended_at = now
        return SimResult(
            requests, self.replicas, timeline, changes, self.profile.devices, now, self.spares
        )
