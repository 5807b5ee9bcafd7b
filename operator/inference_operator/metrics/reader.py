"""Prometheus -> Observation, with timeouts and retries; never raises for an unreachable server.

One snapshot per Prometheus per tick: FLEET_QUERIES (metrics/fleet.py) answer for every model at
once, so the queries per tick do not grow with the number of models. I/O lives here; splitting
the answers and turning samples into an Observation are pure functions.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from inference_operator import telemetry
from inference_operator.builders.names import Owner
from inference_operator.metrics.fleet import FLEET_QUERIES, Series, Snapshot, snapshot
from inference_operator.scaling.model import Observation
from inference_operator.scaling.startup import Startup


@dataclass(frozen=True)
class Fleet:
    """What Kubernetes says about the replicas (the other half of an Observation)."""

    current: int
    ready: int
    starting: int
    # Start-ups of the model's pods the cache holds (created -> Ready).
    startups: tuple[Startup, ...] = ()


@dataclass(frozen=True)
class Reading:
    observation: Observation
    # Why no signal could be read (Prometheus unreachable, an HTTP error); None when it answered.
    error: str | None = None
    # How this Prometheus stores vLLM's names, `vllm:` or `vllm_` (None: no series yet).
    metric_prefix: str | None = None


Histogram = tuple[tuple[float, float], ...]


def observation(
    samples: dict[str, float | None],
    fleet: Fleet,
    at: float,
    ttft: Histogram = (),
    tpot: Histogram = (),
    queues: tuple[float, ...] = (),
) -> Observation:
    """Samples by FLEET_QUERIES signal (None: no series) -> the recommender's input."""
    return Observation(
        at=at,
        current_replicas=fleet.current,
        ready_replicas=fleet.ready,
        starting_replicas=fleet.starting,
        queue=samples.get("queue"),
        queues=queues,
        running=samples.get("running"),
        kv_cache_utilization=samples.get("kvCache"),
        completion_rps=samples.get("rps"),
        arrival_rps=samples.get("arrivals"),
        gateway_queue=samples.get("gateway"),
        sampled_at=samples.get("sampledAt"),
        itl_s=samples.get("itl"),
        prompt_tps=samples.get("promptTokens"),
        generation_tps=samples.get("generationTokens"),
        ttft_buckets=ttft,
        tpot_buckets=tpot,
        startups=fleet.startups,
    )


class PrometheusReader:
    """One per Prometheus URL; safe to share between threads (one session per thread). Readers
    within `max_age` of the last snapshot share it; the first one after it refreshes it."""

    def __init__(
        self,
        url: str,
        *,
        token_file: str | None = None,
        timeout: float = 5.0,
        max_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.token_file = token_file
        self.timeout = timeout
        self.max_age = max_age
        self.clock = clock
        self._local = threading.local()
        self._refresh = threading.Lock()
        self._taken: float | None = None
        self._last: tuple[Snapshot, str | None] = (Snapshot(), None)
        self.queries_sent = 0  # this reader's own count (the telemetry counter is per process)

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

    def snapshot(self) -> tuple[Snapshot, str | None]:
        """This tick's answers for every model, and why there are none (None: it answered)."""
        with self._refresh:
            if self._taken is not None and self.clock() - self._taken < self.max_age:
                return self._last
            self._last = self._query()
            self._taken = self.clock()
            return self._last

    def _query(self) -> tuple[Snapshot, str | None]:
        answers: dict[str, list[tuple[Series, float]]] = {}
        try:
            client = self._client()
            for signal, query in FLEET_QUERIES.items():
                telemetry.PROMETHEUS_QUERIES.inc()
                self.queries_sent += 1
                rows = client.custom_query(query)
                values = [(r["metric"], float(r["value"][1])) for r in rows]
                # NaN: an average over no series, or a division by zero in the query.
                answers[signal] = [(m, v) for m, v in values if math.isfinite(v)]
        except (requests.RequestException, PrometheusApiClientException, OSError) as e:
            return Snapshot(), f"{self.url}: {_short(e)}"
        except (KeyError, IndexError, TypeError, ValueError) as e:
            return Snapshot(), f"{self.url}: unexpected answer: {e!r}"
        return snapshot(answers), None

    def read(self, owner: Owner, fleet: Fleet, at: float) -> Reading:
        snap, error = self.snapshot()
        if error is not None:
            return Reading(observation({}, fleet, at), error=error)
        obs = observation(
            snap.samples(owner),
            fleet,
            at,
            snap.histogram(owner, "ttftBuckets"),
            snap.histogram(owner, "tpotBuckets"),
            snap.queues(owner),
        )
        return Reading(obs, metric_prefix=snap.metric_prefix(owner))


def _short(e: BaseException) -> str:
    text = str(e)
    # requests nests the root cause deep in its message; the last clause says what happened.
    if "Caused by" in text:
        text = text.rsplit("Caused by", 1)[1].strip(" ()'\"")
    return text[:300]
