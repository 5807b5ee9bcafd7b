"""Spill-over between two gateways on loopback addresses, each in front of its own fake vLLM
fleet: region A (127.0.0.1) with region B (127.0.0.2) as its fallback. With A at zero replicas,
saturated or failing, B serves with no 5xx; with B down, A queues locally as without fallbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from doubles.aio import serve, until
from doubles.fake_vllm import FakeVllm, make_app
from inference_operator.gateway.fallbacks import FallbackConfig, Fallbacks, parse_fallbacks
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import SERVED_BY, Gateway, Limits

MODEL = "m"
A, B = "127.0.0.1", "127.0.0.2"


def failing(status: int) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "engine dead"}}, status=status)

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    return app


def slow() -> web.Application:
    async def handler(req: web.Request) -> web.Response:
        await req.read()
        await asyncio.sleep(1.0)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    return app


def run(coro: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(coro(), timeout=60))  # type: ignore[arg-type]


async def post(s: aiohttp.ClientSession, url: str, n: int = 4) -> tuple[int, str]:
    body = {"model": MODEL, "prompt": "hello there", "max_tokens": n}
    async with s.post(f"{url}/v1/completions", json=body) as r:
        await r.read()
        return r.status, r.headers.get(SERVED_BY, "")


class Regions:
    def __init__(self, stack: AsyncExitStack) -> None:
        self.stack = stack

    async def gateway(
        self, host: str, limits: Limits, fallbacks: Fallbacks | None = None, health: float = 0.1
    ) -> tuple[Gateway, str]:
        gw = Gateway(limits, fallbacks=fallbacks, health_seconds=health)
        gw.set_route(MODEL, "ns", "dep")
        port = await self.stack.enter_async_context(serve(gw.app(), host))
        return gw, f"http://{host}:{port}"

    async def serving(self, host: str) -> tuple[Gateway, str]:
        """A region with one fake vLLM replica behind its gateway."""
        gw, url = await self.gateway(host, Limits())
        await self.replica(gw, make_app(FakeVllm(MODEL)), host, f"{host}-0")
        return gw, url

    async def replica(self, gw: Gateway, app: web.Application, host: str, name: str) -> None:
        port = await self.stack.enter_async_context(serve(app, host))
        known = [s.target for s in gw.routes[MODEL].pool.slots.values()]
        await gw.set_targets("ns", "dep", [*known, Target(name, host, port)])


def to(url: str, spill_after: float = 0.2, **extra: object) -> Fallbacks:
    config = {"name": "region-b", "model": MODEL, "url": url, "spillAfterSeconds": spill_after}
    return Fallbacks([FallbackConfig.model_validate({**config, **extra})])


def test_at_zero_local_replicas_the_other_region_serves_with_no_5xx() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            gw_b, url_b = await regions.serving(B)
            gw_a, url_a = await regions.gateway(A, Limits(), to(url_b))
            results = await asyncio.gather(*(post(s, url_a) for _ in range(10)))
            assert results == [(200, "fallback/region-b")] * 10
            served = gw_a.metrics.served.labels("ns", "dep", "region-b")._value.get()
            spilled = gw_a.metrics.spilled.labels("ns", "dep", "waited")._value.get()
            assert (served, spilled) == (10, 10)
            # Arrivals still count at A: its recommender sees the demand and wakes the model.
            assert gw_a.metrics.received.labels("ns", "dep")._value.get() == 10
            assert gw_b.metrics.received.labels("ns", "dep")._value.get() == 10

    run(body)


def test_a_saturated_region_spills_its_overflow_and_serves_the_rest_itself() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            _gw_b, url_b = await regions.serving(B)
            limits = Limits(max_per_replica=2, max_waiting=2)
            gw_a, url_a = await regions.gateway(A, limits, to(url_b, spill_after=30))
            await regions.replica(gw_a, slow(), A, "a-0")
            results = await asyncio.gather(*(post(s, url_a) for _ in range(10)))
            where = sorted(w for _, w in results)
            assert {code for code, _ in results} == {200}
            # 2 in flight and 2 waiting locally; the other 6 find the queue full and spill.
            assert where.count("local") == 4 and where.count("fallback/region-b") == 6, where
            assert gw_a.metrics.spilled.labels("ns", "dep", "queue_full")._value.get() == 6

    run(body)


def test_a_failing_local_replica_hands_its_requests_to_the_other_region() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            _gw_b, url_b = await regions.serving(B)
            gw_a, url_a = await regions.gateway(A, Limits(), to(url_b))
            await regions.replica(gw_a, failing(503), A, "a-0")
            results = await asyncio.gather(*(post(s, url_a) for _ in range(5)))
            assert results == [(200, "fallback/region-b")] * 5
            assert gw_a.metrics.spilled.labels("ns", "dep", "local_failed")._value.get() == 5

    run(body)


def test_with_the_other_region_down_requests_queue_locally_as_without_fallbacks() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            # Nothing listens there: its port is taken and closed again.
            async with serve(web.Application(), B) as dead_port:
                pass
            fallbacks = to(f"http://{B}:{dead_port}")
            gw_a, url_a = await regions.gateway(A, Limits(queue_timeout_seconds=30), fallbacks)
            (remote,) = fallbacks.remotes
            # Some requests arrive before the health checks eject the fallback, some after.
            early = [asyncio.create_task(post(s, url_a)) for _ in range(3)]
            await until(lambda: not remote.healthy)
            late = [asyncio.create_task(post(s, url_a)) for _ in range(3)]
            await until(lambda: gw_a.routes[MODEL].waiting == 6)
            assert gw_a.metrics.fallback_healthy.labels("region-b")._value.get() == 0
            await regions.replica(gw_a, make_app(FakeVllm(MODEL)), A, "a-0")
            results = await asyncio.gather(*early, *late)
            assert results == [(200, "local")] * 6

    run(body)


def test_an_ejected_fallback_comes_back_at_its_first_good_health_check() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack:
            regions = Regions(stack)
            _, url_b = await regions.gateway(B, Limits())
            fallbacks = to(url_b)
            (remote,) = fallbacks.remotes
            remote.failed(), remote.failed(), remote.failed()
            assert not remote.healthy and fallbacks.spill_after(MODEL) is None
            await regions.gateway(A, Limits(), fallbacks)
            await until(lambda: remote.healthy)
            assert fallbacks.spill_after(MODEL) == 0.2

    run(body)


def test_the_fallback_gets_its_own_key_and_model_name_never_the_clients_key(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str | None, str]] = []

    async def remote(req: web.Request) -> web.Response:
        seen.append((req.headers.get("Authorization"), (await req.json())["model"]))
        return web.json_response({"ok": True})

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def body() -> None:
        app = web.Application()
        app.router.add_post("/v1/completions", remote)
        app.router.add_get("/v1/models", models)
        key = tmp_path / "key"
        key.write_text("region-b-secret\n")
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            port = await stack.enter_async_context(serve(app, B))
            fallbacks = to(f"http://{B}:{port}", 0, keyFile=str(key), remoteModel="llama-b")
            _, url_a = await regions.gateway(A, Limits(), fallbacks)
            body = {"model": MODEL, "prompt": "hi"}
            headers = {"Authorization": "Bearer client-key"}
            async with s.post(f"{url_a}/v1/completions", json=body, headers=headers) as r:
                assert r.status == 200 and r.headers[SERVED_BY] == "fallback/region-b"
        assert seen == [("Bearer region-b-secret", "llama-b")]

    run(body)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("fallbacks: []", "fallbacks"),
        ("fallbacks: [{name: b, model: m, url: 'ftp://x'}]", "fallbacks[0].url"),
        ("fallbacks: [{name: B!, model: m, url: 'http://x'}]", "fallbacks[0].name"),
        (
            "fallbacks: [{name: b, model: m, url: 'http://x', spillAfterSeconds: -1}]",
            "fallbacks[0].spillAfterSeconds",
        ),
        ("fallbacks: [{name: b, model: m, url: 'http://x', bogus: 1}]", "fallbacks[0].bogus"),
        (
            "fallbacks: [{name: b, model: m, url: 'http://x'}, {name: b, model: n, url: 'http://y'}]",
            "fallbacks[].name must be unique (twice: b)",
        ),
    ],
)
def test_a_bad_fallbacks_file_is_refused_naming_the_field(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="fallbacks file") as e:
        parse_fallbacks(text)
    assert named in str(e.value)


def test_a_refused_connection_queues_again_and_spills_once_the_wait_is_over() -> None:
    async def body() -> None:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            regions = Regions(stack)
            _, url_b = await regions.serving(B)
            gw_a, url_a = await regions.gateway(A, Limits(), to(url_b, spill_after=0.5))
            async with serve(web.Application(), A) as closed:
                pass  # nothing listens there any more: connections are refused
            await gw_a.set_targets("ns", "dep", [Target("a-0", A, closed)])
            t0 = time.monotonic()
            assert await post(s, url_a) == (200, "fallback/region-b")
            waited = time.monotonic() - t0
            spilled = gw_a.metrics.spilled.labels
            assert spilled("ns", "dep", "waited")._value.get() == 1
            assert spilled("ns", "dep", "local_failed")._value.get() == 0
            # Not at the first refusal: after the wait, counted from its arrival.
            assert waited >= 0.5

    run(body)
