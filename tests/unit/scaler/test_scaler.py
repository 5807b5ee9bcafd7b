"""The KEDA external scaler over real gRPC on loopback, called the way KEDA calls it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from inference_operator.scaler.decisions import Decision, Decisions, Key
from inference_operator.scaler.server import METRIC, ScalerServer, pb, services
from inference_operator.scaling.hpa import hpa_replicas

ROOT = Path(__file__).resolve().parents[3]
UPSTREAM = ROOT.parent / "shared/upstream/keda/externalscaler.proto"


def test_the_proto_is_kedas_own() -> None:
    ours = ROOT / "operator/inference_operator/scaler/externalscaler.proto"
    assert ours.read_text() == UPSTREAM.read_text()


@pytest.fixture
def scaler() -> Iterator[tuple[Decisions, dict[Key, Decision], object]]:
    decisions = Decisions()
    in_status: dict[Key, Decision] = {}
    server = ScalerServer("127.0.0.1", 0, in_status.get, decisions)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield decisions, in_status, services.ExternalScalerStub(channel)
    finally:
        channel.close()
        server.stop(0)


def ref(name: str = "llama", **meta: str) -> object:
    return pb.ScaledObjectRef(name=name, namespace="serving", scalerMetadata=meta)


def test_metric_spec_is_one_unit_per_replica(scaler: tuple) -> None:  # type: ignore[type-arg]
    _, _, stub = scaler
    spec = stub.GetMetricSpec(ref()).metricSpecs
    assert [(s.metricName, s.targetSize, s.targetSizeFloat) for s in spec] == [(METRIC, 1, 1.0)]


@pytest.mark.parametrize(("recommended", "pods"), [(5, 2), (1, 4), (3, 0), (11, 10), (40, 20)])
def test_get_metrics_lands_the_hpa_on_the_recommendation(
    scaler: tuple,  # type: ignore[type-arg]
    recommended: int,
    pods: int,
) -> None:
    decisions, _, stub = scaler
    decisions.put(("serving", "llama"), Decision(recommended, pods, 0.0))
    req = pb.GetMetricsRequest(scaledObjectRef=ref(), metricName="s0-" + METRIC)
    (value,) = stub.GetMetrics(req).metricValues
    assert value.metricName == "s0-" + METRIC
    lands = hpa_replicas(value.metricValueFloat, pods)
    assert lands == recommended or (recommended > pods and lands > recommended)


def test_is_active_follows_the_decision_and_names_the_deployment_by_metadata(
    scaler: tuple,  # type: ignore[type-arg]
) -> None:
    decisions, _, stub = scaler
    decisions.put(("serving", "llama"), Decision(0, 1, 0.0))
    decisions.put(("serving", "other"), Decision(2, 1, 0.0))
    assert stub.IsActive(ref()).result is False
    assert stub.IsActive(ref("scaledobject-name", inferenceDeployment="other")).result is True


def test_without_a_decision_in_memory_it_reads_status_then_fails_cleanly(
    scaler: tuple,  # type: ignore[type-arg]
) -> None:
    _, in_status, stub = scaler
    in_status[("serving", "llama")] = Decision(3, 3, 0.0)
    assert stub.IsActive(ref()).result is True
    with pytest.raises(grpc.RpcError) as e:
        stub.IsActive(ref("unknown"))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "serving/unknown" in (e.value.details() or "")


def test_stream_is_active_pushes_each_change(scaler: tuple) -> None:  # type: ignore[type-arg]
    decisions, _, stub = scaler
    decisions.put(("serving", "llama"), Decision(0, 0, 0.0))
    stream = stub.StreamIsActive(ref())
    seen: list[bool] = []
    done = threading.Event()

    def consume() -> None:
        for msg in stream:
            seen.append(msg.result)
            if len(seen) == 2:
                done.set()
                return

    threading.Thread(target=consume, daemon=True).start()
    for _ in range(50):
        if seen:
            break
        threading.Event().wait(0.05)
    decisions.put(("serving", "llama"), Decision(2, 0, 1.0))
    assert done.wait(5), seen
    stream.cancel()
    assert seen == [False, True]


def test_a_stale_decision_gives_way_to_status_then_to_unavailable() -> None:
    """A replica whose timer stopped (frozen by peering) must not answer from memory."""
    decisions = Decisions()
    in_status: dict[Key, Decision] = {}
    now = [1000.0]
    from inference_operator.scaler.server import ExternalScaler

    scaler = ExternalScaler(
        decisions, in_status.get, threading.Event(), max_age=30.0, clock=lambda: now[0]
    )

    class Context:
        def abort(self, code: grpc.StatusCode, message: str) -> None:
            raise RuntimeError(code, message)

    decisions.put(("serving", "llama"), Decision(4, 4, 990.0))
    assert scaler.IsActive(ref(), Context()).result is True
    decisions.put(("serving", "llama"), Decision(0, 0, 990.0))
    now[0] = 1021.0  # 31 s old: stale; status says 3
    in_status[("serving", "llama")] = Decision(3, 3, 0.0)
    assert scaler.IsActive(ref(), Context()).result is True
    del in_status[("serving", "llama")]
    with pytest.raises(RuntimeError, match="no recommendation yet"):
        scaler.IsActive(ref(), Context())


@pytest.mark.parametrize("tolerance", [0.0, 0.1])
def test_get_metrics_lands_under_the_hpas_own_tolerance(
    scaler: tuple,  # type: ignore[type-arg]
    tolerance: float,
) -> None:
    decisions, _, stub = scaler
    decisions.put(("serving", "llama"), Decision(11, 10, 0.0, tolerance))
    req = pb.GetMetricsRequest(scaledObjectRef=ref(), metricName="s0-" + METRIC)
    (value,) = stub.GetMetrics(req).metricValues
    lands = hpa_replicas(
        value.metricValueFloat, 10, tolerance_up=tolerance, tolerance_down=tolerance
    )
    # Exact with tolerance 0; the least count above 10 the HPA moves to with 10%.
    assert lands == (11 if tolerance == 0 else 12)
