"""The PromQL in our ScaledObjects, run by a real Prometheus (Debian's) against fake vLLM /metrics
endpoints on 127.0.0.x: each query returns what the endpoints expose, scoped to one deployment."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from inference_operator.builders.autoscaling import queries
from inference_operator.builders.names import Owner

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="Debian's prometheus is installed by .ci/run"
)


@dataclass
class FakePod:
    """One vLLM pod's /metrics: real vLLM names and labels, values we choose."""

    pod: str
    host: str
    waiting: float
    kv: float
    rps: float
    old_names: bool = False  # vLLM < 0.9.2: vllm:gpu_cache_usage_perc only

    def start(self) -> None:
        reg = CollectorRegistry()
        labels = {"model_name": "llama", "engine": "0"}
        Gauge("vllm:num_requests_waiting", "waiting", list(labels), registry=reg).labels(
            **labels
        ).set(self.waiting)
        kv_name = "vllm:gpu_cache_usage_perc" if self.old_names else "vllm:kv_cache_usage_perc"
        Gauge(kv_name, "kv", list(labels), registry=reg).labels(**labels).set(self.kv)
        self.success = Counter(
            "vllm:request_success", "done", [*labels, "finished_reason"], registry=reg
        ).labels(**labels, finished_reason="stop")

        class Handler(BaseHTTPRequestHandler):
            # Always the text format, as our fake vLLM server serves it: prometheus_client's
            # OpenMetrics output (which Prometheus 2.x asks for first) rewrites the colon in
            # vLLM's names to an underscore.
            def do_GET(self) -> None:
                body = generate_latest(reg)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.stop_flag = threading.Event()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        while not self.stop_flag.wait(0.1):
            self.success.inc(self.rps / 10)

    def stop(self) -> None:
        self.stop_flag.set()
        self.server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[PrometheusConnect, list[FakePod], float]]:
    pods = [
        FakePod("llama-7d9f8c6b5-abcde", "127.0.0.2", waiting=3, kv=0.5, rps=2.0),
        FakePod("llama-7d9f8c6b5-fghij", "127.0.0.3", waiting=5, kv=0.7, rps=3.0),
        FakePod("llama-7d9f8c6b5-klmno", "127.0.0.4", waiting=1, kv=0.3, rps=1.0, old_names=True),
        # Another deployment in the same namespace, and ours in another one: never counted.
        FakePod("llama-big-5c4b3a2-pqrst", "127.0.0.5", waiting=100, kv=0.9, rps=50.0),
        FakePod("llama-7d9f8c6b5-uvwxy", "127.0.0.6", waiting=100, kv=0.9, rps=50.0),
    ]
    for p in pods:
        p.start()
    namespaces = ["serving"] * 4 + ["elsewhere"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "vllm",
                "static_configs": [
                    {"targets": [f"{p.host}:{p.port}"], "labels": {"namespace": ns, "pod": p.pod}}
                    for p, ns in zip(pods, namespaces, strict=True)
                ],
            }
        ],
    }
    state = Path(tempfile.mkdtemp(prefix="infop-prom-"))
    (state / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={state / 'prometheus.yml'}",
            f"--storage.tsdb.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(state / "log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    prom = PrometheusConnect(url=f"http://127.0.0.1:{port}", disable_ssl=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                up = prom.custom_query('count(up{job="vllm"} == 1)')
                if up and float(up[0]["value"][1]) == len(pods):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError((state / "log").read_text()[-2000:])
        started = time.monotonic()
        yield prom, pods, started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for p in pods:
            p.stop()
        shutil.rmtree(state, ignore_errors=True)


def _value(prom: PrometheusConnect, query: str) -> float:
    result = prom.custom_query(query)
    assert len(result) == 1, (query, result)
    return float(result[0]["value"][1])


def test_queue_query_sums_this_deployments_pods_only(prometheus: tuple) -> None:  # type: ignore[type-arg]
    prom, _, _ = prometheus
    assert _value(prom, queries(Owner("llama", "serving", "u"))["queue"]) == 9


def test_kv_query_works_on_old_and_new_vllm_names(prometheus: tuple) -> None:  # type: ignore[type-arg]
    prom, _, _ = prometheus
    assert _value(prom, queries(Owner("llama", "serving", "u"))["kvCache"]) == pytest.approx(1.5)


def test_other_deployment_is_scoped_apart(prometheus: tuple) -> None:  # type: ignore[type-arg]
    prom, _, _ = prometheus
    assert _value(prom, queries(Owner("llama-big", "serving", "u"))["queue"]) == 100


def test_rps_query_is_the_completion_rate(prometheus: tuple) -> None:  # type: ignore[type-arg]
    prom, _, started = prometheus
    # rate(...[1m]) divides by the whole minute: it is only right once a minute of samples exists.
    time.sleep(max(0.0, started + 65 - time.monotonic()))
    assert _value(prom, queries(Owner("llama", "serving", "u"))["rps"]) == pytest.approx(
        6.0, rel=0.2
    )
