"""Proof that the harness is a real control plane: schemas and CEL enforced by the API server,
the scheduler placing accelerator pods on kwok nodes, and the garbage collector at work."""

from __future__ import annotations

import pytest

from kubeharness import Cluster, eventually

pytestmark = pytest.mark.integration


def test_upstream_crds_are_established(cluster: Cluster) -> None:
    for name in [
        "scaledobjects.keda.sh",
        "triggerauthentications.keda.sh",
        "nodepools.karpenter.sh",
        "ec2nodeclasses.karpenter.k8s.aws",
        "podmonitors.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
    ]:
        crd = cluster.get("crd", name)
        assert crd is not None, name
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True", name


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"triggers": [{"type": "prometheus", "metadata": {}}]},
            "spec.scaleTargetRef: Required value",
        ),
        (
            {"scaleTargetRef": {"name": "x"}, "triggers": [{"metadata": {}}]},
            "spec.triggers[0].type: Required value",
        ),
        (
            {"scaleTargetRef": {"name": "x"}, "minReplicaCount": "zero", "triggers": []},
            ".spec.minReplicaCount: expected numeric (int or float), got string",
        ),
    ],
)
def test_scaledobject_schema_violation_is_rejected(
    cluster: Cluster, namespace: str, spec: dict[str, object], expected: str
) -> None:
    bad = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": spec,
    }
    res = cluster.apply(bad, check=False)
    assert not res.ok
    assert expected in res.message


def _nodepool(requirement_key: str) -> dict[str, object]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "smoke-bad"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": "x",
                    },
                    "requirements": [{"key": requirement_key, "operator": "In", "values": ["a"]}],
                }
            }
        },
    }


def test_nodepool_cel_rule_is_enforced(cluster: Cluster) -> None:
    # The AWS provider's CEL allow-list refuses unknown karpenter.k8s.aws/* label keys.
    res = cluster.apply(_nodepool("karpenter.k8s.aws/not-a-label"), check=False)
    assert not res.ok
    assert 'label domain "karpenter.k8s.aws" is restricted' in res.message
    # The same object with an allowed key passes, so the rejection above is the rule's doing.
    ok = _nodepool("karpenter.k8s.aws/instance-family")
    cluster.apply(ok)
    cluster.kubectl("delete", "nodepool", "smoke-bad")


def test_gpu_pods_are_scheduled_on_fake_gpu_nodes_and_ready(
    cluster: Cluster, namespace: str
) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gpu", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "gpu"}},
            "template": {
                "metadata": {"labels": {"app": "gpu"}},
                "spec": {
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                    "containers": [
                        {
                            "name": "c",
                            "image": "fake",
                            "resources": {"limits": {"nvidia.com/gpu": "4"}},
                        }
                    ],
                },
            },
        },
    }
    cluster.apply(deploy)

    def ready() -> bool:
        d = cluster.get("deployment", "gpu", namespace)
        return bool(d and d.get("status", {}).get("readyReplicas") == 2)

    eventually(ready, timeout=60, what="2 ready GPU replicas")
    pods = cluster.list("pods", namespace, "app=gpu")
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        node = cluster.get("node", pod["spec"]["nodeName"])
        assert node is not None
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "p5.48xlarge"


def test_unsatisfiable_gpu_request_stays_pending_with_scheduler_message(
    cluster: Cluster, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "too-big", "namespace": namespace},
        "spec": {
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {"name": "c", "image": "fake", "resources": {"limits": {"nvidia.com/gpu": "16"}}}
            ],
        },
    }
    eventually(
        lambda: cluster.apply(pod, check=False).ok,
        timeout=30,
        what="pod accepted (default ServiceAccount exists)",
    )

    def unschedulable() -> str:
        p = cluster.get("pod", "too-big", namespace) or {}
        for c in p.get("status", {}).get("conditions", []):
            if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
                return str(c["message"])
        return ""

    message = eventually(unschedulable, timeout=30, what="Unschedulable condition")
    assert "Insufficient nvidia.com/gpu" in message


def test_deleting_owner_garbage_collects_child(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owner", "namespace": namespace},
        }
    )
    owner = cluster.get("configmap", "owner", namespace)
    assert owner is not None
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "child",
                "namespace": namespace,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner["metadata"]["uid"],
                    }
                ],
            },
        }
    )
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    eventually(
        lambda: cluster.get("configmap", "child", namespace) is None,
        timeout=60,
        what="child garbage-collected",
    )
