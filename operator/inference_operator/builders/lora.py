"""LoRA adapters: what the vLLM container needs to serve them, and which adapters to load or
unload on a replica. Pure.

Adapters are not in the pod template (no --lora-modules): the operator loads them on every Ready
replica through vLLM's runtime endpoints, so adding or removing one never rolls the replicas.
What is in the template is what must be there before vLLM starts: --enable-lora and its limits,
the permission to update adapters at run time, and the claims that pvc:// adapters live on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference_operator.api.models import Adapter, InferenceDeploymentSpec

ADAPTERS_MOUNT = "/adapters"
RUNTIME_UPDATES = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"


def adapter_path(adapter: Adapter) -> str:
    """The lora_path vLLM loads: a Hugging Face repo id, or a directory on a mounted claim."""
    if adapter.uri.startswith("hf://"):
        return adapter.uri.removeprefix("hf://")
    claim, _, path = adapter.uri.removeprefix("pvc://").partition("/")
    return f"{ADAPTERS_MOUNT}/{claim}/{path}".rstrip("/")


def desired(spec: InferenceDeploymentSpec) -> dict[str, str]:
    """Adapter name -> lora_path."""
    return {a.name: adapter_path(a) for a in spec.adapters}


def lora_args(spec: InferenceDeploymentSpec) -> list[str]:
    if not spec.lora_enabled:
        return []
    return [
        "--enable-lora",
        "--max-loras",
        str(spec.lora.max_loras),
        "--max-lora-rank",
        str(spec.lora.max_rank),
    ]


def lora_env(spec: InferenceDeploymentSpec) -> list[dict[str, Any]]:
    if not spec.lora_enabled:
        return []
    env: list[dict[str, Any]] = [{"name": RUNTIME_UPDATES, "value": "True"}]
    token = next((a.token_secret_ref for a in spec.adapters if a.token_secret_ref), None)
    if token is not None and spec.model.token_secret_ref is None:
        # Admission holds every adapter to one token; the model's, when it has one, is set
        # already.
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}},
            }
        )
    return env


def lora_volumes(
    spec: InferenceDeploymentSpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for the claims pvc:// adapters live on (one each, read-only)."""
    claims = sorted(
        {
            a.uri.removeprefix("pvc://").partition("/")[0]
            for a in spec.adapters
            if a.uri.startswith("pvc://")
        }
    )
    volumes = [
        {"name": f"adapters-{i}", "persistentVolumeClaim": {"claimName": c, "readOnly": True}}
        for i, c in enumerate(claims)
    ]
    mounts = [
        {"name": f"adapters-{i}", "mountPath": f"{ADAPTERS_MOUNT}/{c}", "readOnly": True}
        for i, c in enumerate(claims)
    ]
    return volumes, mounts


@dataclass(frozen=True)
class AdapterPlan:
    load: tuple[tuple[str, str], ...]  # (name, lora_path)
    unload: tuple[str, ...]


def plan(wanted: Mapping[str, str], loaded: Mapping[str, str]) -> AdapterPlan:
    """What to do on one replica: `loaded` is what its /v1/models lists (adapter -> path).
    An adapter whose source changed is unloaded and loaded again."""
    unload = sorted(
        name for name, path in loaded.items() if name not in wanted or wanted[name] != path
    )
    load = sorted((name, path) for name, path in wanted.items() if loaded.get(name) != path)
    return AdapterPlan(tuple(load), tuple(unload))


def loaded_adapters(models: Mapping[str, Any], base: str) -> dict[str, str]:
    """Adapters a replica serves, from its /v1/models answer: entries whose parent is the base
    model (vLLM lists an adapter with its lora_path as root)."""
    out: dict[str, str] = {}
    for entry in models.get("data") or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("parent") == base and entry.get("id") != base:
            out[str(entry.get("id"))] = str(entry.get("root") or "")
    return out
