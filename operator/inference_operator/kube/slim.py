"""Objects as kopf keeps them: without metadata.managedFields.

The API server sends managedFields with every object on every watch event. On an
InferenceDeployment they are about 19 KB of the ~30 KB the parsed object takes in memory (five
field managers, each with a tree of the status fields it owns). kopf keeps the latest body of
every object that has a timer, and every event's body passes through its queues. No handler
reads managedFields: our server-side applies compare digests (kube/apply.py), not field
ownership. So they are dropped as each event enters kopf's processing.

kopf has no setting for this. The hook is the module attribute that kopf's `spawn_tasks` binds
when the operator starts (kopf 1.45: `processing.process_resource_event`, partially applied in
`running.py`). `install()` replaces it once, before `kopf.run`. If a future kopf renames it,
`install()` fails at start-up and says so: it never silently stops trimming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kopf._core.reactor import processing

_Processor = Callable[..., Awaitable[Any]]


def without_managed_fields(raw_event: Any) -> Any:
    body = raw_event.get("object") if isinstance(raw_event, dict) else None
    meta = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return raw_event


def trimming(original: _Processor) -> _Processor:
    async def process(*args: Any, raw_event: Any, **kwargs: Any) -> Any:
        return await original(*args, raw_event=without_managed_fields(raw_event), **kwargs)

    process.__wrapped__ = original  # type: ignore[attr-defined]
    return process


def install() -> None:
    current = getattr(processing, "process_resource_event", None)
    if current is None:
        raise RuntimeError(
            "kopf._core.reactor.processing.process_resource_event is gone: this kopf version is "
            "not one the operator was tested with (see pyproject.toml)"
        )
    if getattr(current, "__wrapped__", None) is None:
        setattr(processing, "process_resource_event", trimming(current))  # noqa: B010
