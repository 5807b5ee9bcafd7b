"""Reconcile an InferenceDeployment into its vLLM Deployment, Service, PDB and PodMonitor.

Level-based: every pass builds the whole desired state from the spec and applies what differs.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any, cast

import kopf
from pydantic import ValidationError

from inference_operator import runtime, telemetry
from inference_operator.api.conditions import deployment_view, rfc3339
from inference_operator.api.errors import spec_errors
from inference_operator.api.guardrails import budget_message, namespace_budget, violations
from inference_operator.api.models import GROUP, PLURAL, VERSION, InferenceDeploymentSpec
from inference_operator.api.status import (
    Observed,
    StatusUpdate,
    invalid_status_patch,
    status_patch,
)
from inference_operator.builders import buffer, inference_pool
from inference_operator.builders.gateway import gateway_name
from inference_operator.builders.names import OWNER_LABEL, WORKLOAD_MANAGER, Owner
from inference_operator.builders.nodepool import OWNER_NAME, OWNER_NAMESPACE
from inference_operator.builders.plan import Available, build_all
from inference_operator.builders.workload import device_resource
from inference_operator.capacity.assess import assess
from inference_operator.handlers import budget, cache
from inference_operator.handlers.conditions import apply_conditions
from inference_operator.kube import apply as kube
from inference_operator.kube.children import Children, pool_limit_reached

WARM_NOT_SERVED = (
    "not applied: the cluster does not serve autoscaling.x-k8s.io/v1beta1 CapacityBuffer "
    "(Karpenter v1.14+ with the CapacityBuffer feature gate)"
)
# Pods waiting this long with "no node can take them" surface as InsufficientCapacity.
PENDING_THRESHOLD_SECONDS = runtime.settings().pending_threshold_seconds


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# One pass at a time per InferenceDeployment: the create handler and a child's event would
# otherwise both find a child missing and both write it.
_locks: collections.defaultdict[tuple[str, str], threading.Lock] = collections.defaultdict(
    threading.Lock
)


def reconcile_workload(
    body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, indexes: Mapping[str, Any]
) -> None:
    key = (body.meta["namespace"], body.meta["name"])
    with _locks[key], telemetry.timed("reconcile"):
        _reconcile_workload(
            body, patch, logger, cache.children(key, indexes), cache.guard(key[0], indexes)
        )


def _reconcile_workload(
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
    children: Children,
    guard: cache.Guard,
) -> None:
    meta, status = body.meta, body.status
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    generation = meta.get("generation")
    now = _now()
    stamp = rfc3339(now)
    try:
        spec = InferenceDeploymentSpec.model_validate(dict(body.spec))
    except ValidationError as e:
        # The CRD schema should have refused this; if it got through, say so and wait.
        message = "; ".join(spec_errors(e))
        update = invalid_status_patch(status, message, generation, stamp)
        if not update.patch:
            return  # already reported: no Event, no error log, no write on every resync
        _write(body, patch, update)
        raise kopf.PermanentError(message) from None

    if meta.get("deletionTimestamp"):
        return  # going away: the garbage collector removes the children
    broken = violations(spec, guard.labels, guard.policies)
    if broken:
        # Admission refuses these; this one predates the policy or came around it. Nothing is
        # built or changed; what already runs stays (removing a serving model is the owner's
        # call). Level-based: the next pass builds as soon as the spec or the policy allows.
        _write(
            body,
            patch,
            invalid_status_patch(
                status, "; ".join(map(str, broken)), generation, stamp, "PolicyDenied"
            ),
        )
        return
    held_back = None
    if not spec.autoscaling.enabled:
        # Without autoscaling the budget holds spec.replicas here (the recommender holds its
        # own decisions otherwise).
        spec, held_back = _within_budget(owner, spec, guard)
    settings = runtime.settings()
    available = Available(
        pod_monitor=kube.has_kind("monitoring.coreos.com/v1", "PodMonitor"),
        keda=kube.has_kind("keda.sh/v1alpha1", "ScaledObject"),
        karpenter=kube.has_kind("karpenter.sh/v1", "NodePool"),
        capacity_buffer=kube.has_kind(buffer.API_VERSION, buffer.KIND),
        inference_pool=kube.has_kind(inference_pool.API_VERSION, inference_pool.KIND),
        scaler_address=settings.scaler_address if settings.scaler_port else None,
        scaler_tls_auth=settings.scaler_trigger_auth if settings.scaler_tls_dir else None,
        prometheus_url=settings.prometheus_url,
        operator_image=settings.image,
    )
    capacity, planned = assess(spec)
    if spec.capacity.warm is not None and not available.capacity_buffer:
        capacity = {**capacity, "warmCapacity": WARM_NOT_SERVED}
    had_gateway = bool(status.get("gateway"))
    desired = build_all(
        owner,
        spec,
        available,
        capacity.get("instanceTypes") or None,
        had_gateway,
        int((status.get("warm") or {}).get("replicas") or 0),
    )
    for api_version, kind, name, namespace in desired.absent:
        if cache.live(children, api_version, kind, name, namespace) is not None:
            kube.delete(api_version, kind, name, namespace)
            logger.info(f"deleted {kind} {name}: the spec no longer asks for it")
    deploy: dict[str, Any] | None = None
    for obj in desired.apply:
        try:
            m = obj["metadata"]
            written = kube.apply(
                obj,
                cache.live(children, obj["apiVersion"], obj["kind"], m["name"], m.get("namespace")),
            )
        except kube.ApiException as e:
            if kube.namespace_terminating(e):
                return
            if e.status in (400, 403, 409, 422):
                raise kopf.TemporaryError(
                    f"{obj['kind']} {obj['metadata']['name']}: {e.status} {e.reason}", delay=10
                ) from None
            raise
        if written is not None:
            logger.info(f"applied {obj['kind']} {obj['metadata']['name']}")
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == owner.name:
                # As the API server returned it: its generation is the one just written.
                deploy = written

    if deploy is None:
        deploy = cache.live(children, "apps/v1", "Deployment", owner.name, owner.namespace)
    stuck = children.unschedulable(now, PENDING_THRESHOLD_SECONDS) if spec.replicas else None
    limit = None
    if stuck and spec.node_pool is not None and spec.node_pool.create:
        pool = cache.live(children, "karpenter.sh/v1", "NodePool", owner.cluster_name, None)
        limit = pool_limit_reached(pool, device_resource(spec), spec.accelerator.per_replica)
    seen = Observed(
        generation=generation,
        view=dataclasses.replace(
            deployment_view(spec.replicas, deploy, stuck, limit), budget=held_back
        ),
        selector=owner.selector_string,
        spec_replicas=spec.replicas,
        autoscaling=spec.autoscaling.enabled,
        capacity=capacity,
        planned=planned,
        gateway={"service": gateway_name(owner)} if spec.gateway is not None else None,
    )
    _write(body, patch, status_patch(status, seen, stamp))


def _within_budget(
    owner: Owner, spec: InferenceDeploymentSpec, guard: cache.Guard
) -> tuple[InferenceDeploymentSpec, str | None]:
    """The spec with as many replicas as the namespace's device budget allows, and why fewer."""
    limit = namespace_budget(guard.labels, guard.policies)
    wanted = spec.replicas
    granted, others = budget.grant(
        owner.namespace, owner.name, spec.accelerator.per_replica, wanted, limit, guard.held
    )
    if limit is None or granted >= wanted:
        return spec, None
    return (
        spec.model_copy(update={"replicas": granted}),
        budget_message(limit, wanted, granted, others),
    )


