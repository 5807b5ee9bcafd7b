"""The one way the handlers write status conditions: server-side apply of the writer's own
types under its own field manager (the list is keyed by type in the CRD), so the reconciler and
the autoscaler, running at once from their own snapshots, never erase each other's conditions."""

from __future__ import annotations

from typing import Any

import kopf

from inference_operator.api.models import GROUP, VERSION
from inference_operator.kube import apply as kube


def apply_conditions(meta: kopf.Meta, conditions: list[dict[str, Any]], manager: str) -> None:
    """`conditions`: all of `manager`'s own, as they should stand (one it leaves out goes)."""
    kube.apply_status(
        f"{GROUP}/{VERSION}",
        "InferenceDeployment",
        meta["name"],
        meta["namespace"],
        {"conditions": conditions},
        manager,
    )
