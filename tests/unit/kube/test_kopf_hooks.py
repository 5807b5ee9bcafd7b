"""Hooks into kopf: events trimmed of managedFields before kopf's processing sees them, and
watchers that die remembered for the liveness probe."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kopf._core.actions import lifecycles
from kopf._core.engines import activities, indexing
from kopf._core.intents import causes
from kopf._core.reactor import processing, queueing

from inference_operator.kube import kopf_hooks


def test_the_processor_gets_the_event_without_managed_fields() -> None:
    seen: list[dict[str, Any]] = []

    async def original(*args: Any, raw_event: dict[str, Any], **kwargs: Any) -> str:
        seen.append(raw_event)
        return "v2"

    event = {
        "type": "MODIFIED",
        "object": {
            "metadata": {"name": "m", "uid": "u", "managedFields": [{"manager": "kopf"}]},
            "spec": {"replicas": 1},
        },
    }
    assert (
        asyncio.run(kopf_hooks.hooked_processor(original)(raw_event=event, stream_pressure=None))
        == "v2"
    )
    assert seen[0]["object"]["metadata"] == {"name": "m", "uid": "u"}
    assert seen[0]["object"]["spec"] == {"replicas": 1}
    # Events without an object (kopf's own markers) pass untouched.
    assert kopf_hooks.without_managed_fields({"type": None}) == {"type": None}


def test_a_watcher_that_fails_is_remembered_and_one_cancelled_is_not() -> None:
    async def failing(**kwargs: Any) -> None:
        raise RuntimeError("410 Expired")

    async def cancelled(**kwargs: Any) -> None:
        raise asyncio.CancelledError

    assert kopf_hooks.failed_watchers() == []
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(kopf_hooks.remembering_failures(cancelled)(resource="pods", namespace=None))
    assert kopf_hooks.failed_watchers() == []
    with pytest.raises(RuntimeError):
        asyncio.run(kopf_hooks.remembering_failures(failing)(resource="infd", namespace="a"))
    assert kopf_hooks.failed_watchers() == ["infd@a"]
    kopf_hooks._failed.clear()


def test_install_wraps_kopf_once() -> None:
    installed = processing.process_resource_event, queueing.watcher
    # kopf's own functions, whether or not an earlier test (one that ran the operator) installed.
    before = tuple(getattr(f, "__wrapped__", f) for f in installed)
    try:
        setattr(processing, "process_resource_event", before[0])  # noqa: B010
        setattr(queueing, "watcher", before[1])  # noqa: B010
        kopf_hooks.install()
        kopf_hooks.install()
        assert processing.process_resource_event.__wrapped__ is before[0]  # type: ignore[attr-defined]
        assert queueing.watcher.__wrapped__ is before[1]  # type: ignore[attr-defined]
    finally:
        setattr(processing, "process_resource_event", installed[0])  # noqa: B010
        setattr(queueing, "watcher", installed[1])  # noqa: B010


def test_the_probe_fails_kopfs_health_activity_once_a_watcher_died() -> None:
    registry = kopf.OperatorRegistry()
    kopf.on.probe(id="watchers", registry=registry)(kopf_hooks.check_watchers)

    async def probe() -> Any:
        return await activities.run_activity(
            lifecycle=lifecycles.all_at_once,
            registry=registry,
            settings=kopf.OperatorSettings(),
            activity=causes.Activity.PROBE,
            indices=indexing.OperatorIndexers().indices,
            memo=kopf.Memo(),
        )

    assert asyncio.run(probe()) == {"watchers": "ok"}
    kopf_hooks._failed.add("inferencedeployments.v1alpha1.infer.dev@None")
    try:
        # kopf's health endpoint awaits this activity: the error becomes an HTTP 500.
        with pytest.raises(activities.ActivityError):
            asyncio.run(probe())
    finally:
        kopf_hooks._failed.clear()


def test_workers_wait_for_the_indexes_on_one_event_not_on_kopfs_condition() -> None:
    from kopf._cogs.aiokits.aiotoggles import ToggleSet

    async def scenario() -> None:
        indexed = ToggleSet(all)
        pending = [await indexed.make_toggle(name=f"obj-{i}") for i in range(3)]
        waiters = [
            asyncio.create_task(kopf_hooks.WaitOnce(indexed).wait_for(True)) for _ in range(50)
        ]
        await asyncio.sleep(0.3)
        assert not any(w.done() for w in waiters)
        # None of the 50 sits on kopf's condition: dropping a toggle wakes nobody.
        assert not indexed._condition._waiters  # type: ignore[attr-defined]
        for toggle in pending:
            await kopf_hooks.WaitOnce(indexed).drop_toggle(toggle)
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
        # Once on, a later wait returns at once.
        await asyncio.wait_for(kopf_hooks.WaitOnce(indexed).wait_for(True), timeout=1)

    asyncio.run(scenario())
