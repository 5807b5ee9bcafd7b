"""`make run`: the local control plane, our CRDs and the upstream ones, and the operator against it.

    python hack/run_local.py [--duration SECONDS]

Stops everything it started on Ctrl-C (or after --duration, which CI uses as a smoke check).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from localcluster import LocalCluster, build_tools

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def crd_files() -> list[Path]:
    files = sorted((ROOT / "crds").glob("*.yaml"))
    for sub in ["keda", "karpenter/aws", "prometheus-operator"]:
        files += sorted((SHARED / "upstream" / "crds" / sub).glob("*.yaml"))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: never)")
    args = parser.parse_args()

    cluster = LocalCluster(build_tools()).start()
    operator: subprocess.Popen[bytes] | None = None
    try:
        nodes = cluster.create_fake_nodes()
        for f in crd_files():
            cluster.kubectl("apply", "--server-side", "-f", str(f))
        print(f"control plane up in {cluster.startup_seconds:.1f}s with {len(nodes)} fake nodes")
        print(f"  export KUBECONFIG={cluster.kubeconfig}", flush=True)
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "INFOP_BIND_HOST": "127.0.0.1",
            "INFOP_HEALTH_PORT": "0",
            "INFOP_METRICS_PORT": "0",
        }
        operator = subprocess.Popen([sys.executable, "-m", "inference_operator", "run"], env=env)
        for example in sorted((ROOT / "examples").glob("*.yaml")):
            cluster.kubectl("apply", "-f", str(example))
        print("applied examples/; watch them with: kubectl get infd -A -w", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        shown = ""
        while operator.poll() is None and (deadline is None or time.monotonic() < deadline):
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
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
