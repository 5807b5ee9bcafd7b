"""Faults on the real control plane: the API server restarted, etcd frozen, a second operator
replica, and someone else editing a child. Each time the operator converges by itself."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubeharness import Cluster, eventually, infd, start_operator

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def deployment_replicas(cluster: Cluster, namespace: str, name: str, replicas: int) -> bool:
    dep = cluster.get("deployment", name, namespace) or {}
    assert dep.get("spec", {}).get("replicas") == replicas, dep.get("spec", {}).get("replicas")
    return True


def local(cluster: Cluster) -> Any:
    if cluster.process is None:
        pytest.skip("restarts processes of the local control plane (not a kind/remote cluster)")
    return cluster.process


def _converges_after(
    cluster: Cluster, solo: str, log: Path, fault: Callable[[], object], changes: list[Any]
) -> None:
    """An operator process reconciles `a`; `fault` happens; `changes` (applied the moment it
    ends, before the operator's watches reconnect) are all reconciled."""
    proc = start_operator(cluster, solo, log)
    try:
        cluster.apply(infd(solo, "a"))
        eventually(lambda: deployment_replicas(cluster, solo, "a", 1), timeout=60)
        fault()
        for obj in changes:
            cluster.apply(obj)
        for obj in changes:
            name, want = obj["metadata"]["name"], obj["spec"]["replicas"]
            eventually(lambda n=name, w=want: deployment_replicas(cluster, solo, n, w), timeout=90)
        assert proc.poll() is None, log.read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _reconcile_passes() -> float:
    from inference_operator import telemetry

    count = telemetry.REGISTRY.get_sample_value(
        "infop_reconcile_duration_seconds_count", {"handler": "reconcile"}
    )
    return count or 0.0


def test_api_server_restart_misses_no_update(cluster: Cluster, solo: str, tmp_path: Path) -> None:
    lc = local(cluster)
    changes = [infd(solo, "a", replicas=2), infd(solo, "b")]
    _converges_after(cluster, solo, tmp_path / "op.log", lc.restart_apiserver, changes)


def test_etcd_frozen_then_thawed_recovers(cluster: Cluster, solo: str, tmp_path: Path) -> None:
    lc = local(cluster)

    def freeze() -> None:
        lc.pause("etcd")

        def etcd_unreachable() -> bool:
            # The fault has taken effect: the API server itself reports its storage down.
            readyz = cluster.kubectl("get", "--raw", "/readyz/etcd", check=False)
            return readyz.returncode != 0

        eventually(etcd_unreachable, timeout=60, what="the API server sees etcd frozen")
        lc.resume("etcd")

    _converges_after(cluster, solo, tmp_path / "op.log", freeze, [infd(solo, "a", replicas=3)])


def test_edits_to_owned_fields_are_reverted_and_others_kept(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    cluster.apply(infd(namespace, "edited"))
    eventually(lambda: deployment_replicas(cluster, namespace, "edited", 1), timeout=60)
    # Someone scales our Deployment (a field we own) and labels it (fields we do not own).
    cluster.kubectl("scale", "deployment", "edited", "-n", namespace, "--replicas=5")
    cluster.kubectl("label", "deployment", "edited", "-n", namespace, "cost-center=ml")
    cluster.kubectl("annotate", "deployment", "edited", "-n", namespace, "team=inference")
    eventually(lambda: deployment_replicas(cluster, namespace, "edited", 1), timeout=30)
    # At least two more passes over it (the resync timer runs every 3 s here).
    passes = _reconcile_passes()
    eventually(lambda: _reconcile_passes() >= passes + 2, timeout=30, what="two more passes")
    meta = (cluster.get("deployment", "edited", namespace) or {})["metadata"]
    assert meta["labels"]["cost-center"] == "ml"
    assert meta["annotations"]["team"] == "inference"


def test_two_replicas_exactly_one_acts_and_the_other_takes_over(
    cluster: Cluster, solo: str, tmp_path: Path
) -> None:
    cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        str(ROOT / "charts/inference-operator/crds/kopf.dev_peerings.yaml"),
    )
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "infop", "namespace": solo},
    }
    cluster.apply(peering)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    env = {"INFOP_STANDALONE": "false", "INFOP_PEERING_NAME": "infop"}
    procs = [start_operator(cluster, solo, log, **env) for log in logs]
    try:

        def both_peers_listed() -> bool:
            status = (cluster.get("KopfPeering", "infop", solo) or {}).get("status") or {}
            return len(status) >= 2  # one entry per live operator; the higher priority acts

        eventually(both_peers_listed, timeout=60, what="both operators in the peering object")
        for name in ("a", "b", "c"):
            cluster.apply(infd(solo, name))
        for name in ("a", "b", "c"):
            eventually(lambda n=name: deployment_replicas(cluster, solo, n, 1), timeout=60)
        acted = [i for i, log in enumerate(logs) if "applied Deployment" in log.read_text()]
        assert len(acted) == 1, [log.read_text()[-2000:] for log in logs]
        active, passive = acted[0], 1 - acted[0]
        # The active one leaves (a rollout, a drained node): the other resumes.
        procs[active].send_signal(signal.SIGTERM)
        procs[active].wait(timeout=30)
        cluster.apply(infd(solo, "d"))
        eventually(lambda: deployment_replicas(cluster, solo, "d", 1), timeout=90)
        assert "applied Deployment d" in logs[passive].read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