def _write(body: kopf.Body, patch: kopf.Patch, update: StatusUpdate) -> None:
    for key, value in update.patch.items():
        patch.status[key] = value
    if update.conditions is not None:
        apply_conditions(body.meta, update.conditions, WORKLOAD_MANAGER)
    for c in update.warnings:
        kopf.warn(body, reason=c.reason, message=c.message)


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", backoff=5)
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", backoff=5)
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec", backoff=5)
def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **kw: Any) -> None:
    reconcile_workload(body, patch, logger, kw)


@kopf.on.event("apps", "v1", "deployments", labels={OWNER_LABEL: kopf.PRESENT})
def child_changed(event: kopf.RawEvent, body: kopf.Body, logger: kopf.Logger, **kw: Any) -> None:
    """A child Deployment changed (pods became ready, or someone edited it): reconcile its owner
    now rather than at the next resync."""
    if event.get("type") == "DELETED":
        return
    owner_name = body.meta.get("labels", {}).get(OWNER_LABEL)
    namespace = body.meta.get("namespace")
    parent = kube.get(f"{GROUP}/{VERSION}", "InferenceDeployment", owner_name, namespace)
    if parent is None or parent["metadata"].get("deletionTimestamp"):
        return
    fake = kopf.Body(cast(kopf.RawBody, parent))
    patch = kopf.Patch()
    reconcile_workload(fake, patch, logger, kw)
    if patch.get("status"):
        kube.patch_status(
            f"{GROUP}/{VERSION}",
            "InferenceDeployment",
            owner_name,
            namespace,
            dict(patch["status"]),
        )


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
def cleanup(meta: kopf.Meta, logger: kopf.Logger, **_: Any) -> None:
    """A namespaced owner cannot own a cluster-scoped NodePool: delete ours by label."""
    budget.forget(meta["namespace"], meta["name"])
    if not kube.has_kind("karpenter.sh/v1", "NodePool"):
        return
    selector = f"{OWNER_NAMESPACE}={meta['namespace']},{OWNER_NAME}={meta['name']}"
    for pool in kube.list_objects("karpenter.sh/v1", "NodePool", None, selector):
        kube.delete("karpenter.sh/v1", "NodePool", pool["metadata"]["name"], None)
        logger.info(f"deleted NodePool {pool['metadata']['name']}")
