"""The PromQL in our ScaledObjects and the recommender, run by two real Prometheus versions
(Debian's 2.42 and a Prometheus 3 built from its Go module) against endpoints that serve /metrics
exactly as vLLM does: prometheus_client's negotiating app, which answers a Prometheus 2.x scrape
(OpenMetrics first) with `vllm_x` samples and a text scrape with `vllm:x`.

Each query must return what the endpoints expose, scoped to one deployment, whichever spelling
the TSDB holds; the gateway's and the operator's own metrics must be stored under the names we
query them by."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from localcluster import free_port
from localprom import STORED_PREFIX, VERSIONS, LocalPrometheus
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from inference_operator import telemetry
from inference_operator.builders.autoscaling import queries
from inference_operator.builders.names import Owner
from inference_operator.gateway.proxy import Gateway
from inference_operator.metrics.fleet import FLEET_QUERIES
from inference_operator.metrics.queries import VLLM_TPOT_BUCKETS, VLLM_TTFT_BUCKETS
from inference_operator.metrics.reader import Fleet, PrometheusReader
from inference_operator.scaling.throughput import within
from kubeharness import eventually


@dataclass
class FakePod:
    """One vLLM pod's /metrics: real vLLM names and labels, values we choose, served by
    prometheus_client's own WSGI app (content negotiation included), as vLLM serves them."""

    pod: str
    host: str
    waiting: float
    kv: float
    rps: float
    # vLLM < 0.9.2: gpu_cache_usage_perc only; 0.9.2-0.11: both names, one value.
    kv_names: tuple[str, ...] = ("vllm:kv_cache_usage_perc",)
    # For the throughput learner: every generated token's inter-token latency, every request's
    # first token and TPOT, and the token counters (vLLM < 0.11 names ITL
    # time_per_output_token_seconds).
    itl: float = 0.04
    prompt_per_request: float = 1000.0
    output_per_request: float = 100.0
    itl_name: str = "vllm:inter_token_latency_seconds"

    def start(self) -> None:
        reg = CollectorRegistry()
        labels = {"model_name": "llama", "engine": "0"}
        Gauge("vllm:num_requests_waiting", "waiting", list(labels), registry=reg).labels(
            **labels
        ).set(self.waiting)
        Gauge("vllm:num_requests_running", "running", list(labels), registry=reg).labels(
            **labels
        ).set(1)
        for name in self.kv_names:
            Gauge(name, "kv", list(labels), registry=reg).labels(**labels).set(self.kv)
        self.success = Counter(
            "vllm:request_success", "done", [*labels, "finished_reason"], registry=reg
        ).labels(**labels, finished_reason="stop")
        self.prompt = Counter("vllm:prompt_tokens", "p", list(labels), registry=reg).labels(
            **labels
        )
        self.generation = Counter("vllm:generation_tokens", "g", list(labels), registry=reg).labels(
            **labels
        )
        self.itl_hist = Histogram(
            self.itl_name, "itl", list(labels), buckets=VLLM_TPOT_BUCKETS, registry=reg
        ).labels(**labels)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "ttft",
            list(labels),
            buckets=VLLM_TTFT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.tpot = Histogram(
            "vllm:request_time_per_output_token_seconds",
            "tpot",
            list(labels),
            buckets=VLLM_TPOT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.server, _ = start_http_server(0, addr=self.host, registry=reg)
        self.port = self.server.server_port
        self.stop_flag = threading.Event()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        owed = 0.0  # requests finished but not yet observed in the histograms
        while not self.stop_flag.wait(0.1):
            self.success.inc(self.rps / 10)
            self.prompt.inc(self.rps / 10 * self.prompt_per_request)
            self.generation.inc(self.rps / 10 * self.output_per_request)
            owed += self.rps / 10
            while owed >= 1:
                owed -= 1
                self.ttft.observe(0.3 if self.rps < 40 else 3.0)
                self.tpot.observe(self.itl)
                for _ in range(int(self.output_per_request) - 1):
                    self.itl_hist.observe(self.itl)

    def stop(self) -> None:
        self.stop_flag.set()
        self.server.shutdown()


class GatewayMetrics:
    """The gateway's real /metrics page (its aiohttp app) with one route's series populated."""

    def __init__(self) -> None:
        self.gateway = Gateway()
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def serve() -> None:
            runner = web.AppRunner(self.gateway.app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.gateway.set_route("llama", "serving", "llama")
            m = self.gateway.metrics
            m.in_flight.labels("serving", "llama").set(1)
            m.replicas.labels("serving", "llama").set(3)
            m.requests.labels("serving", "llama", "200").inc()
            m.queue_seconds.labels("serving", "llama").observe(0.5)
            m.received.labels("serving", "llama").inc()
            started.set()

        threading.Thread(
            target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
            daemon=True,
        ).start()
        assert started.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@dataclass
class Setup:
    version: str
    prom: PrometheusConnect
    url: str
    pods: list[FakePod]
    gateway: CollectorRegistry
    started: float


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: f"prometheus-{v}")
def prometheus(request: pytest.FixtureRequest) -> Iterator[Setup]:
    pods = [
        FakePod("llama-7d9f8c6b5-abcde", "127.0.0.2", waiting=3, kv=0.5, rps=2.0),
        FakePod("llama-7d9f8c6b5-fghij", "127.0.0.3", waiting=5, kv=0.7, rps=3.0),
        FakePod(
            "llama-7d9f8c6b5-klmno",
            "127.0.0.4",
            waiting=1,
            kv=0.3,
            rps=1.0,
            kv_names=("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"),
            itl=0.06,
            itl_name="vllm:time_per_output_token_seconds",
        ),
        FakePod(
            "llama-7d9f8c6b5-zzzzz",
            "127.0.0.7",
            waiting=0,
            kv=0.1,
            rps=0.0,
            kv_names=("vllm:gpu_cache_usage_perc",),
        ),
        # Another deployment in the same namespace, and ours in another one: never counted.
        FakePod("llama-big-5c4b3a2-pqrst", "127.0.0.5", waiting=100, kv=0.9, rps=50.0),
        FakePod("llama-7d9f8c6b5-uvwxy", "127.0.0.6", waiting=100, kv=0.9, rps=50.0),
    ]
    for p in pods:
        p.start()
    namespaces = ["serving"] * 5 + ["elsewhere"]
    gateway = GatewayMetrics()
    # The operator's own registry, served as the operator serves it (telemetry.serve).
    telemetry.API_CALLS.labels("get", "Deployment", "ok").inc()
    telemetry.RECONCILE_SECONDS.labels("reconcile").observe(0.1)
    operator_server, _ = start_http_server(0, addr="127.0.0.1", registry=telemetry.REGISTRY)
    prom = LocalPrometheus(
        [
            {
                "job_name": "vllm",
                "static_configs": [
                    {"targets": [f"{p.host}:{p.port}"], "labels": {"namespace": ns, "pod": p.pod}}
                    for p, ns in zip(pods, namespaces, strict=True)
                ],
            },
            {
                "job_name": "gateway",
                "static_configs": [{"targets": [f"127.0.0.1:{gateway.port}"]}],
            },
            {
                "job_name": "operator",
                "static_configs": [{"targets": [f"127.0.0.1:{operator_server.server_port}"]}],
            },
        ],
        version=request.param,
    ).start()
    client = PrometheusConnect(url=prom.url, disable_ssl=True)
    try:

        def all_up() -> bool:
            up = client.custom_query("count(up == 1)")
            assert up and float(up[0]["value"][1]) == len(pods) + 2, (up, prom.log[-2000:])
            return True

        eventually(all_up, timeout=60)
        yield Setup(
            request.param, client, prom.url, pods, gateway.gateway.metrics.registry, time.time()
        )
    finally:
        prom.stop()
        gateway.stop()
        operator_server.shutdown()
        for p in pods:
            p.stop()


def _value(prom: PrometheusConnect, query: str) -> float:
    result = prom.custom_query(query)
    assert len(result) == 1, (query, result)
    return float(result[0]["value"][1])


DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "charts/inference-operator/dashboards/inference-deployment.json"
)
LLAMA = Owner("llama", "serving", "u")


