"""`python -m inference_operator bench`: replay a trace through policies on the simulator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inference_operator.bench.replay import POLICY_NAMES, BenchConfig, calibrate_mean, replay
from inference_operator.bench.report import as_json, plot, plot_curves, table, write_json
from inference_operator.bench.simulator.profiles import PROFILES, SCENARIOS
from inference_operator.bench.traces import Trace, TraceFormatError, load_csv, synthetic


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trace",
        required=True,
        help="a CSV (timestamp, prompt tokens, output tokens) or synthetic:KIND with "
        "KIND one of step, spike, ramp, idle-gap",
    )
    p.add_argument(
        "--policy",
        action="append",
        choices=POLICY_NAMES,
        help="policies to replay (repeatable; default all)",
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="start-up scenarios (repeatable; default warm-node)",
    )
    p.add_argument("--profile", default="llama-3.1-8b/l40s", choices=sorted(PROFILES))
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="replay this many times slower (>1) or faster (<1)",
    )
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=64)
    p.add_argument(
        "--gateway-slots",
        type=int,
        metavar="N",
        help="model the gateway's maxPerReplica: at most N requests in flight per replica, "
        "the rest wait at the gateway for the first free slot (default: none, every request "
        "goes straight to a pod; see docs/simulator.md)",
    )
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--plot", type=Path, help="write a PNG plot here (one per scenario)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--curves",
        action="store_true",
        help="also sweep each baseline's main knob into a cost/attainment curve",
    )


def load_trace(spec: str, time_scale: float) -> Trace:
    if spec.startswith("synthetic:"):
        trace = synthetic(spec.split(":", 1)[1])
    else:
        trace = load_csv(Path(spec))
    return trace if time_scale == 1.0 else trace.scaled(time_scale)


class _Progress:
    """Simulated seconds done per policy, summed into one bar."""

    def __init__(self, bar: tqdm[Any], duration: float) -> None:
        self.bar, self.duration, self.done = bar, duration, dict[str, float]()

    def __call__(self, name: str, t: float) -> None:
        self.done[name] = min(t, self.duration)
        if int(t) % 60 == 0:
            self.bar.n = round(sum(self.done.values()))
            self.bar.refresh()


def run(args: argparse.Namespace) -> int:
    try:
        trace = load_trace(args.trace, args.time_scale)
    except (OSError, TraceFormatError, ValueError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if args.gateway_slots is not None and args.gateway_slots < 1:
        print(
            f"bench: --gateway-slots is {args.gateway_slots}; it must be at least 1 "
            "(requests in flight per replica)",
            file=sys.stderr,
        )
        return 2
    names = tuple(args.policy or POLICY_NAMES)
    documents = []
    for scenario in args.scenario or ["warm-node"]:
        cfg = BenchConfig(
            PROFILES[args.profile],
            SCENARIOS[scenario],
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            gateway_slots=args.gateway_slots,
        )
        capacity = calibrate_mean(cfg, trace)
        total = trace.duration * len(names)
        with tqdm(
            total=round(total),
            unit="sim-s",
            disable=True if args.quiet else None,
            leave=False,
            mininterval=1.0,
            desc=f"{trace.name}/{scenario}",
        ) as bar:
            progress = _Progress(bar, trace.duration)

            run = replay(trace, cfg, names, capacity, progress, curves=args.curves)
        print(table(run))
        print(f"   one replica sustains {capacity.rps:.2f} req/s within the SLO on this mix")
        documents.append(as_json(run))
        if args.plot:
            path = (
                args.plot
                if len(args.scenario or [1]) == 1
                else args.plot.with_name(f"{args.plot.stem}-{scenario}{args.plot.suffix}")
            )
            title = f"{trace.name} / {scenario} / {cfg.profile.name}"
            plot(path, title, run)
            if args.curves:
                plot_curves(path.with_name(f"{path.stem}-curves{path.suffix}"), title, run)
    if args.json:
        write_json(args.json, documents)
    return 0
