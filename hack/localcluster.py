"""A real Kubernetes control plane on loopback, for tests and `make run`.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built from their Go modules
by hack/build-tools.sh. Everything binds to 127.0.0.1 on random free ports, state lives in a
temporary directory, and `stop()` kills only the processes this object started.

kwok turns the fake nodes created by `create_fake_nodes()` Ready and makes pods scheduled onto them
Running and Ready. Pod IPs are fake (kwok's --cidr): nothing may ever connect to them.

Use as a library (tests/conftest.py) or from the shell:
    python hack/localcluster.py up        # prints `export KUBECONFIG=...`, runs until Ctrl-C
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HACK = Path(__file__).resolve().parent

# kwok ships no stages in its binary; these come from its module (read at run time, never copied).
KWOK_STAGES = [
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
]

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
REGION = "us-east-1"


@dataclass(frozen=True)
class FakeNodeType:
    instance_type: str
    cpu: str
    memory: str
    devices: dict[str, str]
    labels: dict[str, str]
    taints: list[dict[str, str]]


_NVIDIA_TAINT = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
_NEURON_TAINT = [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}]


def _gpu(family: str, gpu: str, count: int, mem_mib: int) -> dict[str, str]:
    return {
        "karpenter.k8s.aws/instance-family": family,
        "karpenter.k8s.aws/instance-gpu-name": gpu,
        "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
        "karpenter.k8s.aws/instance-gpu-count": str(count),
        "karpenter.k8s.aws/instance-gpu-memory": str(mem_mib),
        "nvidia.com/gpu.present": "true",
    }


# Real EC2 shapes (vCPU, memory, accelerators) so scheduling behaves like EKS.
NODE_TYPES = [
    FakeNodeType(
        "p5.48xlarge",
        "192",
        "2048Gi",
        {"nvidia.com/gpu": "8"},
        _gpu("p5", "h100", 8, 81920),
        _NVIDIA_TAINT,
    ),
    FakeNodeType(
        "g6e.xlarge",
        "4",
        "32Gi",
        {"nvidia.com/gpu": "1"},
        _gpu("g6e", "l40s", 1, 45776),
        _NVIDIA_TAINT,
    ),
    FakeNodeType(
        "g6e.12xlarge",
        "48",
        "384Gi",
        {"nvidia.com/gpu": "4"},
        _gpu("g6e", "l40s", 4, 45776),
        _NVIDIA_TAINT,
    ),
    FakeNodeType(
        "g5.xlarge",
        "4",
        "16Gi",
        {"nvidia.com/gpu": "1"},
        _gpu("g5", "a10g", 1, 22888),
        _NVIDIA_TAINT,
    ),
    FakeNodeType(
        "inf2.xlarge",
        "4",
        "16Gi",
        {"aws.amazon.com/neuron": "1", "aws.amazon.com/neuroncore": "2"},
        {
            "karpenter.k8s.aws/instance-family": "inf2",
            "karpenter.k8s.aws/instance-accelerator-name": "inferentia",
            "karpenter.k8s.aws/instance-accelerator-manufacturer": "aws",
            "karpenter.k8s.aws/instance-accelerator-count": "1",
        },
        _NEURON_TAINT,
    ),
    FakeNodeType(
        "inf2.48xlarge",
        "192",
        "768Gi",
        {"aws.amazon.com/neuron": "12", "aws.amazon.com/neuroncore": "24"},
        {
            "karpenter.k8s.aws/instance-family": "inf2",
            "karpenter.k8s.aws/instance-accelerator-name": "inferentia",
            "karpenter.k8s.aws/instance-accelerator-manufacturer": "aws",
            "karpenter.k8s.aws/instance-accelerator-count": "12",
        },
        _NEURON_TAINT,
    ),
    FakeNodeType("m6i.2xlarge", "8", "32Gi", {}, {"karpenter.k8s.aws/instance-family": "m6i"}, []),
]


def fake_node(kind: FakeNodeType, zone: str, index: int, capacity_type: str = "on-demand") -> dict:
    name = f"{kind.instance_type.replace('.', '-')}-{zone}-{index}"
    resources = {"cpu": kind.cpu, "memory": kind.memory, "pods": "110", **kind.devices}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": kind.instance_type,
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": REGION,
                "karpenter.sh/capacity-type": capacity_type,
                **kind.labels,
            },
        },
        "spec": {"taints": kind.taints},
        "status": {"allocatable": resources, "capacity": resources},
    }


def default_fake_nodes() -> list[dict]:
    """One node of every type in every zone: 21 nodes, NVIDIA, Neuron and CPU."""
    return [fake_node(kind, zone, 0) for kind in NODE_TYPES for zone in ZONES]


def install_crds(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    files: Sequence[Path],
    field_manager: str,
) -> None:
    """Apply CRDs and wait until every kind lists. Established is not served: a new CRD's
    storage answers 429 "storage is (re)initializing" for a while, and an operator whose kopf
    indexes list it then, or a KEDA that watches it, stalls or exits."""
    for f in files:
        kubectl("apply", "--server-side", f"--field-manager={field_manager}", "-f", str(f))
    if not files:
        return
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"-f={f}" for f in files])
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            plural = f"{doc['spec']['names']['plural']}.{doc['spec']['group']}"
            deadline = time.monotonic() + 120
            while kubectl("get", plural, "-A", "--request-timeout=5s", check=False).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{plural} not served within 120s")
                time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_tools() -> Path:
    """Run hack/build-tools.sh (a no-op on a warm cache) and return the bin directory."""
    out = subprocess.run(
        ["bash", str(HACK / "build-tools.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


@dataclass
class LocalCluster:
    bin_dir: Path
    state: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="infop-cluster-")))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = 0
    etcd_port: int = 0
    token: str = ""
    operator_token: str = ""
    hpa_sync_seconds: int = 3

    @property
    def kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        t0 = time.monotonic()
        self._pki()
        self._start_etcd()
        self._start_apiserver()
        self._start_controllers()
        self._start_kwok()
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if not os.environ.get("INFOP_KEEP_STATE"):
            shutil.rmtree(self.state, ignore_errors=True)

    # --- faults, for the reliability tests ------------------------------------------------
    def restart_apiserver(self) -> float:
        """Kill kube-apiserver (a crash: a graceful stop waits a minute for open watches) and
        start it again on the same port; seconds until it is ready."""
        proc = self.procs.pop("kube-apiserver")
        proc.kill()
        proc.wait(timeout=30)
        t0 = time.monotonic()
        self._start_apiserver()
        return time.monotonic() - t0

    def pause(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGCONT)

    # --- pieces ----------------------------------------------------------------------------
    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process this cluster owns: logged to <state>/<name>.log, stopped by stop()."""
        log = open(self.state / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.state / "pki")

    def ca(self, name: str, cn: str) -> Path:
        """A self-signed CA in the PKI directory: <name>.crt and <name>.key."""
        self._openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        return self.state / "pki" / f"{name}.crt"

    def issue(
        self, name: str, cn: str, usage: str, sans: tuple[str, ...] = (), ca: str = "ca"
    ) -> tuple[Path, Path]:
        """A certificate signed by `ca` for `usage` (serverAuth, clientAuth or both, comma
        separated) with subject alternative names like DNS:x or IP:y: (<name>.crt, <name>.key)."""
        ext = (
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
        )
        if sans:
            ext += f"subjectAltName={','.join(sans)}\n"
        pki = self.state / "pki"
        (pki / f"{name}.ext").write_text(ext)
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        )  # fmt: skip
        return pki / f"{name}.crt", pki / f"{name}.key"

    def _pki(self) -> None:
        pki = self.state / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        self.ca("ca", "inference-operator-test-ca")
        self.issue(
            "apiserver",
            "kube-apiserver",
            "serverAuth",
            ("DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
             "DNS:kubernetes.default.svc", "IP:127.0.0.1"),
        )  # fmt: skip
        # The aggregation layer: kube-apiserver proxies to extension API servers (KEDA's metrics
        # server) as front-proxy-client, and they trust the user it names through this CA.
        self.ca("front-proxy-ca", "front-proxy-ca")
        self.issue("front-proxy-client", "front-proxy-client", "clientAuth", ca="front-proxy-ca")
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        self.token = secrets.token_hex(32)
        self.operator_token = secrets.token_hex(32)
        # A second identity for the operator when it runs as a process, so the audit log can
        # tell its requests from the tests'.
        (pki / "tokens.csv").write_text(
            f"{self.token},admin,admin-uid,system:masters\n"
            f"{self.operator_token},inference-operator,operator-uid,system:masters\n"
        )
        (self.state / "audit-policy.yaml").write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
            # The operator's writes with their bodies (tests search them for leaked secrets),
            # its reads as metadata; nobody else's.
            "rules:\n"
            "- level: Request\n  users: [inference-operator]\n  verbs: [create, update, patch]\n"
            "- level: Metadata\n  users: [inference-operator]\n"
            "- level: None\n"
        )

    def _start_etcd(self) -> None:
        self.etcd_port, peer = free_port(), free_port()
        client, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer}"
        self.spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=node0",
                f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=node0={peer_url}",
                "--unsafe-no-fsync",
                "--listen-metrics-urls=",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self.wait(lambda: self._http_ok(f"{client}/health"), "etcd", 30)

    def _start_apiserver(self) -> None:
        pki = self.state / "pki"
        if not self.api_port:
            self.api_port = free_port()
        self.spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                # A loopback advertise address is refused by the endpoint reconcilers; nothing
                # dials the `kubernetes` Service here, so no reconciler is needed.
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={self.state / 'audit-policy.yaml'}",
                f"--audit-log-path={self.state / 'audit.log'}",
                "--audit-log-format=json",
                "--audit-log-maxsize=500",
                "--v=0",
            ],
        )
        self._write_kubeconfig()
        self.wait(lambda: self._http_ok(f"{self.server}/readyz", auth=True), "kube-apiserver", 90)

    def _write_kubeconfig(self) -> None:
        ca = self.state / "pki" / "ca.crt"
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(ca)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))
        cfg["users"] = [{"name": "admin", "user": {"token": self.operator_token}}]
        (self.state / "operator.kubeconfig").write_text(json.dumps(cfg, indent=2))

    def _start_controllers(self) -> None:
        kc = str(self.kubeconfig)
        common = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        self.spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                *common,
                f"--secure-port={free_port()}",
                "--controllers=*",
                "--use-service-account-credentials=false",
                f"--root-ca-file={self.state / 'pki' / 'ca.crt'}",
                f"--service-account-private-key-file={self.state / 'pki' / 'sa.key'}",
                "--cluster-name=inference-operator-test",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                # Fake nodes never run pods for real; give evictions no reason to fire in tests.
                "--node-monitor-grace-period=120s",
                # The HPA controller's pass: 15 s in Kubernetes, shorter here so the e2e live
                # loop on the real KEDA -> HPA chain takes minutes, not tens of minutes.
                f"--horizontal-pod-autoscaler-sync-period={self.hpa_sync_seconds}s",
            ],
        )
        self.spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                *common,
                f"--secure-port={free_port()}",
            ],
        )
        # The serviceaccount controller creates `default` in each namespace; pods need it.
        self.wait(
            lambda: self._http_ok(
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", auth=True
            ),
            "kube-controller-manager",
            60,
        )

    def _start_kwok(self) -> None:
        module_dir = Path((self.bin_dir / "kwok-module-dir").read_text().strip())
        stages = "".join(
            "---\n" + (module_dir / "kustomize" / "stage" / s).read_text() for s in KWOK_STAGES
        )
        (self.state / "kwok-stages.yaml").write_text(stages)
        self.spawn(
            "kwok",
            [
                str(self.bin_dir / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                # Fake, never dialed: kwok only writes these into pod and node status.
                "--cidr=10.244.0.0/16",
                "--node-ip=10.244.255.1",
                f"--config={self.state / 'kwok-stages.yaml'}",
            ],
        )
        time.sleep(0.5)
        if self.procs["kwok"].poll() is not None:
            raise RuntimeError(f"kwok exited: {self.log_tail('kwok')}")

    # --- helpers ---------------------------------------------------------------------------
    def _http_ok(self, url: str, auth: bool = False) -> bool:
        req = urllib.request.Request(url)
        ctx = None
        if url.startswith("https"):
            ctx = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait(
        self, ok: Callable[[], bool], what: str, timeout: float, procs: Iterable[str] = ()
    ) -> None:
        """Poll `ok` until true; fail early if a process named `what` (or in `procs`) exits,
        with the tail of its log."""
        names = [n for n in (what, *procs) if n in self.procs]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gone = next((n for n in names if self.procs[n].poll() is not None), None)
            if gone is not None:
                raise RuntimeError(f"{gone} exited:\n{self.log_tail(gone)}")
            if ok():
                return
            time.sleep(0.2)
        tail = "\n".join(self.log_tail(n) for n in names)
        raise RuntimeError(f"{what} not ready within {timeout}s:\n{tail}")

    def log_tail(self, name: str) -> str:
        log = self.state / f"{name}.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            text=True,
            capture_output=True,
            check=check,
        )

    def create_fake_nodes(self, nodes: list[dict] | None = None) -> list[str]:
        items = nodes if nodes is not None else default_fake_nodes()
        self.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        return [n["metadata"]["name"] for n in items]


def main(argv: list[str]) -> int:
    if argv[:1] != ["up"]:
        print(__doc__)
        return 2
    cluster = LocalCluster(build_tools()).start()
    cluster.create_fake_nodes()
    print(f"control plane up in {cluster.startup_seconds:.1f}s; state in {cluster.state}")
    print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
