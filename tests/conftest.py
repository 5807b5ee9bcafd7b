"""Shared fixtures.

The control plane (hack/localcluster.py) starts once per session, only when a test asks for it;
INFOP_KUBECONFIG=<path> points the suite at an existing cluster instead (kind).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared"
UPSTREAM_CRDS = [
    *sorted((SHARED / "upstream/crds/keda").glob("*.yaml")),
    *sorted((SHARED / "upstream/crds/karpenter/aws").glob("*.yaml")),
    SHARED / "upstream/crds/karpenter/autoscaling.x-k8s.io_capacitybuffers.yaml",
    *sorted((SHARED / "upstream/crds/prometheus-operator").glob("*.yaml")),
    *sorted((SHARED / "upstream/crds/gateway-api-inference-extension").glob("*.yaml")),
]

# Short periods so drift and capacity problems show within a test's patience. The handler modules
# read these at import (kopf's decorators need the periods then: runtime.py), and a test module
# that imports one does so at collection, before any fixture runs: set here, before any test
# module is imported, they are what every import sees. The operator fixture sets the rest (ports,
# TLS) and hands the handlers the settings again.
os.environ.setdefault("INFOP_RESYNC_SECONDS", "3")
os.environ.setdefault("INFOP_PENDING_THRESHOLD_SECONDS", "3")
os.environ.setdefault("INFOP_AUTOSCALE_SECONDS", "1")


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_regex_loaded() -> None:
    """Hypothesis compiles its regex module on the first from_regex draw. CPython 3.11's
    compiler is not safe while another thread compiles (the in-process operator imports as it
    runs): "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). Load it
    first, before any fixture starts a thread (autouse session fixtures come first)."""
    from hypothesis import strategies as st

    st.from_regex("a", fullmatch=True).validate()


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    from kubeharness import Cluster

    existing = os.environ.get("INFOP_KUBECONFIG")
    c = Cluster.existing(Path(existing)) if existing else Cluster.start_local()
    try:
        c.install_crds([*UPSTREAM_CRDS, *sorted((ROOT / "crds").glob("*.yaml"))])
        yield c
    finally:
        c.close()


def _fresh_namespace(cluster: object, prefix: str) -> Iterator[str]:
    from kubeharness import Cluster

    assert isinstance(cluster, Cluster)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def namespace(cluster: object) -> Iterator[str]:
    """A namespace the session's in-process operator serves."""
    yield from _fresh_namespace(cluster, "t")


@pytest.fixture
def solo(cluster: object) -> Iterator[str]:
    """A namespace for a test that runs its own operator process (the session's skips solo-*)."""
    yield from _fresh_namespace(cluster, "solo")


@pytest.fixture(scope="session")
def keda(cluster: object) -> object:
    """The real KEDA operator and metrics API server (hack/localkeda.py) on the session's local
    control plane; the HPA controller in its kube-controller-manager reads KEDA's metrics."""
    from localkeda import LocalKeda, wait_hpa_resolves

    from kubeharness import Cluster

    assert isinstance(cluster, Cluster)
    if cluster.process is None:
        pytest.skip("KEDA is started only beside the local control plane (INFOP_KUBECONFIG set)")
    keda = LocalKeda(cluster.process).start()
    wait_hpa_resolves(cluster.process, "infer.dev/v1alpha1", "InferenceDeployment")
    return keda


# What the handler modules read at import (timer.py, workload.py).
_READ_AT_IMPORT = {
    "autoscale_seconds",
    "resync_seconds",
    "pending_threshold_seconds",
    "home_namespace",
    "namespace",
}


def _settings_seen_by_the_handlers() -> None:
    """The in-process operator reads the settings just set, and fails here, saying why, if a
    handler module imported earlier (at collection) fixed other values at import: the CI run
    where that happened failed eight tests far away (no scaler trigger, 60 s resyncs)."""
    from inference_operator import runtime
    from inference_operator.settings import load_settings

    imported = "inference_operator.handlers" in sys.modules
    earlier = runtime._settings.model_dump(include=_READ_AT_IMPORT) if runtime._settings else {}
    ours = load_settings()
    now = ours.model_dump(include=_READ_AT_IMPORT)
    assert not imported or not earlier or earlier == now, (
        f"handler modules were imported with other settings: {earlier} (now {now})"
    )
    runtime.use(ours)


@pytest.fixture(scope="session")
def operator_running(cluster: object) -> Iterator[object]:
    """The operator, in-process (kopf.testing.KopfRunner), against the session's cluster."""
    from kubeharness import Cluster

    assert isinstance(cluster, Cluster)
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    # The client library reads KUBECONFIG once, at import; this process imported it earlier.
    import kubernetes.config.kube_config as kube_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cluster.kubeconfig)
    from localcluster import free_port

    # Tests that want metrics name their own Prometheus; the default must not leave loopback
    # (the chart's default is a cluster DNS name).
    os.environ.setdefault("INFOP_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    scaler_port = free_port()
    os.environ.setdefault("INFOP_SCALER_PORT", str(scaler_port))
    os.environ.setdefault("INFOP_SCALER_ADDRESS", f"127.0.0.1:{scaler_port}")
    os.environ.setdefault("INFOP_BIND_HOST", "127.0.0.1")
    os.environ.setdefault("INFOP_METRICS_PORT", str(free_port()))  # 8080 may be taken
    if cluster.process is not None and "INFOP_SCALER_TLS_DIR" not in os.environ:
        # KEDA reaches the scaler over mutual TLS, as the chart sets it up (hack/localkeda.py).
        from localkeda import SCALER_AUTH, scaler_tls

        os.environ["INFOP_SCALER_TLS_DIR"] = str(scaler_tls(cluster.process))
        os.environ["INFOP_SCALER_TRIGGER_AUTH"] = SCALER_AUTH
    _settings_seen_by_the_handlers()
    from kopf.testing import KopfRunner

    # Namespaces named solo-* belong to tests that run their own operator process.
    args = ["run", "--namespace=!solo-*", "--standalone", "-m", "inference_operator.handlers"]
    if os.environ.get("INFOP_KOPF_DEBUG"):  # kopf's own reasoning, for hunting a stall
        args.insert(1, "--debug")
    with KopfRunner(args, timeout=60) as runner:
        from kubeharness import wait_until_serving

        wait_until_serving(cluster, "default")
        yield runner
    assert runner.exception is None, runner.exception
