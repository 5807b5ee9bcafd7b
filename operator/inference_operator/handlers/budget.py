"""The per-namespace device budget (InferencePolicy maxDevicesPerNamespace) across the
operator's concurrent passes: what each InferenceDeployment was last granted, by namespace.

The grants live in this process only. That is enough: with peering exactly one operator
replica acts, and a restarted one starts from the devices each InferenceDeployment asks for now
(cache.HELD_DEVICES), which its first passes replace with grants.
"""

from __future__ import annotations

import collections
import threading

from inference_operator.api.guardrails import Budget, others_devices, within_budget

_lock = threading.Lock()
_granted: collections.defaultdict[str, dict[str, int]] = collections.defaultdict(dict)


def grant(
    namespace: str,
    name: str,
    per_replica: int,
    wanted: int,
    budget: Budget | None,
    held: dict[str, int],
) -> tuple[int, int]:
    """(replicas granted, devices the others hold): `wanted` or fewer, so that the namespace
    stays within `budget`. One grant at a time, so two models cannot take the same room."""
    with _lock:
        granted = _granted[namespace]
        others = others_devices(name, held, granted)
        replicas = (
            wanted if budget is None else within_budget(wanted, per_replica, budget.devices, others)
        )
        granted[name] = replicas * per_replica
        return replicas, others


def forget(namespace: str, name: str) -> None:
    with _lock:
        _granted[namespace].pop(name, None)
