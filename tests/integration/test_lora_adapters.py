"""LoRA adapters added to and removed from a running InferenceDeployment on the real control
plane: the operator loads and unloads them on every Ready replica without a rollout, and says
where each is loaded in status.adapters.

The replicas are fake vLLMs with LoRA on (tests/doubles), each listening on its pod's own IP:
in this test's network namespace kwok's pod CIDR is made local, so the operator reaches a
replica exactly as it would in a cluster, at the pod's IP on the vLLM port.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kubeharness
from doubles.fake_pods import FakePods
from kubeharness import Cluster, eventually

POD_CIDR = "10.244.0.0/16"  # hack/localcluster.py: kwok's --cidr
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("INFOP_NETNS") != "1",
        reason="needs a network namespace of its own (hack/netns.sh) to make pod IPs local",
    ),
]
NAME = "lora"


@pytest.fixture
def pods_on_their_ips(namespace: str, tmp_path: Path) -> Iterator[FakePods]:
    subprocess.run(["ip", "route", "replace", "local", POD_CIDR, "dev", "lo"], check=True)
    pods = FakePods(
        namespace, f"infer.dev/deployment={NAME}", tmp_path / "sd.json", on_pod_ip=True
    ).start()
    try:
        yield pods
    finally:
        pods.stop()
        subprocess.run(["ip", "route", "del", "local", POD_CIDR, "dev", "lo"], check=False)


def adapters(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    obj = cluster.get("infd", NAME, namespace) or {}
    return list((obj.get("status") or {}).get("adapters") or [])


def test_adapters_are_loaded_and_unloaded_on_running_replicas_without_a_rollout(
    cluster: Cluster, namespace: str, operator_running: object, pods_on_their_ips: FakePods
) -> None:
    pods = pods_on_their_ips
    spec: dict[str, Any] = {
        "replicas": 2,
        "adapters": [{"name": "sql", "uri": "hf://org/sql-lora"}],
        "lora": {"maxLoras": 2},
    }
    cluster.apply(kubeharness.infd(namespace, NAME, **spec))

    def on_both(want: dict[str, str]) -> bool:
        now = pods.adapters()
        return len(now) == 2 and all(a == want for a in now.values())

    def status_says_on_both(name: str) -> None:
        want = [{"name": name, "loaded": 2, "replicas": 2}]
        eventually(lambda: adapters(cluster, namespace) == want, timeout=30, what=f"status: {want}")

    eventually(lambda: on_both({"sql": "org/sql-lora"}), timeout=90, what="sql on 2 replicas")
    status_says_on_both("sql")
    deployment = cluster.get("deployment", NAME, namespace)
    assert deployment is not None
    generation = deployment["metadata"]["generation"]
    replicas = set(pods.adapters())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--enable-lora" in container["args"]

    # Add one at run time: loaded on the same replicas, no new pods.
    spec["adapters"] = [*spec["adapters"], {"name": "legal", "uri": "hf://org/legal-lora"}]
    cluster.apply(kubeharness.infd(namespace, NAME, **spec))
    eventually(
        lambda: on_both({"sql": "org/sql-lora", "legal": "org/legal-lora"}),
        timeout=30,
        what="legal loaded beside sql",
    )
    # Remove one: unloaded everywhere.
    spec["adapters"] = [{"name": "legal", "uri": "hf://org/legal-lora"}]
    cluster.apply(kubeharness.infd(namespace, NAME, **spec))
    eventually(lambda: on_both({"legal": "org/legal-lora"}), timeout=30, what="sql unloaded")
    status_says_on_both("legal")
    after = cluster.get("deployment", NAME, namespace)
    assert after is not None and after["metadata"]["generation"] == generation
    assert set(pods.adapters()) == replicas  # the same pods throughout

    # One that cannot load: said in status and in an Event, and the others stay.
    spec["adapters"] = [*spec["adapters"], {"name": "broken", "uri": "hf://org/missing-lora"}]
    cluster.apply(kubeharness.infd(namespace, NAME, **spec))

    def broken_reported() -> dict[str, Any] | None:
        by_name = {a["name"]: a for a in adapters(cluster, namespace)}
        b = by_name.get("broken") or {}
        return b if b.get("loaded") == 0 and "No adapter found" in b.get("error", "") else None

    eventually(broken_reported, timeout=30, what="broken reported")
    assert on_both({"legal": "org/legal-lora"})
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "AdapterLoadFailed" in events and "broken" in events
