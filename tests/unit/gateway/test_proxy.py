"""The gateway against real HTTP servers on loopback: the fake vLLM (engine model behind it)
and a numbered-token streamer. Discovery is replaced by direct set_route/set_targets calls here;
the EndpointSlice path runs in tests/e2e/test_live_loop.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from doubles.fake_vllm import FakeVllm, make_app
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway, Limits

MODEL = "m"


@asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[int]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def numbered(tokens: int, delay: float = 0.002, die_after: int | None = None) -> web.Application:
    """Streams 'data: {"n": i}' events 0..tokens-1 (then [DONE]); optionally drops the
    connection after `die_after` events, as a crashing replica would."""

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(req)
        for i in range(tokens):
            if die_after is not None and i == die_after:
                assert req.transport is not None
                req.transport.abort()
                return resp
            await resp.write(f"data: {json.dumps({'n': i})}\n\n".encode())
            await asyncio.sleep(delay)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    return app


@asynccontextmanager
async def gateway(limits: Limits) -> AsyncIterator[tuple[Gateway, str]]:
    gw = Gateway(limits)
    gw.set_route(MODEL, "ns", "dep")
    async with serve(gw.app()) as port:
        yield gw, f"http://127.0.0.1:{port}"


async def set_replicas(gw: Gateway, ports: dict[str, int]) -> None:
    await gw.set_targets(
        "ns", "dep", [Target(name, "127.0.0.1", port) for name, port in ports.items()]
    )


async def post(
    session: aiohttp.ClientSession, url: str, max_tokens: int = 8, stream: bool = True
) -> tuple[int, str, float]:
    t0 = time.monotonic()
    body = {"model": MODEL, "prompt": "hi", "max_tokens": max_tokens, "stream": stream}
    async with session.post(f"{url}/v1/completions", json=body) as r:
        text = await r.text()
        return r.status, text, time.monotonic() - t0


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), timeout=60))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` on the event loop (the gateway's tasks run meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_requests_at_zero_replicas_wait_and_all_succeed_once_one_is_ready() -> None:
    async def body() -> None:
        async with gateway(Limits(max_per_replica=64, queue_timeout_seconds=30)) as (gw, url):
            async with aiohttp.ClientSession() as s:
                tasks = [asyncio.create_task(post(s, url)) for _ in range(20)]
                await until(lambda: gw.routes[MODEL].waiting == 20)
                async with serve(make_app(FakeVllm(MODEL))) as port:
                    ready_at = time.monotonic()
                    await set_replicas(gw, {"pod-a": port})
                    results = await asyncio.gather(*tasks)
                    done = time.monotonic()
        assert [code for code, _, _ in results] == [200] * 20
        assert all(text.rstrip().endswith("data: [DONE]") for _, text, _ in results)
        print(
            f"\n20 requests held 1.0 s at zero replicas, all 200, served "
            f"{done - ready_at:.2f}s after the replica became ready"
        )

    run(body)


def test_saturation_queues_up_to_the_bound_then_429_with_a_reason() -> None:
    async def body() -> None:
        limits = Limits(max_per_replica=2, max_waiting=5, queue_timeout_seconds=30)
        async with gateway(limits) as (gw, url), serve(numbered(40, delay=0.01)) as port:
            await set_replicas(gw, {"pod-a": port})
            async with aiohttp.ClientSession() as s:
                results = await asyncio.gather(*[post(s, url) for _ in range(10)])
        codes = sorted(code for code, _, _ in results)
        # 2 in flight + 5 waiting are served; the other 3 are told why they were refused.
        assert codes == [200] * 7 + [429] * 3, codes
        refused = json.loads(next(t for c, t, _ in results if c == 429))
        assert refused["error"]["type"] == "queue_full"
        assert "maxWaiting=5" in refused["error"]["message"]

    run(body)


def test_waiting_too_long_is_a_503_that_says_why() -> None:
    async def body() -> None:
        async with gateway(Limits(queue_timeout_seconds=0.5)) as (_, url):
            async with aiohttp.ClientSession() as s:
                code, text, took = await post(s, url)
        assert code == 503 and took >= 0.5
        err = json.loads(text)["error"]
        assert err["type"] == "no_replica_ready" and "ns/dep" in err["message"]

    run(body)


def test_streamed_tokens_arrive_complete_and_in_order() -> None:
    async def body() -> None:
        async with gateway(Limits()) as (gw, url), serve(numbered(300, delay=0)) as port:
            await set_replicas(gw, {"pod-a": port})
            async with aiohttp.ClientSession() as s:
                results = await asyncio.gather(*[post(s, url) for _ in range(5)])
        for code, text, _ in results:
            assert code == 200
            events = [e[len("data: ") :] for e in text.strip().split("\n\n")]
            assert events[-1] == "[DONE]"
            assert [json.loads(e)["n"] for e in events[:-1]] == list(range(300))

    run(body)


def test_a_client_disconnect_frees_its_slot() -> None:
    async def body() -> None:
        async with gateway(Limits(max_per_replica=1)) as (gw, url):
            async with serve(numbered(10_000, delay=0.01)) as port:
                await set_replicas(gw, {"pod-a": port})
                async with aiohttp.ClientSession() as s:
                    body = {"model": MODEL, "prompt": "hi", "stream": True}
                    r = await s.post(f"{url}/v1/completions", json=body)
                    await r.content.readline()  # streaming has begun
                    assert gw.routes[MODEL].pool.outstanding == 1
                    r.close()  # the client goes away mid-stream
                    await until(lambda: gw.routes[MODEL].pool.outstanding == 0)
                    # ...and a waiting client that leaves gives its place back too.
                    hold = await s.post(f"{url}/v1/completions", json=body)
                    await hold.content.readline()
                    waiting = asyncio.create_task(post(s, url))
                    await until(lambda: gw.routes[MODEL].waiting == 1)
                    waiting.cancel()
                    await until(lambda: gw.routes[MODEL].waiting == 0)
                    hold.close()

    run(body)


def test_a_replica_dying_mid_stream_fails_that_stream_alone() -> None:
    async def body() -> None:
        async with gateway(Limits(max_per_replica=1)) as (gw, url):
            async with serve(numbered(50, die_after=10)) as dying, serve(numbered(50)) as healthy:
                await set_replicas(gw, {"dying": dying, "healthy": healthy})
                async with aiohttp.ClientSession() as s:
                    results = await asyncio.gather(post(s, url), post(s, url))
        texts = sorted(t for _, t, _ in results)
        broken = next(t for t in texts if "replica_failed" in t)
        whole = next(t for t in texts if t.rstrip().endswith("[DONE]"))
        assert '"n": 9' in broken and '"n": 10' not in broken
        assert whole.count('"n"') == 50

    run(body)


def test_bad_requests_get_json_errors_that_name_the_problem() -> None:
    async def body() -> None:
        async with gateway(Limits()) as (_, url), aiohttp.ClientSession() as s:
            async with s.post(f"{url}/v1/completions", data=b"not json") as r:
                assert r.status == 400
                assert '"model"' in (await r.json())["error"]["message"]
            payload: dict[str, Any] = {"model": "nope", "prompt": "x"}
            async with s.post(f"{url}/v1/completions", json=payload) as r:
                err = (await r.json())["error"]
                assert r.status == 404 and "'nope'" in err["message"] and "m" in err["message"]
            async with s.get(f"{url}/metrics") as r:
                text = await r.text()
                assert 'inference_gateway_requests_waiting{inference_deployment="dep"' in text

    run(body)


def test_graceful_shutdown_finishes_open_streams_and_refuses_new_requests() -> None:
    async def body() -> None:
        gw = Gateway(Limits())
        gw.set_route(MODEL, "ns", "dep")
        # What `run` does on SIGTERM: stop listening, give open requests shutdown_timeout.
        runner = web.AppRunner(gw.app(), handle_signals=False, shutdown_timeout=30)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with serve(numbered(200, delay=0.01)) as port:
            await set_replicas(gw, {"pod-a": port})
            async with aiohttp.ClientSession() as s:
                stream = asyncio.create_task(post(s, url))
                await until(lambda: gw.routes[MODEL].pool.outstanding == 1)  # streaming (~2 s)
                stopping = asyncio.create_task(runner.cleanup())
                await until(lambda: not runner.sites)  # no longer listening
                try:
                    late = await post(s, url)
                    refused = late[0] != 200
                except aiohttp.ClientConnectionError:
                    refused = True
                code, text, _ = await stream
                await stopping
        assert refused
        assert code == 200 and text.rstrip().endswith("[DONE]")
        assert text.count('"n"') == 200

    run(body)
