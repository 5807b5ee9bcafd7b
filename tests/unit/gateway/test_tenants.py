"""Gateway tenancy: API keys from files, per-tenant limits, fair queuing, on loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway, Limits
from inference_operator.gateway.run import load_tenants
from inference_operator.gateway.tenants import (
    Queues,
    Tenant,
    TenantConfig,
    Tenants,
    Waiter,
    fair_pick,
    parse_tenants,
)

KEYS = {"alpha": "sk-alpha-0123456789", "beta": "sk-beta-9876543210"}


def tenants_file(tmp: Path, **extra: dict[str, Any]) -> Path:
    entries = []
    for name, key in KEYS.items():
        (tmp / name).write_text(key + "\n")
        entries.append({"name": name, "keyFile": str(tmp / name), **extra.get(name, {})})
    path = tmp / "tenants.yaml"
    path.write_text(json.dumps({"tenants": entries}))
    return path


# --- parsing and keys ---


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"tenants": [{"name": "a"}]}', "tenants[0].keyFile"),
        ('{"tenants": [{"name": "A b", "keyFile": "/k"}]}', "tenants[0].name"),
        ('{"tenants": [{"name": "a", "keyFile": "/k", "share": 0}]}', "tenants[0].share"),
        ('{"tenants": [{"name": "a", "keyFile": "/k", "maxConcurrency": 0}]}', "maxConcurrency"),
        ('{"tenants": [{"name": "a", "keyFile": "/k", "burst": 3}]}', "tenants[0].burst"),
        ('{"tenants": []}', "tenants"),
        (
            '{"tenants": [{"name": "a", "keyFile": "/k"}, {"name": "a", "keyFile": "/j"}]}',
            "unique (twice: a)",
        ),
        ("tenants: [", "not YAML"),
    ],
)
def test_a_bad_tenants_file_is_refused_naming_the_field(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="tenants file") as e:
        parse_tenants(text)
    assert named in str(e.value)


def test_keys_are_read_from_files_and_problems_name_tenant_and_file_never_the_key(
    tmp_path: Path,
) -> None:
    files = {"/a": "sk-same", "/b": "sk-same", "/c": "  \n", "/d": "sk-d"}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    configs = [
        TenantConfig(name=n, key_file=f)
        for n, f in (("a", "/a"), ("b", "/b"), ("c", "/c"), ("d", "/d"), ("e", "/e"))
    ]
    tenants = Tenants(configs, read)
    joined = " | ".join(tenants.problems)
    assert "tenants a, b share one key" in joined
    assert "tenant c: key file /c is empty" in joined
    assert "tenant e: key file /e: No such file or directory" in joined
    assert "sk-same" not in joined and "sk-d" not in joined
    assert tenants.authenticate("Bearer sk-d") is tenants.by_name["d"]
    assert tenants.authenticate("bearer  sk-d ") is tenants.by_name["d"]
    for refused in ("Bearer sk-same", "sk-d", "Basic sk-d", "Bearer ", None, ""):
        assert tenants.authenticate(refused) is None
    # A rotated key takes effect on the next reload.
    files["/d"] = "sk-d2"
    tenants.reload()
    assert tenants.authenticate("Bearer sk-d") is None
    assert tenants.authenticate("Bearer sk-d2") is tenants.by_name["d"]


def test_fair_pick_prefers_the_tenant_with_least_in_flight_per_share() -> None:
    heavy = Tenant(TenantConfig(name="heavy", key_file="-"))
    light = Tenant(TenantConfig(name="light", key_file="-", share=2))
    capped = Tenant(TenantConfig(name="capped", key_file="-", max_concurrency=1), in_flight=1)
    q = Queues()
    for i, t in enumerate([heavy, heavy, capped, light]):
        q.push(Waiter(t, float(i), None))
    q.in_flight = {"heavy": 3, "light": 5, "capped": 0}
    # heavy 3/1 = 3, light 5/2 = 2.5: light first although it came last; capped never.
    first = fair_pick(q)
    assert first is not None and first.tenant is light
    q.remove(first)
    second = fair_pick(q)
    assert second is not None and second.tenant is heavy and second.arrived == 0.0
    q.remove(second)
    q.remove(fair_pick(q))  # type: ignore[arg-type]
    assert fair_pick(q) is None  # only the capped tenant waits
    assert len(q) == 1


# --- on loopback HTTP ---


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


class Replica:
    """A replica that records who it served, in order, and the headers it got."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.started: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    def app(self) -> web.Application:
        async def handler(req: web.Request) -> web.Response:
            body = await req.json()
            self.started.append(body["prompt"])
            self.headers.append(dict(req.headers))
            await self.hold.wait()
            await asyncio.sleep(self.seconds)
            return web.json_response({"choices": [{"text": "ok"}]})

        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        return app


