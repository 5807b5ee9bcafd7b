"""LoRA adapters on the running replicas: each pass asks every Ready vLLM pod what it serves
(GET /v1/models), loads the adapters the spec names and it lacks, unloads those the spec no
longer names (vLLM's runtime endpoints, allowed by VLLM_ALLOW_RUNTIME_LORA_UPDATING, which the
template sets), and says in status.adapters where each one is loaded. The decision is
builders/lora.plan (pure); this module only gathers and calls.

A replica that cannot be reached this pass is counted as not serving anything and tried again
next pass. Pods are reached at their IP on the vLLM port, as the Service would reach them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
import requests
from pydantic import ValidationError

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders import lora
from inference_operator.builders.names import OWNER_LABEL, PORT, Owner
from inference_operator.builders.workload import served_name
from inference_operator.kube.children import Key

READY_PODS = "ready_vllm_pods"
TIMEOUT_SECONDS = 5.0
# A load that fails is retried every pass; its message is kept this short in status.
ERROR_CHARS = 300


@kopf.index("", "v1", "pods", id=READY_PODS, labels={OWNER_LABEL: kopf.PRESENT})
def ready_vllm_pods(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Key, tuple[str, str]]:
    """Ready vLLM pods with an IP: (name, IP)."""
    if labels.get("app.kubernetes.io/component", "server") != "server":
        return {}
    if body.metadata.get("deletionTimestamp"):
        return {}
    status = body.get("status") or {}
    ip = status.get("podIP")
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if not ip or not ready:
        return {}
    return {(str(body.metadata.namespace), str(labels[OWNER_LABEL])): (body.metadata.name, ip)}


def _url(ip: str, path: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{PORT}{path}"


def _answer(r: requests.Response) -> str:
    try:
        message = (r.json().get("error") or {}).get("message")
    except ValueError:
        message = None
    return f"{r.status_code} {message or r.text}"[:ERROR_CHARS]


def sync(
    body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, indexes: Mapping[str, Any]
) -> None:
    meta = body.meta
    if meta.get("deletionTimestamp"):
        return
    try:
        spec = InferenceDeploymentSpec.model_validate(dict(body.spec))
    except ValidationError:
        return  # the reconciler reports InvalidSpec
    old = body.status.get("adapters")
    if not spec.lora_enabled and not old:
        return
    wanted = lora.desired(spec) if spec.lora_enabled else {}
    key: Key = (meta["namespace"], meta["name"])
    pods = sorted(set(indexes[READY_PODS].get(key, ())))
    base = served_name(Owner(meta["name"], meta["namespace"], meta["uid"]), spec)
    loaded = dict.fromkeys(wanted, 0)
    errors: dict[str, str] = {}
    with requests.Session() as http:
        for pod, ip in pods:
            try:
                r = http.get(_url(ip, "/v1/models"), timeout=TIMEOUT_SECONDS)
                r.raise_for_status()
                serving = lora.loaded_adapters(r.json(), base)
            except (requests.RequestException, ValueError) as e:
                logger.debug(f"adapters: {pod}: {e}")
                continue
            step = lora.plan(wanted, serving)
            for name in step.unload:
                try:
                    r = http.post(
                        _url(ip, "/v1/unload_lora_adapter"),
                        json={"lora_name": name},
                        timeout=TIMEOUT_SECONDS,
                    )
                except requests.RequestException as e:
                    logger.warning(f"adapter {name}: unloading from {pod}: {e}")
                    continue
                if r.ok or r.status_code == 404:  # 404: gone already
                    serving.pop(name, None)
                    logger.info(f"adapter {name} unloaded from {pod}")
                else:
                    # Tried again next pass; an adapter no longer wanted has no status entry.
                    logger.warning(f"adapter {name}: unloading from {pod}: {_answer(r)}")
            for name, path in step.load:
                try:
                    r = http.post(
                        _url(ip, "/v1/load_lora_adapter"),
                        json={"lora_name": name, "lora_path": path},
                        timeout=TIMEOUT_SECONDS * 12,  # it may download the adapter
                    )
                except requests.RequestException as e:
                    errors[name] = f"{pod}: {e}"[:ERROR_CHARS]
                    continue
                if r.ok:
                    serving[name] = path
                    logger.info(f"adapter {name} loaded on {pod}")
                else:
                    errors[name] = f"{pod}: {_answer(r)}"
            for name, path in serving.items():
                if wanted.get(name) == path:
                    loaded[name] += 1
    statuses = [
        {
            "name": name,
            "loaded": loaded[name],
            "replicas": len(pods),
            **({"error": errors[name]} if name in errors else {}),
        }
        for name in sorted(wanted)
    ]
    if statuses != (old or []):
        patch.status["adapters"] = statuses or None
    for name, message in errors.items():
        kopf.warn(body, reason="AdapterLoadFailed", message=f"adapter {name}: {message}")
