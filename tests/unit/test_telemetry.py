"""The operator's own metrics: handler timing and errors, API calls by verb, kind and outcome."""

from __future__ import annotations

import pytest

from inference_operator import telemetry


def value(name: str, **labels: str) -> float:
    got = telemetry.REGISTRY.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_timed_counts_passes_and_errors() -> None:
    before = value("infop_reconcile_duration_seconds_count", handler="t")
    with telemetry.timed("t"):
        pass
    with pytest.raises(ValueError), telemetry.timed("t"):
        raise ValueError("boom")
    assert value("infop_reconcile_duration_seconds_count", handler="t") == before + 2
    assert value("infop_reconcile_errors_total", handler="t") >= 1


def test_counted_labels_calls_by_verb_kind_and_outcome() -> None:
    @telemetry.counted("get")
    def get(api_version: str, kind: str, fail: bool = False) -> str:
        if fail:
            raise RuntimeError("no")
        return kind

    ok = value("infop_api_requests_total", verb="get", kind="Widget", outcome="ok")
    assert get("v1", "Widget") == "Widget"
    with pytest.raises(RuntimeError):
        get("v1", "Widget", fail=True)
    assert value("infop_api_requests_total", verb="get", kind="Widget", outcome="ok") == ok + 1
    assert value("infop_api_requests_total", verb="get", kind="Widget", outcome="error") >= 1