@asynccontextmanager
async def gateway(
    tmp: Path, replica: Replica, limits: Limits, **extra: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, str]]:
    gw = Gateway(limits, tenants=load_tenants(str(tenants_file(tmp, **extra))))
    for model in ("m", "other"):
        gw.set_route(model, "ns", f"dep-{model}")
    async with serve(replica.app()) as rport, serve(gw.app()) as gport:
        for model in ("m", "other"):
            await gw.set_targets("ns", f"dep-{model}", [Target(f"pod-{model}", "127.0.0.1", rport)])
        yield gw, f"http://127.0.0.1:{gport}"


async def post(
    s: aiohttp.ClientSession, url: str, key: str | None, prompt: str = "x", model: str = "m"
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "prompt": prompt}
    async with s.post(f"{url}/v1/completions", json=body, headers=headers) as r:
        return r.status, await r.json()


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_keys_models_and_limits_answer_401_403_429_as_json_naming_the_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        replica = Replica()
        limits = Limits(max_per_replica=8)
        extra = {"alpha": {"models": ["m"], "maxConcurrency": 1, "maxWaiting": 1}}
        async with gateway(tmp_path, replica, limits, **extra) as (gw, url):
            async with aiohttp.ClientSession() as s:
                code, err = await post(s, url, None)
                assert code == 401 and err["error"]["type"] == "authentication_error"
                code, err = await post(s, url, "sk-wrong")
                assert code == 401
                code, err = await post(s, url, KEYS["alpha"], model="other")
                assert code == 403
                assert err["error"]["message"] == (
                    "tenant alpha may not use model 'other' (allowed: m)"
                )
                code, _ = await post(s, url, KEYS["beta"], model="other")
                assert code == 200
                # alpha: one in flight, one waiting, the third is refused.
                replica.hold.clear()
                first = asyncio.create_task(post(s, url, KEYS["alpha"]))
                second = asyncio.create_task(post(s, url, KEYS["alpha"]))
                while gw.routes["m"].waiting < 1:
                    await asyncio.sleep(0.01)
                code, err = await post(s, url, KEYS["alpha"])
                assert code == 429 and err["error"]["type"] == "tenant_limit"
                assert "maxConcurrency=1, maxWaiting=1" in err["error"]["message"]
                # beta is not held back by alpha's limit: it passes alpha's waiting request.
                beta = asyncio.create_task(post(s, url, KEYS["beta"], prompt="beta"))
                while "beta" not in replica.started:
                    await asyncio.sleep(0.01)
                assert gw.routes["m"].waiting == 1
                replica.hold.set()
                assert [(await t)[0] for t in (first, second, beta)] == [200, 200, 200]
                async with s.get(
                    f"{url}/v1/models", headers={"Authorization": f"Bearer {KEYS['alpha']}"}
                ) as r:
                    assert [m["id"] for m in (await r.json())["data"]] == ["m"]
                async with s.get(f"{url}/v1/models") as r:
                    assert r.status == 401
                async with s.get(f"{url}/metrics") as r:
                    page = await r.text()
        # The replica never saw a key; no key is in a metric or a log line.
        assert replica.headers and all("Authorization" not in h for h in replica.headers)
        assert 'inference_gateway_tenant_requests_total{code="429",tenant="alpha"} 1.0' in page
        for key in KEYS.values():
            assert key not in page
            assert key not in caplog.text

    run(body())


