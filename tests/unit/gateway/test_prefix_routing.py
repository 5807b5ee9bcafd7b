"""Prefix affinity through the real gateway on loopback: chat requests that share a system
prompt reach the same replica while it is within its load bound, and a hot prefix spreads to the
next replicas in its order past the bound, never beyond it."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from doubles.aio import serve, until
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway, Limits
from inference_operator.routing.prefix import prefix_key, rendezvous_order

MODEL = "m"
PROMPTS = [f"You are assistant number {i}. Follow the house style guide. " * 12 for i in range(6)]


def chat(system: str, user: str) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }


class Replicas:
    """Upstreams that record the system prompt of every request and answer when released."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = defaultdict(list)
        self.open: dict[str, int] = defaultdict(int)
        self.release = asyncio.Event()
        self.release.set()

    def app(self, name: str) -> web.Application:
        async def handler(req: web.Request) -> web.Response:
            body = await req.json()
            self.seen[name].append(body["messages"][0]["content"])
            self.open[name] += 1
            try:
                await self.release.wait()
            finally:
                self.open[name] -= 1
            return web.json_response({"served_by": name})

        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        return app


@asynccontextmanager
async def fleet(names: list[str], limits: Limits) -> AsyncIterator[tuple[Gateway, Replicas, str]]:
    replicas = Replicas()
    gw = Gateway(limits)
    gw.set_route(MODEL, "ns", "dep")
    async with serve(gw.app()) as gport:
        ports: dict[str, int] = {}
        servers = [serve(replicas.app(n)) for n in names]
        for name, server in zip(names, servers, strict=True):
            ports[name] = await server.__aenter__()
        try:
            targets = [Target(n, "127.0.0.1", p) for n, p in ports.items()]
            await gw.set_targets("ns", "dep", targets)
            yield gw, replicas, f"http://127.0.0.1:{gport}/v1/chat/completions"
        finally:
            for server in servers:
                await server.__aexit__(None, None, None)


def run(coro: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(coro(), timeout=60))  # type: ignore[arg-type]


NAMES = ["pod-a", "pod-b", "pod-c"]


def test_requests_sharing_a_system_prompt_go_to_its_owner() -> None:
    async def body() -> None:
        async with fleet(NAMES, Limits()) as (_, replicas, url), aiohttp.ClientSession() as s:
            for round_ in range(4):
                for i, system in enumerate(PROMPTS):
                    async with s.post(url, json=chat(system, f"q{round_}-{i}")) as r:
                        assert r.status == 200
        for system in PROMPTS:
            key = prefix_key(chat(system, "anything"))
            assert key is not None
            owner = rendezvous_order(key, NAMES)[0]
            assert replicas.seen[owner].count(system) == 4, (owner, dict(replicas.seen))
        # Six prompts over three replicas: more than one replica is used.
        assert len([n for n in NAMES if replicas.seen[n]]) >= 2

    run(body)


def test_least_outstanding_spreads_the_same_prompts_over_every_replica() -> None:
    async def body() -> None:
        limits = Limits(prefix_epsilon=None)
        async with fleet(NAMES, limits) as (_, replicas, url), aiohttp.ClientSession() as s:
            replicas.release.clear()
            tasks = [
                asyncio.create_task(s.post(url, json=chat(PROMPTS[0], str(i)))) for i in range(6)
            ]
            await until(lambda: sum(replicas.open.values()) == 6)
            assert dict(replicas.open) == dict.fromkeys(NAMES, 2)
            replicas.release.set()
            for response in await asyncio.gather(*tasks):
                assert response.status == 200
                response.release()

    run(body)


def test_a_hot_prefix_spills_past_the_bound_and_no_replica_exceeds_it() -> None:
    async def body() -> None:
        epsilon, n = 0.25, 30
        async with fleet(NAMES, Limits(prefix_epsilon=epsilon)) as (gw, replicas, url):
            replicas.release.clear()
            async with aiohttp.ClientSession() as s:
                tasks = []
                for i in range(n):
                    tasks.append(asyncio.create_task(s.post(url, json=chat(PROMPTS[0], str(i)))))
                    # One at a time, as arrivals are: each placement sees the loads before it.
                    await until(lambda i=i: sum(replicas.open.values()) == i + 1)
                most = max(replicas.open.values())
                bound = math.ceil((1 + epsilon) * n / len(NAMES))
                key = prefix_key(chat(PROMPTS[0], ""))
                assert key is not None
                owner = rendezvous_order(key, NAMES)[0]
                assert most <= bound and replicas.open[owner] == bound, dict(replicas.open)
                assert gw.routes[MODEL].pool.outstanding == n
                replicas.release.set()
                for response in await asyncio.gather(*tasks):
                    assert response.status == 200
                    response.release()

    run(body)
