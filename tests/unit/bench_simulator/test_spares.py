"""Warm capacity in the simulator: a replica placed on a spare node skips the node launch, and
spare nodes cost GPU-hours while they wait."""

from __future__ import annotations

from dataclasses import dataclass

from inference_operator.bench.replay import Slo, measure
from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.fleet import FleetSimulator, FleetView
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, StartupScenario

NEW_NODE = StartupScenario("new-node", 100, 40, 30, 65, jitter=0.0)


@dataclass
class StepTo:
    """1 replica, then `n` from t=600 on."""

    n: int
    name: str = "step"
    interval: float = 15.0

    def decide(self, now: float, view: FleetView) -> int:
        return self.n if now >= 600 else 1


def _run(warm: int | None) -> tuple[FleetSimulator, float]:
    requests = [Request(float(t), 200, 20) for t in range(0, 1800, 2)]
    sim = FleetSimulator(
        LLAMA3_8B_L40S, NEW_NODE, StepTo(3), warm=None if warm is None else (lambda: warm)
    )
    result = sim.run(requests)
    report = measure(result, Slo(), [1] * 100, 30.0, 0.0)
    return sim, report.gpu_hours


def test_replicas_on_spare_nodes_skip_the_launch_and_the_spares_cost() -> None:
    cold, cold_hours = _run(None)
    warm, warm_hours = _run(2)
    started = sorted(r.ready_at - r.created_at for r in cold.replicas if r.created_at >= 600)
    assert started == [NEW_NODE.total_s] * 2
    quick = sorted(r.ready_at - r.created_at for r in warm.replicas if r.created_at >= 600)
    assert quick == [NEW_NODE.total_s - NEW_NODE.node_launch_s] * 2
    # Two spares from the first decision, taken at 600 s and replaced at once: ~2 nodes held
    # over the whole run beside the replicas.
    assert warm.spares and all(n.ended_at is not None for n in warm.spares)
    assert len(warm.spares) == 4
    held = sum(n.ended_at - n.launched_at for n in warm.spares if n.ended_at is not None)
    assert warm_hours - cold_hours > 0.8 * held / 3600
    assert warm_hours > cold_hours


def test_without_a_buffer_no_spares() -> None:
    sim, _ = _run(None)
    assert sim.spares == []
