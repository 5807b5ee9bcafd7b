"""The proxy: aiohttp server in front of the replicas, aiohttp client towards them.

A request takes a slot on the least busy Ready replica of its model. With no free slot (zero
replicas, or every replica at max_per_replica) it waits in a bounded queue; the queue's length
is exported as inference_gateway_requests_waiting, which the recommender reads, so a model at
zero replicas is woken by the requests waiting for it. Errors are always an OpenAI-style JSON body
with a status that says what happened: 400 unreadable, 404 unknown model, 429 queue full, 503
waited too long, 502 the replica failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from inference_operator.gateway.pool import Pool, Target
from inference_operator.metrics.queries import (
    GATEWAY_DEPLOYMENT_LABEL,
    GATEWAY_NAMESPACE_LABEL,
    GATEWAY_RECEIVED,
    GATEWAY_WAITING,
)

# Not forwarded: they describe one hop, not the request (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)


REFUSED_COOLDOWN_SECONDS = 1.0
MAX_REFUSALS = 20


@dataclass(frozen=True)
class Limits:
    max_per_replica: int = 64
    max_waiting: int = 1000
    queue_timeout_seconds: float = 600.0


# How to reach a replica: (pod, ip, port) -> "host:port". The identity in a cluster; on loopback
# tests it maps the pod to the fake replica standing in for it. Asked at every connection, so a
# replica that appears after its EndpointSlice entry is found.
Dialer = Callable[[str, str, int], str]


def direct(pod: str, ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}"


class Rejected(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def error_response(status: int, kind: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)


@dataclass
class Route:
    namespace: str
    deployment: str
    pool: Pool
    waiting: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = [GATEWAY_NAMESPACE_LABEL, GATEWAY_DEPLOYMENT_LABEL]
        self.waiting = Gauge(
            GATEWAY_WAITING, "Requests waiting for a free replica.", labels, registry=self.registry
        )
        self.in_flight = Gauge(
            "inference_gateway_requests_in_flight",
            "Requests being served by a replica.",
            labels,
            registry=self.registry,
        )
        self.replicas = Gauge(
            "inference_gateway_ready_replicas",
            "Ready replicas the gateway routes to.",
            labels,
            registry=self.registry,
        )
        self.requests = Counter(
            "inference_gateway_requests",
            "Requests by outcome.",
            [*labels, "code"],
            registry=self.registry,
        )
        self.received = Counter(
            GATEWAY_RECEIVED,
            "Requests received for a model, counted on arrival (the operator's arrival rate).",
            labels,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "inference_gateway_queue_seconds",
            "Time a request waited for a replica.",
            labels,
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )


class Gateway:
    def __init__(
        self, limits: Limits | None = None, zone: str | None = None, dial: Dialer = direct
    ) -> None:
        self.limits = limits or Limits()
        self.dial = dial
        self.zone = zone
        self.routes: dict[str, Route] = {}
        self.metrics = Metrics()
        self._session: aiohttp.ClientSession | None = None

    # --- what discovery calls (on the event loop) ---

    def set_route(self, model: str, namespace: str, deployment: str) -> None:
        route = self.routes.get(model)
        if route is None or (route.namespace, route.deployment) != (namespace, deployment):
            self.routes[model] = Route(
                namespace, deployment, Pool(self.zone, self.limits.max_per_replica)
            )
            self._waiting_gauge(self.routes[model]).set(0)

    def remove_route(self, model: str) -> None:
        self.routes.pop(model, None)

    async def set_targets(self, namespace: str, deployment: str, targets: list[Target]) -> None:
        for route in self.routes.values():
            if (route.namespace, route.deployment) == (namespace, deployment):
                route.pool.update(targets)
                self.metrics.replicas.labels(namespace, deployment).set(route.pool.ready)
                async with route.changed:
                    route.changed.notify_all()

    # --- the request path ---

    def _waiting_gauge(self, route: Route) -> Gauge:
        return self.metrics.waiting.labels(route.namespace, route.deployment)

    async def _acquire(self, route: Route, request: web.Request) -> Target:
        target = route.pool.acquire(time.monotonic())
        if target is not None:
            return target
        if route.waiting >= self.limits.max_waiting:
            raise Rejected(
                429,
                "queue_full",
                f"{route.waiting} requests already wait for model replicas "
                f"(gateway limit maxWaiting={self.limits.max_waiting}); retry later",
            )
        deadline = time.monotonic() + self.limits.queue_timeout_seconds
        route.waiting += 1
        self._waiting_gauge(route).set(route.waiting)
        started = time.monotonic()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Rejected(
                        503,
                        "no_replica_ready",
                        f"no replica of {route.namespace}/{route.deployment} could take the "
                        f"request within {self.limits.queue_timeout_seconds:g}s "
                        f"({route.pool.ready} ready)",
                    )
                if request.transport is None or request.transport.is_closing():
                    raise asyncio.CancelledError  # the client left: give the place back
                async with route.changed:
                    # Wake periodically to notice a client that went away while waiting.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(route.changed.wait(), timeout=min(left, 0.5))
                target = route.pool.acquire(time.monotonic())
                if target is not None:
                    return target
        finally:
            route.waiting -= 1
            self._waiting_gauge(route).set(route.waiting)
            self.metrics.queue_seconds.labels(route.namespace, route.deployment).observe(
                time.monotonic() - started
            )

    async def _release(self, route: Route, target: Target) -> None:
        route.pool.release(target)
        async with route.changed:
            route.changed.notify(1)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
            model = body["model"]
            if not isinstance(model, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return error_response(
                400,
                "invalid_request_error",
                'body: expected a JSON object with a string "model" field',
            )
        route = self.routes.get(model)
        if route is None:
            known = ", ".join(sorted(self.routes)) or "none"
            return error_response(
                404, "model_not_found", f"model {model!r} is not served here (served: {known})"
            )
        self.metrics.received.labels(route.namespace, route.deployment).inc()
        code = "200"
        try:
            response = await self._forward(route, request, raw)
            code = str(response.status)
            return response
        except Rejected as e:
            code = str(e.status)
            return error_response(e.status, e.kind, e.message)
        except (asyncio.CancelledError, ConnectionError):
            # The client went away, waiting or mid-stream (aiohttp ignores the reset itself).
            code = "499"  # nginx's "client closed request"
            raise
        finally:
            self.metrics.requests.labels(route.namespace, route.deployment, code).inc()

    async def _forward(self, route: Route, request: web.Request, raw: bytes) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        refused: list[str] = []
        while True:
            target = await self._acquire(route, request)
            in_flight = self.metrics.in_flight.labels(route.namespace, route.deployment)
            in_flight.inc()
            try:
                return await self._stream(target, request, raw, headers)
            except aiohttp.ClientConnectorError:
                # Nothing reached the replica: rest it a moment and queue again, so another
                # replica (or this one, once it listens) takes the request.
                refused.append(target.name)
                route.pool.cool(target, time.monotonic() + REFUSED_COOLDOWN_SECONDS)
                if len(refused) >= MAX_REFUSALS:
                    raise Rejected(
                        502,
                        "replica_unreachable",
                        f"replicas refused the connection {len(refused)} times "
                        f"({', '.join(sorted(set(refused)))})",
                    ) from None
            finally:
                in_flight.dec()
                await self._release(route, target)

    async def _stream(
        self, target: Target, request: web.Request, raw: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        assert self._session is not None
        url = f"http://{self.dial(target.name, target.ip, target.port)}{request.path_qs}"
        async with self._session.post(url, data=raw, headers=headers) as up:
            response = web.StreamResponse(
                status=up.status,
                headers={k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            await response.prepare(request)
            try:
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
            except (
                aiohttp.ClientPayloadError,
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError,
            ):
                # The replica died mid-answer: this stream ends with an error event, alone.
                if "text/event-stream" in up.headers.get("Content-Type", ""):
                    event = {
                        "error": {
                            "message": f"replica {target.name} failed mid-stream",
                            "type": "replica_failed",
                            "code": 502,
                        }
                    }
                    await response.write(f"data: {json.dumps(event)}\n\n".encode())
                return response
            await response.write_eof()
            return response

    async def models(self, _: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "owned_by": r.namespace}
            for m, r in sorted(self.routes.items())
        ]
        return web.json_response({"object": "list", "data": data})

    async def metrics_page(self, req: web.Request) -> web.Response:
        # The format the scrape asks for, as prometheus_client's own apps answer; our names have
        # no colon, so both formats store the same names (tests/e2e/test_promql.py).
        encode, content_type = choose_encoder(req.headers.get("Accept", ""))
        return web.Response(
            body=encode(self.metrics.registry), headers={"Content-Type": content_type}
        )

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/completions", self.handle)
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/healthz", self.health)

        async def session(_: web.Application) -> Any:
            connector = aiohttp.TCPConnector(limit=0)
            timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=600)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=False
            )
            yield
            await self._session.close()

        app.cleanup_ctx.append(session)
        return app
