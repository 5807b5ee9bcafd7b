"""InferencePolicy at admission, on the real API server: the chart's ValidatingAdmissionPolicy
refuses what a policy forbids, with the message the operator's own check (api/guardrails.py)
gives, word for word; namespaces the policy does not select are untouched; a user with
InferenceDeployment rights in one namespace gets nothing more by impersonation."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference_operator.api.guardrails import violations
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.api.policy import InferencePolicySpec
from kubeharness import Cluster, eventually, infd

pytestmark = pytest.mark.integration

ADMISSION_POLICY = Path(__file__).resolve().parents[2] / "crds" / "admission" / "guardrails.yaml"
POLICY = "team-a"
POLICY_SPEC: dict[str, Any] = {
    "namespaceSelector": {
        "matchLabels": {"infer.dev/tenant": "a"},
        "matchExpressions": [{"key": "infer.dev/tier", "operator": "NotIn", "values": ["lab"]}],
    },
    "accelerators": {"kinds": ["nvidia"], "types": ["L4", "g6e"]},
    "maxDevicesPerDeployment": 8,
    "maxDevicesPerNamespace": 3,
    "nodePools": {"create": True, "maxDevices": 16, "capacityTypes": ["spot", "on-demand"]},
}
ALLOWED: dict[str, Any] = {
    "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
    "accelerator": {"kind": "nvidia", "types": ["L4", "g6e.xlarge"]},
    "autoscaling": {"maxReplicas": 4},
}


def edit(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(ALLOWED)
    for path, value in changes.items():
        node = spec
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


# (spec, the field the refusal must name)
REFUSED = [
    (edit(accelerator={"kind": "neuron", "types": ["inf2"]}), "spec.accelerator.kind"),
    (edit(accelerator={"kind": "nvidia", "types": ["H100"]}), "spec.accelerator.types"),
    (edit(accelerator={"kind": "nvidia", "types": ["g6e.xlarge", "p5"]}), "spec.accelerator.types"),
    (edit(accelerator={"kind": "nvidia"}), "spec.accelerator.types"),
    (edit(engine={"image": "evil.example/miner:latest"}), "spec.engine.image"),
    (edit(engine={"image": "vllm/vllm-openai-fork:v1"}), "spec.engine.image"),
    (edit(autoscaling={"maxReplicas": 9}), "spec.autoscaling.maxReplicas"),
    (
        edit(accelerator={"kind": "nvidia", "types": ["L4"], "perReplica": 4}),
        "spec.autoscaling.maxReplicas",
    ),
    (edit(autoscaling={"enabled": False}, replicas=9), "spec.replicas"),
    (edit(nodePool={"create": True}), "spec.nodePool.maxDevices"),
    (edit(nodePool={"create": True, "maxDevices": 17}), "spec.nodePool.maxDevices"),
    (
        edit(nodePool={"create": True, "maxDevices": 8, "capacityTypes": ["reserved"]}),
        "spec.nodePool.capacityTypes",
    ),
    (edit(capacity={"warm": {"replicas": 1}}), "spec.capacity.warm"),
]
ADMITTED = [
    ALLOWED,
    edit(engine={"image": "vllm/vllm-openai:v0.40.0"}),
    edit(accelerator={"kind": "nvidia", "types": ["l4"], "perReplica": 2}),
    edit(nodePool={"create": True, "maxDevices": 16, "capacityTypes": ["spot"]}),
    edit(nodePool={"create": False, "name": "shared-gpus"}),
]


def labels_of(cluster: Cluster, namespace: str) -> dict[str, str]:
    ns = cluster.get("namespace", namespace)
    assert ns is not None
    return dict(ns["metadata"].get("labels") or {})


def expected(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> list[str]:
    """What the operator's own check says of `spec`."""
    policy = InferencePolicySpec.model_validate(POLICY_SPEC)
    parsed = InferenceDeploymentSpec.model_validate(spec)
    return [str(v) for v in violations(parsed, labels_of(cluster, namespace), [(POLICY, policy)])]


