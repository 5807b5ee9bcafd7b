"""The live loop: every few seconds, per InferenceDeployment, read Prometheus, run the
recommender and publish the decision (to the gRPC scaler in memory and to status).

Status is written only when something a user can see changes (a decision, a condition, a
signal): a quiet fleet costs no writes. The recommender's memory rides along with those writes,
so a restarted operator resumes with it (and otherwise starts in panic mode: no scale-down).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from inference_operator import runtime, telemetry
from inference_operator.api.conditions import (
    SCALING_CONDITIONS,
    Cond,
    conditions_equal,
    owned,
    replacing,
    rfc3339,
    set_conditions,
    without_nulls,
)
from inference_operator.api.guardrails import budget_message, namespace_budget
from inference_operator.api.models import (
    GROUP,
    PLURAL,
    VERSION,
    AcceleratorSpec,
    InferenceDeploymentSpec,
    ModelSpec,
)
from inference_operator.api.status import LEARNED_CAPACITY
from inference_operator.builders.buffer import build_capacity_buffer
from inference_operator.builders.names import SCALING_MANAGER, Owner
from inference_operator.capacity.performance import prior_for
from inference_operator.handlers import budget, cache
from inference_operator.handlers.conditions import apply_conditions
from inference_operator.kube import apply as kube
from inference_operator.kube.children import Children
from inference_operator.metrics.reader import Fleet, PrometheusReader
from inference_operator.scaler.decisions import DECISIONS, Decision, Key
from inference_operator.scaling.model import Recommendation, State
from inference_operator.scaling.policy import policy_from_spec
from inference_operator.scaling.recommend import recommend
from inference_operator.scaling.report import (
    learned_changed,
    learned_status,
    scaling_active,
    scaling_limited,
    signals_status,
)
from inference_operator.scaling.startup import Startup
from inference_operator.scaling.throughput import Prior
from inference_operator.scaling.warm import warm_replicas

_readers: dict[str, PrometheusReader] = {}
# The recommender's memory by uid: authoritative between status writes.
_memory: dict[str, State] = {}


def _reader(url: str) -> PrometheusReader:
    if url not in _readers:
        settings = runtime.settings()
        # Every model's timer within one period shares one snapshot of the fleet.
        _readers[url] = PrometheusReader(
            url,
            token_file=settings.prometheus_token_file,
            max_age=0.9 * settings.autoscale_seconds,
        )
    return _readers[url]


# Windows the learner may add before its memory is written even when nothing else changed, so
# a restart loses at most this many (10 min at the default 15 s period).
LEARNING_WRITE_EVERY = 40


def _stored_samples(status: Mapping[str, Any]) -> int:
    stored = ((status.get("scalerState") or {}).get("throughput") or {}).get("samples")
    return int(stored) if isinstance(stored, int | float) else 0


@functools.lru_cache(maxsize=4096)
def _prior_of(model: str, accelerator: str) -> Prior | None:
    return prior_for(
        ModelSpec.model_validate_json(model), AcceleratorSpec.model_validate_json(accelerator)
    )


def _prior(spec: InferenceDeploymentSpec) -> Prior | None:
    """The planner's prior for the throughput learner, computed once per distinct model and
    accelerator (every model's timer asks for it every period)."""
    return _prior_of(spec.model.model_dump_json(), spec.accelerator.model_dump_json())


def _without_time(signals: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (signals or {}).items() if k != "observedAt"}


def decision_from_status(key: Key) -> Decision | None:
    """For the scaler when this replica has decided nothing yet (just started, or passive)."""
    obj = kube.get(f"{GROUP}/{VERSION}", "InferenceDeployment", key[1], key[0])
    status = (obj or {}).get("status") or {}
    replicas = (status.get("recommendation") or {}).get("replicas")
    if replicas is None:
        return None
    return Decision(int(replicas), int(status.get("replicas") or 0), 0.0)


def decide(
    body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, indexes: Mapping[str, Any]
) -> None:
    meta, status = body.meta, body.status
    key: Key = (meta["namespace"], meta["name"])
    if meta.get("deletionTimestamp"):
        DECISIONS.forget(key)
        return
    try:
        spec = InferenceDeploymentSpec.model_validate(dict(body.spec))
    except ValidationError:
        return  # the reconciler reports InvalidSpec
    old = list(status.get("conditions") or [])
    now = time.time()
    stamp = rfc3339(dt.datetime.fromtimestamp(now, dt.UTC))
    if not spec.autoscaling.enabled:
        DECISIONS.forget(key)
        _memory.pop(meta["uid"], None)
        off = Cond("ScalingActive", "False", "AutoscalingDisabled", "spec.autoscaling.enabled")
        conds = set_conditions(old, [off], stamp, meta.get("generation"))
        if not conditions_equal(old, conds):
            apply_conditions(meta, owned(conds, SCALING_CONDITIONS), SCALING_MANAGER)
        return

    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    children = cache.children(key, indexes)
    deploy = cache.live(children, "apps/v1", "Deployment", owner.name, owner.namespace) or {}
    dstatus = deploy.get("status") or {}
    ready = int(dstatus.get("readyReplicas") or 0)
    pods = int(dstatus.get("replicas") or 0)
    # Asked for but not serving yet: node launch, image pull, weight load.
    fleet = Fleet(
        current=spec.replicas,
        ready=ready,
        starting=max(0, spec.replicas - ready),
        startups=tuple(Startup(*s) for s in children.startups()),
    )
    url = spec.autoscaling.prometheus.url or runtime.settings().prometheus_url
    reading = _reader(url).read(owner, fleet, now)
    policy = policy_from_spec(spec.autoscaling, _prior(spec), spec.gateway)
    state = _memory.get(meta["uid"]) or State.from_dict(status.get("scalerState"))
    rec, state = recommend(reading.observation, policy, state, now)
    _memory[meta["uid"]] = state
    rec = _within_budget(key, spec, rec, cache.guard(key[0], indexes))
    DECISIONS.put(key, Decision(rec.replicas, pods, now, children.hpa_tolerance()))
    telemetry.RECOMMENDED.labels(*key).set(rec.replicas)
    telemetry.READY.labels(*key).set(ready)
    if reading.error is not None:
        telemetry.METRICS_READ_ERRORS.labels(*key).inc()

    active = scaling_active(reading.observation, policy, reading.error, url)
    conds = set_conditions(old, [active, scaling_limited(rec)], stamp, meta.get("generation"))
    signals = without_nulls(signals_status(reading.observation, stamp, rec))
    # Kept through an outage (no series, no answer), so it is announced once, not per recovery.
    known_prefix = (status.get("signals") or {}).get("metricPrefix")
    if reading.metric_prefix is not None and reading.metric_prefix != known_prefix:
        kopf.info(
            body,
            reason="MetricNames",
            message=f"Prometheus stores vLLM metrics as {reading.metric_prefix}* "
            "(queries match vllm: and vllm_ alike)",
        )
    if reading.metric_prefix or known_prefix:
        signals["metricPrefix"] = reading.metric_prefix or known_prefix
    before = status.get("recommendation") or {}
    changed = False
    if before.get("replicas") != rec.replicas or status.get("desiredReplicas") != rec.replicas:
        patch.status["recommendation"] = {
            "replicas": rec.replicas,
            "reason": rec.reason,
            "at": stamp,
        }
        patch.status["desiredReplicas"] = rec.replicas
        changed = True
        if before.get("replicas") is not None:
            verb = "ScaleUp" if rec.replicas > int(before["replicas"]) else "ScaleDown"
            telemetry.DECISIONS.labels(*key, "up" if verb == "ScaleUp" else "down").inc()
            kopf.info(body, reason=verb, message=f"{before['replicas']} -> {rec.reason}")
        logger.info(f"recommendation: {rec.reason}")
    if _without_time(status.get("signals")) != _without_time(signals):
        patch.status["signals"] = replacing(status.get("signals"), signals)
        changed = True
    if not conditions_equal(old, conds):
        apply_conditions(meta, owned(conds, SCALING_CONDITIONS), SCALING_MANAGER)
        changed = True
        was: dict[str, Any] = next((c for c in old if c.get("type") == "ScalingActive"), {})
        if active.status == "False" and was.get("reason") != active.reason:
            kopf.warn(body, reason=active.reason, message=active.message)
    learned = learned_status(rec, state, stamp)
    known = status.get("capacity") or {}
    if learned_changed(known, learned):
        # Replacing only the learned keys: a part no longer known is removed, the plan's keys
        # (the reconciler's) are left alone.
        # On a tick that also ran the reconcile pass, its part of the same key is kept.
        mine = {k: known[k] for k in LEARNED_CAPACITY if k in known}
        planned = patch.status.get("capacity") or {}
        patch.status["capacity"] = {**planned, **replacing(mine, learned)}
        changed = True
        cap = learned.get("perReplica") or {}
        if (known.get("perReplica") or {}).get("source") != cap.get("source") and cap:
            kopf.info(
                body,
                reason="CapacityLearned" if cap.get("source") == "learned" else "Capacity",
                message=f"one replica sustains {cap['requestsPerSecond']} req/s within the SLO "
                f"({cap['source']}, bound by {cap['boundBy']})",
            )
    elif state.throughput.samples - _stored_samples(status) >= LEARNING_WRITE_EVERY:
        # Nothing a user reads moved, but the learner has: keep its memory for a restart.
        changed = True
    if spec.capacity.warm is not None and spec.capacity.warm.auto is not None:
        ceiling = spec.capacity.warm.auto.max_replicas
        changed |= _size_warm_capacity(
            owner, spec, ceiling, state, rec.replicas, status, patch, children, logger
        )
    elif status.get("warm") is not None:
        patch.status["warm"] = None
    if changed:
        patch.status["scalerState"] = state.to_dict()


def _within_budget(
    key: Key, spec: InferenceDeploymentSpec, rec: Recommendation, guard: cache.Guard
) -> Recommendation:
    """The decision held to the namespace's device budget (InferencePolicy), if any. After the
    brain: its memory keeps what the signals ask for, so the model grows as room frees up."""
    limit = namespace_budget(guard.labels, guard.policies)
    per_replica = spec.accelerator.per_replica
    granted, others = budget.grant(*key, per_replica, rec.replicas, limit, guard.held)
    if limit is None or granted >= rec.replicas:
        return rec
    # Without live numbers: a message that changed every tick would cost a write per tick.
    detail = (
        f"the recommendation ({granted}) is held by InferencePolicy {limit.policy}: "
        f"maxDevicesPerNamespace {limit.devices}"
    )
    return dataclasses.replace(
        rec,
        replicas=granted,
        reason=f"{rec.reason}; {budget_message(limit, rec.replicas, granted, others)}",
        limited=True,
        limited_by="budget",
        limit_detail=detail,
    )


def _size_warm_capacity(
    owner: Owner,
    spec: InferenceDeploymentSpec,
    ceiling: int,
    state: State,
    replicas: int,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    children: Children,
    logger: kopf.Logger,
) -> bool:
    """warm.auto: the brain's number goes to status.warm and, when it changes, straight to the
    CapacityBuffer (the reconciler builds the same object from status on its own passes)."""
    n, why = warm_replicas(
        state.warm, time.time(), ceiling, replicas, spec.autoscaling.max_replicas
    )
    before = status.get("warm") or {}
    if before.get("replicas") == n and before.get("reason") == why:
        return False
    patch.status["warm"] = {
        "replicas": n,
        "reason": why,
        "at": rfc3339(dt.datetime.now(dt.UTC)),
    }
    obj = build_capacity_buffer(owner, spec, n)
    if obj is not None and kube.has_kind(obj["apiVersion"], obj["kind"]):
        live = cache.live(children, obj["apiVersion"], obj["kind"], owner.name, owner.namespace)
        try:
            kube.apply(obj, live)
        except kube.ApiException as e:
            # Status keeps the number; the reconciler's next pass applies it again.
            logger.warning(f"CapacityBuffer {owner.name}: {e.status} {e.reason}")
    logger.info(f"warm capacity: {n} ({why})")
    return True


@kopf.on.delete(GROUP, VERSION, PLURAL, id="forget-decision", optional=True)
def forget(meta: kopf.Meta, **_: Any) -> None:
    key = (meta["namespace"], meta["name"])
    DECISIONS.forget(key)
    budget.forget(*key)
    _memory.pop(meta["uid"], None)
    for gauge in (telemetry.RECOMMENDED, telemetry.READY):
        with contextlib.suppress(KeyError):
            gauge.remove(*key)
