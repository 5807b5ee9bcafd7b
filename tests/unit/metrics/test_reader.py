"""Samples -> Observation, the queries' scoping, and an unreachable Prometheus (a closed
loopback port): an error that names the server, no signals, no exception."""

from __future__ import annotations

import socket

import pytest

from inference_operator.builders.names import Owner
from inference_operator.metrics.queries import signal_queries, spelling
from inference_operator.metrics.reader import Fleet, PrometheusReader, observation
from inference_operator.scaling import Policy, State, recommend

OWNER = Owner("llama", "serving", "u")
FLEET = Fleet(current=3, ready=2, starting=1)


def test_samples_become_an_observation() -> None:
    samples = {"queue": 7.0, "running": 30.0, "kvCache": 0.5, "rps": 4.2, "sampledAt": 99.0}
    obs = observation(samples, FLEET, at=100.0)
    assert (obs.current_replicas, obs.ready_replicas, obs.starting_replicas) == (3, 2, 1)
    assert (obs.queue, obs.running, obs.kv_cache_utilization) == (7.0, 30.0, 0.5)
    assert (obs.completion_rps, obs.gateway_queue, obs.sampled_at) == (4.2, None, 99.0)


def test_every_query_is_scoped_to_one_deployment() -> None:
    for name, query in signal_queries(OWNER).items():
        if name == "gateway":
            assert 'inference_namespace="serving",inference_deployment="llama"' in query
        else:
            assert 'namespace="serving",pod=~"llama-[a-z0-9]+-[a-z0-9]+"' in query


def test_every_vllm_query_matches_both_spellings() -> None:
    for name, query in signal_queries(OWNER).items():
        if name != "gateway":
            assert '{__name__=~"vllm[:_]' in query and "vllm:" not in query, query


@pytest.mark.parametrize(
    ("names", "want"),
    [
        ([], None),
        (["vllm_num_requests_waiting"], "vllm_"),
        (["vllm:num_requests_waiting"], "vllm:"),
        # Both during a Prometheus upgrade: the colon is what the new one stores.
        (["vllm_num_requests_waiting", "vllm:num_requests_waiting"], "vllm:"),
    ],
)
def test_spelling(names: list[str], want: str | None) -> None:
    assert spelling(names) == want


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_prometheus_is_reported_and_the_recommender_holds() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    reading = PrometheusReader(url, timeout=1.0).read(OWNER, FLEET, at=100.0)
    assert reading.error is not None and url in reading.error
    assert not reading.observation.has_load_signal
    rec, _ = recommend(reading.observation, Policy(min_replicas=0), State(), now=100.0)
    assert rec.holding and rec.replicas == 3