@pytest.fixture(scope="module")
def guarded(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """The admission policy, one InferencePolicy, a governed namespace and one it leaves alone."""
    cluster.kubectl("apply", "--server-side", "-f", str(ADMISSION_POLICY))
    governed, other = "tenant-a", "tenant-lab"
    for name, labels in (
        (governed, {"infer.dev/tenant": "a"}),
        (other, {"infer.dev/tenant": "a", "infer.dev/tier": "lab"}),
    ):
        cluster.create_namespace(name)
        cluster.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])
    cluster.apply(
        {
            "apiVersion": "infer.dev/v1alpha1",
            "kind": "InferencePolicy",
            "metadata": {"name": POLICY},
            "spec": POLICY_SPEC,
        }
    )
    try:
        in_force(cluster, governed, REFUSED[0][0])
        yield governed, other
    finally:
        cluster.kubectl("delete", "inferencepolicy", POLICY, "--ignore-not-found")
        cluster.kubectl("delete", "-f", str(ADMISSION_POLICY), "--ignore-not-found")
        for name in (governed, other):
            cluster.delete_namespace(name)


def in_force(cluster: Cluster, namespace: str, forbidden: dict[str, Any]) -> None:
    """Wait until the API server refuses `forbidden`: it picks up a new admission policy or
    parameter within seconds (first starting an informer for the parameter kind). A server-side
    dry-run create each time: an object admitted once would be re-applied unchanged after, and
    an unchanged spec is not judged."""

    def refused() -> bool:
        res = cluster.kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input=json.dumps(infd(namespace, "probe", **forbidden)),
            check=False,
        )
        return res.returncode != 0 and "InferencePolicy" in res.stderr

    eventually(refused, timeout=120, what="the admission policy in force")


@pytest.mark.parametrize(
    ("spec", "field"), REFUSED, ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSED)]
)
def test_refused_at_admission_naming_policy_and_field(
    cluster: Cluster, guarded: tuple[str, str], spec: dict[str, Any], field: str
) -> None:
    governed, _ = guarded
    res = cluster.apply(infd(governed, "refused", **spec), check=False)
    assert not res.ok, "admitted"
    ours = expected(cluster, governed, spec)
    # The first rule broken (the CEL validations run in the order of guardrails.violations).
    assert ours and field in ours[0], ours
    # The API server's words are the operator's, word for word.
    assert ours[0] in res.message, (ours[0], res.message)
    assert f"InferencePolicy {POLICY}" in res.message


@pytest.mark.parametrize("spec", ADMITTED, ids=range(len(ADMITTED)))
def test_allowed_specs_are_admitted(
    cluster: Cluster, guarded: tuple[str, str], spec: dict[str, Any]
) -> None:
    governed, _ = guarded
    assert expected(cluster, governed, spec) == []
    res = cluster.apply(infd(governed, "admitted", **spec), check=False)
    assert res.ok, res.message


def test_a_namespace_the_policy_does_not_select_is_untouched(
    cluster: Cluster, guarded: tuple[str, str]
) -> None:
    _, other = guarded
    spec = REFUSED[1][0]
    assert expected(cluster, other, spec) == []
    res = cluster.apply(infd(other, "unselected", **spec), check=False)
    assert res.ok, res.message


