"""The operator on the real control plane: apply, edit, scale, drift, delete, capacity trouble."""

from __future__ import annotations

from typing import Any

import pytest

import kubeharness
from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration


def infd(namespace: str, name: str = "llama", **spec: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "maxModelLen": 8192},
        "accelerator": {"kind": "nvidia", "perReplica": 1, "types": ["g6e.xlarge"]},
        "replicas": 2,
    }
    return kubeharness.infd(namespace, name, **{**defaults, **spec})


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return {}


def wait_ready(cluster: Cluster, namespace: str, name: str, replicas: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        o = cluster.get("infd", name, namespace)
        st = (o or {}).get("status") or {}
        ok = (
            condition(o, "Ready").get("status") == "True"
            and st.get("readyReplicas") == replicas
            and st.get("observedGeneration") == o["metadata"]["generation"]
        )  # type: ignore[index]
        return o if ok else None

    return dict(eventually(ready, timeout=90, what=f"{name} Ready with {replicas} replicas"))


def test_apply_creates_children_and_pods_run_on_gpu_nodes(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    cluster.apply(infd(namespace))
    obj = wait_ready(cluster, namespace, "llama", 2)
    assert obj["status"]["selector"] == "infer.dev/deployment=llama"
    # The operator's periodic timer runs on its home Namespace ("default" here) and puts no
    # finalizer on it: one would hold the namespace forever once the operator is gone.
    home = cluster.get("namespace", "default") or {}
    assert not (home.get("metadata") or {}).get("finalizers"), home.get("metadata")
    planned = condition(obj, "CapacityPlanned")
    assert (planned["status"], planned["reason"]) == ("True", "Fits"), planned
    assert obj["status"]["capacity"]["instanceTypes"] == ["g6e.xlarge"]
    dep = cluster.get("deployment", "llama", namespace)
    svc = cluster.get("service", "llama", namespace)
    pdb = cluster.get("pdb", "llama", namespace)
    mon = cluster.get("podmonitor", "llama", namespace)
    # Gateway API Inference Extension v1.6.0's CRD is installed: the pool was accepted by it.
    pool = cluster.get("inferencepool.inference.networking.k8s.io", "llama", namespace)
    assert dep and svc and pdb and mon and pool
    uid = obj["metadata"]["uid"]
    for child in (dep, svc, pdb, mon, pool):
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    # The pool selects exactly the model's vLLM pods, on the port they serve.
    assert pool["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    served = {
        p["metadata"]["name"] for p in cluster.list("pods", namespace, "infer.dev/deployment=llama")
    }
    assert len(served) == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == [
        "meta-llama/Llama-3.1-8B-Instruct",
        "--served-model-name",
        "llama",
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for pod in cluster.list("pods", namespace, "infer.dev/deployment=llama"):
        assert pod["status"]["phase"] == "Running"
        node = cluster.get("node", pod["spec"]["nodeName"])
        assert (
            node and node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "g6e.xlarge"
        )


def test_spec_edit_rolls_out_and_scale_subresource_drives_replicas(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    # No autoscaling: where KEDA runs (the e2e tests start it for the session) its HPA would set
    # the replicas this test sets through /scale.
    manual = {"autoscaling": {"enabled": False}}
    cluster.apply(infd(namespace, **manual))
    wait_ready(cluster, namespace, "llama", 2)
    edited = infd(namespace, **manual)
    edited["spec"]["model"]["maxModelLen"] = 4096
    cluster.apply(edited)
    eventually(
        lambda: (
            "4096"
            in (cluster.get("deployment", "llama", namespace) or {})["spec"]["template"]["spec"][
                "containers"
            ][0]["args"]
        ),
        what="args updated",
    )
    wait_ready(cluster, namespace, "llama", 2)
    cluster.kubectl("scale", "infd", "llama", "-n", namespace, "--replicas=3")
    eventually(
        lambda: (cluster.get("deployment", "llama", namespace) or {})["spec"]["replicas"] == 3,
        what="deployment follows /scale",
    )
    wait_ready(cluster, namespace, "llama", 3)


def test_manual_edit_of_a_child_is_reverted(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    cluster.apply(infd(namespace))
    wait_ready(cluster, namespace, "llama", 2)
    cluster.kubectl("scale", "deployment", "llama", "-n", namespace, "--replicas=5")
    cluster.kubectl(
        "patch",
        "service",
        "llama",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/ports/0/port","value":9999}]',
    )
    eventually(
        lambda: (cluster.get("deployment", "llama", namespace) or {})["spec"]["replicas"] == 2,
        what="replicas reverted",
    )
    eventually(
        lambda: (
            (cluster.get("service", "llama", namespace) or {})["spec"]["ports"][0]["port"] == 8000
        ),
        what="service port reverted",
    )


def test_delete_garbage_collects_children(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    cluster.apply(infd(namespace))
    wait_ready(cluster, namespace, "llama", 2)
    cluster.kubectl("delete", "infd", "llama", "-n", namespace, "--wait=true")
    for kind in ("deployment", "service", "pdb", "podmonitor"):
        eventually(
            lambda k=kind: cluster.get(k, "llama", namespace) is None, what=f"{kind} collected"
        )


def test_neuron_replicas_land_on_inferentia(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    cluster.apply(
        infd(
            namespace,
            name="mistral",
            replicas=1,
            accelerator={"kind": "neuron", "perReplica": 2, "types": ["inf2"]},
        )
    )
    wait_ready(cluster, namespace, "mistral", 1)
    dep = cluster.get("deployment", "mistral", namespace)
    assert dep is not None
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["aws.amazon.com/neuroncore"] == "2"
    assert "--device" in container["args"]
    pod = cluster.list("pods", namespace, "infer.dev/deployment=mistral")[0]
    node = cluster.get("node", pod["spec"]["nodeName"])
    assert node and node["metadata"]["labels"]["karpenter.k8s.aws/instance-family"] == "inf2"


def test_no_capacity_surfaces_as_insufficient_capacity(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    # 8 GPUs per replica on instance types that have one.
    cluster.apply(
        infd(
            namespace,
            name="huge",
            replicas=1,
            accelerator={"kind": "nvidia", "perReplica": 8, "types": ["g5.xlarge"]},
        )
    )

    def degraded() -> dict[str, Any]:
        c = condition(cluster.get("infd", "huge", namespace), "Degraded")
        return c if c.get("reason") == "InsufficientCapacity" else {}

    c = eventually(degraded, timeout=60, what="Degraded=InsufficientCapacity")
    planned = condition(cluster.get("infd", "huge", namespace), "CapacityPlanned")
    # An 8B model needs one GPU; eight are asked for and g5.xlarge has one.
    assert (planned["status"], planned["reason"]) == ("False", "NoInstanceLargeEnough"), planned
    assert "g5.xlarge: 1" in planned["message"]
    assert c["status"] == "True"
    assert "Insufficient nvidia.com/gpu" in c["message"]
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "InsufficientCapacity" in events


def test_spec_gateway_makes_a_gateway_and_removing_it_cleans_up(
    cluster: Cluster, namespace: str, operator_running: object
) -> None:
    gateway = {"replicas": 2, "maxWaiting": 50, "queueTimeout": "90s", "maxPerReplica": 8}
    cluster.apply(infd(namespace, replicas=1, gateway=gateway))
    wait_ready(cluster, namespace, "llama", 1)

    def up() -> dict[str, Any] | None:
        dep = cluster.get("deployment", "llama-gateway", namespace)
        return dep if ((dep or {}).get("status") or {}).get("readyReplicas") == 2 else None

    dep = eventually(up, timeout=90, what="gateway Deployment with 2 Ready pods")
    pod = dep["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--deployment") + 1] == "llama"
    assert args[args.index("--max-waiting") + 1] == "50"
    assert args[args.index("--queue-timeout") + 1] == "90"
    assert pod["serviceAccountName"] == "llama-gateway"
    for kind in ("service", "pdb", "serviceaccount", "role", "rolebinding"):
        obj = cluster.get(kind, "llama-gateway", namespace)
        assert obj is not None, kind
        assert obj["metadata"]["ownerReferences"][0]["name"] == "llama"
    # The model's own selector picks vLLM pods only, never the gateway's.
    model_pods = cluster.list("pod", namespace, "infer.dev/deployment=llama")
    assert len(model_pods) == 1
    assert all("gateway" not in p["metadata"]["name"] for p in model_pods)
    status = (cluster.get("infd", "llama", namespace) or {})["status"]
    assert status["gateway"] == {"service": "llama-gateway"}

    remove = '[{"op": "remove", "path": "/spec/gateway"}]'
    cluster.kubectl("patch", "infd", "llama", "-n", namespace, "--type=json", "-p", remove)

    def gone() -> bool:
        kinds = ("deployment", "service", "pdb", "serviceaccount", "role", "rolebinding")
        left = [k for k in kinds if cluster.get(k, "llama-gateway", namespace) is not None]
        assert not left, left
        return True

    eventually(gone, timeout=60, what="gateway objects deleted")
    assert cluster.get("service", "llama", namespace) is not None