def test_the_spelling_each_version_stores(prometheus: Setup) -> None:
    names = {
        r["metric"]["__name__"]
        for r in prometheus.prom.custom_query(
            'count by (__name__) ({__name__=~"vllm[:_]num_requests_waiting"})'
        )
    }
    assert names == {STORED_PREFIX[prometheus.version] + "num_requests_waiting"}


def test_queue_query_sums_this_deployments_pods_only(prometheus: Setup) -> None:
    assert _value(prometheus.prom, queries(LLAMA)["queue"]) == 9


def test_kv_query_counts_each_pod_once_under_old_new_and_both_names(prometheus: Setup) -> None:
    assert _value(prometheus.prom, queries(LLAMA)["kvCache"]) == pytest.approx(1.6)


def test_other_deployment_is_scoped_apart(prometheus: Setup) -> None:
    assert _value(prometheus.prom, queries(Owner("llama-big", "serving", "u"))["queue"]) == 100


def test_every_fleet_query_answers_and_agrees_with_the_scaledobjects(prometheus: Setup) -> None:
    """One query per signal for all models, split by pod, gives each model what its
    ScaledObject's own per-deployment query gives."""
    reader = PrometheusReader(prometheus.url)

    def agree() -> bool:
        for name, query in FLEET_QUERIES.items():
            if name != "gateway":  # the gateway exports it per route, checked below
                # rate() needs two scrapes: polled, not assumed.
                assert prometheus.prom.custom_query(query), (name, query)
        for owner in (LLAMA, Owner("llama-big", "serving", "u")):
            samples, _ = reader.snapshot()
            got = samples.samples(owner)
            for signal in ("queue", "kvCache", "rps"):
                want = _value(prometheus.prom, queries(owner)[signal])
                value = got[signal]
                if signal == "kvCache":  # the ScaledObject sums, the recommender averages
                    value = (value or 0) * len(
                        samples.pods["kvCache"][(owner.namespace, owner.name)]
                    )
                assert value == pytest.approx(want, rel=0.05, abs=0.01), (owner, signal)
        return True

    eventually(agree, timeout=30)