def test_metadata_writes_pass_on_an_object_admitted_before_the_policy(
    cluster: Cluster, guarded: tuple[str, str]
) -> None:
    """The operator's finalizer and annotations must still be written, or the object could
    never be deleted; only spec changes are judged."""
    governed, _ = guarded
    policy = cluster.get("inferencepolicy", POLICY)
    assert policy is not None
    # Stand the policy down, admit an object it forbids, then bring it back.
    cluster.kubectl("delete", "inferencepolicy", POLICY)
    forbidden = infd(governed, "older", **REFUSED[1][0])
    eventually(lambda: cluster.apply(forbidden, check=False).ok, timeout=30, what="admitted")
    cluster.apply(
        {
            "apiVersion": "infer.dev/v1alpha1",
            "kind": "InferencePolicy",
            "metadata": {"name": POLICY},
            "spec": POLICY_SPEC,
        }
    )
    in_force(cluster, governed, REFUSED[1][0])
    patched = cluster.kubectl(
        "-n",
        governed,
        "patch",
        "infd",
        "older",
        "--type=merge",
        "-p",
        json.dumps(
            {"metadata": {"finalizers": ["infer.dev/finalizer"], "annotations": {"a": "b"}}}
        ),
        check=False,
    )
    assert patched.returncode == 0, patched.stderr
    edited = cluster.kubectl(
        "-n",
        governed,
        "patch",
        "infd",
        "older",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"autoscaling": {"maxReplicas": 2}}}),
        check=False,
    )
    assert edited.returncode != 0 and "spec.accelerator.types" in edited.stderr, edited.stderr
    cluster.kubectl(
        "-n",
        governed,
        "patch",
        "infd",
        "older",
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": None}}),
    )


def test_a_tenant_with_rights_in_its_namespace_gets_nothing_more(
    cluster: Cluster, guarded: tuple[str, str]
) -> None:
    """alice may do anything with InferenceDeployments in tenant-a, and nothing else. As alice
    (impersonation, authorized by the real API server's RBAC): no forbidden accelerator, image,
    size or NodePool through an InferenceDeployment, no NodePool or policy of her own, no
    relabelled namespace, nothing in another namespace."""
    governed, other = guarded
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "infd-editor", "namespace": governed},
        "rules": [
            {
                "apiGroups": ["infer.dev"],
                "resources": ["inferencedeployments"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "alice", "namespace": governed},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "infd-editor"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    }
    cluster.apply(role)
    cluster.apply(binding)

    def as_alice(*args: str, body: dict[str, Any] | None = None) -> tuple[bool, str]:
        res = cluster.kubectl(
            "--as=alice",
            *args,
            input=json.dumps(body) if body is not None else None,
            check=False,
        )
        return res.returncode == 0, res.stdout + res.stderr

    # Her rights work for what the policy allows (RBAC changes take a moment to be seen).
    eventually(
        lambda: as_alice("create", "-f", "-", body=infd(governed, "mine", **ALLOWED))[0],
        timeout=30,
        what="alice may create an allowed InferenceDeployment",
    )
    for spec, field in (
        (edit(accelerator={"kind": "nvidia", "types": ["p5.48xlarge"]}), "spec.accelerator.types"),
        (edit(engine={"image": "docker.io/alice/vllm:latest"}), "spec.engine.image"),
        (edit(autoscaling={"maxReplicas": 100}), "spec.autoscaling.maxReplicas"),
        (edit(nodePool={"create": True, "maxDevices": 1000}), "spec.nodePool.maxDevices"),
        (edit(capacity={"warm": {"replicas": 4}}), "spec.capacity.warm"),
    ):
        ok, out = as_alice("create", "-f", "-", body=infd(governed, "sneaky", **spec))
        assert not ok and f"InferencePolicy {POLICY}: {field}" in out, out
    # An edit is judged like a create.
    ok, out = as_alice(
        "-n",
        governed,
        "patch",
        "infd",
        "mine",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"engine": {"image": "docker.io/alice/vllm:latest"}}}),
    )
    assert not ok and "spec.engine.image" in out, out
    nodepool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "alices"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": "x",
                    },
                    "requirements": [],
                }
            }
        },
    }
    loosened = {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferencePolicy",
        "metadata": {"name": "alices"},
        "spec": {},
    }
    for args, body in (
        (("create", "-f", "-"), nodepool),
        (("create", "-f", "-"), loosened),
        (("create", "-f", "-"), infd(other, "elsewhere", **ALLOWED)),
        (("label", "namespace", governed, "infer.dev/tenant=b", "--overwrite"), None),
        (("delete", "inferencepolicy", POLICY), None),
        (("-n", governed, "get", "secrets"), None),
    ):
        ok, out = as_alice(*args, body=body)
        assert not ok and "Forbidden" in out, (args, out)
    cluster.kubectl("-n", governed, "delete", "infd", "mine", "--ignore-not-found")
