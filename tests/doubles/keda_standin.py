"""A stand-in for KEDA's operator and the HPA, for clusters (like the test one) without them.

Why not the real KEDA: its operator builds from its Go module, but the HPA reads KEDA's metrics
through the aggregated external.metrics.k8s.io API, which the API server reaches through a
Service and its Endpoints; Endpoints refuse loopback addresses and nothing routes a ClusterIP
here (no kube-proxy). So this plays both parts, on KEDA's schedule, against the same gRPC
scaler KEDA would call:

* KEDA: every pollingInterval, IsActive; at zero replicas an active scaler wakes the target to
  max(minReplicaCount, 1); an inactive one for cooldownPeriod takes it to zero (minReplicaCount 0).
* HPA: GetMetricSpec/GetMetrics, then the replica calculator (scaling/hpa.py, tolerance
  included), clamped to [max(minReplicaCount, 1), maxReplicaCount], written to /scale. The
  behavior policies the operator sets do not bind (the recommender's own limits are tighter).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from inference_operator.kube import apply as kube
from inference_operator.scaler.server import pb, services
from inference_operator.scaling.hpa import hpa_replicas


@dataclass(frozen=True)
class Action:
    at: float
    namespace: str
    name: str
    before: int
    after: int
    why: str


class KedaStandIn:
    def __init__(
        self,
        namespace: str | None,
        period: float | None = None,
        on_action: Callable[[Action], None] | None = None,
    ) -> None:
        self.namespace = namespace
        # None: each ScaledObject's own pollingInterval.
        self.period = period
        self.on_action = on_action
        self._stubs: dict[str, Any] = {}
        self._last_active: dict[tuple[str, str], float] = {}
        self._next: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="keda-stand-in")

    def start(self) -> KedaStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _stub(self, address: str) -> Any:
        if address not in self._stubs:
            self._stubs[address] = services.ExternalScalerStub(grpc.insecure_channel(address))
        return self._stubs[address]

    def _main(self) -> None:
        while not self._stop.wait(0.2):
            try:
                objs = kube.list_objects("keda.sh/v1alpha1", "ScaledObject", self.namespace, "")
            except (kube.ApiException, OSError):
                continue
            now = time.time()
            for so in objs:
                key = (so["metadata"]["namespace"], so["metadata"]["name"])
                if now < self._next.get(key, 0.0):
                    continue
                spec = so["spec"]
                self._next[key] = now + (self.period or float(spec.get("pollingInterval", 30)))
                # A failing scaler or API call: KEDA logs it and tries again next interval.
                with contextlib.suppress(grpc.RpcError, kube.ApiException, OSError):
                    self.step(so, now)

    def step(self, so: dict[str, Any], now: float) -> None:
        spec, meta = so["spec"], so["metadata"]
        trigger = next((t for t in spec.get("triggers") or [] if t["type"] == "external"), None)
        if trigger is None:
            return
        target = spec["scaleTargetRef"]
        api_version = target.get("apiVersion", "apps/v1")
        obj = kube.get(api_version, target["kind"], target["name"], meta["namespace"])
        if obj is None:
            return
        replicas = int(obj["spec"].get("replicas") or 0)
        status_replicas = int((obj.get("status") or {}).get("replicas") or 0)
        low = int(spec.get("minReplicaCount") or 0)
        high = int(spec.get("maxReplicaCount") or 100)
        ref = pb.ScaledObjectRef(
            name=meta["name"],
            namespace=meta["namespace"],
            scalerMetadata=dict(trigger.get("metadata") or {}),
        )
        stub = self._stub(trigger["metadata"]["scalerAddress"])
        key = (meta["namespace"], meta["name"])
        active = bool(stub.IsActive(ref, timeout=5).result)
        if active:
            self._last_active[key] = now
        if replicas == 0:
            if active:
                self._scale(obj, replicas, max(low, 1), "KEDA: scaler active, waking from zero")
            return
        idle_since = self._last_active.get(key, now)
        if not active and low == 0 and now - idle_since >= float(spec.get("cooldownPeriod", 300)):
            self._scale(obj, replicas, 0, "KEDA: scaler inactive for cooldownPeriod")
            return
        (metric_spec,) = stub.GetMetricSpec(ref, timeout=5).metricSpecs
        request = pb.GetMetricsRequest(
            scaledObjectRef=ref, metricName=f"s0-{metric_spec.metricName}"
        )
        value = sum(m.metricValueFloat for m in stub.GetMetrics(request, timeout=5).metricValues)
        proposal = hpa_replicas(value, status_replicas, target=metric_spec.targetSizeFloat)
        desired = min(high, max(max(low, 1), proposal))
        if desired != replicas:
            self._scale(
                obj, replicas, desired, f"HPA: metric {value:g} over {status_replicas} pods"
            )

    def _scale(self, obj: dict[str, Any], before: int, after: int, why: str) -> None:
        meta = obj["metadata"]
        kube.scale(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"], after)
        action = Action(time.time(), meta["namespace"], meta["name"], before, after, why)
        if self.on_action:
            self.on_action(action)
