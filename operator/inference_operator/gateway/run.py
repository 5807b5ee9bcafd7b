"""`python -m inference_operator gateway`: serve the gateway (blocking), or start it on a thread
for tests and the local demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from inference_operator.gateway.discovery import Discovery
from inference_operator.gateway.fallbacks import Fallbacks, parse_fallbacks
from inference_operator.gateway.proxy import Dialer, Gateway, Limits, direct
from inference_operator.gateway.tenants import Tenants, parse_tenants
from inference_operator.routing import prefix

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--namespace", default=None, help="only this namespace's models (default all)")
    p.add_argument(
        "--deployment", default=None, help="only this InferenceDeployment (needs --namespace)"
    )
    p.add_argument("--zone", default=None, help="this gateway's zone: same-zone replicas first")
    p.add_argument("--max-per-replica", type=int, default=64, help="requests in flight per replica")
    p.add_argument(
        "--max-waiting", type=int, default=1000, help="queue bound per model (429 above)"
    )
    p.add_argument(
        "--queue-timeout", type=float, default=600.0, help="seconds a request may wait (503 after)"
    )
    p.add_argument(
        "--shutdown-timeout", type=float, default=600.0, help="seconds open streams get on SIGTERM"
    )
    p.add_argument(
        "--routing",
        choices=("prefix", "least-outstanding"),
        default="prefix",
        help="prefix: prompts that start alike go to the same replica (bounded load); "
        "least-outstanding: the least busy replica",
    )
    p.add_argument(
        "--prefix-epsilon",
        type=float,
        default=prefix.DEFAULT_EPSILON,
        help="prefix routing: a replica takes at most (1 + this) x the mean load",
    )
    p.add_argument(
        "--tenants",
        default=None,
        metavar="FILE",
        help="YAML: tenants with API keys (key files), shares and limits; none: open to all",
    )
    p.add_argument(
        "--fallbacks",
        default=None,
        metavar="FILE",
        help="YAML: remote endpoints per model that take requests the local replicas cannot "
        "(docs/spill-over.md)",
    )
    p.add_argument(
        "--fallbacks-json",
        default=None,
        metavar="JSON",
        help="the same as --fallbacks, inline (what spec.gateway.fallbacks renders)",
    )


def _limits(args: argparse.Namespace) -> Limits:
    if args.deployment and not args.namespace:
        raise SystemExit(f"--deployment {args.deployment}: needs --namespace")
    for name in ("max_per_replica", "max_waiting"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: {getattr(args, name)} must be >= 1")
    if args.queue_timeout <= 0:
        raise SystemExit(f"--queue-timeout: {args.queue_timeout} must be > 0")
    if args.prefix_epsilon <= 0:
        raise SystemExit(f"--prefix-epsilon: {args.prefix_epsilon} must be > 0")
    epsilon = args.prefix_epsilon if args.routing == "prefix" else None
    return Limits(args.max_per_replica, args.max_waiting, args.queue_timeout, epsilon)


Loaded = TypeVar("Loaded", Tenants, Fallbacks)


def _make(text: str, where: str, make: Callable[[str, str], Loaded], what: str) -> Loaded:
    """Parsed, or exit naming where and the problem; unreadable key files are logged."""
    try:
        loaded = make(text, where)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    for problem in loaded.problems:
        log.warning("%s: %s", what, problem)
    return loaded


def _load(
    flag: str, path: str | None, make: Callable[[str, str], Loaded], what: str
) -> Loaded | None:
    """A --tenants or --fallbacks file."""
    if path is None:
        return None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SystemExit(f"{flag} {path}: {e.strerror}") from None
    return _make(text, f"{flag} {path}", make, what)


def _tenants(text: str, where: str) -> Tenants:
    return Tenants(parse_tenants(text, where))


def _fallbacks(text: str, where: str) -> Fallbacks:
    return Fallbacks(parse_fallbacks(text, where))


def load_tenants(path: str | None) -> Tenants | None:
    return _load("--tenants", path, _tenants, "tenant keys")


def load_fallbacks(path: str | None) -> Fallbacks | None:
    return _load("--fallbacks", path, _fallbacks, "fallback keys")


def inline_fallbacks(text: str | None) -> Fallbacks | None:
    """--fallbacks-json, what spec.gateway.fallbacks renders (JSON is YAML: one parser)."""
    return None if text is None else _make(text, "--fallbacks-json", _fallbacks, "fallback keys")


def run(args: argparse.Namespace) -> int:
    gateway = Gateway(
        _limits(args),
        args.zone,
        tenants=load_tenants(args.tenants),
        fallbacks=load_fallbacks(args.fallbacks) or inline_fallbacks(args.fallbacks_json),
    )

    async def start_discovery(_: web.Application) -> None:
        Discovery(gateway, asyncio.get_running_loop(), args.namespace, args.deployment).start()

    app = gateway.app()
    app.on_startup.append(start_discovery)
    # SIGTERM: stop accepting, let open streams finish (up to the timeout), then exit.
    web.run_app(app, host=args.host, port=args.port, shutdown_timeout=args.shutdown_timeout)
    return 0


@dataclass
class Running:
    gateway: Gateway
    discovery: Discovery
    port: int
    loop: asyncio.AbstractEventLoop
    stop: threading.Event


def start_in_thread(
    host: str = "127.0.0.1",
    limits: Limits | None = None,
    namespace: str | None = None,
    dial: Dialer = direct,
    zone: str | None = None,
    tenants: Tenants | None = None,
    fallbacks: Fallbacks | None = None,
) -> Running:
    """The same gateway on a background thread with its own loop (tests, the local demo)."""
    ready: dict[str, Running] = {}
    started = threading.Event()
    stop = threading.Event()

    def main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        gateway = Gateway(limits or Limits(), zone, dial, tenants, fallbacks)
        runner = web.AppRunner(gateway.app())
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, host, 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        discovery = Discovery(gateway, loop, namespace)
        discovery.start()
        ready["x"] = Running(gateway, discovery, int(port), loop, stop)
        started.set()

        async def wait() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.1)
            discovery.stop.set()
            await runner.cleanup()

        loop.run_until_complete(wait())
        loop.close()

    threading.Thread(target=main, daemon=True, name="gateway").start()
    started.wait(30)
    return ready["x"]
