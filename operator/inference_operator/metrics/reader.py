"""Prometheus -> Observation, with timeouts and retries; never raises for an unreachable server.

I/O lives here; turning samples into an Observation is `observation()`, a pure function.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from inference_operator.builders.names import Owner
from inference_operator.metrics.queries import signal_queries, spelling, spelling_query
from inference_operator.scaling.model import Observation


@dataclass(frozen=True)
class Fleet:
    """What Kubernetes says about the replicas (the other half of an Observation)."""

    current: int
    ready: int
    starting: int


@dataclass(frozen=True)
class Reading:
    observation: Observation
    # Why no signal could be read (Prometheus unreachable, an HTTP error); None when it answered.
    error: str | None = None
    # How this Prometheus stores vLLM's names, `vllm:` or `vllm_` (None: no series yet).
    metric_prefix: str | None = None


def observation(samples: dict[str, float | None], fleet: Fleet, at: float) -> Observation:
    """Samples by signal_queries() name (None: no series) -> the recommender's input."""
    return Observation(
        at=at,
        current_replicas=fleet.current,
        ready_replicas=fleet.ready,
        starting_replicas=fleet.starting,
        queue=samples.get("queue"),
        running=samples.get("running"),
        kv_cache_utilization=samples.get("kvCache"),
        completion_rps=samples.get("rps"),
        gateway_queue=samples.get("gateway"),
        sampled_at=samples.get("sampledAt"),
    )


class PrometheusReader:
    """One per Prometheus URL; safe to share between threads (one session per thread)."""

    def __init__(self, url: str, *, token_file: str | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.timeout = timeout
        self._local = threading.local()

    def _client(self) -> PrometheusConnect:
        client: PrometheusConnect | None = getattr(self._local, "client", None)
        if client is None:
            # Two quick retries on connection errors and 5xx; a longer outage is the caller's
            # to report, not ours to sit through.
            retry = Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504))
            client = PrometheusConnect(url=self.url, retry=retry, timeout=self.timeout)
            self._local.client = client
        if self.token_file:
            # Re-read each time: projected service-account tokens rotate.
            token = Path(self.token_file).read_text().strip()
            client.headers = {"Authorization": f"Bearer {token}"}
        return client

    def read(self, owner: Owner, fleet: Fleet, at: float) -> Reading:
        samples: dict[str, float | None] = {}
        try:
            client = self._client()
            for name, query in signal_queries(owner).items():
                result = client.custom_query(query)
                value = float(result[0]["value"][1]) if result else math.nan
                # NaN: an average over no series, or a division by zero in the query.
                samples[name] = value if math.isfinite(value) else None
            found = client.custom_query(spelling_query(owner))
            prefix = spelling([str(r["metric"].get("__name__", "")) for r in found])
        except (requests.RequestException, PrometheusApiClientException, OSError) as e:
            return Reading(observation({}, fleet, at), error=f"{self.url}: {_short(e)}")
        except (KeyError, IndexError, TypeError, ValueError) as e:
            return Reading(
                observation({}, fleet, at), error=f"{self.url}: unexpected answer: {e!r}"
            )
        return Reading(observation(samples, fleet, at), metric_prefix=prefix)


def _short(e: BaseException) -> str:
    text = str(e)
    # requests nests the root cause deep in its message; the last clause says what happened.
    if "Caused by" in text:
        text = text.rsplit("Caused by", 1)[1].strip(" ()'\"")
    return text[:300]
