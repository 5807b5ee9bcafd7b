"""`make bench-routing`: prefix-aware routing against least outstanding requests, on the fleet
simulator, with a shared-prefix workload.

The workload: conversations over long shared contexts (a system prompt with documents or few-shot
examples, as RAG and agent front-ends send), each conversation a few turns whose prompt carries
the context and the turns before it. Popularity of the contexts follows Zipf, so one context is
hot and many are lukewarm, and all of them together are larger than one replica's spare KV cache
but fit in the fleet's.

The same arrivals go to the same fixed fleet twice: once routed by least outstanding requests,
once by the gateway's prefix routing (routing/prefix.py, the code the gateway runs). Reported:
TTFT p50/p95, output tokens/s, prefix-cache hit rate, the busiest replica's share of requests
over the mean, and the ratios, in one run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from inference_operator.bench.policies import Static
from inference_operator.bench.replay import percentile
from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.fleet import FleetSimulator
from inference_operator.bench.simulator.profiles import PROFILES, SCENARIOS
from inference_operator.routing.prefix import DEFAULT_EPSILON

# The goal: prefix routing's TTFT p50 at most half of least-outstanding's.
GOAL_P50_RATIO = 0.5


@dataclass(frozen=True)
class Workload:
    seconds: float = 1800.0
    # New conversations per second; each has 1 to max_turns turns.
    conversations_per_s: float = 1.5
    contexts: int = 128
    context_tokens: tuple[int, int] = (2000, 6000)
    max_turns: int = 6
    think_seconds: tuple[float, float] = (5.0, 30.0)
    zipf: float = 1.0
    seed: int = 11


def shared_prefix(w: Workload) -> list[Request]:
    """Requests in arrival order, each naming the prefixes its prompt starts with: its context,
    then (from the second turn) the conversation so far, cached once the turn before ends."""
    rng = random.Random(w.seed)
    sizes = [rng.randint(*w.context_tokens) for _ in range(w.contexts)]
    weights = [1.0 / (i + 1) ** w.zipf for i in range(w.contexts)]
    out: list[Request] = []
    t, conversation = 0.0, 0
    while True:
        t += rng.expovariate(w.conversations_per_s)
        if t >= w.seconds:
            break
        conversation += 1
        ctx = rng.choices(range(w.contexts), weights)[0]
        history = sizes[ctx]
        at = t
        for turn in range(rng.randint(1, w.max_turns)):
            user = min(2000, max(8, int(rng.lognormvariate(5.0, 0.7))))
            output = min(1000, max(1, int(rng.lognormvariate(5.0, 0.7))))
            prefixes = [(ctx, sizes[ctx])]
            if turn > 0:
                prefixes.append((_turn_id(conversation, turn - 1), history))
            request = Request(
                at,
                history + user,
                output,
                prefixes=tuple(prefixes),
                cache_as=_turn_id(conversation, turn),
            )
            out.append(request)
            history += user + output
            at += rng.uniform(*w.think_seconds)
    out.sort(key=lambda r: r.arrival)
    return out


def _turn_id(conversation: int, turn: int) -> int:
    # Above every context id.
    return 1_000_000 + conversation * 64 + turn


@dataclass(frozen=True)
class Outcome:
    routing: str
    requests: int
    completed: int
    ttft_p50: float
    ttft_p95: float
    output_tokens_per_s: float
    hit_rate: float  # prompt tokens found in the prefix cache / prompt tokens
    busiest_share: float  # the busiest replica's requests over the mean


def simulate(w: Workload, replicas: int, profile: str, epsilon: float | None) -> Outcome:
    requests = shared_prefix(w)
    sim = FleetSimulator(
        PROFILES[profile],
        SCENARIOS["warm-node"],
        Static(replicas),
        initial_replicas=replicas,
        seed=w.seed,
        prefix_epsilon=epsilon,
    )
    result = sim.run(requests)
    done = [r for r in result.requests if r.finished_at is not None and not r.failed]
    ttfts = [r.ttft for r in done if r.ttft is not None]
    span = max(r.finished_at or 0.0 for r in done) - min(r.arrival for r in done)
    engines = [r.engine for r in result.replicas]
    served = [e.completed for e in engines]
    queries = sum(e.prefix_queries for e in engines)
    return Outcome(
        "least-outstanding" if epsilon is None else f"prefix (epsilon {epsilon:g})",
        len(requests),
        len(done),
        percentile(ttfts, 0.50),
        percentile(ttfts, 0.95),
        sum(r.output_tokens for r in done) / span,
        sum(e.prefix_hits for e in engines) / queries if queries else 0.0,
        max(served) / (sum(served) / len(served)),
    )


def compare(
    w: Workload, replicas: int, profile: str, epsilon: float = DEFAULT_EPSILON
) -> tuple[Outcome, Outcome]:
    return simulate(w, replicas, profile, None), simulate(w, replicas, profile, epsilon)


def table(lor: Outcome, pre: Outcome) -> str:
    rows = [
        f"{'routing':<24} {'done':>11} {'TTFT p50':>9} {'TTFT p95':>9} {'out tok/s':>10} "
        f"{'cache hits':>10} {'busiest':>8}"
    ]
    for o in (lor, pre):
        rows.append(
            f"{o.routing:<24} {o.completed:>5}/{o.requests:<5} {o.ttft_p50:>8.3f}s "
            f"{o.ttft_p95:>8.3f}s {o.output_tokens_per_s:>10.1f} {100 * o.hit_rate:>9.1f}% "
            f"{o.busiest_share:>7.2f}x"
        )
    p50 = pre.ttft_p50 / lor.ttft_p50
    rows.append(
        f"prefix / least-outstanding: TTFT p50 {p50:.2f}x, p95 "
        f"{pre.ttft_p95 / lor.ttft_p95:.2f}x, throughput "
        f"{pre.output_tokens_per_s / lor.output_tokens_per_s:.2f}x; goal p50 <= "
        f"{GOAL_P50_RATIO:g}x: {'met' if p50 <= GOAL_P50_RATIO else 'MISSED'}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench-routing", description=__doc__)
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--profile", default="llama-3.1-8b/l40s", choices=sorted(PROFILES))
    p.add_argument("--seconds", type=float, default=Workload.seconds)
    p.add_argument(
        "--conversations",
        type=float,
        action="append",
        help="new conversations per second (repeatable; default 1, 2 and 3)",
    )
    p.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    p.add_argument("--seed", type=int, default=Workload.seed)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    loads = args.conversations or [1.0, 2.0, 3.0]
    if args.replicas < 1 or args.epsilon <= 0 or min(loads) <= 0:
        print(
            "bench-routing: --replicas, --epsilon and --conversations must be > 0", file=sys.stderr
        )
        return 2
    runs = []
    for rate in loads:
        w = Workload(seconds=args.seconds, conversations_per_s=rate, seed=args.seed)
        lor, pre = compare(w, args.replicas, args.profile, args.epsilon)
        print(
            f"shared-prefix: {w.contexts} contexts of {w.context_tokens[0]}-"
            f"{w.context_tokens[1]} tokens, {rate:g} conversations/s of 1-{w.max_turns} turns, "
            f"{args.replicas} x {args.profile}, {w.seconds:g} s"
        )
        print(table(lor, pre))
        print()
        runs.append(
            {"workload": asdict(w), "least_outstanding": asdict(lor), "prefix": asdict(pre)}
        )
    if args.json:
        document = {"replicas": args.replicas, "profile": args.profile, "runs": runs}
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
