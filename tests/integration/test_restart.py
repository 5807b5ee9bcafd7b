"""The operator as a process, SIGKILLed in the middle of reconciling and started again:
everything converges, with no duplicate and no orphaned object."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubeharness import Cluster, eventually, start_operator

pytestmark = pytest.mark.integration


def infd(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"uri": f"hf://org/{name}"},
            "accelerator": {"kind": "nvidia", "types": ["p5.48xlarge"]},
            "replicas": 0,
        },
    }


def test_sigkill_mid_reconcile_then_restart_converges(
    cluster: Cluster, solo: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    names = [f"m{i}" for i in range(40)]
    first = start_operator(cluster, solo, log)
    try:
        for n in names:
            cluster.apply(infd(solo, n))
        # Kill it as soon as it has started writing children, so some are half done.
        eventually(
            lambda: cluster.list("deployments", solo), timeout=60, interval=0.05, what="first child"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        half = len(cluster.list("services", solo))
        second = start_operator(cluster, solo, log)
        try:

            def converged() -> bool:
                objs = cluster.list("infd", solo)
                return len(objs) == len(names) and all(
                    any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in (o.get("status") or {}).get("conditions", [])
                    )
                    for o in objs
                )

            try:
                eventually(converged, timeout=120, what="all Ready after restart")
            except AssertionError:
                for o in cluster.list("infd", solo)[:2]:
                    print(o["metadata"].get("annotations"), o.get("status"))
                print(log.read_text(errors="replace")[-3000:])
                raise
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    uids = {o["metadata"]["uid"] for o in cluster.list("infd", solo)}
    for kind in ("deployments", "services", "pdb"):
        items = cluster.list(kind, solo)
        owners = Counter(i["metadata"]["ownerReferences"][0]["uid"] for i in items)
        assert set(owners) == uids, kind  # nothing orphaned, nothing missing
        assert set(owners.values()) == {1}, kind  # nothing twice
    print(f"{half}/{len(names)} Services existed when the first operator was killed")
    assert half < len(names), "the kill came too late to interrupt anything"
