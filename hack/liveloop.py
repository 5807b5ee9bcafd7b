"""The live loop's surroundings on loopback, for the e2e test and `make run`: a fake vLLM per
scheduled pod, the gateway in front of them, a real Prometheus (Debian's 2.42 or Prometheus 3)
scraping both, and a timeline of what happened. KEDA and the HPA are the real ones, run beside
the control plane (hack/localkeda.py); this loop only watches what they do."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The test doubles (fake vLLM pods) live with the tests, not in the shipped package; `make run`
# uses them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from localprom import LocalPrometheus
from timeline import Row, Timeline

from doubles.fake_pods import FakePods
from inference_operator.bench.simulator.profiles import PROFILES
from inference_operator.gateway.proxy import Limits
from inference_operator.gateway.run import Running, start_in_thread
from inference_operator.kube import apply as kube
from inference_operator.loadtest.run import Drive


class LiveLoop:
    def __init__(
        self,
        namespace: str,
        watched: str,
        *,
        selector: str = "infer.dev/deployment",
        max_num_seqs: int = 4,
        speed: float = 0.2,
        limits: Limits | None = None,
        prometheus_version: str = "2.42",
    ) -> None:
        self.prometheus_version = prometheus_version
        self.namespace, self.watched = namespace, watched
        self.dir = Path(tempfile.mkdtemp(prefix="infop-loop-"))
        # Few sequences at a time and slower than real: one replica serves ~1.5 req/s of
        # 48-token answers, so a few requests per second need several replicas.
        profile = FakePods.with_max_num_seqs(PROFILES["llama-3.1-8b/l40s"], max_num_seqs)
        self.pods = FakePods(namespace, selector, self.dir / "pods.json", profile, speed=speed)
        self.limits = limits or Limits(
            max_per_replica=6, max_waiting=500, queue_timeout_seconds=180
        )
        self.gateway: Running | None = None
        self.prometheus: LocalPrometheus | None = None
        self._last_replicas: int | None = None
        self.drive: Drive | None = None
        self.timeline = Timeline(self.sample)

    def start(self) -> LiveLoop:
        self.pods.start()
        self.gateway = start_in_thread(
            limits=self.limits, namespace=self.namespace, dial=self.pods.dial
        )
        self.prometheus = LocalPrometheus(
            [
                {
                    "job_name": "vllm",
                    "file_sd_configs": [
                        {"files": [str(self.dir / "pods.json")], "refresh_interval": "1s"}
                    ],
                },
                {
                    "job_name": "gateway",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.gateway.port}"]}],
                },
            ],
            version=self.prometheus_version,
        ).start()
        self.timeline.start()
        return self

    def stop(self) -> None:
        self.timeline.stop()
        if self.gateway:
            self.gateway.stop.set()
        self.pods.stop()
        if self.prometheus:
            self.prometheus.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}"

    def status(self) -> dict[str, Any]:
        return (
            kube.get("infer.dev/v1alpha1", "InferenceDeployment", self.watched, self.namespace)
            or {}
        )

    def sample(self) -> Row:
        obj = self.status()
        status = obj.get("status") or {}
        waiting = 0.0
        if self.gateway is not None:
            waiting = float(sum(r.waiting for r in list(self.gateway.gateway.routes.values())))
        in_vllm = float(sum(len(r.fake.engine.waiting) for r in list(self.pods.replicas.values())))
        now = time.time()
        replicas = int((obj.get("spec") or {}).get("replicas") or 0)
        if self._last_replicas is not None and replicas != self._last_replicas:
            # KEDA (0 <-> 1) or the HPA (above 1) wrote /scale; the recommender said why.
            why = (status.get("recommendation") or {}).get("reason") or ""
            self.timeline.decisions.append(
                {"t": now, "from": self._last_replicas, "to": replicas, "why": why}
            )
        self._last_replicas = replicas
        return Row(
            t=now,
            offered_rps=self.drive.offered if self.drive else 0.0,
            gateway_waiting=waiting,
            vllm_waiting=in_vllm,
            replicas=replicas,
            desired=status.get("desiredReplicas"),
            ready=int(status.get("readyReplicas") or 0),
        )

    def load(self, model: str, phases: list[tuple[float, float]], max_tokens: int = 48) -> Drive:
        self.drive = Drive(self.url, model, phases, prompt_tokens=32, max_tokens=max_tokens)
        return self.drive
