"""The latest recommendation per InferenceDeployment, shared by the recommender timer (writer)
and the gRPC scaler (reader)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from inference_operator.scaling.hpa import DEFAULT_TOLERANCE

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Decision:
    replicas: int
    # Pods the scale target had when decided: the HPA's statusReplicas.
    status_replicas: int
    at: float
    # The tolerance of the HPA that KEDA made (cluster-wide 10% unless ours was kept).
    tolerance: float = DEFAULT_TOLERANCE


class Decisions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Key, Decision] = {}
        self._changed = threading.Condition(self._lock)

    def put(self, key: Key, decision: Decision) -> None:
        with self._changed:
            before = self._by_key.get(key)
            self._by_key[key] = decision
            if before is None or (before.replicas > 0) != (decision.replicas > 0):
                self._changed.notify_all()

    def get(self, key: Key) -> Decision | None:
        with self._lock:
            return self._by_key.get(key)

    def forget(self, key: Key) -> None:
        with self._changed:
            self._by_key.pop(key, None)
            self._changed.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        """Block until some decision's activity may have changed (or the timeout)."""
        with self._changed:
            self._changed.wait(timeout)


DECISIONS = Decisions()
