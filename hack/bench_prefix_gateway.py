"""Prefix-aware routing against least outstanding requests through the real gateway, in one run.

    PYTHONPATH=operator:tests python hack/bench_prefix_gateway.py [--seconds 120]

Three fake vLLM replicas (tests/doubles/fake_vllm.py: the L40S engine model in real time, with
vLLM's prefix cache as chained 16-token block hashes) behind the gateway, on loopback. Their KV
cache is cut to 40,000 tokens, so the 48 shared contexts (2,000 tokens each, Zipf popularity) do not
fit in one replica, and mostly fit in three. The same open-loop Poisson arrivals of streamed chat
requests go through the gateway once per routing; TTFT is measured by the client, to the first
streamed token. Printed: TTFT p50/p95, completed requests per second, the fleet's prefix-cache
hit rate, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import time
from contextlib import AsyncExitStack

import aiohttp

from doubles.aio import serve
from doubles.fake_vllm import FakeVllm, make_app
from inference_operator.bench.simulator.profiles import PROFILES
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway, Limits

MODEL = "llama"
CONTEXTS, CONTEXT_WORDS, REPLICAS, KV_TOKENS = 48, 2000, 3, 40_000


def contexts(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(f"c{i}w{rng.randrange(10_000)}" for _ in range(CONTEXT_WORDS))
        for i in range(CONTEXTS)
    ]


async def one_run(
    epsilon: float | None, seconds: float, rate: float, seed: int
) -> dict[str, float]:
    profile = dataclasses.replace(PROFILES["llama-3.1-8b/l40s"], kv_capacity_tokens=KV_TOKENS)
    fakes = [FakeVllm(MODEL, profile) for _ in range(REPLICAS)]
    texts = contexts(seed)
    weights = [1 / (i + 1) for i in range(CONTEXTS)]
    rng = random.Random(seed + 1)
    ttfts: list[float] = []
    failed = 0
    async with AsyncExitStack() as stack:
        ports = [await stack.enter_async_context(serve(make_app(f))) for f in fakes]
        gw = Gateway(Limits(prefix_epsilon=epsilon))
        gw.set_route(MODEL, "bench", MODEL)
        url = f"http://127.0.0.1:{await stack.enter_async_context(serve(gw.app()))}"
        await gw.set_targets(
            "bench", MODEL, [Target(f"r{i}", "127.0.0.1", p) for i, p in enumerate(ports)]
        )
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )

        async def request(system: str) -> None:
            nonlocal failed
            body = {
                "model": MODEL,
                "stream": True,
                "max_tokens": 32,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"question {rng.randrange(1_000_000)}"},
                ],
            }
            t0 = time.monotonic()
            async with session.post(f"{url}/v1/chat/completions", json=body) as r:
                first = None
                async for _ in r.content.iter_any():
                    if first is None:
                        first = time.monotonic() - t0
                if r.status != 200 or first is None:
                    failed += 1
                    return
            ttfts.append(first)

        tasks = []
        start = time.monotonic()
        at = 0.0
        while at < seconds:
            at += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            system = rng.choices(texts, weights)[0]
            tasks.append(asyncio.create_task(request(system)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    queries = sum(f.engine.prefix_queries for f in fakes)
    hits = sum(f.engine.prefix_hits for f in fakes)
    q = statistics.quantiles(ttfts, n=20)
    return {
        "p50": statistics.median(ttfts),
        "p95": q[18],
        "rps": len(ttfts) / elapsed,
        "hit_rate": hits / queries if queries else 0.0,
        "failed": failed,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--rate", type=float, default=6.0, help="requests per second (Poisson)")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    lor = asyncio.run(one_run(None, args.seconds, args.rate, args.seed))
    pre = asyncio.run(one_run(0.25, args.seconds, args.rate, args.seed))
    print(
        f"gateway, {REPLICAS} fake vLLM replicas (KV {KV_TOKENS:,} tokens), {CONTEXTS} contexts of "
        f"{CONTEXT_WORDS:,} tokens, {args.rate:g} req/s for {args.seconds:g} s"
    )
    print(
        f"{'routing':<20} {'TTFT p50':>9} {'TTFT p95':>9} {'req/s':>7} {'cache hits':>10} "
        f"{'failed':>6}"
    )
    for name, r in (("least-outstanding", lor), ("prefix", pre)):
        print(
            f"{name:<20} {r['p50']:>8.3f}s {r['p95']:>8.3f}s {r['rps']:>7.2f} "
            f"{100 * r['hit_rate']:>9.1f}% {int(r['failed']):>6}"
        )
    print(
        f"prefix / least-outstanding: TTFT p50 {pre['p50'] / lor['p50']:.2f}x, "
        f"p95 {pre['p95'] / lor['p95']:.2f}x, throughput {pre['rps'] / lor['rps']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