def test_reader_reads_every_signal_and_the_spelling(prometheus: Setup) -> None:
    reading = PrometheusReader(prometheus.url).read(LLAMA, Fleet(4, 4, 0), time.time())
    obs = reading.observation
    assert reading.error is None
    assert (obs.queue, obs.running) == (9, 4)
    # Per pod too: the backlog is counted where it waits.
    assert sorted(obs.queues) == [0, 1, 3, 5]
    assert obs.kv_cache_utilization == pytest.approx(0.4)
    assert obs.sampled_at is not None and time.time() - obs.sampled_at < 10
    assert reading.metric_prefix == STORED_PREFIX[prometheus.version]


def test_the_learners_signals_reach_the_observation(prometheus: Setup) -> None:
    """ITL (new and old names), the token rates and both histograms, split to this deployment:
    pods at 2, 3 and 1 req/s with 100 output tokens, ITL 40, 40 and 60 ms."""

    def settled() -> bool:
        assert time.time() - prometheus.started > 65
        obs = PrometheusReader(prometheus.url).read(LLAMA, Fleet(4, 4, 0), time.time()).observation
        assert obs.completion_rps == pytest.approx(6.0, rel=0.2)
        assert obs.prompt_tps == pytest.approx(6000.0, rel=0.2)
        assert obs.generation_tps == pytest.approx(600.0, rel=0.2)
        # The ScaledObject's tokens trigger (Prometheus-trigger mode) reads the same rate.
        tokens = _value(prometheus.prom, queries(LLAMA)["tokens"])
        assert tokens == pytest.approx(obs.prompt_tps + obs.generation_tps, rel=0.05)
        # Token-weighted: (2 + 3) x 0.04 + 1 x 0.06 over 6.
        assert obs.itl_s == pytest.approx((5 * 0.04 + 0.06) / 6, rel=0.05)
        assert obs.ttft_buckets and obs.ttft_buckets[-1][0] == float("inf")
        assert obs.ttft_buckets[-1][1] == pytest.approx(6.0, rel=0.2)
        assert within(obs.ttft_buckets, 2.0) == pytest.approx(1.0)
        assert within(obs.tpot_buckets, 0.05) == pytest.approx(5 / 6, rel=0.1)
        # The gateway's arrivals, per route (its counter exists; nothing arrives here).
        assert obs.arrival_rps == 0.0
        return True

    eventually(settled, timeout=120)


def test_rps_query_is_the_completion_rate(prometheus: Setup) -> None:
    # rate(...[1m]) divides by the whole minute: it is only right once a minute of samples exists.
    def settled() -> bool:
        assert time.time() - prometheus.started > 65
        value = _value(prometheus.prom, queries(LLAMA)["rps"])
        assert value == pytest.approx(6.0, rel=0.2)
        return True

    eventually(settled, timeout=120)


def _sample_names(registry: CollectorRegistry) -> set[str]:
    # `_created` samples are timestamps that Prometheus 3 folds into the series it belongs to.
    return {
        s.name
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("job", ["gateway", "operator"])
def test_our_own_metrics_are_stored_under_the_names_we_query(prometheus: Setup, job: str) -> None:
    registry = prometheus.gateway if job == "gateway" else telemetry.REGISTRY
    names = _sample_names(registry)
    assert names and all(":" not in n for n in names), names
    prefix = "inference_gateway_" if job == "gateway" else "infop_"
    assert all(n.startswith(prefix) for n in names), names
    stored: set[str] = {
        r["metric"]["__name__"]
        for r in prometheus.prom.custom_query(f'count by (__name__) ({{job="{job}"}})')
    }
    assert names <= stored, sorted(names - stored)


def test_dashboard_queries_find_vllm_series(prometheus: Setup) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        t["expr"].replace("$namespace", "serving").replace("$deployment", "llama")
        for panel in dashboard["panels"]
        for t in panel.get("targets", [])
    ]
    # The fake pods here export no histograms: only the gauges and the success counter.
    vllm = [e for e in exprs if "vllm" in e and "seconds_bucket" not in e]
    assert len(vllm) >= 5, exprs
    for expr in exprs:
        prometheus.prom.custom_query(expr)  # every panel parses on this version
    for expr in vllm:
        assert prometheus.prom.custom_query(expr), expr
