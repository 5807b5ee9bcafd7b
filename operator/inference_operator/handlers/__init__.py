"""kopf glue: the only place where handlers are registered. Importing this module registers them."""

from __future__ import annotations

from typing import Any

import kopf

from inference_operator.handlers import workload  # noqa: F401  (registers reconcile handlers)
from inference_operator.settings import load_settings


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
