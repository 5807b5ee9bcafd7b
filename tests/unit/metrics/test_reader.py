"""Samples -> Observation, the queries' scoping, and an unreachable Prometheus (a closed
loopback port): an error that names the server, no signals, no exception."""

from __future__ import annotations

import socket

import pytest

from inference_operator.builders.autoscaling import queries
from inference_operator.builders.names import Owner
from inference_operator.metrics.fleet import FLEET_QUERIES, owner_of_pod, snapshot
from inference_operator.metrics.queries import spelling
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


def test_every_vllm_query_matches_both_spellings() -> None:
    for query in [*FLEET_QUERIES.values(), *queries(OWNER).values()]:
        if "vllm" in query:
            assert '{__name__=~"vllm[:_]' in query and "vllm:" not in query, query


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        ("llama-7d9f8c6b5-abcde", "llama"),
        ("llama-big-5c4b3a2-pqrst", "llama-big"),
        ("llama-abcde", None),  # not a ReplicaSet pod
        ("", None),
    ],
)
def test_owner_of_pod(pod: str, want: str | None) -> None:
    assert owner_of_pod(pod) == want


def test_one_snapshot_splits_every_models_samples() -> None:
    def pod(ns: str, name: str) -> dict[str, str]:
        return {"namespace": ns, "pod": name}

    snap = snapshot(
        {
            "queue": [
                (pod("serving", "llama-1-a"), 3.0),
                (pod("serving", "llama-1-b"), 5.0),
                (pod("serving", "llama-big-1-a"), 100.0),
                (pod("other", "llama-1-a"), 7.0),
            ],
            "kvCache": [(pod("serving", "llama-1-a"), 0.2), (pod("serving", "llama-1-b"), 0.6)],
            "sampledAt": [(pod("serving", "llama-1-a"), 90.0), (pod("serving", "llama-1-b"), 95.0)],
            "spelling": [({**pod("serving", "llama-1-a"), "__name__": "vllm_x"}, 1.0)],
            "gateway": [({"inference_namespace": "serving", "inference_deployment": "llama"}, 2.0)],
        }
    )
    s = snap.samples(OWNER)
    assert (s["queue"], s["kvCache"], s["sampledAt"], s["gateway"]) == (8.0, 0.4, 95.0, 2.0)
    assert (s["running"], s["rps"]) == (None, None)
    assert snap.metric_prefix(OWNER) == "vllm_"
    assert sorted(snap.queues(OWNER)) == [3.0, 5.0]
    assert snap.queues(Owner("absent", "serving", "u")) == ()
    assert snap.samples(Owner("llama-big", "serving", "u"))["queue"] == 100.0
    assert snap.samples(Owner("llama", "other", "u"))["queue"] == 7.0
    assert snap.samples(Owner("absent", "serving", "u"))["queue"] is None


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


def test_models_within_a_tick_share_one_snapshot() -> None:
    """Queries per tick do not grow with the number of models: 500 reads, one set of queries."""
    now = [0.0]
    reader = PrometheusReader(
        f"http://127.0.0.1:{_closed_port()}", timeout=1.0, max_age=13.5, clock=lambda: now[0]
    )
    for i in range(500):
        reader.read(Owner(f"m{i}", "serving", "u"), FLEET, at=100.0)
    assert reader.queries_sent == 1  # failed at the first query; then shared until the tick ends
    now[0] = 14.0  # the next tick
    reader.read(OWNER, FLEET, at=114.0)
    assert reader.queries_sent == 2


def test_the_learners_signals_split_by_model_and_bucket() -> None:
    """ITL sum/count, token rates and the two histograms' buckets (summed over a model's pods,
    +Inf last) and the gateway's arrivals reach the Observation."""

    def pod(name: str, **extra: str) -> dict[str, str]:
        return {"namespace": "serving", "pod": name, **extra}

    snap = snapshot(
        {
            "itlSum": [(pod("llama-1-a"), 3.0), (pod("llama-1-b"), 1.0)],
            "itlCount": [(pod("llama-1-a"), 60.0), (pod("llama-1-b"), 20.0)],
            "promptTokens": [(pod("llama-1-a"), 1000.0), (pod("llama-1-b"), 500.0)],
            "generationTokens": [(pod("llama-1-a"), 200.0)],
            "ttftBuckets": [
                (pod("llama-1-a", le="1.0"), 3.0),
                (pod("llama-1-b", le="1.0"), 1.0),
                (pod("llama-1-a", le="+Inf"), 4.0),
                (pod("llama-1-b", le="+Inf"), 2.0),
                (pod("llama-1-a", le="bogus"), 9.0),
            ],
            "gatewayReceived": [
                ({"inference_namespace": "serving", "inference_deployment": "llama"}, 6.5)
            ],
        }
    )
    s = snap.samples(OWNER)
    assert s["itl"] == 4.0 / 80.0
    assert (s["promptTokens"], s["generationTokens"], s["arrivals"]) == (1500.0, 200.0, 6.5)
    ttft = snap.histogram(OWNER, "ttftBuckets")
    assert ttft == ((1.0, 4.0), (float("inf"), 6.0))
    assert snap.histogram(OWNER, "tpotBuckets") == ()
    obs = observation(s, FLEET, 100.0, ttft=ttft)
    assert obs.itl_s == 0.05 and obs.arrival_rps == 6.5 and obs.ttft_buckets == ttft
