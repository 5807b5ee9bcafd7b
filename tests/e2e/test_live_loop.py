"""The live loop end to end on the real control plane.

Real: kube-apiserver, etcd, controller-manager (Deployment, ReplicaSet, EndpointSlice and HPA
controllers), scheduler, kwok nodes, Prometheus (Debian's 2.42 and 3), KEDA's operator and
metrics API server (hack/localkeda.py), the operator (in-process) with its gRPC scaler, the
gateway, the recommender. The chain: our ScaledObject -> KEDA makes the HPA and handles 0 <-> 1
-> the HPA reads our scaler's metric through the aggregator and KEDA -> /scale of the
InferenceDeployment -> its Deployment. Stand-in: a fake vLLM per Ready pod on its own loopback
address (kwok pods run nothing). Load comes from an open-loop generator through the gateway.

The timeline is saved as JSON and a PNG (docs/live-loop.png when INFOP_E2E_DOCS=1).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from liveloop import LiveLoop
from localkeda import LocalKeda
from localprom import STORED_PREFIX, VERSIONS

from inference_operator.loadtest.run import Drive, Sample
from kubeharness import Cluster, eventually, wait_until_serving

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="installed by .ci/run"),
]
ROOT = Path(__file__).resolve().parents[2]
NAME = "chat"


def infd(prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "accelerator": {"kind": "nvidia", "types": ["L40S"]},
            "replicas": 0,
            # Sized by the brain; the CapacityBuffer CRD is served (no Karpenter consumes it here).
            "capacity": {"warm": {"auto": {"maxReplicas": 2}}},
            "autoscaling": {
                "minReplicas": 0,
                # Room above the six a burst of twelve wakes (queuePerReplica 2) for the warm
                # capacity the brain sizes (warm.auto.maxReplicas 2).
                "maxReplicas": 8,
                "scaleToZero": {"idleAfter": "15s"},
                "startupTime": "5s",
                "pollingInterval": "1s",
                "targets": {"queuePerReplica": 2},
                # The fake replicas run an L40S 5x slower (hack/liveloop.py): one decode step
                # alone takes 100 ms, so the default TPOT objective (100 ms) leaves no capacity
                # at all. Objectives 5x looser, like the replicas.
                "slo": {"ttft": "10s", "tpot": "500ms"},
                "behavior": {"scaleDown": {"stabilizationWindow": "10s", "maxPercent": 100}},
                "prometheus": {"url": prometheus_url},
            },
        },
    }


def _run_in_thread(drive: Drive) -> threading.Thread:
    t = threading.Thread(target=lambda: asyncio.run(drive.run()), daemon=True)
    t.start()
    return t


@pytest.fixture
def loop(
    cluster: Cluster,
    namespace: str,
    keda: LocalKeda,
    operator_running: object,
    request: pytest.FixtureRequest,
) -> Iterator[LiveLoop]:
    wait_until_serving(cluster, namespace)
    assert keda.running(), "KEDA exited: see keda-operator.log and keda-adapter.log"
    version = getattr(request, "param", "2.42")
    running = LiveLoop(namespace, NAME, prometheus_version=version).start()
    try:
        yield running
    finally:
        running.stop()
        test = request.node.name
        docs = os.environ.get("INFOP_E2E_DOCS") and test.startswith(
            "test_scales_from_zero_up_under_load_and_back_to_zero[prometheus-2.42]"
        )
        out = Path(tempfile.gettempdir()) / f"infop-{test}.json"
        running.timeline.save(
            ROOT / "docs/live-loop.json" if docs else out,
            ROOT / "docs/live-loop.png" if docs else None,
            "InferenceDeployment 'chat': gateway -> fake vLLM pods, Prometheus, recommender, "
            "gRPC scaler, KEDA, HPA",
        )


def _replicas(cluster: Cluster, namespace: str) -> tuple[int, int]:
    obj = cluster.get("InferenceDeployment", NAME, namespace) or {}
    return int(obj["spec"].get("replicas") or 0), int(
        (obj.get("status") or {}).get("readyReplicas") or 0
    )


# Both Prometheus versions: 2.42 stores vLLM's names as `vllm_x`, 3 as `vllm:x` (test_promql.py).
@pytest.mark.parametrize("loop", VERSIONS, indirect=True, ids=lambda v: f"prometheus-{v}")
def test_scales_from_zero_up_under_load_and_back_to_zero(
    loop: LiveLoop, cluster: Cluster, namespace: str
) -> None:
    assert loop.prometheus is not None
    cluster.apply({**infd(loop.prometheus.url), "metadata": {"name": NAME, "namespace": namespace}})

    # At rest: zero replicas, and the scaler says so.
    def at_zero() -> dict[str, Any]:
        obj = cluster.get("InferenceDeployment", NAME, namespace) or {}
        status = obj.get("status") or {}
        assert status.get("desiredReplicas") == 0, status
        conds = {c["type"]: c for c in status.get("conditions") or []}
        scaling = conds.get("ScalingActive") or {}
        assert scaling.get("reason") == "ScaledToZero", conds
        return obj

    eventually(at_zero, timeout=60)

    # 1. A burst (~10 requests) at zero replicas: all wait at the gateway and all succeed.
    burst = loop.load(NAME, [(0.5, 20.0)])
    t0 = time.monotonic()
    asyncio.run(burst.run())
    woke = time.monotonic() - t0
    statuses = [(s.status, s.error) for _, s in burst.results]
    assert statuses and all(code == 200 for code, _ in statuses), statuses
    assert all(s.ok for _, s in burst.results)
    ttfts = sorted(s.ttft for _, s in burst.results)
    loop.timeline.notes["from_zero"] = {
        "requests": len(ttfts),
        "status_200": sum(1 for code, _ in statuses if code == 200),
        "first_token_seconds_min": round(ttfts[0], 2),
        "first_token_seconds_max": round(ttfts[-1], 2),
        "burst_done_seconds": round(woke, 2),
    }

    # 2. Sustained load: the fleet grows past one replica, every request is served.
    drive = loop.load(NAME, [(40.0, 5.0), (1.0, 0.0)])
    driver = _run_in_thread(drive)

    def grew() -> bool:
        replicas, ready = _replicas(cluster, namespace)
        assert ready >= 3, (replicas, ready)
        return True

    eventually(grew, timeout=90)

    # No requestsPerSecondPerReplica in the spec: the capacity is learned from the fake
    # replicas' metrics (an L40S profile run 5x slower, behind the L40S prior), shown in status
    # and by `kubectl describe`; the arrival rate is the gateway's count.
    def learned() -> dict[str, Any]:
        status = (cluster.get("InferenceDeployment", NAME, namespace) or {}).get("status") or {}
        per = (status.get("capacity") or {}).get("perReplica") or {}
        assert per.get("source") == "learned" and per.get("requestsPerSecond", 0) > 0, (
            per,
            status.get("signals"),
            (status.get("scalerState") or {}).get("throughput"),
        )
        assert (status.get("signals") or {}).get("arrivalSource") == "gateway", status
        startup = (status.get("capacity") or {}).get("startup") or {}
        assert startup.get("source") == "learned" and startup.get("samples", 0) >= 1, startup
        return per

    per = eventually(learned, timeout=120, what="a learned per-replica capacity in status")
    described = cluster.kubectl("describe", "infd", NAME, "-n", namespace).stdout
    assert "Per Replica:" in described, described
    assert re.search(r"Requests Per Second:\s+[0-9.]+", described), described
    assert re.search(r"Source:\s+learned", described), described
    loop.timeline.notes["learned_capacity"] = per
    # KEDA's own account: the ScaledObject Ready and Active, and the HPA it made carries the
    # behavior we asked for, tolerance 0 included (the recommender's answer passes through).
    scaled = cluster.get("ScaledObject", NAME, namespace) or {}
    kconds = {c["type"]: c["status"] for c in (scaled.get("status") or {}).get("conditions") or []}
    assert kconds.get("Ready") == "True" and kconds.get("Active") == "True", kconds
    hpa_name = (scaled.get("status") or {}).get("hpaName") or f"keda-hpa-{NAME}"
    hpa = cluster.get("HorizontalPodAutoscaler", hpa_name, namespace) or {}
    asked = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    made = hpa["spec"]["behavior"]
    for direction in ("scaleUp", "scaleDown"):
        assert made[direction]["policies"] == asked[direction]["policies"], made
        assert str(made[direction]["tolerance"]) == "0", made
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "InferenceDeployment", hpa["spec"]

    # Warm capacity: the growth the brain saw (woken from zero, then more under load), within
    # warm.auto.maxReplicas, in status and in the CapacityBuffer on the vLLM Deployment.
    def warm() -> dict[str, Any]:
        obj = cluster.get("InferenceDeployment", NAME, namespace) or {}
        w = (obj.get("status") or {}).get("warm") or {}
        assert 1 <= int(w.get("replicas") or 0) <= 2, w
        buf = cluster.get("CapacityBuffer", NAME, namespace) or {}
        assert (buf.get("spec") or {}).get("replicas") == w["replicas"], (buf, w)
        return w

    w = eventually(warm, timeout=60, what="status.warm and the CapacityBuffer agree")
    assert "demand rose by up to" in w["reason"], w
    driver.join(timeout=400)
    assert not driver.is_alive()
    samples: list[Sample] = [s for _, s in drive.results]
    failed = [(s.status, s.error) for s in samples if not s.ok]
    assert len(samples) > 120 and not failed, (len(samples), len(failed), failed[:5])
    ok = sorted(s.ttft for s in samples)
    loop.timeline.notes["under_load"] = {
        "requests": len(samples),
        "failed": 0,
        "ttft_p50_seconds": round(ok[len(ok) // 2], 2),
        "ttft_p99_seconds": round(ok[int(0.99 * (len(ok) - 1))], 2),
    }

    # 3. Load stops: back to zero (stabilization, idle period, KEDA's cooldown).
    def back_to_zero() -> bool:
        replicas, ready = _replicas(cluster, namespace)
        assert (replicas, ready) == (0, 0)
        return True

    eventually(back_to_zero, timeout=240)
    reasons = {
        e["reason"]
        for e in cluster.list("Event", namespace)
        if e.get("involvedObject", {}).get("name") == NAME
    }
    assert {"ScaleUp", "ScaleDown", "MetricNames"} <= reasons, reasons
    signals = (cluster.get("InferenceDeployment", NAME, namespace) or {})["status"]["signals"]
    assert signals["metricPrefix"] == STORED_PREFIX[loop.prometheus_version], signals
    ups = [d for d in loop.timeline.decisions if d["to"] > d["from"]]
    downs = [d for d in loop.timeline.decisions if d["to"] < d["from"]]
    assert ups and downs
    # The saved timeline ends with samples of the fleet at zero.
    eventually(
        lambda: [r.ready for r in loop.timeline.rows[-2:]] == [0, 0],
        timeout=10,
        what="two timeline samples at zero",
    )
    requests.get(f"{loop.url}/metrics", timeout=5).raise_for_status()


def test_prometheus_outage_holds_replicas_and_recovers(
    loop: LiveLoop, cluster: Cluster, namespace: str
) -> None:
    assert loop.prometheus is not None
    spec = infd(loop.prometheus.url)
    spec["metadata"] = {"name": NAME, "namespace": namespace}
    spec["spec"]["replicas"] = 3
    spec["spec"]["autoscaling"].update(
        {
            "minReplicas": 1,
            "behavior": {"scaleDown": {"stabilizationWindow": "30s", "maxPercent": 100}},
        }
    )
    del spec["spec"]["autoscaling"]["scaleToZero"]
    cluster.apply(spec)

    def active(reason: str) -> bool:
        obj = cluster.get("InferenceDeployment", NAME, namespace) or {}
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
        assert conds.get("ScalingActive", {}).get("reason") == reason, conds.get("ScalingActive")
        return True

    eventually(lambda: active("ReadingMetrics"), timeout=60)
    loop.prometheus.kill()
    eventually(lambda: active("PrometheusUnavailable"), timeout=30)
    # No load at all, yet no scale-down while the signals are missing, well past the window.
    held_until = time.monotonic() + 45
    while time.monotonic() < held_until:
        assert _replicas(cluster, namespace)[0] == 3
        time.sleep(1)
    loop.prometheus.start()
    eventually(lambda: active("ReadingMetrics"), timeout=60)

    def scaled_down() -> bool:
        assert _replicas(cluster, namespace) == (1, 1)
        return True

    eventually(scaled_down, timeout=120)
    loop.timeline.notes["prometheus_outage"] = {"held_replicas": 3, "held_seconds": 45}


def test_with_the_scaler_down_the_hpa_holds_what_runs(
    loop: LiveLoop, cluster: Cluster, namespace: str
) -> None:
    """Our scaler unreachable (operator down or upgrading) with 3 replicas up and no load.
    Measured with the real KEDA 2.20.2: its `fallback` does not engage for an external scaler
    that does not answer at all, because KEDA asks GetMetricSpec before it consults fallback
    (pkg/scaling/scale_handler.go, GetScaledObjectMetrics) and an empty spec skips the trigger.
    What holds the fleet is the HPA: without its metric (ScalingActive=False,
    FailedGetExternalMetric) it does not act, so nothing scales below what runs; once the scaler
    is back KEDA is Ready and the recommendation (1) is followed."""
    import inference_operator.handlers as handlers

    assert loop.prometheus is not None
    spec = infd(loop.prometheus.url)
    spec["metadata"] = {"name": NAME, "namespace": namespace}
    spec["spec"]["replicas"] = 3
    spec["spec"]["autoscaling"].update({"minReplicas": 1})
    del spec["spec"]["autoscaling"]["scaleToZero"]
    cluster.apply(spec)

    def ready(n: int) -> bool:
        assert _replicas(cluster, namespace) == (n, n)
        return True

    def keda_ready(status: str) -> bool:
        scaled = cluster.get("ScaledObject", NAME, namespace) or {}
        conds = {c["type"]: c for c in (scaled.get("status") or {}).get("conditions") or []}
        assert (conds.get("Ready") or {}).get("status") == status, conds
        return True

    def hpa_without_metric() -> bool:
        hpa = cluster.get("HorizontalPodAutoscaler", f"keda-hpa-{NAME}", namespace) or {}
        conds = {c["type"]: c for c in (hpa.get("status") or {}).get("conditions") or []}
        assert (conds.get("ScalingActive") or {}).get("reason") == "FailedGetExternalMetric", conds
        return True

    eventually(lambda: ready(3), timeout=60)
    eventually(lambda: keda_ready("True"), timeout=30)
    handlers.stop_scaler()
    try:
        eventually(hpa_without_metric, timeout=60, what="the HPA without its metric")
        # No load, and the recommender wants 1: yet nothing scales below what runs.
        held_until = time.monotonic() + 30
        while time.monotonic() < held_until:
            assert _replicas(cluster, namespace)[0] == 3
            time.sleep(1)
    finally:
        handlers.start_scaler()
    eventually(lambda: keda_ready("True"), timeout=90, what="KEDA Ready again")
    eventually(lambda: ready(1), timeout=120)
    loop.timeline.notes["scaler_down"] = {"held_replicas": 3, "held_seconds": 30}


def test_keda_prometheus_triggers_scale_with_the_bearer_token(
    cluster: Cluster, namespace: str, keda: object, operator_running: object
) -> None:
    """`prometheusTriggers: true`: KEDA queries Prometheus itself, with the bearer token its
    TriggerAuthentication reads from the user's Secret. Prometheus sits behind a proxy that
    demands the token; the operator's own reads carry none here, so its recommender holds
    (PrometheusUnavailable) and any scale-up is KEDA's Prometheus triggers at work."""
    from doubles.bearer_proxy import BearerProxy
    from inference_operator.gateway.proxy import Limits

    wait_until_serving(cluster, namespace)
    # Up to 40 requests per replica: the excess waits inside vLLM, where the queue trigger sees it.
    limits = Limits(max_per_replica=40, max_waiting=500, queue_timeout_seconds=180)
    running = LiveLoop(namespace, NAME, limits=limits).start()
    assert running.prometheus is not None
    proxy = BearerProxy(running.prometheus.url, "s3cret-token").start()
    try:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "prom-token", "namespace": namespace},
                "stringData": {"token": "s3cret-token"},
            }
        )
        spec = infd(proxy.url)
        spec["metadata"] = {"name": NAME, "namespace": namespace}
        spec["spec"]["replicas"] = 1
        del spec["spec"]["autoscaling"]["scaleToZero"]
        spec["spec"]["autoscaling"].update(
            {
                "minReplicas": 1,
                "prometheusTriggers": True,
                "prometheus": {
                    "url": proxy.url,
                    "authSecretRef": {"name": "prom-token", "key": "token"},
                },
            }
        )
        cluster.apply(spec)

        def keda_ready() -> bool:
            scaled = cluster.get("ScaledObject", NAME, namespace) or {}
            conds = {c["type"]: c for c in (scaled.get("status") or {}).get("conditions") or []}
            assert (conds.get("Ready") or {}).get("status") == "True", conds
            types = [t["type"] for t in scaled["spec"]["triggers"]]
            assert types == ["external", "prometheus", "prometheus"], types
            return True

        eventually(keda_ready, timeout=60, what="KEDA accepts the triggers and the Secret")
        drive = running.load(NAME, [(60.0, 5.0)])
        driver = _run_in_thread(drive)

        def grew() -> bool:
            assert _replicas(cluster, namespace)[0] >= 3, _replicas(cluster, namespace)
            return True

        eventually(grew, timeout=120, what="KEDA's Prometheus triggers scale up")
        obj = cluster.get("InferenceDeployment", NAME, namespace) or {}
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
        assert conds["ScalingActive"]["reason"] == "PrometheusUnavailable", conds
        with proxy.counts.lock:
            counts = (proxy.counts.allowed, proxy.counts.wrong_token, proxy.counts.no_token)
        # KEDA's queries all carried the Secret's token; the operator's carried none.
        assert counts[0] > 0 and counts[1] == 0 and counts[2] > 0, counts
        driver.join(timeout=300)
        running.timeline.notes["prometheus_triggers"] = {"authorized_queries": counts[0]}
    finally:
        proxy.stop()
        running.stop()
