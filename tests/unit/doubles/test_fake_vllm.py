"""The fake vLLM server on loopback: OpenAI shapes, streaming, and /metrics that track load."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from doubles.fake_vllm import FakeVllm, make_app


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("finished_reason") not in (None, "length"):
                continue
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


async def _serve(fake: FakeVllm) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(fake))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_openai_endpoints_and_streaming() -> None:
    async def scenario() -> dict[str, Any]:
        runner, base = await _serve(FakeVllm(speed=20.0))
        try:
            async with aiohttp.ClientSession() as s:
                assert (await s.get(f"{base}/health")).status == 200
                models = await (await s.get(f"{base}/v1/models")).json()
                plain = await (
                    await s.post(
                        f"{base}/v1/completions",
                        json={"model": "llama-3-8b", "prompt": "hello world", "max_tokens": 5},
                    )
                ).json()
                chunks: list[dict[str, Any]] = []
                done = False
                async with s.post(
                    f"{base}/v1/chat/completions",
                    json={
                        "model": "llama-3-8b",
                        "stream": True,
                        "max_tokens": 12,
                        "messages": [{"role": "user", "content": "hi there"}],
                    },
                ) as resp:
                    async for line in resp.content:
                        text = line.decode().strip()
                        if text.startswith("data: ") and text != "data: [DONE]":
                            chunks.append(json.loads(text[6:]))
                        done = done or text == "data: [DONE]"
                wrong = await s.post(f"{base}/v1/completions", json={"model": "nope"})
                bad = await s.post(f"{base}/v1/completions", data=b"{not json")
                return {
                    "models": models,
                    "plain": plain,
                    "chunks": chunks,
                    "done": done,
                    "wrong": wrong.status,
                    "bad": bad.status,
                }
        finally:
            await runner.cleanup()

    out = asyncio.run(scenario())
    assert out["models"]["data"][0]["id"] == "llama-3-8b"
    assert out["plain"]["usage"]["completion_tokens"] == 5
    assert out["plain"]["usage"]["prompt_tokens"] == 2
    tokens = sum(c["choices"][0]["delta"]["content"].count("tok") for c in out["chunks"])
    assert tokens == 12
    assert out["chunks"][-1]["choices"][0]["finish_reason"] == "length"
    assert out["done"]
    assert (out["wrong"], out["bad"]) == (404, 400)


def test_metrics_use_vllm_names_and_track_load_up_and_down() -> None:
    async def scenario() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        # A slow engine (speed 1) with long outputs keeps requests in flight while we look.
        runner, base = await _serve(FakeVllm(speed=2.0))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
                idle = _samples(await (await s.get(f"{base}/metrics")).text())
                body = {"model": "llama-3-8b", "prompt": "x " * 2000, "max_tokens": 40}
                load = [
                    asyncio.create_task(s.post(f"{base}/v1/completions", json=body))
                    for _ in range(200)
                ]
                # Polled, not slept on: a loaded machine takes longer to send 200 requests, and
                # the engine's ticker may not have admitted any of them to a batch yet (seen in
                # make test: 100 waiting, none running).
                deadline = asyncio.get_running_loop().time() + 20.0
                while True:
                    busy = _samples(await (await s.get(f"{base}/metrics")).text())
                    running = busy["vllm:num_requests_running"]
                    inflight = running + busy["vllm:num_requests_waiting"]
                    loaded = inflight >= 100 and running > 0
                    if loaded or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.05)
                for r in await asyncio.gather(*load):
                    assert r.status == 200
                after = _samples(await (await s.get(f"{base}/metrics")).text())
                return idle, busy, after
        finally:
            await runner.cleanup()

    idle, busy, after = asyncio.run(scenario())
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:request_success_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:inter_token_latency_seconds_sum",
    ):
        assert name in after, name
    assert idle["vllm:num_requests_running"] == 0
    assert busy["vllm:num_requests_running"] > 0
    assert busy["vllm:kv_cache_usage_perc"] > 0
    assert busy["vllm:num_requests_running"] + busy["vllm:num_requests_waiting"] >= 100
    assert after["vllm:num_requests_running"] == 0
    assert after["vllm:num_requests_waiting"] == 0
    assert after["vllm:kv_cache_usage_perc"] == 0
    assert after["vllm:request_success_total"] == 200


# What Prometheus 2.42 sends (scrape/scrape.go); Prometheus 3 adds escaping and UTF-8 terms.
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def test_metrics_negotiate_the_format_as_vllm_does() -> None:
    """vLLM serves prometheus_client's own app: OpenMetrics when asked first, with the colon in
    sample names written as an underscore (the names Prometheus 2.x stores), text otherwise."""

    async def scenario() -> dict[str, tuple[str, str]]:
        runner, base = await _serve(FakeVllm(speed=20.0))
        try:
            async with aiohttp.ClientSession() as s:
                out = {}
                for name, accept in {
                    "prometheus2": PROMETHEUS_2_ACCEPT,
                    "text": "text/plain;version=0.0.4",
                }.items():
                    r = await s.get(f"{base}/metrics", headers={"Accept": accept})
                    out[name] = (r.headers["Content-Type"], await r.text())
                return out
        finally:
            await runner.cleanup()

    out = asyncio.run(scenario())
    om_type, om_body = out["prometheus2"]
    assert om_type.startswith("application/openmetrics-text; version=1.0.0")
    samples = [line.split("{")[0].split(" ")[0] for line in om_body.splitlines()]
    assert "vllm_num_requests_waiting" in samples
    assert not any(n.startswith("vllm:") for n in samples if n and not n.startswith("#"))
    text_type, text_body = out["text"]
    assert text_type.startswith("text/plain")
    assert "vllm:num_requests_waiting{" in text_body
