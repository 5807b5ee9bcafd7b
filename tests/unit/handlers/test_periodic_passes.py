"""The operator's one periodic timer: a failure in one object's pass stays with that object."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
import urllib3

from inference_operator.handlers import timer


def _body() -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "infer.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u1"},
            "spec": {},
            "status": {},
        }
    )


def test_a_status_write_the_api_server_never_answers_does_not_fail_the_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API server restarting or etcd frozen: the write fails with a connection error, not
    an ApiException. Raised out of the tick, kopf would wait its backoff (60 s by default)
    before the next tick, and every InferenceDeployment's passes with it."""

    def reconcile(body: kopf.Body, patch: kopf.Patch, logger: Any, indexes: Any) -> None:
        patch.status["observedGeneration"] = 1

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

    monkeypatch.setattr(timer.workload, "reconcile_workload", reconcile)
    monkeypatch.setattr(timer.kube, "patch_status", unreachable)
    timer.run_passes(_body(), True, False, {}, kopf.OperatorSettings())


def test_a_failed_tick_is_retried_at_the_next_tick_not_after_kopfs_backoff() -> None:
    registered = [h for h in kopf.get_default_registry()._spawning._handlers if h.id == "tick"]
    assert len(registered) == 1
    backoff = registered[0].backoff
    assert backoff is not None and backoff <= timer.TICK_SECONDS, backoff
