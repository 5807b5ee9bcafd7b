"""What warm capacity can buy on the synthetic traces, new-node scenario (docs/benchmark.md):
ours with a fixed buffer of N spare nodes (spec.capacity.warm.replicas: N), and, for reference,
ours with N Ready replicas above its own answer (over-provisioning, not a product setting).

    python hack/warm_sweep.py            # ~1 min on 2 cores
"""

from __future__ import annotations

from dataclasses import dataclass

from inference_operator.bench.policies import Ours
from inference_operator.bench.references import WINDOW_S, fluid_bound
from inference_operator.bench.replay import BenchConfig, measure, our_policy
from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.fleet import FleetSimulator, FleetView
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, SCENARIOS
from inference_operator.bench.traces import synthetic


@dataclass
class Above(Ours):
    """Ours plus `extra` Ready replicas (a reference point only)."""

    extra: int = 0

    def decide(self, now: float, view: FleetView) -> int:
        return min(self.policy.max_replicas, super().decide(now, view) + self.extra)


def main() -> None:
    print("trace     setting        GPU-h   SLO%")
    for kind, min_replicas in (("step", 1), ("spike", 1), ("idle-gap", 0)):
        trace = synthetic(kind)
        cfg = BenchConfig(LLAMA3_8B_L40S, SCENARIOS["new-node"], min_replicas=min_replicas)
        need = fluid_bound(cfg.profile, cfg.scenario, trace, cfg.slo.met, cfg.max_replicas).need
        lead = cfg.scenario.total_s * (1 + cfg.scenario.jitter) + 15.0
        opening = max([min_replicas, 1, *need[: int(lead // WINDOW_S) + 1]])
        # The shipped defaults: no capacity hint, the capacity is learned.
        runs: list[tuple[str, Ours, int, int | None]] = [
            (f"buffer {n}", Ours(our_policy(cfg)), opening, n) for n in (0, 1, 2, 4, 8)
        ]
        runs += [
            (f"ready +{n}", Above(our_policy(cfg), extra=n), opening + n, None) for n in (1, 2)
        ]
        for label, policy, initial, spare in runs:
            sim = FleetSimulator(
                cfg.profile,
                cfg.scenario,
                policy,
                initial_replicas=initial,
                warm=None if spare is None else (lambda k=spare: k),
            )
            requests = [Request(r.at, r.prompt_tokens, r.output_tokens) for r in trace.requests]
            report = measure(sim.run(requests), cfg.slo, need, WINDOW_S, 0.0)
            print(
                f"{kind:9s} {label:12s} {report.gpu_hours:7.2f} {100 * report.slo_attainment:6.2f}"
            )


if __name__ == "__main__":
    main()
