"""kopf's bodies without managedFields: the event is trimmed before kopf's processing sees it."""

from __future__ import annotations

import asyncio
from typing import Any

from kopf._core.reactor import processing

from inference_operator.kube import slim


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
    assert asyncio.run(slim.trimming(original)(raw_event=event, stream_pressure=None)) == "v2"
    assert seen[0]["object"]["metadata"] == {"name": "m", "uid": "u"}
    assert seen[0]["object"]["spec"] == {"replicas": 1}
    # Events without an object (kopf's own markers) pass untouched.
    assert slim.without_managed_fields({"type": None}) == {"type": None}


def test_install_wraps_kopfs_processor_once() -> None:
    before = processing.process_resource_event
    assert getattr(before, "__wrapped__", None) is None  # unit tests never import the handlers
    try:
        slim.install()
        slim.install()
        assert processing.process_resource_event.__wrapped__ is before  # type: ignore[attr-defined]
    finally:
        setattr(processing, "process_resource_event", before)  # noqa: B010
