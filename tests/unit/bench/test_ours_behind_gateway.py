"""Ours in the bench reads what the operator reads: from the fleet queries, with a gateway in the
path its count of requests received, without one only the replicas' counters; from the
Deployment, the Ready count."""

from __future__ import annotations

from inference_operator.bench.policies import Ours
from inference_operator.bench.product import product_policy, product_spec
from inference_operator.bench.simulator.fleet import FleetView, Sample
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S


def _view() -> FleetView:
    # 600 requests reached the fleet over the minute; 240 finished (a backlog builds).
    def at(t: float, arrivals: int, completions: int) -> Sample:
        return Sample(t, (0,), (("replica-0", 0.5, 0),), 10, arrivals, completions, 0, 0)

    return FleetView([at(0.0, 0, 0), at(60.0, 600, 240)], target=1, ready=1)


def test_behind_a_gateway_arrivals_are_its_count_of_requests_received() -> None:
    policy = product_policy(product_spec(LLAMA3_8B_L40S, 1, 8))
    behind = Ours(policy, gateway=True).observe(60.0, _view())
    assert behind is not None and behind.arrival_rps == 10.0
    direct = Ours(policy).observe(60.0, _view())
    assert direct is not None and direct.arrival_rps is None and direct.completion_rps == 4.0


def test_ready_and_starting_are_the_deployments_not_the_last_scrapes() -> None:
    """The operator reads Ready from the Deployment's status and counts as starting what the
    scale target asks for beyond it (handlers/autoscale.py), live; only the vLLM signals come
    from Prometheus. Two replicas just asked for are starting at once, and a pod Ready since
    the last scrape is Ready, though the scrape says neither."""
    policy = product_policy(product_spec(LLAMA3_8B_L40S, 1, 8))
    view = _view()
    view.target, view.ready = 4, 2
    seen = Ours(policy).observe(60.0, view)
    assert seen is not None
    assert (seen.current_replicas, seen.ready_replicas, seen.starting_replicas) == (4, 2, 2)
