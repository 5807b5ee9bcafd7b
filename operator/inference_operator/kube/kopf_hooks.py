"""Hooks into kopf, installed once before `kopf.run`, where kopf has no setting.

1. Objects as kopf keeps them: without metadata.managedFields.

The API server sends managedFields with every object on every watch event. On an
InferenceDeployment they are about 19 KB of the ~30 KB the parsed object takes in memory (five
field managers, each with a tree of the status fields it owns). kopf keeps the latest body of
every object that has a timer, and every event's body passes through its queues. No handler
reads managedFields: our server-side applies compare digests (kube/apply.py), not field
ownership. So they are dropped as each event enters kopf's processing.

2. A restart that waits once. At start-up, every object's worker, of every watched kind, waits
for all indexes to be filled (kopf's `operator_indexed`), on one condition that kopf notifies each
time one object is indexed: N objects wake N waiters N times. At 1,000 InferenceDeployments (6,000
objects with their children) the resume pass took 44-55 s; at 5,000 (30,000) it had not started
after 10 minutes of one busy core. Here each worker waits on one event instead, set by a single
task that checks kopf's own state every 0.2 s: the same condition, met once.

3. A watcher that dies is remembered. kopf logs a failed watcher (for example a list whose
continue token expired: 410 Expired) and carries on without it: the operator would look alive and
never see that kind again. `failed_watchers()` feeds the liveness probe (handlers/__init__.py),
so Kubernetes restarts the operator, which lists everything afresh.

The hooks are module attributes kopf looks up when it starts its tasks (kopf 1.45:
`processing.process_resource_event`, partially applied in `running.py`, and
`queueing.watcher`, called in `orchestration.py`). If a future kopf renames them, `install()`
fails at start-up and says so: it never silently stops working.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import kopf
from kopf._core.reactor import processing, queueing

_Processor = Callable[..., Awaitable[Any]]


def without_managed_fields(raw_event: Any) -> Any:
    body = raw_event.get("object") if isinstance(raw_event, dict) else None
    meta = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return raw_event


# By kopf's toggle set (one per operator run): set once it has been on. Weak: a later operator
# run in the same process (tests) gets a new set, never an old set's event.
_ready: weakref.WeakKeyDictionary[Any, asyncio.Event] = weakref.WeakKeyDictionary()
_watching: set[asyncio.Task[None]] = set()


class WaitOnce:
    """kopf's `operator_indexed` toggle set as a processor sees it, except that waiting for it to
    be on waits on one shared event (kopf only ever drops toggles and waits on this set)."""

    POLL_SECONDS = 0.2

    def __init__(self, toggles: Any) -> None:
        self._toggles = toggles

    def __getattr__(self, name: str) -> Any:
        return getattr(self._toggles, name)

    async def wait_for(self, state: bool) -> None:
        if not state:
            await self._toggles.wait_for(state)
            return
        ready = _ready.get(self._toggles)
        if ready is None:
            ready = _ready[self._toggles] = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._watch(ready), name="indexed-once")
            _watching.add(task)  # a task nobody references may be collected mid-way
            task.add_done_callback(_watching.discard)
        await ready.wait()

    async def _watch(self, ready: asyncio.Event) -> None:
        while not self._toggles.is_on():
            await asyncio.sleep(self.POLL_SECONDS)
        # kopf never waits again once the operator was indexed: neither does this.
        ready.set()


def hooked_processor(original: _Processor) -> _Processor:
    """kopf's event processor with hooks 1 and 2: the body trimmed, the start-up wait once."""

    async def process(*args: Any, raw_event: Any, **kwargs: Any) -> Any:
        indexed = kwargs.get("operator_indexed")
        if indexed is not None:
            kwargs["operator_indexed"] = WaitOnce(indexed)
        return await original(*args, raw_event=without_managed_fields(raw_event), **kwargs)

    process.__wrapped__ = original  # type: ignore[attr-defined]
    return process


_failed: set[str] = set()


def failed_watchers() -> list[str]:
    return sorted(_failed)


def check_watchers(**_: Any) -> str:
    """A liveness probe: a failed probe makes kopf's health endpoint answer 500."""
    failed = failed_watchers()
    if failed:
        raise kopf.PermanentError(f"watchers failed: {', '.join(failed)}")
    return "ok"


def remembering_failures(original: _Processor) -> _Processor:
    async def watcher(*args: Any, resource: Any, namespace: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, resource=resource, namespace=namespace, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception:
            _failed.add(f"{resource}@{namespace}")
            raise

    watcher.__wrapped__ = original  # type: ignore[attr-defined]
    return watcher


def _replace(module: Any, name: str, wrap: Callable[[_Processor], _Processor]) -> None:
    current = getattr(module, name, None)
    if current is None:
        raise RuntimeError(
            f"{module.__name__}.{name} is gone: this kopf version is not one the operator was "
            "tested with (see pyproject.toml)"
        )
    if getattr(current, "__wrapped__", None) is None:
        setattr(module, name, wrap(current))


def install() -> None:
    _replace(processing, "process_resource_event", hooked_processor)
    _replace(queueing, "watcher", remembering_failures)
