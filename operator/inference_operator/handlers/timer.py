"""The periodic passes of every InferenceDeployment, from one timer per operator process: the
recommender every autoscale period and the drift-restoring reconcile every resync period.

One timer, not one per object. A kopf timer is an asyncio task per object with its own
coroutines, stopper, cause, loggers and patch, and every tick of every object goes through kopf's
handler machinery: at 5,000 InferenceDeployments that was the largest share of the operator's
memory after the objects themselves (docs/benchmark.md). Here kopf runs one timer, on the object
of the operator's home namespace (a Namespace is always there and always watched, for the
guardrails' labels). Being a kopf handler it is paused with every other handler when a peer with
a higher priority is active. Each tick reads the InferenceDeployments from an index and runs the
passes that are due on a few threads; each pass writes its status patch itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import kopf

from inference_operator import runtime, telemetry
from inference_operator.api.models import GROUP, PLURAL, VERSION
from inference_operator.handlers import adapters, autoscale, workload
from inference_operator.kube import apply as kube
from inference_operator.scaling.cadence import Cadence

_AUTOSCALE = runtime.settings().autoscale_seconds
_RESYNC = runtime.settings().resync_seconds
# Ticks come at the shorter period; each pass runs when its own period has (about) elapsed.
TICK_SECONDS = min(_AUTOSCALE, _RESYNC)
# By uid. The resync waits a full period first (the create or resume handler has just
# reconciled); the recommender runs at once.
_resync = Cadence(_RESYNC, TICK_SECONDS, first=False)
_autoscale = Cadence(_AUTOSCALE, TICK_SECONDS, first=True)
# Passes at once: they are mostly Python (the GIL) with an API write now and then, so a few
# threads keep the writes overlapped without a thread per object.
PASSES_AT_ONCE = 8
BODIES = "inference_deployment_bodies"
HOME = runtime.settings().home


@kopf.index(GROUP, VERSION, PLURAL, id=BODIES)
def bodies(body: kopf.Body, uid: str, **_: Any) -> dict[str, kopf.Body]:
    """Every InferenceDeployment as last seen, by uid (kopf keeps no body for us otherwise)."""
    return {uid: body}


def _home(name: str, **_: Any) -> bool:
    return name == HOME


# kopf's settings, for the passes' object loggers (set by the start-up handler).
KOPF_SETTINGS: kopf.OperatorSettings | None = None


# Sharp: ticks every TICK_SECONDS whatever a tick takes (kopf would otherwise sleep a whole
# interval after it, and 5,000 passes stretch every period by their duration). Backoff: after
# a tick that raised, kopf waits `backoff` (60 s by default) instead of the interval, and every
# object's passes wait with it.
@kopf.timer(
    "",
    "v1",
    "namespaces",
    id="tick",
    interval=TICK_SECONDS,
    sharp=True,
    backoff=TICK_SECONDS,
    when=_home,
)
async def tick(**kw: Any) -> None:
    settings = KOPF_SETTINGS or kopf.OperatorSettings()
    now = time.monotonic()
    index = kw[BODIES]
    due: list[tuple[kopf.Body, bool, bool]] = []
    for uid in list(index):
        body = next(iter(index.get(uid, ())), None)
        if body is None:
            continue
        resync, decide = _resync.due(uid, now), _autoscale.due(uid, now)
        if resync or decide:
            due.append((body, resync, decide))
    _forget_gone(set(index))
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(PASSES_AT_ONCE)

    async def one(body: kopf.Body, resync: bool, decide: bool) -> None:
        async with gate:
            # kopf's context (its Event queue) goes with the pass to its thread.
            ctx = contextvars.copy_context()
            await loop.run_in_executor(
                settings.execution.executor, ctx.run, run_passes, body, resync, decide, kw, settings
            )

    await asyncio.gather(*(one(*d) for d in due))


def _no_finalizer(handler_id: str) -> None:
    """kopf gives every timer a finalizer, to stop the timer before its object goes. On the
    home Namespace that finalizer would hold the namespace forever once the operator is
    uninstalled, and adding it needs the right to patch namespaces, which would also let the
    operator relabel namespaces out of their guardrails. Nothing needs it: the timer stops when
    kopf sees the namespace go. kopf has no option for this, so its registered handler is
    replaced by the same handler without the requirement."""
    spawning = kopf.get_default_registry()._spawning
    found = [h for h in spawning._handlers if h.id == handler_id]
    assert len(found) == 1, f"kopf timer {handler_id!r}: registered {len(found)} times"
    spawning._handlers = [
        dataclasses.replace(h, requires_finalizer=False) if h.id == handler_id else h
        for h in spawning._handlers
    ]


_no_finalizer("tick")


def run_passes(
    body: kopf.Body,
    resync: bool,
    decide: bool,
    indexes: Mapping[str, Any],
    settings: kopf.OperatorSettings,
) -> None:
    """The passes due for one InferenceDeployment, then its status patch. A failure is logged
    and stays with this object: the next due pass tries again."""
    logger = kopf.LocalObjectLogger(body=body, settings=settings)
    patch = kopf.Patch()
    try:
        if resync:
            # Restore drift in the children and refresh status; writes nothing when all is in
            # order.
            workload.reconcile_workload(body, patch, logger, indexes)
        if decide:
            with telemetry.timed("autoscale"):
                autoscale.decide(body, patch, logger, indexes)
            # LoRA adapters on the Ready replicas, at the recommender's pace.
            adapters.sync(body, patch, logger, indexes)
    except (kopf.TemporaryError, kopf.PermanentError) as e:
        logger.warning(f"periodic pass: {e}")
    except Exception:
        logger.exception("periodic pass failed")
    status = patch.get("status")
    if not status:
        return
    meta = body.meta
    try:
        kube.patch_status(
            f"{GROUP}/{VERSION}", "InferenceDeployment", meta.name, meta.namespace, dict(status)
        )
    except kube.ApiException as e:
        if e.status != 404:  # deleted meanwhile: nothing to say
            logger.warning(f"status patch: {e.status} {e.reason}")
    except Exception as e:
        # Unreachable (the API server restarting, etcd frozen): the next due pass writes again.
        # Raised, it would fail the tick of every object.
        logger.warning(f"status patch: {e}")


def _forget_gone(present: set[str]) -> None:
    for cadence in (_resync, _autoscale):
        cadence.keep_only(present)
