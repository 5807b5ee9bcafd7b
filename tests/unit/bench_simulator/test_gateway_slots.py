"""The gateway's maxPerReplica in the simulator: beyond it requests wait at the gateway, oldest
first, and a freed slot on any Ready replica (a new one too) takes the oldest."""

from __future__ import annotations

from dataclasses import dataclass

from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.fleet import FleetSimulator, FleetView, SimResult
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, StartupScenario

QUICK = StartupScenario("quick", 0, 5, 20, 35, jitter=0.0)


@dataclass
class StepTo:
    """One replica, then `n` from `at` on."""

    n: int
    at: float
    name: str = "step"
    interval: float = 5.0

    def decide(self, now: float, view: FleetView) -> int:
        return self.n if now >= self.at else 1


def _run(slots: int | None, n: int, step_at: float = 1e9) -> SimResult:
    # A burst far beyond one replica's pace: n requests within a second, 300 tokens out each.
    requests = [Request(i / n, 500, 300) for i in range(n)]
    sim = FleetSimulator(
        LLAMA3_8B_L40S, QUICK, StepTo(2, step_at), slots=slots, timeline_interval=1.0
    )
    return sim.run(requests)


def test_a_replica_never_holds_more_than_its_slots_and_the_rest_wait_in_order() -> None:
    result = _run(slots=8, n=40)
    assert all(r.finished_at is not None and not r.failed for r in result.requests)
    assert max(p.running + p.queue for p in result.timeline) == 8
    firsts = [r.first_token_at or 0.0 for r in result.requests]
    # The ninth request gets a slot only when one of the first eight has finished, and the
    # gateway hands slots oldest first.
    first_finish = min(r.finished_at or 0.0 for r in result.requests[:8])
    assert firsts[8] >= first_finish
    assert firsts[8:] == sorted(firsts[8:])


def test_without_slots_every_request_goes_straight_to_a_pod() -> None:
    result = _run(slots=None, n=40)
    assert max(p.running + p.queue for p in result.timeline) == 40


def test_a_new_replica_takes_the_oldest_held_requests() -> None:
    """vLLM keeps a request in the pod that took it: without slots a replica added after the
    burst gets none of it. With slots the gateway still holds most of it when the new replica
    is Ready, and the new replica drains it beside the first."""
    pods = _run(slots=None, n=1200, step_at=5.0)
    gateway = _run(slots=64, n=1200, step_at=5.0)
    assert pods.replicas[1].engine.completed == 0
    assert gateway.replicas[1].engine.completed > 300
    assert all(r.finished_at is not None for r in gateway.requests)
