"""Builders: golden YAML for representative specs, and table tests of the rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available
from inference_operator.builders.render import render as render_documents
from inference_operator.builders.workload import build_workload, vllm_args

GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner("llama", "serving", "00000000-0000-0000-0000-000000000001")

SPECS: dict[str, dict[str, Any]] = {
    "llama-8b-one-gpu": {
        "model": {
            "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
            "maxModelLen": 8192,
            "tokenSecretRef": {"name": "hf-token", "key": "token"},
        },
        "accelerator": {"kind": "nvidia", "perReplica": 1, "types": ["L40S", "g6e", "A10G"]},
        "replicas": 2,
    },
    "llama-70b-tp4": {
        "model": {
            "uri": "s3://models/llama-3.1-70b-instruct",
            "dtype": "fp8",
            "servedName": "llama-70b",
        },
        "engine": {
            "args": ["--enable-prefix-caching", "--max-num-seqs=128"],
            "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
            "resources": {"cpu": "16", "memory": "160Gi"},
        },
        "accelerator": {"kind": "nvidia", "perReplica": 4, "types": ["p5.48xlarge", "p4d"]},
        "nodePool": {"create": True, "capacityTypes": ["spot", "on-demand"]},
    },
    "mistral-neuron": {
        "model": {"uri": "pvc://weights/mistral-7b", "dtype": "bfloat16", "maxModelLen": 4096},
        "accelerator": {"kind": "neuron", "perReplica": 2, "types": ["inf2"]},
    },
}


def render(name: str) -> str:
    # The path `python -m inference_operator render` takes: capacity plan included.
    doc = {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": OWNER.name, "namespace": OWNER.namespace},
        "spec": SPECS[name],
    }
    everything = Available(pod_monitor=True, keda=True, karpenter=True)
    objects, problems = render_documents([doc], everything)
    assert problems == []
    return yaml.safe_dump_all(objects, sort_keys=False)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden(name: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = render(name)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), f"run UPDATE_GOLDEN=1 pytest {__file__} and review the diff"


def spec(**over: Any) -> InferenceDeploymentSpec:
    base: dict[str, Any] = {
        "model": {"uri": "hf://org/model"},
        "accelerator": {"kind": "nvidia", "perReplica": 2},
    }
    base.update(over)
    return InferenceDeploymentSpec.model_validate(base)


@pytest.mark.parametrize(
    ("over", "present", "absent"),
    [
        (
            {},
            ["org/model", "--tensor-parallel-size", "2", "--served-model-name", "llama"],
            ["--max-model-len", "--device"],
        ),
        (
            {"model": {"uri": "hf://org/model", "maxModelLen": 4096}},
            ["--max-model-len", "4096"],
            [],
        ),
        ({"model": {"uri": "s3://b/p"}}, ["s3://b/p", "--load-format", "runai_streamer"], []),
        ({"model": {"uri": "pvc://claim/dir"}}, ["/models/claim/dir"], []),
        (
            {"model": {"uri": "hf://org/model", "dtype": "fp8"}},
            ["--quantization", "fp8"],
            ["--dtype"],
        ),
        ({"accelerator": {"kind": "neuron", "perReplica": 8}}, ["--device", "neuron"], []),
        ({"engine": {"args": ["--foo=$(rm -rf /)", "a b"]}}, ["--foo=$(rm -rf /)", "a b"], []),
    ],
)
def test_vllm_arguments(over: dict[str, Any], present: list[str], absent: list[str]) -> None:
    args = vllm_args(OWNER, spec(**over))
    for a in present:
        assert a in args
    for a in absent:
        assert a not in args


def test_arguments_never_reach_a_shell() -> None:
    dep = build_workload(OWNER, spec(engine={"args": ["; echo pwned"]}), monitoring=False)[0]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm", "serve"]
    assert "; echo pwned" in container["args"]
    assert all("sh" not in c for c in container["command"])


def test_token_comes_from_a_secret_reference_only() -> None:
    s = spec(model={"uri": "hf://o/m", "tokenSecretRef": {"name": "hf", "key": "t"}})
    env = build_workload(OWNER, s, monitoring=False)[0]["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    token = next(e for e in env if e["name"] == "HF_TOKEN")
    assert token == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}


def test_monitor_only_when_the_crd_exists() -> None:
    kinds = [o["kind"] for o in build_workload(OWNER, spec(), monitoring=False)]
    assert kinds == ["Deployment", "Service", "PodDisruptionBudget"]


def test_cluster_names_fit_63_characters_and_stay_unique() -> None:
    a = Owner("x" * 60, "team-a", "u").cluster_name
    b = Owner("x" * 60, "team-b", "u").cluster_name
    assert len(a) <= 63 and len(b) <= 63 and a != b


def _pod(s: InferenceDeploymentSpec) -> dict[str, Any]:
    deploy = next(o for o in build_workload(OWNER, s, False) if o["kind"] == "Deployment")
    pod: dict[str, Any] = deploy["spec"]["template"]["spec"]
    return pod


def test_a_shared_cache_holds_weights_and_compiled_artifacts() -> None:
    pod = _pod(spec(cache={"claimName": "models"}))
    (vllm,) = pod["containers"]
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "models"}} in pod[
        "volumes"
    ]
    assert {"name": "model-cache", "mountPath": "/cache"} in vllm["volumeMounts"]
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert env["HF_HOME"] == "/cache/huggingface"
    assert env["VLLM_CACHE_ROOT"] == "/cache/vllm"
    assert "NEURON_COMPILE_CACHE_URL" not in env


def test_neuron_compiles_into_the_cache_and_a_users_variable_wins() -> None:
    pod = _pod(
        spec(
            accelerator={"kind": "neuron", "perReplica": 2},
            cache={"hostPath": "/var/cache/infer"},
            engine={"env": [{"name": "HF_HOME", "value": "/mine"}]},
        )
    )
    (vllm,) = pod["containers"]
    volume = next(v for v in pod["volumes"] if v["name"] == "model-cache")
    assert volume["hostPath"] == {"path": "/var/cache/infer", "type": "DirectoryOrCreate"}
    names = [e["name"] for e in vllm["env"]]
    assert len(names) == len(set(names)), names  # one entry per name: server-side apply's rule
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert env["HF_HOME"] == "/mine"
    assert env["NEURON_COMPILE_CACHE_URL"] == "/cache/neuron-compile-cache"
    assert env["NEURON_LIBTORCH_REMOTE_CACHE"] == "/cache/neuron-remote"


def test_no_cache_no_volume() -> None:
    pod = _pod(spec())
    assert not [v for v in pod["volumes"] if v["name"] == "model-cache"]
