"""`make run`: the local control plane, our CRDs and the upstream ones, the operator against it,
the examples applied, and the live loop: simulated traffic through the gateway to fake vLLM
replicas, Prometheus scraping them, the operator's recommender and gRPC scaler, the real KEDA
(operator and metrics API server, hack/localkeda.py) and the HPA controller of the control plane.
A table shows replicas following the load; `kubectl get scaledobject` shows KEDA's READY and
ACTIVE.

    python hack/run_local.py [--duration SECONDS] [--no-traffic]

Stops everything it started on Ctrl-C (or after --duration, which CI uses as a smoke check).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from localcluster import LocalCluster, build_tools, free_port, install_crds

ROOT_EXAMPLE = "llama-3-8b"
KEDA_VERSION = "2.20.2"  # hack/tools/keda/go.mod
# Requests per second through the gateway, in (seconds, rate) phases: a ramp up, a plateau,
# a drop to nothing (scale-down, then to the minimum), again and again.
TRAFFIC = [(20, 0.5), (30, 2.0), (40, 5.0), (60, 8.0), (40, 3.0), (120, 0.0)]

if TYPE_CHECKING:
    from liveloop import LiveLoop

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def crd_files() -> list[Path]:
    files = sorted((ROOT / "crds").glob("*.yaml"))
    for sub in ["keda", "karpenter/aws", "prometheus-operator"]:
        files += sorted((SHARED / "upstream" / "crds" / sub).glob("*.yaml"))
    return files


HEADER = (
    f"{'time':>8} {'offered':>8} {'gateway':>8} {'vLLM':>6} {'rps':>6} {'replicas':>9} "
    f"{'desired':>8} {'ready':>6}  last decision"
)


def live_line(loop: LiveLoop) -> str:
    row = loop.sample()
    desired = "-" if row.desired is None else str(row.desired)
    status = loop.status().get("status") or {}
    reason = (status.get("recommendation") or {}).get("reason") or ""
    rps = (status.get("signals") or {}).get("requestsPerSecond")
    rps_text = "-" if rps is None else f"{rps:.1f}"
    served = sum(1 for _, s in loop.drive.results if s.ok) if loop.drive else 0
    failed = sum(1 for _, s in loop.drive.results if not s.ok) if loop.drive else 0
    return (
        f"{time.strftime('%H:%M:%S'):>8} {row.offered_rps:>6.1f}/s {row.gateway_waiting:>8.0f} "
        f"{row.vllm_waiting:>6.0f} {rps_text:>6} {row.replicas:>9} {desired:>8} "
        f"{row.ready:>6}  {reason[:60]}  [{served} ok, {failed} failed]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: never)")
    parser.add_argument("--no-traffic", action="store_true", help="no simulated load")
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        print("prometheus is not installed (apt-get install prometheus): no live loop", flush=True)
        args.no_traffic = True

    cluster = LocalCluster(build_tools()).start()
    operator: subprocess.Popen[bytes] | None = None
    loop: LiveLoop | None = None
    try:
        nodes = cluster.create_fake_nodes()
        install_crds(cluster.kubectl, crd_files(), field_manager="make-run")
        from localkeda import SCALER_AUTH, LocalKeda, scaler_tls, wait_hpa_resolves

        t0 = time.monotonic()
        LocalKeda(cluster).start()
        keda_up = time.monotonic() - t0
        wait_hpa_resolves(cluster, "infer.dev/v1alpha1", "InferenceDeployment")
        print(f"control plane up in {cluster.startup_seconds:.1f}s with {len(nodes)} fake nodes")
        print(
            f"KEDA {KEDA_VERSION} up in {keda_up:.1f}s; the HPA controller resolved "
            f"InferenceDeployment {time.monotonic() - t0 - keda_up:.1f}s later"
        )
        print(f"  export KUBECONFIG={cluster.kubeconfig}", flush=True)
        if os.environ.get("INFOP_NETNS"):
            # hack/netns.sh: loopback of its own (KEDA's adapter binds its metrics port on every
            # interface). Another shell reaches it by joining this process's network namespace.
            print(
                f"  in another shell: nsenter --net=/proc/{os.getpid()}/ns/net "
                f"kubectl --kubeconfig {cluster.kubeconfig} get infd -A",
                flush=True,
            )
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        scaler_port = free_port()
        env = {
            **os.environ,
            "INFOP_BIND_HOST": "127.0.0.1",
            "INFOP_HEALTH_PORT": "0",
            "INFOP_METRICS_PORT": "0",
            "INFOP_LOG_LEVEL": "WARNING",
            "INFOP_AUTOSCALE_SECONDS": "2",
            "INFOP_SCALER_PORT": str(scaler_port),
            "INFOP_SCALER_ADDRESS": f"127.0.0.1:{scaler_port}",
            # KEDA reaches the scaler over mutual TLS, as the chart sets it up.
            "INFOP_SCALER_TLS_DIR": str(scaler_tls(cluster)),
            "INFOP_SCALER_TRIGGER_AUTH": SCALER_AUTH,
        }
        if not args.no_traffic:
            from liveloop import LiveLoop

            # An L40S-like replica at half speed, 8 sequences at a time: ~3.5 req/s each, which
            # the operator learns (the example sets no per-replica number).
            loop = LiveLoop("default", ROOT_EXAMPLE, max_num_seqs=8, speed=0.5).start()
            assert loop.prometheus is not None
            env["INFOP_PROMETHEUS_URL"] = loop.prometheus.url
            print(f"gateway {loop.url}, prometheus {loop.prometheus.url}", flush=True)
        else:
            env["INFOP_PROMETHEUS_URL"] = f"http://127.0.0.1:{free_port()}"
        operator = subprocess.Popen([sys.executable, "-m", "inference_operator", "run"], env=env)
        for example in sorted((ROOT / "examples").glob("*.yaml")):
            cluster.kubectl("apply", "-f", str(example))
        print("applied examples/; watch them with: kubectl get infd -A -w", flush=True)
        if loop is not None:
            assert loop.gateway is not None
            while ROOT_EXAMPLE not in loop.gateway.gateway.routes:
                time.sleep(0.2)  # the gateway learns the model from the InferenceDeployment
            drive = loop.load(ROOT_EXAMPLE, TRAFFIC * 100)
            threading.Thread(target=lambda: asyncio.run(drive.run()), daemon=True).start()
            print(HEADER, flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        shown = ""
        while operator.poll() is None and (deadline is None or time.monotonic() < deadline):
            if loop is not None:
                print(live_line(loop), flush=True)
            else:
                table = cluster.kubectl("get", "infd", "-A", check=False).stdout
                # Reprint only when something other than the AGE column changed.
                key = "\n".join(line.rsplit(None, 1)[0] for line in table.splitlines() if line)
                if key != shown:
                    print(table, flush=True)
                    shown = key
            time.sleep(2)
        if operator.poll() is not None:
            print(f"operator exited with {operator.returncode}", file=sys.stderr)
            return operator.returncode or 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            operator.wait(timeout=30)
        if loop is not None:
            loop.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
