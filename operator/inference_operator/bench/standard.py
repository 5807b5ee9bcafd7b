"""`make bench`: the standard set. Both Azure traces in the warm-node and new-node scenarios, and
synthetic step, spike, ramp and idle-gap traces, through every policy; tables, JSON and plots."""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from inference_operator.api.models import GatewaySpec
from inference_operator.bench.replay import BenchConfig, Run, replay
from inference_operator.bench.report import (
    as_json,
    frontier_misses,
    plot,
    plot_curves,
    table,
    write_json,
)
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, SCENARIOS
from inference_operator.bench.traces import Trace, load_csv, synthetic

ROOT = Path(__file__).resolve().parents[3]
AZURE = ROOT.parent / "shared" / "upstream" / "traces" / "azure"


def goal(run: Run) -> str:
    """Issue #13's target for one run: with no hint, ours reaches >= 99% at <= 1.3x the tuned
    oracle's GPU-hours, and learning costs at most 10% over ours-hinted's GPU-hours (costing less
    is no miss); no baseline curve point has both >= ours' attainment and <= 0.95x ours'
    GPU-hours."""
    p = run.policies
    ours, hinted, oracle = p["ours"], p["ours-hinted"], p["oracle"]
    slo_ok = ours.slo_attainment >= 0.99
    vs_oracle = ours.gpu_hours / oracle.gpu_hours
    vs_hinted = ours.gpu_hours / hinted.gpu_hours
    beaten = frontier_misses(run)
    return (
        f"   goal: SLO>=99% {'met' if slo_ok else 'MISSED'} ({100 * ours.slo_attainment:.2f}%); "
        f"<=1.3x oracle {'met' if vs_oracle <= 1.3 else 'MISSED'} ({vs_oracle:.2f}x); "
        f"<=1.1x hinted {'met' if vs_hinted <= 1.10 else 'MISSED'} "
        f"({vs_hinted:.2f}x, {100 * (ours.slo_attainment - hinted.slo_attainment):+.2f} pts); "
        f"frontier {'met' if not beaten else 'MISSED: ' + '; '.join(beaten)}"
    )


def buffered_goal(run: Run) -> str:
    """Issue #16's target for warm capacity: >= 99% SLO at <= 1.5x oracle GPU-hours."""
    p = run.policies
    b, ours, oracle = p["ours-buffered"], p["ours"], p["oracle"]
    ratio = b.gpu_hours / oracle.gpu_hours
    met = b.slo_attainment >= 0.99 and ratio <= 1.5
    return (
        f"   ours-buffered: SLO {100 * b.slo_attainment:.2f}% "
        f"({100 * (b.slo_attainment - ours.slo_attainment):+.2f} pts vs ours), "
        f"{ratio:.2f}x oracle GPU-h ({b.gpu_hours - ours.gpu_hours:+.2f} GPU-h vs ours); "
        f"goal >=99% at <=1.5x: {'met' if met else 'MISSED'}"
    )


def standard_runs() -> list[tuple[Trace, str, int]]:
    runs: list[tuple[Trace, str, int]] = []
    for name in ("code", "conv"):
        trace = load_csv(AZURE / f"AzureLLMInferenceTrace_{name}.csv", f"azure-{name}")
        runs += [(trace, "warm-node", 1), (trace, "new-node", 1)]
    for kind in ("step", "spike", "ramp"):
        runs.append((synthetic(kind), "warm-node", 1))
    runs.append((synthetic("idle-gap"), "warm-node", 0))
    # Where warm capacity (ours-buffered) can matter: every new replica needs a node.
    runs += [(synthetic("step"), "new-node", 1), (synthetic("spike"), "new-node", 1)]
    runs.append((synthetic("idle-gap"), "new-node", 0))
    return runs


def one(args: tuple[Trace, str, int, Path, int | None]) -> tuple[str, dict[str, Any]]:
    trace, scenario, min_replicas, out, slots = args
    cfg = BenchConfig(
        LLAMA3_8B_L40S, SCENARIOS[scenario], min_replicas=min_replicas, gateway_slots=slots
    )
    run = replay(trace, cfg, curves=True, errors=True)
    text = "\n".join(
        [
            table(run, f"{scenario} (min {min_replicas})"),
            f"   one replica ({cfg.profile.name}) sustains {run.capacity.rps:.2f} req/s within "
            f"TTFT<={cfg.slo.ttft_s}s, TPOT<={cfg.slo.tpot_s * 1000:.0f}ms on this mix "
            f"(mean of {cfg.calibration_seeds} calibrations); ours learned "
            f"{_learned(run)}",
            goal(run),
            buffered_goal(run),
        ]
    )
    title = f"{trace.name} / {scenario} / {cfg.profile.name}"
    plot(out / f"{trace.name}-{scenario}.png", title, run)
    plot_curves(out / f"{trace.name}-{scenario}-curves.png", title, run)
    return text, as_json(run)


def _learned(run: Run) -> str:
    r = run.policies["ours"]
    if r.learned_rps is None:
        return "no capacity"
    return (
        f"{r.learned_rps:.2f} req/s (bound by {r.learned_bound}) and a "
        f"{r.learned_startup_s or 0:.0f} s start-up"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench-standard", description=__doc__)
    p.add_argument(
        "--gateway",
        action="store_true",
        help="with the gateway in the path: at most spec.gateway.maxPerReplica's default "
        f"({GatewaySpec().max_per_replica}) in flight per replica, the rest held at the gateway, "
        "which counts the requests it receives (docs/simulator.md)",
    )
    p.add_argument("--out", type=Path, help="default: bench-out, or bench-out/gateway")
    args = p.parse_args(argv)
    slots = GatewaySpec().max_per_replica if args.gateway else None
    out: Path = args.out or (ROOT / "bench-out" / "gateway" if args.gateway else ROOT / "bench-out")
    out.mkdir(parents=True, exist_ok=True)
    runs = standard_runs()
    t0 = time.monotonic()
    # Two processes: the runs are independent, and each is one core's work.
    with ProcessPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        done = list(pool.map(one, [(t, s, m, out, slots) for t, s, m in runs]))
    for text, _ in done:
        print(text)
    write_json(out / "report.json", [doc for _, doc in done])
    print(f"\nwrote {out}/report.json and {2 * len(runs)} plots in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
