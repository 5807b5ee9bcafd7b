"""The operator's own Prometheus metrics: reconciles, decisions, API calls. One registry,
served on INFOP_METRICS_PORT by `serve()`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()

RECONCILE_SECONDS = Histogram(
    "infop_reconcile_duration_seconds",
    "Time one pass of a handler took.",
    ["handler"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "infop_reconcile_errors", "Handler passes that raised.", ["handler"], registry=REGISTRY
)
DECISIONS = Counter(
    "infop_scaling_decisions",
    "New recommendations, by direction.",
    ["namespace", "inference_deployment", "direction"],
    registry=REGISTRY,
)
RECOMMENDED = Gauge(
    "infop_recommended_replicas",
    "The recommender's latest answer.",
    ["namespace", "inference_deployment"],
    registry=REGISTRY,
)
READY = Gauge(
    "infop_ready_replicas",
    "Ready vLLM replicas the recommender saw.",
    ["namespace", "inference_deployment"],
    registry=REGISTRY,
)
METRICS_READ_ERRORS = Counter(
    "infop_prometheus_read_errors",
    "Failed reads of the vLLM signals from Prometheus.",
    ["namespace", "inference_deployment"],
    registry=REGISTRY,
)
PROMETHEUS_QUERIES = Counter(
    "infop_prometheus_queries",
    "PromQL queries sent (one set per Prometheus per tick, whatever the number of models).",
    registry=REGISTRY,
)
API_CALLS = Counter(
    "infop_api_requests",
    "Kubernetes API calls made by the operator's own code (kopf's watches excluded).",
    ["verb", "kind", "outcome"],
    registry=REGISTRY,
)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def timed(handler: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(handler).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(handler).observe(time.perf_counter() - start)


@contextmanager
def api_call(verb: str, kind: str) -> Iterator[None]:
    """Count one API request by verb, kind and outcome."""
    try:
        yield
    except Exception:
        API_CALLS.labels(verb, kind, "error").inc()
        raise
    API_CALLS.labels(verb, kind, "ok").inc()


def counted(verb: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count calls of a kube.* function whose second argument is the kind (a name, never an
    object: every label value is a series kept for the life of the process)."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            with api_call(verb, str(args[1]) if len(args) > 1 else "?"):
                return fn(*args, **kwargs)

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner

    return wrap


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host, registry=REGISTRY)
