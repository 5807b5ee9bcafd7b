"""LoRA adapters through the real gateway on loopback, in front of fake vLLM replicas with LoRA
on: an adapter's requests go to the replicas that have it loaded, follow it as it is loaded and
unloaded, and /v1/models lists the base model and its adapters."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import aiohttp

from doubles.aio import serve, until
from doubles.fake_vllm import FakeVllm, make_app
from inference_operator.gateway.discovery import adapters_of
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway, Limits

BASE = "llama"


def served(fake: FakeVllm) -> int:
    return int(
        fake.metrics.success.labels(**fake.metrics.labels, finished_reason="length")._value.get()
    )


async def ask(s: aiohttp.ClientSession, url: str, model: str) -> int:
    body = {"model": model, "prompt": "hi", "max_tokens": 2}
    async with s.post(f"{url}/v1/completions", json=body) as r:
        await r.read()
        return r.status


async def load(s: aiohttp.ClientSession, port: int, name: str) -> None:
    body = {"lora_name": name, "lora_path": f"org/{name}"}
    async with s.post(f"http://127.0.0.1:{port}/v1/load_lora_adapter", json=body) as r:
        assert r.status == 200, await r.text()


async def unload(s: aiohttp.ClientSession, port: int, name: str) -> None:
    body = {"lora_name": name}
    async with s.post(f"http://127.0.0.1:{port}/v1/unload_lora_adapter", json=body) as r:
        assert r.status == 200, await r.text()


def test_an_adapters_requests_follow_it_as_it_is_loaded_and_unloaded() -> None:
    async def body() -> None:
        fakes = {n: FakeVllm(BASE, lora=True, max_loras=2, runtime_lora_updates=True) for n in "ab"}
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as s:
            ports = {
                n: await stack.enter_async_context(serve(make_app(f))) for n, f in fakes.items()
            }
            gw = Gateway(Limits())
            gw.adapter_poll_seconds = 0.05
            gw.set_route(BASE, "ns", "llama")
            spec = {"spec": {"adapters": [{"name": "sql", "uri": "hf://org/sql"}]}}
            gw.set_adapters(BASE, adapters_of(spec))
            url = f"http://127.0.0.1:{await stack.enter_async_context(serve(gw.app()))}"
            await gw.set_targets(
                "ns", "llama", [Target(f"pod-{n}", "127.0.0.1", p) for n, p in ports.items()]
            )
            pool = gw.routes[BASE].pool
            assert gw.routes["sql"].pool is pool  # one pool: in-flight counts once per replica

            await load(s, ports["a"], "sql")
            await until(lambda: pool.slots["pod-a"].adapters == {"sql"})
            for _ in range(6):
                assert await ask(s, url, "sql") == 200
            assert (served(fakes["a"]), served(fakes["b"])) == (6, 0)

            await load(s, ports["b"], "sql")
            await until(lambda: pool.slots["pod-b"].adapters == {"sql"})
            tasks = [asyncio.create_task(ask(s, url, "sql")) for _ in range(8)]
            assert await asyncio.gather(*tasks) == [200] * 8
            assert served(fakes["b"]) > 0

            await unload(s, ports["a"], "sql")
            await until(lambda: pool.slots["pod-a"].adapters == frozenset())
            before = served(fakes["a"])
            for _ in range(4):
                assert await ask(s, url, "sql") == 200
            assert served(fakes["a"]) == before  # only b has it now

            async with s.get(f"{url}/v1/models") as r:
                listed = {m["id"]: m["parent"] for m in (await r.json())["data"]}
            assert listed == {BASE: None, "sql": BASE}

            # Dropped from the spec: the gateway no longer routes it.
            gw.set_adapters(BASE, [])
            assert await ask(s, url, "sql") == 404
            assert await ask(s, url, BASE) == 200

    asyncio.run(asyncio.wait_for(body(), timeout=60))


def test_the_fake_refuses_runtime_updates_without_the_permission() -> None:
    async def body() -> None:
        fake = FakeVllm(BASE, lora=True, runtime_lora_updates=False)
        async with serve(make_app(fake)) as port, aiohttp.ClientSession() as s:
            body = {"lora_name": "sql", "lora_path": "org/sql"}
            async with s.post(f"http://127.0.0.1:{port}/v1/load_lora_adapter", json=body) as r:
                assert r.status == 404  # vLLM mounts the endpoints only with the permission
            async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
            # vLLM's own info gauge, present only with --enable-lora.
            assert 'vllm:lora_requests_info{max_lora="1",running_lora_adapters=""' in text

    asyncio.run(asyncio.wait_for(body(), timeout=30))
