"""The test-side handle on a cluster: the local control plane, or an existing one by kubeconfig."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from localcluster import LocalCluster, build_tools, install_crds

from inference_operator.kube.apply import apply_body


@dataclass
class Applied:
    ok: bool
    message: str
    object: dict[str, Any] | None = None


@dataclass
class Cluster:
    kubeconfig: Path
    api: client.ApiClient
    process: LocalCluster | None = None

    @classmethod
    def start_local(cls) -> Cluster:
        lc = LocalCluster(build_tools()).start()
        lc.create_fake_nodes()
        return cls(lc.kubeconfig, config.new_client_from_config(str(lc.kubeconfig)), lc)

    @classmethod
    def existing(cls, kubeconfig: Path) -> Cluster:
        return cls(kubeconfig, config.new_client_from_config(str(kubeconfig)))

    @functools.cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api)

    def close(self) -> None:
        self.api.close()
        if self.process is not None:
            self.process.stop()

    # --- kubectl, for what it does best (server-side apply of files, CRDs) ----------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            text=True,
            capture_output=True,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr}")
        return res

    def dry_run(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What the API server would store for `obj` (strict fields, every admission step, no
        write); raises ApiException when it refuses."""
        meta = obj["metadata"]
        res = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        out = res.server_side_apply(
            body=apply_body(obj),
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager="tests",
            force_conflicts=True,
            query_params=[("fieldValidation", "Strict"), ("dryRun", "All")],
        )
        return dict(out.to_dict())

    def apply(self, obj: dict[str, Any], check: bool = True, manager: str = "tests") -> Applied:
        """Server-side apply with strict field validation: the API server alone judges `obj`."""
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        try:
            out = resource.server_side_apply(
                body=apply_body(obj),
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=manager,
                force_conflicts=True,
                query_params=[("fieldValidation", "Strict")],
            )
        except ApiException as e:
            if check:
                raise AssertionError(f"apply {obj['kind']}/{meta['name']}: {e.body}") from e
            return Applied(False, json.loads(e.body).get("message", e.body) if e.body else str(e))
        return Applied(True, "", out.to_dict())

    def install_crds(self, files: list[Path]) -> None:
        install_crds(self.kubectl, files, field_manager="tests")

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        res = self.kubectl(*args, check=False)
        if res.returncode != 0:
            if "NotFound" in res.stderr:
                return None
            raise AssertionError(res.stderr)
        out: dict[str, Any] = json.loads(res.stdout)
        return out

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"]
        args += ["-n", namespace] if namespace else ["-A"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items

    def create_namespace(self, name: str) -> None:
        client.CoreV1Api(self.api).create_namespace({"metadata": {"name": name}})

    def delete_namespace(self, name: str) -> None:
        client.CoreV1Api(self.api).delete_namespace(name)


def eventually(
    check: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = "condition"
) -> Any:
    """Poll `check` until it returns a truthy value (returned) or raise with the last error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except AssertionError as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")


def infd(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    """An InferenceDeployment for the tests: Llama 3.1 8B on one L40S, one replica, unless
    `spec` says otherwise (top-level spec keys replace the defaults)."""
    base: dict[str, Any] = {
        "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "accelerator": {"kind": "nvidia", "types": ["L40S"]},
        "replicas": 1,
    }
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**base, **spec},
    }


def start_operator(
    cluster: Cluster, namespace: str, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """The operator as its own process, watching one (solo-*) namespace: the session's in-process
    operator ignores those. Loopback only: no scaler port clash, no cluster-DNS Prometheus."""
    kubeconfig = (
        cluster.process.state / "operator.kubeconfig" if cluster.process else cluster.kubeconfig
    )
    full = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "INFOP_NAMESPACE": namespace,
        "INFOP_HEALTH_PORT": "0",
        "INFOP_METRICS_PORT": "0",
        "INFOP_SCALER_PORT": "0",
        "INFOP_RESYNC_SECONDS": "3",
        "INFOP_AUTOSCALE_SECONDS": "1",
        "INFOP_LOG_LEVEL": "INFO",
        "INFOP_PROMETHEUS_URL": "http://127.0.0.1:9",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "inference_operator", "run"],
        env=full,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_until_serving(cluster: Cluster, namespace: str) -> None:
    """Wait for a first reconcile of a probe object in `namespace`. kopf starts handlers only
    once every index has listed its kind, and in the tests' namespace-pattern mode it does so
    again for every new namespace (a dozen watches, on an API server that may answer 429 for a
    while), pausing all processing meanwhile; in the chart's cluster-wide mode there is one
    watch per kind. So a test's own patience measures the operator, not its watch set-up."""
    # No autoscaling: KEDA, where it runs, would scale the probe and move its generation.
    cluster.apply(infd(namespace, "serving-probe", replicas=0, autoscaling={"enabled": False}))

    def reconciled() -> bool:
        obj = cluster.get("InferenceDeployment", "serving-probe", namespace) or {}
        return int((obj.get("status") or {}).get("observedGeneration") or 0) >= 1

    eventually(reconciled, timeout=300, interval=0.5, what=f"a first reconcile in {namespace}")
    cluster.kubectl("delete", "infd", "serving-probe", "-n", namespace, "--wait=true")
