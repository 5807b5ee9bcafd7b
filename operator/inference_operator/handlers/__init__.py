"""kopf glue: the only place where handlers are registered. Importing this module registers them."""

from __future__ import annotations

from typing import Any

import kopf

from inference_operator.handlers import autoscale, workload  # noqa: F401  (registers handlers)
from inference_operator.scaler.server import ScalerServer
from inference_operator.settings import load_settings

_scaler: ScalerServer | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    ours = load_settings()
    settings.peering.standalone = ours.standalone
    settings.peering.name = ours.peering_name
    settings.persistence.finalizer = "infer.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="infer.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="infer.dev", key="last-handled-configuration"
    )
    settings.posting.level = 20  # INFO: decisions and problems become Kubernetes Events
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 20
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
    global _scaler
    if ours.scaler_port and _scaler is None:
        _scaler = ScalerServer(ours.bind_host, ours.scaler_port, autoscale.decision_from_status)
        _scaler.start()


@kopf.on.cleanup()
def stop_scaler(**_: Any) -> None:
    global _scaler
    if _scaler is not None:
        _scaler.stop()
        _scaler = None
