"""`make bench-gateway`: what the gateway costs, in one run, on this machine.

Two upstream replicas stream 16 server-sent events per request (no think time, so the proxy is
what is measured). The same load goes to them directly (client-side round robin) and through
the gateway (its own process): added latency at p50/p99 with one request at a time, and the
most requests per second under 64 concurrent clients, with the ratio gateway/direct.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

import aiohttp
from aiohttp import web

EVENTS = 16
BODY = {"model": "m", "prompt": "hi", "max_tokens": EVENTS, "stream": True}


def _upstream_app() -> web.Application:
    async def handler(req: web.Request) -> web.StreamResponse:
        await req.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(req)
        for i in range(EVENTS):
            await resp.write(f'data: {{"n": {i}}}\n\n'.encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    return app


def _serve(kind: str, ports: list[int], out: Queue[int]) -> None:
    async def main() -> None:
        if kind == "upstream":
            app = _upstream_app()
        else:
            from inference_operator.gateway.pool import Target
            from inference_operator.gateway.proxy import Gateway, Limits

            gw = Gateway(Limits(max_per_replica=100_000, max_waiting=100_000))
            gw.set_route("m", "bench", "m")
            app = gw.app()
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        if kind == "gateway":
            targets = [Target(f"r{i}", "127.0.0.1", p) for i, p in enumerate(ports)]
            await gw.set_targets("bench", "m", targets)
        out.put(int(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Result:
    latencies: list[float]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))]


async def _load(urls: list[str], concurrency: int, requests: int) -> Result:
    latencies: list[float] = []
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in counter:
                url = urls[i % len(urls)]
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/completions", json=BODY) as r:
                    text = await r.read()
                    if r.status != 200 or not text.endswith(b"[DONE]\n\n"):
                        raise RuntimeError(f"{url}: {r.status} {text[:200]!r}")
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return Result(latencies, time.perf_counter() - start)


def _start(ctx: Any, kind: str, ports: list[int]) -> tuple[Any, int]:
    q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(kind, ports, q), daemon=True)
    proc.start()
    return proc, int(q.get(timeout=30))


def run(sequential: int = 1000, concurrent: int = 6000, clients: int = 64) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    procs = []
    try:
        ups = [_start(ctx, "upstream", []) for _ in range(2)]
        procs += [p for p, _ in ups]
        gw_proc, gw_port = _start(ctx, "gateway", [port for _, port in ups])
        procs.append(gw_proc)
        direct = [f"http://127.0.0.1:{port}" for _, port in ups]
        via = [f"http://127.0.0.1:{gw_port}"]
        asyncio.run(_load(direct + via, 4, 200))  # warm-up: connections, JIT-free but caches
        d1 = asyncio.run(_load(direct, 1, sequential))
        g1 = asyncio.run(_load(via, 1, sequential))
        dn = asyncio.run(_load(direct, clients, concurrent))
        gn = asyncio.run(_load(via, clients, concurrent))
    finally:
        for p in procs:
            p.terminate()
    return {
        "events_per_response": EVENTS,
        "direct_p50_ms": 1000 * d1.pct(0.5),
        "direct_p99_ms": 1000 * d1.pct(0.99),
        "gateway_p50_ms": 1000 * g1.pct(0.5),
        "gateway_p99_ms": 1000 * g1.pct(0.99),
        "added_p50_ms": 1000 * (g1.pct(0.5) - d1.pct(0.5)),
        "added_p99_ms": 1000 * (g1.pct(0.99) - d1.pct(0.99)),
        "added_mean_ms": 1000 * (statistics.mean(g1.latencies) - statistics.mean(d1.latencies)),
        "direct_max_rps": dn.rps,
        "gateway_max_rps": gn.rps,
        "rps_ratio": gn.rps / dn.rps,
        "clients": clients,
    }


def main() -> int:
    r = run()
    print(f"gateway benchmark ({r['events_per_response']} SSE events per response, 2 upstreams)")
    for who in ("direct", "gateway", "added"):
        sign = "+" if who == "added" else ""
        p50, p99 = r[f"{who}_p50_ms"], r[f"{who}_p99_ms"]
        print(f"  one at a time  {who:<8} p50 {p50:{sign}.2f} ms  p99 {p99:{sign}.2f} ms")
    print(
        f"  {r['clients']} clients     direct {r['direct_max_rps']:.0f} req/s, gateway "
        f"{r['gateway_max_rps']:.0f} req/s: {r['rps_ratio']:.2f}x of direct"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
