"""LoRA adapters in the pod template (only what must exist before vLLM starts) and the plan of
loads and unloads on one replica."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.lora import loaded_adapters, plan
from inference_operator.builders.names import Owner
from inference_operator.builders.workload import build_deployment

BASE: dict[str, Any] = {
    "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "servedName": "llama"},
    "accelerator": {"kind": "nvidia", "perReplica": 1},
}
OWNER = Owner(name="llama", namespace="ns", uid="u1")


def container(spec: dict[str, Any]) -> dict[str, Any]:
    deployment = build_deployment(OWNER, InferenceDeploymentSpec.model_validate(spec))
    return deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def test_no_adapters_no_lora() -> None:
    c = container(BASE)
    assert "--enable-lora" not in c["args"]
    assert all(e["name"] != "VLLM_ALLOW_RUNTIME_LORA_UPDATING" for e in c["env"])


def test_adapters_turn_lora_on_with_runtime_updates_and_mount_their_claims() -> None:
    spec = {
        **BASE,
        "adapters": [
            {"name": "sql", "uri": "hf://org/sql-lora"},
            {"name": "legal", "uri": "pvc://loras/legal/v2"},
            {"name": "legal-old", "uri": "pvc://loras/legal/v1"},
        ],
        "lora": {"maxLoras": 2, "maxRank": 64},
    }
    c = container(spec)
    args = c["args"]
    i = args.index("--enable-lora")
    assert args[i : i + 5] == ["--enable-lora", "--max-loras", "2", "--max-lora-rank", "64"]
    # Adapters themselves are loaded at run time, never named in the template.
    assert "--lora-modules" not in args and not any("sql" in a for a in args)
    assert {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"} in c["env"]
    mounts = [m for m in c["volumeMounts"] if m["mountPath"].startswith("/adapters")]
    assert mounts == [{"name": "adapters-0", "mountPath": "/adapters/loras", "readOnly": True}]


def test_adding_an_adapter_on_a_mounted_claim_leaves_the_template_alone() -> None:
    one = {**BASE, "adapters": [{"name": "a", "uri": "pvc://loras/a"}]}
    two = {**one, "adapters": [*one["adapters"], {"name": "b", "uri": "pvc://loras/b"}]}
    assert container(one) == container(two)
    enabled = {**BASE, "lora": {"enabled": True}}
    first = {**BASE, "adapters": [{"name": "a", "uri": "hf://org/a"}]}
    assert container(enabled) == container(first)


def test_an_adapter_token_becomes_hf_token_when_the_model_has_none() -> None:
    token = {"name": "hf", "key": "token"}
    c = container(
        {**BASE, "adapters": [{"name": "a", "uri": "hf://org/a", "tokenSecretRef": token}]}
    )
    hf = [e for e in c["env"] if e["name"] == "HF_TOKEN"]
    assert hf == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": token}}]


@pytest.mark.parametrize(
    ("adapters", "model_token", "message"),
    [
        ([{"name": "a", "uri": "hf://o/a"}, {"name": "a", "uri": "hf://o/b"}], None, "unique"),
        (
            [{"name": "a", "uri": "hf://o/a", "tokenSecretRef": {"name": "x", "key": "k"}}],
            {"name": "y", "key": "k"},
            "one HF_TOKEN",
        ),
    ],
)
def test_render_refuses_what_the_crd_refuses(
    adapters: list[dict[str, Any]], model_token: dict[str, str] | None, message: str
) -> None:
    model = {**BASE["model"], **({"tokenSecretRef": model_token} if model_token else {})}
    with pytest.raises(ValidationError, match=message):
        InferenceDeploymentSpec.model_validate({**BASE, "model": model, "adapters": adapters})


def test_plan_loads_what_is_missing_unloads_what_is_gone_and_reloads_what_moved() -> None:
    wanted = {"a": "org/a", "b": "/adapters/c/b2", "new": "org/new"}
    loaded = {"a": "org/a", "b": "/adapters/c/b1", "old": "org/old"}
    p = plan(wanted, loaded)
    assert p.unload == ("b", "old")
    assert p.load == (("b", "/adapters/c/b2"), ("new", "org/new"))
    assert plan(wanted, wanted).load == () and plan(wanted, wanted).unload == ()


def test_loaded_adapters_are_the_entries_whose_parent_is_the_base_model() -> None:
    models = {
        "data": [
            {"id": "llama", "root": "meta-llama/Llama-3.1-8B-Instruct", "parent": None},
            {"id": "sql", "root": "org/sql-lora", "parent": "llama"},
            {"id": "other", "root": "x", "parent": "someone-else"},
            "junk",
        ]
    }
    assert loaded_adapters(models, "llama") == {"sql": "org/sql-lora"}
    assert loaded_adapters({}, "llama") == {}
