"""References no policy can game, measured on the same simulator and router as the policies.

- `fluid_bound`: every 60-s window of the trace replayed on its own, on a fleet that is already
  Ready and empty, taking the fewest replicas that meet the SLO for >= 99% of that window's
  requests. Start-up, carry-over and scaling lag are ignored, so no policy can cost less at the
  same attainment (up to the 99% per window).
- `oracle`: knows the future and the start-up time. It keeps, `lead` seconds ahead, the fluid
  need of the coming windows times one margin, and the margin is tuned until its attainment over
  the whole trace lands at 99.0% (+-0.1 where the margin's steps allow).
- `cheapest_static`: the fewest constant replicas reaching >= 99% over the whole trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from inference_operator.bench.policies import LeadOracle, Static
from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.fleet import FleetSimulator, ScalingPolicy, SimResult
from inference_operator.bench.simulator.profiles import EngineProfile, StartupScenario
from inference_operator.bench.traces import Trace

WINDOW_S = 60.0
GOAL = 0.99


@dataclass(frozen=True)
class Fluid:
    need: list[int]  # replicas per WINDOW_S window
    gpu_hours: float


@dataclass(frozen=True)
class Tuned:
    margin: float
    result: SimResult
    attainment: float


def _requests(trace: Trace, lo: float = -math.inf, hi: float = math.inf) -> list[Request]:
    return [
        Request(r.at, r.prompt_tokens, r.output_tokens) for r in trace.requests if lo <= r.at < hi
    ]


def _attainment(requests: list[Request], met: Callable[[Request], bool]) -> float:
    return sum(1 for r in requests if met(r)) / max(1, len(requests))


def _smallest(ok: Callable[[int], bool], hi: int, start: int = 1) -> int:
    """The smallest n in [1, hi] with ok(n), assuming ok is monotone; hi when none is."""
    lo = 1
    n = max(1, min(start, hi))
    # Gallop from the previous answer: neighbouring windows need similar fleets.
    while n < hi and not ok(n):
        lo, n = n + 1, min(hi, 2 * n)
    while lo < n:
        mid = (lo + n) // 2
        if ok(mid):
            n = mid
        else:
            lo = mid + 1
    return n


def fluid_bound(
    profile: EngineProfile,
    scenario: StartupScenario,
    trace: Trace,
    met: Callable[[Request], bool],
    max_replicas: int,
    slots: int | None = None,
) -> Fluid:
    windows = int(trace.duration // WINDOW_S) + 1
    need: list[int] = []
    previous = 1
    for w in range(windows):
        lo = w * WINDOW_S

        def ok(n: int, lo: float = lo) -> bool:
            reqs = _requests(trace, lo, lo + WINDOW_S)
            if not reqs:
                return True
            FleetSimulator(profile, scenario, Static(n), initial_replicas=n, slots=slots).run(reqs)
            return _attainment(reqs, met) >= GOAL

        n = 0 if not _requests(trace, lo, lo + WINDOW_S) else _smallest(ok, max_replicas, previous)
        need.append(n)
        previous = max(1, n)
    hours = sum(need) * WINDOW_S * profile.devices / 3600.0
    return Fluid(need, hours)


def cheapest_static(
    profile: EngineProfile,
    scenario: StartupScenario,
    trace: Trace,
    met: Callable[[Request], bool],
    max_replicas: int,
    start: int,
    slots: int | None = None,
) -> tuple[int, SimResult]:
    results: dict[int, SimResult] = {}

    def ok(n: int) -> bool:
        reqs = _requests(trace)
        sim = FleetSimulator(profile, scenario, Static(n), initial_replicas=n, slots=slots)
        results[n] = sim.run(reqs)
        return _attainment(reqs, met) >= GOAL

    n = _smallest(ok, max_replicas, start)
    if n not in results:
        ok(n)
    return n, results[n]


def tuned_oracle(
    run: Callable[[ScalingPolicy], SimResult],
    fluid: Fluid,
    lead: float,
    min_replicas: int,
    met: Callable[[Request], bool],
    steps: int = 8,
) -> Tuned:
    """Bisect the margin on the fluid need until the oracle's attainment is 99.0% +- 0.1."""

    def attempt(margin: float) -> Tuned:
        need = [math.ceil(n * margin - 1e-9) for n in fluid.need]
        result = run(LeadOracle(need, WINDOW_S, 0.0, lead, min_replicas))
        return Tuned(margin, result, _attainment(result.requests, met))

    lo, hi = 0.2, 2.0
    best: Tuned | None = None
    for _ in range(steps):
        mid = (lo + hi) / 2
        t = attempt(mid)
        if t.attainment >= GOAL - 0.001 and (best is None or t.margin < best.margin):
            best = t
        if abs(t.attainment - GOAL) <= 0.001:
            return t
        if t.attainment > GOAL:
            hi = mid
        else:
            lo = mid
    return best if best is not None else attempt(hi)
