"""`python -m inference_operator loadtest --url URL --model NAME`: sweep request rates against a
live OpenAI-compatible endpoint (ours, the fake vLLM, or a real one), measure TTFT at the first
streamed token and TPOT after it, and report the highest rate that meets the SLO."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field

import aiohttp
from tqdm import tqdm


@dataclass
class Sample:
    ok: bool
    ttft: float = float("inf")
    tpot: float = float("inf")
    # HTTP status; 0 when the connection failed before one arrived.
    status: int = 0
    tokens: int = 0
    error: str = ""


@dataclass(frozen=True)
class RateResult:
    rate: float
    requests: int
    errors: int
    ttft_p50: float
    ttft_p95: float
    tpot_p95: float
    attainment: float


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("inf")


async def _one(
    session: aiohttp.ClientSession, url: str, model: str, prompt: str, max_tokens: int
) -> Sample:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
    }
    t0 = time.monotonic()
    first = last = 0.0
    tokens = 0
    try:
        async with session.post(f"{url}/v1/completions", json=body) as resp:
            if resp.status != 200:
                return Sample(False, status=resp.status, error=(await resp.text())[:300])
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                text = chunk["choices"][0].get("text") or ""
                if not text:
                    continue
                now = time.monotonic()
                if tokens == 0:
                    first = now
                tokens += max(1, len(text.split()))
                last = now
    except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as e:
        return Sample(False, error=repr(e)[:300])
    if tokens == 0:
        return Sample(False, status=200)
    tpot = (last - first) / (tokens - 1) if tokens > 1 else 0.0
    return Sample(True, first - t0, tpot, status=200, tokens=tokens)


async def sweep(
    url: str,
    model: str,
    rates: list[float],
    duration: float,
    prompt_tokens: int,
    max_tokens: int,
    ttft_slo: float,
    tpot_slo: float,
    seed: int = 1,
    progress: bool = True,
) -> list[RateResult]:
    rng = random.Random(seed)
    prompt = " ".join(["hello"] * prompt_tokens)
    out: list[RateResult] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=duration * 10 + 120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for rate in tqdm(rates, desc="rates", disable=not progress, leave=False):
            tasks: list[asyncio.Task[Sample]] = []
            start = time.monotonic()
            next_at = start
            # Open loop: arrivals follow a Poisson process whatever the server does.
            while next_at < start + duration:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                tasks.append(asyncio.create_task(_one(session, url, model, prompt, max_tokens)))
                next_at += rng.expovariate(rate)
            samples = await asyncio.gather(*tasks)
            good = [s for s in samples if s.ok]
            met = sum(1 for s in good if s.ttft <= ttft_slo and s.tpot <= tpot_slo)
            out.append(
                RateResult(
                    rate,
                    len(samples),
                    len(samples) - len(good),
                    _pct([s.ttft for s in good], 0.5),
                    _pct([s.ttft for s in good], 0.95),
                    _pct([s.tpot for s in good], 0.95),
                    met / max(1, len(samples)),
                )
            )
    return out


@dataclass
class Drive:
    """A time-varying open-loop load: `phases` of (seconds, requests per second)."""

    url: str
    model: str
    phases: list[tuple[float, float]]
    prompt_tokens: int = 64
    max_tokens: int = 64
    seed: int = 1
    # (sent at, sample) for every request, filled as they finish.
    results: list[tuple[float, Sample]] = field(default_factory=list)
    offered: float = 0.0

    async def run(self) -> list[tuple[float, Sample]]:
        rng = random.Random(self.seed)
        prompt = " ".join(["hello"] * self.prompt_tokens)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=900)
        tasks: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(sent: float) -> None:
                sample = await _one(session, self.url, self.model, prompt, self.max_tokens)
                self.results.append((sent, sample))

            for seconds, rate in self.phases:
                self.offered = rate
                end = time.monotonic() + seconds
                if rate <= 0:
                    await asyncio.sleep(seconds)
                    continue
                next_at = time.monotonic()
                while next_at < end:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    tasks.append(asyncio.create_task(one(time.time())))
                    next_at += rng.expovariate(rate)
                await asyncio.sleep(max(0.0, end - time.monotonic()))
            self.offered = 0.0
            await asyncio.gather(*tasks)
        return self.results


def best_rate(results: list[RateResult], attainment: float = 0.99) -> float | None:
    ok = [r.rate for r in results if r.attainment >= attainment]
    return max(ok) if ok else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="base URL, such as http://127.0.0.2:8000")
    p.add_argument("--model", required=True, help="the served model name")
    p.add_argument("--rates", default="0.5,1,2,4,8", help="comma-separated requests per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of arrivals per rate")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--ttft-slo", type=float, default=2.0)
    p.add_argument("--tpot-slo", type=float, default=0.1)
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        rates = sorted(float(r) for r in args.rates.split(","))
        if not rates or min(rates) <= 0:
            raise ValueError
    except ValueError:
        print(
            f"loadtest: --rates {args.rates!r} must be positive numbers, comma-separated",
            file=sys.stderr,
        )
        return 2
    results = asyncio.run(
        sweep(
            args.url.rstrip("/"),
            args.model,
            rates,
            args.duration,
            args.prompt_tokens,
            args.max_tokens,
            args.ttft_slo,
            args.tpot_slo,
            progress=not args.quiet,
        )
    )
    print(
        f"{'req/s':>6} {'sent':>5} {'errors':>6} {'TTFT p50':>9} {'p95':>7} {'TPOT p95':>9} "
        f"{'SLO met':>8}"
    )
    for r in results:
        print(
            f"{r.rate:>6g} {r.requests:>5} {r.errors:>6} {r.ttft_p50:>9.3f} {r.ttft_p95:>7.3f} "
            f"{r.tpot_p95:>9.4f} {100 * r.attainment:>7.1f}%"
        )
    best = best_rate(results)
    if best is None:
        print(f"no rate met the SLO (TTFT <= {args.ttft_slo}s, TPOT <= {args.tpot_slo}s) for 99%")
        return 1
    print(
        f"\none replica sustains {best:g} req/s within the SLO; put in the spec:\n"
        f"  autoscaling:\n    targets:\n"
        f"      requestsPerSecondPerReplica: {round(best * 0.85, 2):g}   # 85% of measured\n"
        f"      queuePerReplica: 4\n      kvCacheUtilization: 0.8"
    )
    return 0
