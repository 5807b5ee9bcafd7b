"""Operator cost on the local control plane (a benchmark, not a test). Prints:

- apply -> Deployment, Service and PDB all exist: p50/p95 over N InferenceDeployments;
- write calls the operator makes during a no-op resync period (target: zero), from the
  API server's audit log, which records the operator's own identity;
- the operator process's peak RSS with M InferenceDeployments.

    python hack/bench_operator.py [--latency 50] [--scale 200] [--resync 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from localcluster import LocalCluster, build_tools

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "upstream" / "crds"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def infd(name: str, namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"uri": f"hf://org/{name}"},
            "accelerator": {"kind": "nvidia", "perReplica": 1},
            "replicas": 0,
        },
    }


def names_of(cluster: LocalCluster, kind: str, namespace: str) -> set[str]:
    out = cluster.kubectl("get", kind, "-n", namespace, "-o", "name").stdout.split()
    return {o.split("/", 1)[1] for o in out}


def audit_writes(path: Path, since: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e.get("verb") not in WRITES:
            continue
        t = time.mktime(time.strptime(e["requestReceivedTimestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
        if t - time.timezone < since:
            continue
        key = f"{e['verb']} {e['objectRef'].get('resource')}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def rss_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    vals = {
        k: float(v.split()[0]) / 1024
        for k, v in (line.split(":", 1) for line in status.splitlines() if line.startswith("Vm"))
    }
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--latency", type=int, default=50)
    p.add_argument("--scale", type=int, default=200)
    p.add_argument("--resync", type=float, default=10.0)
    args = p.parse_args()
    cluster = LocalCluster(build_tools()).start()
    operator = None
    try:
        cluster.create_fake_nodes()
        crds = [
            *sorted((ROOT / "crds").glob("*.yaml")),
            *sorted((SHARED / "prometheus-operator").glob("*.yaml")),
        ]
        for f in crds:
            cluster.kubectl("apply", "--server-side", "-f", str(f))
        cluster.kubectl("wait", "--for=condition=Established", *[f"-f={f}" for f in crds])
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.state / "operator.kubeconfig"),
            "INFOP_RESYNC_SECONDS": str(args.resync),
            "INFOP_HEALTH_PORT": "0",
            "INFOP_LOG_LEVEL": "WARNING",
            "INFOP_METRICS_PORT": "0",
            "INFOP_SCALER_PORT": "0",
            # Loopback only: the default is a cluster DNS name.
            "INFOP_PROMETHEUS_URL": "http://127.0.0.1:9",
        }
        log = (cluster.state / "operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "inference_operator", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(3)

        ns = "bench-latency"
        cluster.kubectl("create", "namespace", ns)
        latencies = []
        for i in range(args.latency):
            name = f"m{i:03d}"
            t0 = time.monotonic()
            cluster.kubectl("apply", "-f", "-", input=json.dumps(infd(name, ns)))
            while not all(name in names_of(cluster, k, ns) for k in ("deploy", "svc", "pdb")):
                time.sleep(0.02)
            latencies.append(time.monotonic() - t0)
        q = statistics.quantiles(latencies, n=20)
        print(
            f"apply -> children exist over {args.latency}: p50 {statistics.median(latencies):.2f}s"
            f" p95 {q[18]:.2f}s (includes kubectl start-up, ~0.1s)"
        )

        for i in range(args.scale - args.latency):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(infd(f"s{i:03d}", ns)))
        deadline = time.monotonic() + 600
        while len(names_of(cluster, "deploy", ns)) < args.scale and time.monotonic() < deadline:
            time.sleep(1)
        print(f"{len(names_of(cluster, 'deploy', ns))}/{args.scale} reconciled")
        # Let every first status write settle, then watch a quiet period of resyncs.
        time.sleep(2 * args.resync + 5)
        quiet_from = time.time()
        time.sleep(3 * args.resync)
        writes = audit_writes(cluster.state / "audit.log", quiet_from)
        setup = audit_writes(cluster.state / "audit.log", 0.0)
        print(
            f"(the audit log saw {sum(setup.values())} operator writes in all, while "
            f"creating: {setup})"
        )
        print(
            f"writes by the operator during {3 * args.resync:.0f}s of no-op resyncs "
            f"({args.scale} objects, ~{3 * args.scale} resync passes): "
            f"{sum(writes.values())} {writes}"
        )
        rss, peak = rss_mib(operator.pid)
        print(
            f"operator RSS with {args.scale} InferenceDeployments: {rss:.0f} MiB "
            f"(peak {peak:.0f} MiB)"
        )
        return 0
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
