"""kopf glue: the only place where handlers are registered. Importing this module registers them."""

from __future__ import annotations

import random
from typing import Any

import kopf

from inference_operator import runtime, telemetry
from inference_operator.handlers import adapters, autoscale, cache, timer, workload  # noqa: F401
from inference_operator.kube import apply as kube
from inference_operator.kube import kopf_hooks
from inference_operator.scaler.server import ScalerServer

# Before kopf starts: bodies without managedFields, failed watchers remembered (kube/kopf_hooks).
kopf_hooks.install()

_scaler: ScalerServer | None = None
_metrics_served = False


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    ours = runtime.settings()
    settings.peering.standalone = ours.standalone
    settings.peering.name = ours.peering_name
    if not ours.standalone:
        # kopf freezes every peer when two share a priority; a random one per process makes the
        # highest act and the others wait, taking over when its peering record expires.
        settings.peering.priority = random.SystemRandom().randint(1, 2**31 - 1)
        settings.peering.mandatory = True
    settings.persistence.finalizer = "infer.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="infer.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="infer.dev", key="last-handled-configuration"
    )
    settings.posting.level = 20  # INFO: decisions and problems become Kubernetes Events
    settings.watching.server_timeout = 300
    # Lists stay unpaged (kopf's default). kopf fetches the next page only after it has handed
    # out the previous one, and a restarted operator hands out 5,000 objects slowly: the continue
    # token expired (410 Expired after the API server's 5-minute compaction) and the watcher
    # died. One body of 5,000 Deployments (~25 MB) is the price of a list that cannot expire.
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 20
    if ours.namespace and not any(c in ours.namespace for c in "!*?,"):
        # One exact namespace: no need to list namespaces (which a namespaced Role cannot).
        settings.scanning.disabled = True
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
    timer.KOPF_SETTINGS = settings
    # Kinds served now are read from kopf's indexes; a kind whose CRD arrives later is read
    # with GETs until the next restart (kopf may not watch it in one-namespace mode).
    cache.CACHED = cache.served_kinds(kube.has_kind)
    global _metrics_served
    if ours.metrics_port and not _metrics_served:
        telemetry.serve(ours.bind_host, ours.metrics_port)
        _metrics_served = True
    start_scaler()


def start_scaler() -> None:
    """The gRPC external scaler KEDA calls (when a port is configured and it is not running)."""
    global _scaler
    ours = runtime.settings()
    if ours.scaler_port and _scaler is None:
        # A decision two timer periods old means this replica's timer no longer runs.
        _scaler = ScalerServer(
            ours.bind_host,
            ours.scaler_port,
            autoscale.decision_from_status,
            max_age=2 * ours.autoscale_seconds,
            tls_dir=ours.scaler_tls_dir,
        )
        _scaler.start()


# Liveness: a kopf watcher that died leaves a kind unwatched; a restart lists it again.
kopf.on.probe(id="watchers")(kopf_hooks.check_watchers)


@kopf.on.cleanup()
def stop_scaler(**_: Any) -> None:
    global _scaler
    if _scaler is not None:
        _scaler.stop()
        _scaler = None
