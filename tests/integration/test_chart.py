"""The Helm chart on the real control plane: lint, template judged by the API server
(server-side dry run), a real `helm install` whose operator pods run on fake nodes, and the
operator running with nothing but the chart's ServiceAccount permissions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from localcluster import build_tools, free_port

from inference_operator.gateway.fallbacks import parse_fallbacks
from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "inference-operator"
FALLBACKS = (
    'gateway.fallbacks=[{"name":"us-west-2","model":"llama","url":"https://llm.west.example.com",'
    '"secretName":"west-key","spillAfterSeconds":0},'
    '{"name":"eu","model":"llama","url":"http://eu-gw.infer.svc:80","priority":1}]'
)
VARIANTS = {
    "defaults": [],
    "everything": [
        "--set",
        "gateway.enabled=true,metrics.serviceMonitor.enabled=true,dashboard.enabled=true",
    ],
    "one-namespace-single-replica": ["--set", "watchNamespace=NS,replicaCount=1"],
    "gateway-tenants-no-admission-policy": [
        "--set",
        "gateway.enabled=true,guardrails.admissionPolicy=false",
        "--set-json",
        'gateway.tenants=[{"name":"team-a","secretName":"a-key","share":2,"maxConcurrency":8,'
        '"models":["llama"]},{"name":"team-b","secretName":"b-key","secretKey":"token"}]',
        "--set-json",
        FALLBACKS,
    ],
}


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(build_tools() / "helm"), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {res.stderr}")
    return res


@pytest.fixture
def release_ns(cluster: Cluster) -> Iterator[str]:
    name = f"solo-chart-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(name)
    # The scaler's TLS puts KEDA's client Secret in KEDA's namespace (scaler.tls.kedaNamespace).
    keda_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(keda_ns))
    yield name
    cluster.delete_namespace(name)


def test_helm_lint(cluster: Cluster) -> None:
    out = helm(cluster, "lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in out.stdout


def test_values_schema_refuses_bad_values_with_the_field(cluster: Cluster) -> None:
    bad = helm(cluster, "template", "t", str(CHART), "--set", "replicaCount=0", check=False)
    assert bad.returncode != 0 and "replicaCount" in bad.stderr
    bad = helm(cluster, "template", "t", str(CHART), "--set", "logging.level=LOUD", check=False)
    assert bad.returncode != 0 and "logging/level" in bad.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_template_is_accepted_by_the_api_server(
    cluster: Cluster, release_ns: str, variant: str
) -> None:
    args = [a.replace("NS", release_ns) for a in VARIANTS[variant]]
    rendered = helm(
        cluster, "template", "infop", str(CHART), "--namespace", release_ns, *args
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert docs
    cluster.kubectl("apply", "-f", str(CHART / "crds"), "--server-side")
    # Every namespaced template names its namespace (the release's, or KEDA's for the scaler's
    # client Secret), so no -n: kubectl refuses objects of another namespace under one.
    out = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered)
    assert out.stdout.count("serverside-applied") == len(docs), out.stdout


def test_the_fallbacks_the_chart_renders_are_what_the_gateway_reads(cluster: Cluster) -> None:
    rendered = helm(
        cluster,
        "template",
        "t",
        str(CHART),
        "--set",
        "gateway.enabled=true",
        "--set-json",
        FALLBACKS,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    (config,) = [d for d in docs if d["metadata"]["name"].endswith("-fallbacks")]
    west, eu = parse_fallbacks(config["data"]["fallbacks.yaml"])
    assert (west.name, west.spill_after_seconds, west.key_file) == (
        "us-west-2",
        0,
        "/etc/infop/fallbacks/us-west-2/api-key",
    )
    assert (eu.priority, eu.spill_after_seconds, eu.key_file) == (1, 30, None)
    (gateway,) = [
        d for d in docs if d["kind"] == "Deployment" and "gateway" in d["metadata"]["name"]
    ]
    pod = gateway["spec"]["template"]["spec"]
    assert "--fallbacks=/etc/infop/fallbacks.yaml" in pod["containers"][0]["args"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/etc/infop/fallbacks.yaml", "/etc/infop/fallbacks/us-west-2"} <= mounts


def test_helm_install_runs_the_operator_on_fake_nodes(cluster: Cluster, release_ns: str) -> None:
    helm(
        cluster,
        "install",
        "infop",
        str(CHART),
        "--namespace",
        release_ns,
        "--set",
        f"watchNamespace={release_ns},gateway.enabled=true",
    )
    try:

        def running() -> bool:
            for name in ("infop-inference-operator", "infop-inference-operator-gateway"):
                dep = cluster.get("deployment", name, release_ns) or {}
                assert (dep.get("status") or {}).get("readyReplicas") == 2, name
            return True

        eventually(running, timeout=90, what="operator and gateway pods Ready")
        pods = cluster.list("pod", release_ns, "app.kubernetes.io/component=operator")
        assert len(pods) == 2
        for pod in pods:
            assert pod["status"]["phase"] == "Running"
            sc = pod["spec"]["containers"][0]["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert cluster.get("kopfpeering", "infop-inference-operator", release_ns) is not None
    finally:
        helm(cluster, "uninstall", "infop", "--namespace", release_ns, "--wait")


def _service_account_kubeconfig(cluster: Cluster, namespace: str, sa: str, path: Path) -> Path:
    token = cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
    admin: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": sa, "user": {"token": token}}]
    for ctx in admin["contexts"]:
        ctx["context"]["user"] = sa
    path.write_text(yaml.safe_dump(admin))
    return path


def test_the_operator_works_with_only_the_charts_permissions(
    cluster: Cluster, release_ns: str, tmp_path: Path
) -> None:
    release = f"rbac{uuid.uuid4().hex[:6]}"
    rendered = helm(cluster, "template", release, str(CHART), "--namespace", release_ns).stdout
    rbac = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    cluster.kubectl("apply", "-n", release_ns, "-f", "-", input=yaml.safe_dump_all(rbac))
    sa = f"{release}-inference-operator"
    who = f"system:serviceaccount:{release_ns}:{sa}"
    # Least privilege, as the API server's authorizer sees it.
    for verb, resource in (
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("get", "configmaps"),
        ("create", "clusterroles"),
        ("delete", "nodes"),
        ("create", "pods"),
    ):
        res = cluster.kubectl("auth", "can-i", verb, resource, "-A", f"--as={who}", check=False)
        assert res.stdout.strip() == "no", (verb, resource, res.stdout)
    kubeconfig = _service_account_kubeconfig(cluster, release_ns, sa, tmp_path / "sa.kubeconfig")
    scaler, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "INFOP_NAMESPACE": release_ns,
        "INFOP_HEALTH_PORT": "0",
        "INFOP_METRICS_PORT": str(metrics),
        "INFOP_BIND_HOST": "127.0.0.1",
        "INFOP_RESYNC_SECONDS": "3",
        "INFOP_AUTOSCALE_SECONDS": "1",
        "INFOP_SCALER_PORT": str(scaler),
        "INFOP_SCALER_ADDRESS": f"127.0.0.1:{scaler}",
        # Loopback only: the default is a cluster DNS name.
        "INFOP_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
    }
    log = tmp_path / "operator.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference_operator", "run"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        cluster.apply(
            {
                "apiVersion": "infer.dev/v1alpha1",
                "kind": "InferenceDeployment",
                "metadata": {"name": "llama", "namespace": release_ns},
                "spec": {
                    "model": {
                        "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                        "tokenSecretRef": {"name": "hf-token", "key": "token"},
                    },
                    "accelerator": {"kind": "nvidia", "types": ["L40S"]},
                    "replicas": 1,
                    "nodePool": {"create": True},
                    "gateway": {"replicas": 1},
                },
            }
        )

        def everything() -> bool:
            obj = cluster.get("infd", "llama", release_ns) or {}
            conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
            # Pods wait for the NodePool's nodes (no Karpenter here): status, not Ready, is
            # the proof that the status subresource and the reads behind it are allowed.
            for kind in ("Ready", "CapacityPlanned", "ScalingActive"):
                assert kind in conds, conds
            for kind, name in (
                ("deployment", "llama"),
                ("service", "llama"),
                ("pdb", "llama"),
                ("podmonitor", "llama"),
                ("scaledobject", "llama"),
                ("deployment", "llama-gateway"),
                ("role", "llama-gateway"),
                ("rolebinding", "llama-gateway"),
            ):
                assert cluster.get(kind, name, release_ns) is not None, (kind, name)
            pools = cluster.list(
                "nodepools.karpenter.sh", None, f"infer.dev/owner-namespace={release_ns}"
            )
            assert pools, "NodePool"
            return True

        eventually(everything, timeout=90, what="every child, made with the chart's RBAC")
        # The operator's own metrics, as the chart's ServiceMonitor would scrape them.
        page = requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
        for name in (
            'infop_reconcile_duration_seconds_count{handler="reconcile"}',
            'infop_recommended_replicas{inference_deployment="llama"',
            # Applies are counted; reads come from the watch caches, not GETs.
            'infop_api_requests_total{kind="Deployment",outcome="ok",verb="apply"}',
        ):
            assert name in page, name
        cluster.kubectl("delete", "infd", "llama", "-n", release_ns, "--wait=true", "--timeout=60s")
        assert proc.poll() is None, log.read_text()[-3000:]
        text = log.read_text()
        assert "Forbidden" not in text and " 403" not in text, text[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", sa, check=False)
