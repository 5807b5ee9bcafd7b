"""The real KEDA on the local control plane, out of cluster, on loopback.

Two processes built from KEDA's Go module (hack/build-tools.sh):
* keda-operator: reconciles ScaledObjects into HPAs, scales a target between 0 and 1 itself
  (activation), applies `fallback`, and serves the metrics the HPA asks for over gRPC (mutual
  TLS, certificates from --cert-dir).
* keda-adapter: the external.metrics.k8s.io API server. kube-apiserver's aggregator proxies the
  HPA controller's metric reads to it; it asks the operator over gRPC.

How the aggregator reaches a process on loopback: the APIService points at a Service of type
ExternalName whose externalName is `localhost`, with port = the adapter's secure port. With
--enable-aggregator-routing off (the default) the aggregator dials the Service's DNS name, so the
request stays on 127.0.0.1; Endpoints could not say so (validation refuses loopback addresses).
The adapter's serving certificate carries the Service's DNS name, which the aggregator checks.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from localcluster import LocalCluster, free_port, install_crds

NAMESPACE = "keda"
SERVICE = "keda-metrics-apiserver"
API_SERVICE = "v1beta1.external.metrics.k8s.io"
PROCESSES = ("keda-operator", "keda-adapter")


@dataclass
class LocalKeda:
    cluster: LocalCluster
    adapter_port: int = 0
    grpc_port: int = 0

    def start(self, timeout: float = 120) -> LocalKeda:
        c = self.cluster
        certs = c.state / "keda-certs"
        certs.mkdir(exist_ok=True)
        c.ca("keda-ca", "keda-ca")
        # One certificate for the operator's gRPC server, the adapter as its gRPC client and the
        # adapter's HTTPS server: KEDA reads ca.crt, tls.crt and tls.key from one --cert-dir.
        crt, key = c.issue(
            "keda",
            "keda",
            "serverAuth,clientAuth",
            (
                "DNS:localhost",
                "IP:127.0.0.1",
                f"DNS:keda-operator.{NAMESPACE}.svc",
                f"DNS:{SERVICE}.{NAMESPACE}.svc",
            ),
            ca="keda-ca",
        )
        ca = c.state / "pki" / "keda-ca.crt"
        for name, src in (("ca.crt", ca), ("tls.crt", crt), ("tls.key", key)):
            (certs / name).write_bytes(src.read_bytes())

        self.grpc_port, self.adapter_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(c.kubeconfig),
            "WATCH_NAMESPACE": "",
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
            "POD_NAMESPACE": NAMESPACE,
            "OPERATOR_NAME": "keda-operator",
        }
        c.kubectl("apply", "-f", "-", input=json.dumps(self._registration(ca)))
        self._install_eventing_crds()
        c.spawn(
            "keda-operator",
            [
                str(c.bin_dir / "keda-operator"),
                f"--kubeconfig={c.kubeconfig}",
                "--leader-elect=false",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--health-probe-bind-address=127.0.0.1:{free_port()}",
                f"--metrics-service-bind-address=127.0.0.1:{self.grpc_port}",
                f"--cert-dir={certs}",
                "--enable-cert-rotation=false",
                "--enable-webhook-patching=false",
                "--enable-apiservice-patching=false",
                "--zap-log-level=info",
            ],
            env=env,
        )
        c.spawn(
            "keda-adapter",
            [
                str(c.bin_dir / "keda-adapter"),
                "--bind-address=127.0.0.1",
                f"--secure-port={self.adapter_port}",
                f"--tls-cert-file={crt}",
                f"--tls-private-key-file={key}",
                f"--cert-dir={certs}",
                f"--lister-kubeconfig={c.kubeconfig}",
                f"--authentication-kubeconfig={c.kubeconfig}",
                f"--authorization-kubeconfig={c.kubeconfig}",
                f"--metrics-service-address=127.0.0.1:{self.grpc_port}",
                "--metrics-service-grpc-authority=localhost",
                # Its Prometheus endpoint: KEDA binds ":<port>" (no address option); nothing
                # dials it.
                f"--port={free_port()}",
                "--v=0",
            ],
            env=env,
        )
        self.wait_available(timeout)
        return self

    def _install_eventing_crds(self) -> None:
        """KEDA's operator also watches its eventing kinds (CloudEventSource), which we do not
        use and ../shared/upstream does not hold: KEDA's own CRDs, from its module, same version.
        Its manager exits when a watched kind is not served within 10 s of its start, so: served
        before it starts."""
        module = Path((self.cluster.bin_dir / "keda-module-dir").read_text().strip())
        files = sorted((module / "config/crd/bases").glob("eventing.keda.sh_*.yaml"))
        install_crds(self.cluster.kubectl, files, field_manager="local-keda")

    def _registration(self, ca: Path) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                    "spec": {
                        "type": "ExternalName",
                        "externalName": "localhost",
                        "ports": [
                            {
                                "name": "https",
                                "port": self.adapter_port,
                                "targetPort": self.adapter_port,
                            }
                        ],
                    },
                },
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": API_SERVICE},
                    "spec": {
                        "group": "external.metrics.k8s.io",
                        "version": "v1beta1",
                        "service": {
                            "name": SERVICE,
                            "namespace": NAMESPACE,
                            "port": self.adapter_port,
                        },
                        "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                        "groupPriorityMinimum": 100,
                        "versionPriority": 100,
                    },
                },
            ],
        }

    def wait_available(self, timeout: float) -> None:
        """Until the aggregator says the adapter answers (APIService Available=True)."""

        def available() -> bool:
            got = self.cluster.kubectl("get", "apiservice", API_SERVICE, "-o", "json", check=False)
            conds = json.loads(got.stdout or "{}").get("status", {}).get("conditions") or []
            return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)

        self.cluster.wait(available, "keda-adapter", timeout, procs=PROCESSES)

    def running(self) -> bool:
        """Both processes still up (a KEDA that exits leaves the HPA reading nothing)."""
        return all(self.cluster.procs[n].poll() is None for n in PROCESSES)


def wait_hpa_resolves(cluster: LocalCluster, api_version: str, kind: str) -> None:
    """Until the HPA controller resolves `kind`'s /scale. Its REST mapper learns a CRD created
    after kube-controller-manager started only on a periodic refresh (~30 s): scaling from
    1 to N would wait for it. A cluster that had the CRD all along never waits."""
    probe = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "mapper-probe", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": "absent"},
            "minReplicas": 1,
            "maxReplicas": 1,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "probe"},
                        "target": {"type": "AverageValue", "averageValue": "1"},
                    },
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(probe))

    def resolved() -> bool:
        got = cluster.kubectl("get", "hpa", "mapper-probe", "-n", NAMESPACE, "-o", "json")
        conds = (json.loads(got.stdout).get("status") or {}).get("conditions") or []
        # A known kind with no such object says `... "absent" not found` instead.
        return bool(conds) and not any("no matches for kind" in c.get("message", "") for c in conds)

    cluster.wait(resolved, "kube-controller-manager", 90)
    cluster.kubectl("delete", "hpa", "mapper-probe", "-n", NAMESPACE, "--wait=false")


SCALER_AUTH = "inference-operator-scaler"


def scaler_tls(cluster: LocalCluster) -> Path:
    """Mutual TLS between KEDA and the operator's scaler, as the chart sets it up: a CA, the
    scaler's server certificate (for 127.0.0.1), KEDA's client certificate in a Secret of KEDA's
    namespace, and the ClusterTriggerAuthentication (SCALER_AUTH) that hands KEDA both. Returns
    the directory to give the operator as INFOP_SCALER_TLS_DIR (tls.crt, tls.key, ca.crt)."""
    c = cluster
    ca = c.ca("scaler-ca", "inference-operator-scaler-ca")
    crt, key = c.issue(
        "scaler", "inference-operator-scaler", "serverAuth", ("DNS:localhost", "IP:127.0.0.1"),
        ca="scaler-ca",
    )  # fmt: skip
    client_crt, client_key = c.issue("scaler-client", "keda", "clientAuth", ca="scaler-ca")
    out = c.state / "scaler-tls"
    out.mkdir(exist_ok=True)
    for name, src in (("ca.crt", ca), ("tls.crt", crt), ("tls.key", key)):
        (out / name).write_bytes(src.read_bytes())

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    keys = {"ca.crt": "caCert", "tls.crt": "tlsClientCert", "tls.key": "tlsClientKey"}
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{SCALER_AUTH}-client", "namespace": NAMESPACE},
            "type": "Opaque",
            "data": {"ca.crt": b64(ca), "tls.crt": b64(client_crt), "tls.key": b64(client_key)},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ClusterTriggerAuthentication",
            "metadata": {"name": SCALER_AUTH},
            "spec": {
                "secretTargetRef": [
                    {"parameter": param, "name": f"{SCALER_AUTH}-client", "key": key}
                    for key, param in keys.items()
                ]
            },
        },
    ]
    c.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    return out
