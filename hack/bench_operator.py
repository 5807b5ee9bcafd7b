"""Operator cost on the local control plane (a benchmark, not a test). Prints:

- apply -> Deployment, Service and PDB all exist: p50/p95 over N InferenceDeployments;
- write calls the operator makes during a no-op resync period (target: zero), from the
  API server's audit log, which records the operator's own identity;
- the operator process's peak RSS with M InferenceDeployments spread over K namespaces, its CPU
  and API requests per minute at steady state, the PromQL queries it sends per autoscale tick
  (a real Prometheus answers), and the p95 of one reconcile pass (its own
  infop_reconcile_duration_seconds histogram).

KEDA's and the prometheus-operator's CRDs are installed, so every InferenceDeployment has a
Deployment, Service, PDB, PodMonitor and ScaledObject. Periods are the operator's defaults unless
--resync is given.

    python hack/bench_operator.py [--latency 50] [--scale 500] [--namespaces 20] [--resync S]
    make bench-operator            # 5,000 over 50 namespaces
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from localcluster import LocalCluster, build_tools, free_port, install_crds
from localprom import LocalPrometheus

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


def audit_writes(path: Path, since: float, verbs: set[str] | None = WRITES) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if verbs is not None and e.get("verb") not in verbs:
            continue
        t = time.mktime(time.strptime(e["requestReceivedTimestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
        if t - time.timezone < since:
            continue
        ref = e.get("objectRef") or {}
        # Discovery (/apis, /api) has no objectRef.
        key = f"{e['verb']} {ref.get('resource') or e.get('requestURI', '?').split('?')[0]}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def rss_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    vals = {
        k: float(v.split()[0]) / 1024
        for k, v in (line.split(":", 1) for line in status.splitlines() if line.startswith("Vm"))
    }
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def allocator(pid: int) -> str:
    """Which malloc the operator runs on (heap.py may have re-executed it under jemalloc)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "jemalloc" if "libjemalloc" in maps else "the system's (glibc)"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p95_from_histogram(page: str, name: str, handler: str) -> float:
    buckets: list[tuple[float, float]] = []
    for line in page.splitlines():
        if line.startswith(f"{name}_bucket{{") and f'handler="{handler}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    total = buckets[-1][1] if buckets else 0.0
    return next((le for le, n in buckets if n >= 0.95 * total), float("nan"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--latency", type=int, default=50)
    p.add_argument("--scale", type=int, default=500)
    p.add_argument("--namespaces", type=int, default=20)
    p.add_argument("--resync", type=float, default=None, help="default: the operator's (60 s)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="then restart the operator and report its RSS once it has resumed every object",
    )
    p.add_argument(
        "--memray",
        metavar="FILE",
        help="run the operator under memray (pip install memray) and write its capture here; "
        "`memray summary FILE` then names what holds the memory",
    )
    args = p.parse_args()
    cluster = LocalCluster(build_tools()).start()
    prometheus = LocalPrometheus([], interval="15s").start()
    resync = args.resync or 60.0
    autoscale = 15.0
    operator = None
    try:
        cluster.create_fake_nodes()
        crds = [
            *sorted((ROOT / "crds").glob("*.yaml")),
            *sorted((SHARED / "prometheus-operator").glob("*.yaml")),
            *sorted((SHARED / "keda").glob("*.yaml")),
        ]
        install_crds(cluster.kubectl, crds, field_manager="bench")
        metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.state / "operator.kubeconfig"),
            **({"INFOP_RESYNC_SECONDS": str(args.resync)} if args.resync else {}),
            "INFOP_HEALTH_PORT": "0",
            "INFOP_LOG_LEVEL": "WARNING",
            "INFOP_METRICS_PORT": str(metrics_port),
            "INFOP_BIND_HOST": "127.0.0.1",
            "INFOP_SCALER_PORT": "0",
            # A real Prometheus (with no vLLM series): every query answers.
            "INFOP_PROMETHEUS_URL": prometheus.url,
            # memray traces the process it starts: no re-execution under jemalloc then.
            **({"INFOP_ALLOCATOR": "system"} if args.memray else {}),
        }
        log = (cluster.state / "operator.log").open("wb")
        profiler = ["-m", "memray", "run", "--force", "-o", args.memray] if args.memray else []

        def start_operator() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, *profiler, "-m", "inference_operator", "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        operator = start_operator()
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

        spaces = [ns] + [f"bench-{k:02d}" for k in range(1, args.namespaces)]
        for space in spaces[1:]:
            cluster.kubectl("create", "namespace", space)
        t0 = time.monotonic()
        rest = [
            infd(f"s{i:03d}", spaces[i % len(spaces)]) for i in range(args.scale - args.latency)
        ]
        for start in range(0, len(rest), 100):
            batch = {"apiVersion": "v1", "kind": "List", "items": rest[start : start + 100]}
            cluster.kubectl("apply", "-f", "-", input=json.dumps(batch))
        applied = time.monotonic() - t0
        deadline = time.monotonic() + 3600

        def reconciled() -> int:
            # Status written by a first pass: observedGeneration and Ready (ScaledToZero).
            out = cluster.kubectl(
                "get",
                "infd",
                "-A",
                "-o",
                "jsonpath={range .items[*]}{.status.observedGeneration}"
                "{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}",
            ).stdout.split()
            return sum(1 for line in out if line == "1True")

        while reconciled() < args.scale and time.monotonic() < deadline:
            time.sleep(5)
        print(
            f"{reconciled()}/{args.scale} reconciled (status Ready) over {len(spaces)} "
            f"namespaces, {time.monotonic() - t0:.0f}s after the first batch was applied "
            f"(applying took {applied:.0f}s)"
        )
        # Let every first status write settle, then watch a quiet period of resyncs.
        time.sleep(2 * resync + 5)
        quiet_from = time.time()
        page0 = _metrics(metrics_port)
        cpu0, wall0 = cpu_seconds(operator.pid), time.monotonic()
        time.sleep(3 * resync)
        quiet = time.monotonic() - wall0
        cpu = (cpu_seconds(operator.pid) - cpu0) / quiet
        queries = _sample(_metrics(metrics_port), "infop_prometheus_queries_total") - _sample(
            page0, "infop_prometheus_queries_total"
        )
        writes = audit_writes(cluster.state / "audit.log", quiet_from)
        calls = audit_writes(cluster.state / "audit.log", quiet_from, verbs=None)
        minutes = 3 * resync / 60
        setup = audit_writes(cluster.state / "audit.log", 0.0)
        print(
            f"(the audit log saw {sum(setup.values())} operator writes in all, while "
            f"creating: {setup})"
        )
        print(
            f"writes by the operator during {3 * resync:.0f}s of no-op resyncs "
            f"({args.scale} objects, ~{3 * args.scale} resync passes): "
            f"{sum(writes.values())} {writes}"
        )
        print(
            f"Prometheus queries: {queries:.0f} in {quiet:.0f}s = "
            f"{queries / (quiet / autoscale):.1f} per {autoscale:.0f}-s tick "
            f"for {args.scale} models"
        )
        rss, peak = rss_mib(operator.pid)
        print(
            f"operator RSS with {args.scale} InferenceDeployments: {rss:.0f} MiB "
            f"(peak {peak:.0f} MiB; target < 600 MiB)"
        )
        print(
            f"steady state: CPU {100 * cpu:.0f}% of one core, API requests "
            f"{sum(calls.values()) / minutes:.0f}/min "
            f"({', '.join(f'{k} {v / minutes:.0f}' for k, v in sorted(calls.items()))})"
        )
        page = _metrics(metrics_port)
        for handler in ("reconcile", "autoscale"):
            p95 = p95_from_histogram(page, "infop_reconcile_duration_seconds", handler)
            print(f"p95 of one {handler} pass: <= {p95:g}s (histogram bucket)")
        if args.restart:
            # A restarted operator lists what exists instead of living through its creation.
            operator.terminate()
            operator.wait(timeout=60)
            t1 = time.monotonic()
            operator = start_operator()

            def resumed() -> float:
                try:
                    page = _metrics(metrics_port)
                except OSError:
                    return 0.0
                return _sample(page, 'infop_reconcile_duration_seconds_count{handler="reconcile"}')

            while resumed() < args.scale and time.monotonic() < deadline:
                if operator.poll() is not None:
                    raise SystemExit(f"the restarted operator exited ({operator.returncode})")
                time.sleep(2)
            took = time.monotonic() - t1
            print(f"restarted operator: a pass over all {args.scale} in {took:.0f}s")
            time.sleep(resync + autoscale)
            rss, peak = rss_mib(operator.pid)
            print(f"restarted operator RSS: {rss:.0f} MiB (peak {peak:.0f} MiB)")
        print(f"allocator: {allocator(operator.pid)}")
        return 0
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        prometheus.stop()
        cluster.stop()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        return str(r.read().decode())


def _sample(page: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in page.splitlines() if line.startswith(name))


if __name__ == "__main__":
    sys.exit(main())
