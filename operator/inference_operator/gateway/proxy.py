"""The proxy: aiohttp server in front of the replicas, aiohttp client towards them.

A request takes a slot on the least busy Ready replica of its model. With no free slot (zero
replicas, or every replica at max_per_replica) it waits in a bounded queue; the queue's length
is exported as inference_gateway_requests_waiting, which the recommender reads, so a model at
zero replicas is woken by the requests waiting for it. Errors are always an OpenAI-style JSON body
with a status that says what happened: 400 unreadable, 401 no or unknown API key, 403 a model
the tenant may not use, 404 unknown model, 429 a queue or a tenant's limit full, 503 waited too
long, 502 the replica failed.

With tenants (gateway/tenants.py) a freed slot goes to the waiting tenant with the fewest
requests in flight on that model per unit of share, not to whoever came first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from inference_operator.gateway.fallbacks import Fallbacks, Remote
from inference_operator.gateway.pool import Pool, Target
from inference_operator.gateway.tenants import ANONYMOUS, Queues, Tenant, Tenants, Waiter, fair_pick
from inference_operator.metrics.queries import (
    GATEWAY_DEPLOYMENT_LABEL,
    GATEWAY_NAMESPACE_LABEL,
    GATEWAY_RECEIVED,
    GATEWAY_WAITING,
)
from inference_operator.routing import prefix

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
# Says who answered: "local", or "fallback/<name>" for a spilled request.
SERVED_BY = "X-Inference-Served-By"
HEALTH_SECONDS = 10.0
# How often the gateway asks replicas which LoRA adapters they serve.
ADAPTER_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    max_per_replica: int = 64
    max_waiting: int = 1000
    queue_timeout_seconds: float = 600.0
    # Prefix-cache affinity: a replica's load bound over the mean (None: least outstanding only).
    prefix_epsilon: float | None = prefix.DEFAULT_EPSILON
    prefix_chars: int = prefix.DEFAULT_PREFIX_CHARS


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


class Spill(Exception):
    """The local replicas cannot take this request: hand it to a fallback. `local` is what the
    client gets if no fallback can serve it either (None: wait locally again)."""

    def __init__(self, reason: str, local: Rejected | None = None) -> None:
        super().__init__(reason)
        self.reason, self.local = reason, local


def error_response(status: int, kind: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)


@dataclass
class Route:
    namespace: str
    deployment: str
    pool: Pool
    waiting: int = 0
    queues: Queues = field(default_factory=Queues)
    # A LoRA adapter's route: its name, and the base model whose replicas (and pool) it shares.
    adapter: str | None = None
    base: str | None = None


log = logging.getLogger(__name__)
QUEUE_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
# Seconds between re-reads of the tenants' key files (a rotated Secret reaches the mount later).
KEY_RELOAD_SECONDS = 30.0


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
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.served = Counter(
            "inference_gateway_served",
            "Requests answered, by where: local, or the fallback's name.",
            [*labels, "where"],
            registry=self.registry,
        )
        self.spilled = Counter(
            "inference_gateway_spilled",
            "Requests handed to fallbacks, by why: waited, queue_full, local_failed.",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.fallback_healthy = Gauge(
            "inference_gateway_fallback_healthy",
            "1 while a fallback is used, 0 while it is ejected.",
            ["fallback"],
            registry=self.registry,
        )
        # By tenant name only: never a key.
        self.tenant_requests = Counter(
            "inference_gateway_tenant_requests",
            "Requests by tenant and outcome.",
            ["tenant", "code"],
            registry=self.registry,
        )
        self.tenant_in_flight = Gauge(
            "inference_gateway_tenant_in_flight",
            "A tenant's requests being served, all models.",
            ["tenant"],
            registry=self.registry,
        )
        self.tenant_queue_seconds = Histogram(
            "inference_gateway_tenant_queue_seconds",
            "Time a tenant's request waited for a replica.",
            ["tenant"],
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )


class Gateway:
    def __init__(
        self,
        limits: Limits | None = None,
        zone: str | None = None,
        dial: Dialer = direct,
        tenants: Tenants | None = None,
        fallbacks: Fallbacks | None = None,
        health_seconds: float = HEALTH_SECONDS,
    ) -> None:
        self.limits = limits or Limits()
        self.fallbacks = fallbacks
        self.health_seconds = health_seconds
        self.adapter_poll_seconds = ADAPTER_POLL_SECONDS
        self.dial = dial
        self.zone = zone
        self.tenants = tenants
        self.anonymous = Tenant(ANONYMOUS)
        self.routes: dict[str, Route] = {}
        self.metrics = Metrics()
        self._session: aiohttp.ClientSession | None = None

    # --- what discovery calls (on the event loop) ---

    def set_route(self, model: str, namespace: str, deployment: str) -> None:
        route = self.routes.get(model)
        if route is None or (route.namespace, route.deployment) != (namespace, deployment):
            pool = Pool(self.zone, self.limits.max_per_replica, self.limits.prefix_epsilon)
            self.routes[model] = Route(namespace, deployment, pool)
            self._waiting_gauge(self.routes[model]).set(0)

    def remove_route(self, model: str) -> None:
        self.routes.pop(model, None)
        for name, route in list(self.routes.items()):
            if route.base == model:
                del self.routes[name]

    def set_adapters(self, model: str, adapters: list[str]) -> None:
        """The LoRA adapters served on top of a model: each a route of its own on the model's
        replicas (one pool, so requests in flight count once per replica)."""
        base = self.routes.get(model)
        for name, route in list(self.routes.items()):
            if route.base == model and (name not in adapters or base is None):
                del self.routes[name]
        if base is None:
            return
        for name in adapters:
            known = self.routes.get(name)
            if known is not None and known.base == model and known.pool is base.pool:
                continue
            if known is not None and known.base is None:
                continue  # a model of its own has that name; it wins
            self.routes[name] = Route(
                base.namespace, base.deployment, base.pool, adapter=name, base=model
            )
            self._waiting_gauge(self.routes[name]).set(0)

    async def set_targets(self, namespace: str, deployment: str, targets: list[Target]) -> None:
        for route in self.routes.values():
            if (route.namespace, route.deployment) == (namespace, deployment):
                route.pool.update(targets)
                self.metrics.replicas.labels(namespace, deployment).set(route.pool.ready)
                self._dispatch(route)

    # --- the request path ---

    def _waiting_gauge(self, route: Route) -> Gauge:
        return self.metrics.waiting.labels(route.namespace, route.deployment)

    def _take(self, route: Route, tenant: Tenant) -> None:
        tenant.in_flight += 1
        route.queues.in_flight[tenant.name] = route.queues.in_flight.get(tenant.name, 0) + 1
        self.metrics.tenant_in_flight.labels(tenant.name).set(tenant.in_flight)

    def _dispatch(self, route: Route) -> None:
        """Hand free slots to waiters, fairly across tenants (tenants.fair_pick)."""
        now = time.monotonic()
        while (waiter := fair_pick(route.queues)) is not None:
            target = route.pool.acquire(now, waiter.key, route.adapter)
            if target is None:
                return
            route.queues.remove(waiter)
            if waiter.future.done():  # its client left a moment ago
                route.pool.release(target)
                continue
            self._take(route, waiter.tenant)
            waiter.future.set_result(target)

    def _refuse_queueing(self, route: Route, tenant: Tenant, spill: float | None) -> None:
        if route.waiting >= self.limits.max_waiting:
            full = Rejected(
                429,
                "queue_full",
                f"{route.waiting} requests already wait for model replicas "
                f"(gateway limit maxWaiting={self.limits.max_waiting}); retry later",
            )
            if spill is not None:
                raise Spill("queue_full", full)
            raise full
        most = tenant.config.max_waiting
        if most is not None and tenant.waiting >= most:
            concurrency = tenant.config.max_concurrency
            raise Rejected(
                429,
                "tenant_limit",
                f"tenant {tenant.name}: {tenant.in_flight} requests in flight and "
                f"{tenant.waiting} waiting (tenant limits maxConcurrency="
                f"{concurrency if concurrency is not None else 'none'}, maxWaiting={most}); "
                "retry later",
            )

    async def _acquire(
        self,
        route: Route,
        request: web.Request,
        tenant: Tenant,
        key: int | None,
        spill: float | None = None,
        arrived: float | None = None,
    ) -> Target:
        """A slot on a local replica; with `spill` (seconds), Spill once the request has waited
        that long since it `arrived` (across requeues), or when the queue is full."""
        if not route.queues.waiting and not tenant.at_capacity:
            target = route.pool.acquire(time.monotonic(), key, route.adapter)
            if target is not None:
                self._take(route, tenant)
                return target
        self._refuse_queueing(route, tenant, spill)
        started = time.monotonic()
        deadline = started + self.limits.queue_timeout_seconds
        waiter = Waiter(tenant, started, asyncio.get_running_loop().create_future(), key)
        route.queues.push(waiter)
        route.waiting += 1
        tenant.waiting += 1
        self._waiting_gauge(route).set(route.waiting)
        served = False
        try:
            self._dispatch(route)
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
                spill_at = (arrived or started) + spill if spill is not None else None
                if spill_at is not None and time.monotonic() >= spill_at:
                    raise Spill("waited")
                # Wake periodically: to notice a client that went away, and to retry replicas
                # that were cooling after a refused connection.
                wake = min(left, 0.5)
                if spill_at is not None:
                    wake = max(0.001, min(wake, spill_at - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    taken: Target = await asyncio.wait_for(
                        asyncio.shield(waiter.future), timeout=wake
                    )
                    served = True
                    return taken
                self._dispatch(route)
        finally:
            route.queues.remove(waiter)
            if not served:
                if waiter.future.done() and not waiter.future.cancelled():
                    # A slot was taken for it just as it gave up: give the slot back.
                    self._release(route, tenant, waiter.future.result())
                else:
                    waiter.future.cancel()
            route.waiting -= 1
            tenant.waiting -= 1
            self._waiting_gauge(route).set(route.waiting)
            waited = time.monotonic() - started
            self.metrics.queue_seconds.labels(route.namespace, route.deployment).observe(waited)
            self.metrics.tenant_queue_seconds.labels(tenant.name).observe(waited)

    def _release(self, route: Route, tenant: Tenant, target: Target) -> None:
        route.pool.release(target)
        tenant.in_flight -= 1
        route.queues.in_flight[tenant.name] -= 1
        self.metrics.tenant_in_flight.labels(tenant.name).set(tenant.in_flight)
        self._dispatch(route)
        for other in self.routes.values():
            if other is not route and other.pool is route.pool and other.queues.waiting:
                self._dispatch(other)  # a model and its adapters share the freed slot
        if tenant.config.max_concurrency is not None:
            # Below its limit again: its requests waiting for other models may go now.
            for other in self.routes.values():
                if other is not route and tenant.name in other.queues.waiting:
                    self._dispatch(other)

    def _tenant(self, request: web.Request, model: str) -> Tenant:
        if self.tenants is None:
            return self.anonymous
        tenant = self.tenants.authenticate(request.headers.get("Authorization"))
        if tenant is None:
            raise Rejected(
                401,
                "authentication_error",
                "missing or unknown API key: send Authorization: Bearer <your tenant's key>",
            )
        if not tenant.may_use(model):
            raise Rejected(
                403,
                "permission_denied",
                f"tenant {tenant.name} may not use model {model!r} "
                f"(allowed: {', '.join(tenant.config.models)})",
            )
        return tenant

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
        try:
            # Who asks comes first: an unknown caller learns nothing of the models.
            tenant = self._tenant(request, model)
        except Rejected as e:
            return error_response(e.status, e.kind, e.message)
        route = self.routes.get(model)
        if route is None:
            known = ", ".join(sorted(self.routes)) or "none"
            return error_response(
                404, "model_not_found", f"model {model!r} is not served here (served: {known})"
            )
        self.metrics.received.labels(route.namespace, route.deployment).inc()
        code = "200"
        try:
            key = prefix.prefix_key(body, self.limits.prefix_chars)
            response = await self._serve(route, request, raw, body, tenant, key)
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
            self.metrics.tenant_requests.labels(tenant.name, code).inc()

    async def _serve(
        self,
        route: Route,
        request: web.Request,
        raw: bytes,
        body: dict[str, Any],
        tenant: Tenant,
        key: int | None,
    ) -> web.StreamResponse:
        """Locally, or on a fallback when the local replicas cannot take it."""
        model = str(body["model"])
        spill = self.fallbacks.spill_after(model) if self.fallbacks is not None else None
        if tenant.at_capacity:
            # Its wait is its own limit, not the model's capacity: spilling would lift the limit.
            spill = None
        try:
            return await self._forward(route, request, raw, tenant, key, spill)
        except Spill as s:
            labels = (route.namespace, route.deployment)
            self.metrics.spilled.labels(*labels, s.reason).inc()
            response = await self._spill(route, request, body, model)
            if response is not None:
                return response
            if s.local is not None:
                raise s.local from None
            # No fallback could serve it: wait locally, as without fallbacks.
            return await self._forward(route, request, raw, tenant, key, None)

    async def _forward(
        self,
        route: Route,
        request: web.Request,
        raw: bytes,
        tenant: Tenant,
        key: int | None,
        spill: float | None,
    ) -> web.StreamResponse:
        assert self._session is not None
        # A tenant's key stops here: replicas never see it.
        dropped = HOP_BY_HOP | ({"authorization"} if self.tenants is not None else set())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        refused: list[str] = []
        arrived = time.monotonic()
        while True:
            target = await self._acquire(route, request, tenant, key, spill, arrived)
            in_flight = self.metrics.in_flight.labels(route.namespace, route.deployment)
            in_flight.inc()
            try:
                response = await self._stream(target, request, raw, headers, spill is not None)
                self.metrics.served.labels(route.namespace, route.deployment, "local").inc()
                return response
            except aiohttp.ClientConnectorError:
                # Nothing reached the replica: rest it a moment and queue again, so another
                # replica (or this one, once it listens) takes the request.
                refused.append(target.name)
                route.pool.cool(target, time.monotonic() + REFUSED_COOLDOWN_SECONDS)
                if len(refused) >= MAX_REFUSALS:
                    failed = Rejected(
                        502,
                        "replica_unreachable",
                        f"replicas refused the connection {len(refused)} times "
                        f"({', '.join(sorted(set(refused)))})",
                    )
                    if spill is not None:
                        raise Spill("local_failed", failed) from None
                    raise failed from None
            finally:
                in_flight.dec()
                self._release(route, tenant, target)

    async def _spill(
        self, route: Route, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse | None:
        """The first healthy fallback that answers, or None when none does."""
        assert self._session is not None and self.fallbacks is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP | {"authorization"}
        }
        for remote in self.fallbacks.for_model(model):
            outgoing = dict(headers)
            if remote.key is not None:
                outgoing["Authorization"] = f"Bearer {remote.key}"
            sent = {**body, "model": remote.config.remote_model or model}
            url = f"{remote.base()}{request.path_qs}"
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=remote.config.timeout_seconds,
                sock_read=max(remote.config.timeout_seconds, 600.0),
            )
            try:
                async with self._session.post(
                    url, json=sent, headers=outgoing, timeout=timeout
                ) as up:
                    if up.status >= 500:
                        self._remote_failed(remote)
                        continue
                    remote.succeeded()
                    self._remote_health(remote)
                    where = f"fallback/{remote.name}"
                    self.metrics.served.labels(route.namespace, route.deployment, remote.name).inc()
                    return await self._relay(up, request, where)
            except (aiohttp.ClientError, TimeoutError):
                self._remote_failed(remote)
        return None

    def _remote_failed(self, remote: Remote) -> None:
        remote.failed()
        self._remote_health(remote)
        if not remote.healthy:
            log.warning("fallback %s ejected after %d failures", remote.name, remote.failures)

    def _remote_health(self, remote: Remote) -> None:
        self.metrics.fallback_healthy.labels(remote.name).set(1 if remote.healthy else 0)

    async def _stream(
        self,
        target: Target,
        request: web.Request,
        raw: bytes,
        headers: dict[str, str],
        spill: bool = False,
    ) -> web.StreamResponse:
        assert self._session is not None
        url = f"http://{self.dial(target.name, target.ip, target.port)}{request.path_qs}"
        async with self._session.post(url, data=raw, headers=headers) as up:
            if spill and up.status >= 500:
                # Nothing reached the client yet: a fallback may still answer.
                raise Spill(
                    "local_failed",
                    Rejected(502, "replica_failed", f"replica {target.name} answered {up.status}"),
                )
            return await self._relay(up, request, "local", target.name)

    async def _relay(
        self,
        up: aiohttp.ClientResponse,
        request: web.Request,
        where: str,
        source: str = "",
    ) -> web.StreamResponse:
        """Stream an upstream answer to the client as it comes."""
        response = web.StreamResponse(
            status=up.status,
            headers={
                **{k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP},
                SERVED_BY: where,
            },
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
                        "message": f"{source or where} failed mid-stream",
                        "type": "replica_failed",
                        "code": 502,
                    }
                }
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
            return response
        await response.write_eof()
        return response

    async def models(self, request: web.Request) -> web.Response:
        tenant = self.anonymous
        if self.tenants is not None:
            found = self.tenants.authenticate(request.headers.get("Authorization"))
            if found is None:
                return error_response(
                    401,
                    "authentication_error",
                    "missing or unknown API key: send Authorization: Bearer <your tenant's key>",
                )
            tenant = found
        data = [
            {"id": m, "object": "model", "owned_by": r.namespace, "parent": r.base}
            for m, r in sorted(self.routes.items())
            if tenant.may_use(m)
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
        if self.tenants is not None:
            app.cleanup_ctx.append(self._reload_keys)
        if self.fallbacks is not None:
            app.cleanup_ctx.append(self._check_fallbacks)
        app.cleanup_ctx.append(self._poll_adapters)
        return app

    async def _poll_adapters(self, _: web.Application) -> Any:
        """Ask the replicas of models with adapters which adapters they serve (their
        /v1/models), so an adapter's requests go where it is loaded."""

        async def ask(base: str, pool: Pool, name: str, target: Target) -> None:
            assert self._session is not None
            url = f"http://{self.dial(target.name, target.ip, target.port)}/v1/models"
            try:
                timeout = aiohttp.ClientTimeout(total=5)
                async with self._session.get(url, timeout=timeout) as r:
                    listed = (await r.json()).get("data") or [] if r.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return  # as it was: the next poll asks again
            if listed is None:
                return
            served = frozenset(
                str(e.get("id")) for e in listed if isinstance(e, dict) and e.get("parent") == base
            )
            pool.serve_adapters(name, served)

        async def loop() -> None:
            while True:
                asks = []
                for model, route in list(self.routes.items()):
                    if route.base is not None or not any(
                        r.base == model for r in self.routes.values()
                    ):
                        continue
                    for name, slot in list(route.pool.slots.items()):
                        asks.append(ask(model, route.pool, name, slot.target))
                await asyncio.gather(*asks)
                for route in list(self.routes.values()):
                    if route.adapter is not None and route.queues.waiting:
                        self._dispatch(route)
                await asyncio.sleep(self.adapter_poll_seconds)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def _check_fallbacks(self, _: web.Application) -> Any:
        """Health-check every fallback now and then (GET /v1/models, with its key): an ejected
        one comes back at its first good answer; re-read their key files too."""
        assert self.fallbacks is not None
        fallbacks = self.fallbacks
        for remote in fallbacks.remotes:
            self._remote_health(remote)

        async def probe(remote: Remote) -> None:
            assert self._session is not None
            headers = {"Authorization": f"Bearer {remote.key}"} if remote.key else {}
            timeout = aiohttp.ClientTimeout(total=min(5.0, remote.config.timeout_seconds))
            try:
                async with self._session.get(
                    f"{remote.base()}/v1/models", headers=headers, timeout=timeout
                ) as r:
                    good = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                good = False
            if good:
                if not remote.healthy:
                    log.info("fallback %s healthy again", remote.name)
                remote.succeeded()
                self._remote_health(remote)
            else:
                self._remote_failed(remote)

        async def loop() -> None:
            last_reload = time.monotonic()
            while True:
                await asyncio.gather(*(probe(r) for r in fallbacks.remotes))
                if time.monotonic() - last_reload >= KEY_RELOAD_SECONDS:
                    last_reload = time.monotonic()
                    for problem in fallbacks.reload():
                        log.warning("fallback keys: %s", problem)
                await asyncio.sleep(self.health_seconds)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def _reload_keys(self, _: web.Application) -> Any:
        """Re-read the tenants' key files now and then: kubelet updates a mounted Secret in
        place when it is rotated."""
        assert self.tenants is not None
        tenants = self.tenants

        async def loop() -> None:
            while True:
                await asyncio.sleep(KEY_RELOAD_SECONDS)
                for problem in tenants.reload():
                    log.warning("tenant keys: %s", problem)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
