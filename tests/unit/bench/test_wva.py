"""The WVA baseline decides as llm-d's saturation analyzer does (internal/saturation/analyzer.go
and internal/engines/saturation/engine.go): per pod, on the peak of the last minute; spare
capacity averaged over the pods that are not saturated; pending pods read from the Deployment."""

from __future__ import annotations

from inference_operator.bench.policies import Wva
from inference_operator.bench.simulator.fleet import FleetView, Sample


def _scrape(t: float, pods: dict[str, tuple[float, int]], held: int = 0) -> Sample:
    """One scrape: (KV usage, waiting) per serving pod."""
    serving = tuple((name, kv, q) for name, (kv, q) in pods.items())
    return Sample(t, tuple(q for _, _, q in serving), serving, 0, 0, 0, 0, held)


def _wva() -> Wva:
    return Wva(kv_threshold=0.8, min_replicas=1, max_replicas=16)


def test_a_saturated_pod_is_left_out_of_the_spare_average() -> None:
    """One pod full (10 waiting), one idle: the idle pod's spare (5 waiting, 0.7 KV) is the
    average WVA compares with its triggers, so it neither adds a replica (the fleet mean, 5
    waiting per pod, would) nor removes one (that needs two unsaturated pods)."""
    view = FleetView([_scrape(60.0, {"a": (0.9, 10), "b": (0.1, 0)})], target=2, ready=2)
    assert _wva().decide(60.0, view) == 2


def test_every_pod_saturated_adds_one() -> None:
    view = FleetView([_scrape(60.0, {"a": (0.9, 10), "b": (0.85, 7)})], target=2, ready=2)
    assert _wva().decide(60.0, view) == 3


def test_the_peak_of_the_last_minute_counts() -> None:
    """max_over_time(...[1m]): a queue of 6 forty-five seconds ago saturates the pod still."""
    scrapes = [
        _scrape(15.0, {"a": (0.2, 6)}),
        _scrape(30.0, {"a": (0.2, 0)}),
        _scrape(45.0, {"a": (0.2, 0)}),
        _scrape(60.0, {"a": (0.2, 0)}),
    ]
    assert _wva().decide(60.0, FleetView(scrapes, target=1, ready=1)) == 2
    # A minute and more ago it no longer counts.
    assert _wva().decide(75.0, FleetView(scrapes, target=1, ready=1)) == 1


def test_pending_pods_are_the_deployments_not_the_last_scrapes() -> None:
    """PendingReplicas = the Deployment's replicas - Ready, live: a replica asked for since the
    last scrape blocks the next scale-up though no scrape has seen it yet."""
    view = FleetView([_scrape(60.0, {"a": (0.9, 10), "b": (0.85, 7)})], target=3, ready=2)
    assert _wva().decide(60.0, view) == 3


def test_scale_down_spreads_the_unsaturated_pods_load_over_one_fewer() -> None:
    idle = {"a": (0.1, 0), "b": (0.1, 0), "c": (0.1, 0)}
    assert _wva().decide(60.0, FleetView([_scrape(60.0, idle)], target=3, ready=3)) == 2
    # 0.45 KV on three pods is 0.675 on two: the spare (0.125) still clears 0.10; 0.5 on three
    # is 0.75 on two (spare 0.05), which does not.
    busy = {"a": (0.45, 0), "b": (0.45, 0), "c": (0.45, 0)}
    assert _wva().decide(60.0, FleetView([_scrape(60.0, busy)], target=3, ready=3)) == 2
    busier = {"a": (0.5, 0), "b": (0.5, 0), "c": (0.5, 0)}
    assert _wva().decide(60.0, FleetView([_scrape(60.0, busier)], target=3, ready=3)) == 3


def test_requests_held_at_the_gateway_count_as_waiting_in_the_pods() -> None:
    """Every baseline counts what the gateway holds for a slot: spread over the pods, 12 held
    make both pods saturated (6 waiting each)."""
    view = FleetView([_scrape(60.0, {"a": (0.3, 0), "b": (0.3, 0)}, held=12)], target=2, ready=2)
    assert _wva().decide(60.0, view) == 3


def test_no_pod_metrics_yet_is_no_decision() -> None:
    """A pod Ready since the last scrape has no series yet: WVA's analyzer, given no replica
    metrics, neither scales up nor down (the spare average over no pods is not 'saturated')."""
    view = FleetView([_scrape(60.0, {})], target=1, ready=1)
    assert _wva().decide(60.0, view) == 1