def quantile_le(gw: Gateway, tenant: str, q: float) -> float:
    """The smallest bucket bound of the tenant's queue-wait histogram holding quantile q."""
    samples = gw.metrics.tenant_queue_seconds.labels(tenant).collect()[0].samples
    buckets = [(float(x.labels["le"]), x.value) for x in samples if x.name.endswith("_bucket")]
    total = buckets[-1][1]
    return next(le for le, n in buckets if n >= q * total)


def test_one_tenant_flooding_does_not_starve_another(tmp_path: Path) -> None:
    """alpha queues 120 requests at once (below the listen backlog of 128); beta then sends 10,
    one after another. Each freed slot goes to the waiting tenant with fewer in flight, so once
    a beta request waits in the gateway, no alpha request takes a slot before it. First come,
    first served would start all of alpha's queue (~116) first."""

    async def body() -> None:
        replica = Replica(seconds=0.05)
        slots = 4
        limits = Limits(max_per_replica=slots, queue_timeout_seconds=60)
        async with gateway(tmp_path, replica, limits) as (gw, url):
            # The gateway's own order of events: a request joining the queue, a slot taken.
            # Counted there, not at the replica: on a loaded machine requests spend a round or
            # two of the slots in the sockets, and arrive in another order than they started.
            events: list[tuple[str, str]] = []
            queues, push, take = gw.routes["m"].queues, gw.routes["m"].queues.push, gw._take

            def recording_push(w: Waiter) -> None:
                events.append(("join", w.tenant.name))
                push(w)

            def recording_take(route: Any, tenant: Tenant) -> None:
                events.append(("take", tenant.name))
                take(route, tenant)

            queues.push = recording_push  # type: ignore[method-assign]
            gw._take = recording_take  # type: ignore[method-assign]
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
                flood = [
                    asyncio.create_task(post(s, url, KEYS["alpha"], prompt=f"a{i}"))
                    for i in range(120)
                ]
                while gw.routes["m"].waiting < 120 - slots:
                    await asyncio.sleep(0.01)
                waits = []
                for i in range(10):
                    t0 = time.monotonic()
                    code, _ = await post(s, url, KEYS["beta"], prompt=f"b{i}")
                    waits.append(time.monotonic() - t0)
                    assert code == 200
                alpha_left = gw.routes["m"].waiting
                results = await asyncio.gather(*flood)
                waited = {t: quantile_le(gw, t, 0.95) for t in ("alpha", "beta")}
        assert all(code == 200 for code, _ in results)
        # beta's share is half the slots and it holds at most one: its p95 wait is about one
        # service time (the next slot to free), in the gateway's own histogram; alpha's is
        # its whole queue's. Compared with each other, not with the clock: a busy machine
        # stretches both.
        assert waited["beta"] * 4 <= waited["alpha"], waited
        assert alpha_left > 0, "alpha's flood drained before beta finished: no contention"
        # Each of beta's requests waited (alpha's queue never emptied), and between its joining
        # and its taking a slot, alpha took none.
        overtaken, since = [], None
        for kind, name in events:
            if (kind, name) == ("join", "beta"):
                since = 0
            elif (kind, name) == ("take", "beta") and since is not None:
                overtaken.append(since)
                since = None
            elif kind == "take" and since is not None:
                since += 1
        assert len(overtaken) == 10, events
        assert overtaken == [0] * 10, overtaken
        print(
            f"\nbeta overtaken by {max(overtaken)} alpha requests once queued; beta's latency "
            f"p100 {max(waits) * 1000:.0f} ms while {alpha_left} of alpha's still waited; "
            f"p95 wait (histogram bucket) beta <= {waited['beta']}s, alpha <= {waited['alpha']}s"
        )

    run(body())
