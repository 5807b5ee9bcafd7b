"""A fake vLLM OpenAI-compatible server backed by the engine model, for live tests.

    PYTHONPATH=tests python -m doubles.fake_vllm --host 127.0.0.2 --port 8000

A test double: it lives with the tests, not in the shipped package.

Serves /v1/completions and /v1/chat/completions (streaming or not), /v1/models, /health and
/metrics with vLLM's own metric names, types and labels. Requests really queue and batch in the
engine model, so the queue and KV-cache gauges rise and fall with load, in real time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from inference_operator.bench.simulator.engine import Replica, Request
from inference_operator.bench.simulator.profiles import PROFILES, EngineProfile
from inference_operator.metrics.queries import VLLM_TPOT_BUCKETS, VLLM_TTFT_BUCKETS

_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)


class _Metrics:
    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        r = self.registry
        self.running = Gauge(
            "vllm:num_requests_running",
            "Requests in the model-execution batch.",
            labels,
            registry=r,
        )
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Requests waiting to be processed.", labels, registry=r
        )
        self.kv = Gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            labels,
            registry=r,
        )
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*labels, "finished_reason"],
            registry=r,
        )
        self.prompt = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=r
        )
        self.generation = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=r
        )
        self.preemptions = Counter(
            "vllm:num_preemptions", "Cumulative number of preemptions.", labels, registry=r
        )
        self.prefix_queries = Counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            labels,
            registry=r,
        )
        self.prefix_hits = Counter(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            labels,
            registry=r,
        )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
            buckets=VLLM_TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            labels,
            buckets=VLLM_TPOT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            labels,
            buckets=VLLM_TPOT_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http = Counter(
            "http_requests",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=r,
        )
        # Present only with --enable-lora, as in vLLM; no model_name or engine label.
        self.lora_info = Gauge(
            "vllm:lora_requests_info",
            "Running stats on lora requests.",
            ["max_lora", "waiting_lora_adapters", "running_lora_adapters"],
            registry=r,
        )
        self.labels = {"model_name": model, "engine": "0"}
        for c in (
            self.running,
            self.waiting,
            self.kv,
            self.prompt,
            self.generation,
            self.preemptions,
        ):
            c.labels(**self.labels)
        for reason in ("stop", "length", "abort", "error"):
            self.success.labels(**self.labels, finished_reason=reason)


@dataclass
class FakeVllm:
    """The engine model run against the wall clock, `speed` times faster than real."""

    model: str = "llama-3-8b"
    profile: EngineProfile = field(default_factory=lambda: PROFILES["llama-3.1-8b/h100"])
    speed: float = 1.0
    tick_seconds: float = 0.005
    # vLLM's --enable-lora and --max-loras, and VLLM_ALLOW_RUNTIME_LORA_UPDATING (without it the
    # load and unload endpoints do not exist).
    lora: bool = False
    max_loras: int = 1
    runtime_lora_updates: bool = False
    # Loaded adapters: name -> lora_path. A path containing "missing" fails to load.
    adapters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = _Metrics(self.model)
        self._t0 = time.monotonic()
        self.engine = Replica(self.profile, 0.0)
        self._changed = asyncio.Condition()
        self._prompt_seen = 0
        self._generated_seen = 0
        self._preemptions_seen = 0
        self._queries_seen = 0
        self._hits_seen = 0
        self.running_adapters: dict[str, int] = {}
        self._lora_info_labels: tuple[str, str, str] | None = None
        self._export_lora()

    def _export_lora(self) -> None:
        if not self.lora:
            return
        running = ",".join(sorted(a for a, n in self.running_adapters.items() if n))
        labels = (str(self.max_loras), "", running)
        if labels != self._lora_info_labels:
            if self._lora_info_labels is not None:
                self.metrics.lora_info.remove(*self._lora_info_labels)
            self._lora_info_labels = labels
        self.metrics.lora_info.labels(*labels).set(time.time())

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    async def run_engine(self) -> None:
        while True:
            self.engine.advance(self.now())
            self._export()
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(self.tick_seconds)

    def _export(self) -> None:
        m, lab, e = self.metrics, self.metrics.labels, self.engine
        m.running.labels(**lab).set(len(e.running))
        m.waiting.labels(**lab).set(len(e.waiting))
        m.kv.labels(**lab).set(e.kv_utilization)
        m.prompt.labels(**lab).inc(e.prompt_tokens - self._prompt_seen)
        m.generation.labels(**lab).inc(e.generated_tokens - self._generated_seen)
        m.preemptions.labels(**lab).inc(e.preemptions - self._preemptions_seen)
        self._prompt_seen, self._generated_seen = e.prompt_tokens, e.generated_tokens
        self._preemptions_seen = e.preemptions
        m.prefix_queries.labels(**lab).inc(e.prefix_queries - self._queries_seen)
        m.prefix_hits.labels(**lab).inc(e.prefix_hits - self._hits_seen)
        self._queries_seen, self._hits_seen = e.prefix_queries, e.prefix_hits

    def produced(self, request: Request) -> int:
        if request.finished_at is not None:
            return request.output_tokens
        for entry in self.engine.running.values():
            if entry.request is request:
                return request.generated + entry.produced(self.engine.step)
        return request.generated

    async def generate(
        self,
        prompt_tokens: int,
        max_tokens: int,
        blocks: tuple[tuple[int, int], ...] = (),
        adapter: str | None = None,
    ) -> Any:
        """Yield counts of new tokens as the engine produces them (an async generator)."""
        if adapter is not None:
            self.running_adapters[adapter] = self.running_adapters.get(adapter, 0) + 1
            self._export_lora()
            try:
                async for n in self.generate(prompt_tokens, max_tokens, blocks):
                    yield n
            finally:
                self.running_adapters[adapter] -= 1
                self._export_lora()
            return
        request = Request(self.now(), max(1, prompt_tokens), max(1, max_tokens), prefixes=blocks)
        self.engine.advance(request.arrival)
        self.engine.enqueue(request)
        sent = 0
        while sent < request.output_tokens:
            async with self._changed:
                await self._changed.wait()
            total = self.produced(request)
            if total > sent:
                yield total - sent
                sent = total
        lab = self.metrics.labels
        assert request.ttft is not None and request.tpot is not None
        self.metrics.ttft.labels(**lab).observe(request.ttft / self.speed)
        # vLLM observes every inter-token gap; the engine model knows their mean per request.
        itl = self.metrics.itl.labels(**lab)
        for _ in range(request.output_tokens - 1):
            itl.observe(request.tpot / self.speed)
        self.metrics.tpot.labels(**lab).observe(request.tpot / self.speed)
        self.metrics.e2e.labels(**lab).observe(
            ((request.finished_at or request.arrival) - request.arrival) / self.speed
        )
        self.metrics.success.labels(**lab, finished_reason="length").inc()


def _words(body: dict[str, Any]) -> list[str]:
    # Roughly a token per word, as good as the simulation needs; chat roles count as a word.
    if "messages" in body:
        return [
            word
            for m in body["messages"]
            if isinstance(m, dict)
            for word in [f"<|{m.get('role', '')}|>", *str(m.get("content", "")).split()]
        ]
    prompt = body.get("prompt", "")
    return (" ".join(prompt) if isinstance(prompt, list) else str(prompt)).split()


def _count_tokens(body: dict[str, Any]) -> int:
    return max(1, len(_words(body)))


BLOCK_TOKENS = 16


def _blocks(body: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """The prompt's full KV blocks as vLLM's prefix cache names them: each block's hash chains
    the hashes before it, so a hit on block k means the whole prompt up to k matches."""
    words = _words(body)
    chain = hashlib.blake2b(digest_size=8)
    out = []
    for end in range(BLOCK_TOKENS, len(words) + 1, BLOCK_TOKENS):
        chain.update(" ".join(words[end - BLOCK_TOKENS : end]).encode() + b"\0")
        out.append((int.from_bytes(chain.copy().digest(), "big"), end))
    return tuple(out)


def make_app(fake: FakeVllm) -> web.Application:
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(_: web.Request) -> web.Response:
        base = {
            "id": fake.model,
            "object": "model",
            "owned_by": "vllm",
            "root": fake.model,
            "parent": None,
            "max_model_len": 8192,
        }
        adapters = [
            {"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": fake.model}
            for name, path in sorted(fake.adapters.items())
        ]
        return web.json_response({"object": "list", "data": [base, *adapters]})

    def lora_error(message: str, status: int = 400) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "type": "BadRequestError", "code": status}},
            status=status,
        )

    async def load_adapter(req: web.Request) -> web.Response:
        body = await req.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return lora_error("Both 'lora_name' and 'lora_path' must be provided.")
        if name in fake.adapters:
            return lora_error(f"The lora adapter '{name}' has already been loaded.")
        if "missing" in str(path):
            return lora_error(f"Loading lora {name} failed: No adapter found for {path}")
        fake.adapters[name] = str(path)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def unload_adapter(req: web.Request) -> web.Response:
        body = await req.json()
        name = body.get("lora_name")
        if name not in fake.adapters:
            return lora_error(f"The lora adapter '{name}' cannot be found.", 404)
        del fake.adapters[name]
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    async def metrics(req: web.Request) -> web.Response:
        # vLLM mounts prometheus_client's ASGI app, which picks the format from the scrape's
        # Accept header; so do we. Prometheus 2.x asks for OpenMetrics first, and the client's
        # OpenMetrics encoder writes `vllm:x` samples as `vllm_x`: the names a real
        # Prometheus stores depend on this choice (docs/autoscaling.md, "Metric names").
        encode, content_type = choose_encoder(req.headers.get("Accept", ""))
        return web.Response(
            body=encode(fake.metrics.registry), headers={"Content-Type": content_type}
        )

    async def complete(req: web.Request) -> web.StreamResponse:
        chat = req.path.endswith("/chat/completions")
        handler = req.path
        try:
            body = await req.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            if max_tokens < 1:
                raise ValueError(f"max_tokens: {max_tokens} must be >= 1")
        except (ValueError, TypeError) as e:
            fake.metrics.http.labels("POST", "4xx", handler).inc()
            return web.json_response(
                {"error": {"message": str(e), "type": "BadRequestError", "code": 400}}, status=400
            )
        if body.get("model") not in (None, fake.model, *fake.adapters):
            fake.metrics.http.labels("POST", "4xx", handler).inc()
            return web.json_response(
                {
                    "error": {
                        "message": f"The model `{body.get('model')}` does not exist.",
                        "type": "NotFoundError",
                        "code": 404,
                    }
                },
                status=404,
            )
        prompt_tokens = _count_tokens(body)
        blocks = _blocks(body)
        adapter = body["model"] if body.get("model") in fake.adapters else None
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"

        def choice(n: int, final: bool, stream: bool) -> dict[str, Any]:
            text = " tok" * n
            c: dict[str, Any] = {"index": 0, "finish_reason": "length" if final else None}
            if chat:
                c["delta" if stream else "message"] = {"role": "assistant", "content": text}
            else:
                c["text"] = text
            return c

        fake.metrics.http.labels("POST", "2xx", handler).inc()
        if not body.get("stream"):
            total = 0
            async for n in fake.generate(prompt_tokens, max_tokens, blocks, adapter):
                total += n
            return web.json_response(
                {
                    "id": rid,
                    "object": obj,
                    "created": created,
                    "model": fake.model,
                    "choices": [choice(total, True, False)],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": total,
                        "total_tokens": prompt_tokens + total,
                    },
                }
            )
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(req)
        total = 0
        async for n in fake.generate(prompt_tokens, max_tokens, blocks, adapter):
            total += n
            chunk = {
                "id": rid,
                "object": f"{obj}.chunk" if chat else obj,
                "created": created,
                "model": fake.model,
                "choices": [choice(n, total >= max_tokens, True)],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/completions", complete)
    app.router.add_post("/v1/chat/completions", complete)
    if fake.lora and fake.runtime_lora_updates:
        app.router.add_post("/v1/load_lora_adapter", load_adapter)
        app.router.add_post("/v1/unload_lora_adapter", unload_adapter)

    async def engine_task(app: web.Application) -> Any:
        task = asyncio.create_task(fake.run_engine())
        yield
        task.cancel()

    app.cleanup_ctx.append(engine_task)
    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1", help="a loopback address (127.0.0.0/8)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="llama-3-8b", help="the served model name")
    p.add_argument("--profile", default="llama-3.1-8b/h100", choices=sorted(PROFILES))
    p.add_argument("--speed", type=float, default=1.0, help="run the engine this much faster")
    args = p.parse_args(argv)
    if not args.host.startswith("127."):
        p.error(f"--host: {args.host!r} is not a loopback address (127.0.0.0/8)")
    fake = FakeVllm(args.model, PROFILES[args.profile], args.speed)
    web.run_app(make_app(fake), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
