"""gRPC service from KEDA's externalscaler.proto (copied verbatim from KEDA; a unit test keeps
it identical to ../shared/upstream/keda/externalscaler.proto).

Answers come from the recommender's latest decision in memory; an operator replica that has
none (just started, or the passive one of a pair) reads the decision from the
InferenceDeployment's status, where the active replica records it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from inference_operator.scaler.decisions import DECISIONS, Decision, Decisions, Key
from inference_operator.scaling.hpa import TARGET_PER_REPLICA, metric_value

PROTO = "inference_operator/scaler/externalscaler.proto"
# grpc compiles the .proto at import (grpcio-tools): no generated code in the repository.
pb, services = grpc.protos_and_services(PROTO)

METRIC = "recommendedReplicas"
DEPLOYMENT_KEY = "inferenceDeployment"

# A decision from status: (namespace, name) -> Decision, or None when there is none.
StatusLookup = Callable[[Key], Decision | None]


def target_key(ref: Any) -> Key:
    """The InferenceDeployment a ScaledObjectRef is about (its metadata names it; the
    ScaledObject shares its name otherwise)."""
    name = ref.scalerMetadata.get(DEPLOYMENT_KEY) or ref.name
    return (ref.namespace, name)


class ExternalScaler(services.ExternalScalerServicer):  # type: ignore[misc,name-defined]
    def __init__(
        self,
        decisions: Decisions,
        from_status: StatusLookup,
        stop: threading.Event,
        stream_period: float = 5.0,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.decisions = decisions
        self.from_status = from_status
        self.stop = stop
        self.stream_period = stream_period
        self.max_age = max_age
        self.clock = clock

    def _fresh(self, key: Key) -> Decision | None:
        """The decision in memory unless it is older than max_age: a replica whose timer stopped
        (frozen by peering, wedged) must not answer KEDA from memory; status holds what the
        active replica decided since."""
        found = self.decisions.get(key)
        stale = (
            found is not None
            and self.max_age is not None
            and self.clock() - found.at > self.max_age
        )
        return None if stale else found

    def _decision(self, ref: Any, context: grpc.ServicerContext) -> Decision:
        key = target_key(ref)
        found = self._fresh(key) or self.from_status(key)
        if found is None:
            # KEDA counts this as a scaler failure: after fallback.failureThreshold it applies
            # fallback.replicas instead of guessing.
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"no recommendation yet for InferenceDeployment {key[0]}/{key[1]}",
            )
        assert found is not None
        return found

    def IsActive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.IsActiveResponse(result=self._decision(request, context).replicas > 0)

    def StreamIsActive(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        last: bool | None = None
        while context.is_active() and not self.stop.is_set():
            active = self._decision(request, context).replicas > 0
            if active != last:
                yield pb.IsActiveResponse(result=active)
                last = active
            self.decisions.wait_for_change(self.stream_period)

    def GetMetricSpec(self, request: Any, context: grpc.ServicerContext) -> Any:
        spec = pb.MetricSpec(
            metricName=METRIC,
            targetSize=int(TARGET_PER_REPLICA),
            targetSizeFloat=TARGET_PER_REPLICA,
        )
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    def GetMetrics(self, request: Any, context: grpc.ServicerContext) -> Any:
        d = self._decision(request.scaledObjectRef, context)
        value = metric_value(d.replicas, d.status_replicas, tolerance=d.tolerance)
        name = request.metricName or METRIC
        return pb.GetMetricsResponse(
            metricValues=[
                pb.MetricValue(metricName=name, metricValue=int(value), metricValueFloat=value)
            ]
        )


def server_credentials(tls_dir: Path) -> grpc.ServerCredentials:
    """TLS from a mounted Secret: tls.crt and tls.key; with ca.crt, clients (KEDA) must present
    a certificate that CA signed. Read once at start: a rotated Secret takes a restart."""
    ca = tls_dir / "ca.crt"
    return grpc.ssl_server_credentials(
        [((tls_dir / "tls.key").read_bytes(), (tls_dir / "tls.crt").read_bytes())],
        root_certificates=ca.read_bytes() if ca.exists() else None,
        require_client_auth=ca.exists(),
    )


class ScalerServer:
    """The gRPC server on its own thread pool, beside kopf's event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        from_status: StatusLookup,
        decisions: Decisions = DECISIONS,
        max_age: float | None = None,
        tls_dir: str | None = None,
    ) -> None:
        self.stop_event = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        services.add_ExternalScalerServicer_to_server(
            ExternalScaler(decisions, from_status, self.stop_event, max_age=max_age), self.server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if tls_dir is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, server_credentials(Path(tls_dir)))

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 2.0) -> None:
        self.stop_event.set()
        self.server.stop(grace).wait()
