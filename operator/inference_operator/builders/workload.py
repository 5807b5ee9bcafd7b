"""The vLLM Deployment, its Service, PodDisruptionBudget and PodMonitor: pure spec -> manifests."""

from __future__ import annotations

import math
from typing import Any

from inference_operator.api.models import (
    DEFAULT_IMAGE,
    DEFAULT_NEURON_IMAGE,
    InferenceDeploymentSpec,
)
from inference_operator.builders import lora
from inference_operator.builders.names import PORT, Owner
from inference_operator.builders.placement import is_hyperpod, type_label

# Generous: weights of a 70B model over a slow link plus compile and CUDA-graph capture.
STARTUP_BUDGET_SECONDS = 1800
# Long enough for a streamed response of thousands of tokens to finish after SIGTERM.
TERMINATION_GRACE_SECONDS = 600
# Endpoints take a few seconds to drop a terminating pod; keep serving until they have.
PRESTOP_SLEEP_SECONDS = 15
WEIGHTS_MOUNT = "/models"


def device_resource(spec: InferenceDeploymentSpec) -> str:
    return "nvidia.com/gpu" if spec.accelerator.kind == "nvidia" else "aws.amazon.com/neuroncore"


def taint_key(spec: InferenceDeploymentSpec) -> str:
    return "nvidia.com/gpu" if spec.accelerator.kind == "nvidia" else "aws.amazon.com/neuron"


def served_name(owner: Owner, spec: InferenceDeploymentSpec) -> str:
    return spec.model.served_name or owner.name


def _model_source(
    spec: InferenceDeploymentSpec,
) -> tuple[str, list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The model argument for `vllm serve`, extra flags, volumes and mounts for the weights."""
    uri = spec.model.uri
    if uri.startswith("hf://"):
        return uri.removeprefix("hf://"), [], [], []
    if uri.startswith("s3://"):
        # vLLM streams safetensors from S3 with the Run:ai model streamer.
        return uri, ["--load-format", "runai_streamer"], [], []
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    volume = {"name": "weights", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    mount = {"name": "weights", "mountPath": f"{WEIGHTS_MOUNT}/{claim}", "readOnly": True}
    return f"{WEIGHTS_MOUNT}/{claim}/{path}".rstrip("/"), [], [volume], [mount]


def vllm_args(owner: Owner, spec: InferenceDeploymentSpec) -> list[str]:
    model, extra, _, _ = _model_source(spec)
    args = [
        model,
        "--served-model-name",
        served_name(owner, spec),
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    if spec.accelerator.kind == "nvidia":
        # vLLM's own default since V1, said out loud: prefix routing (routing/prefix.py) pays
        # off only where the engine keeps prefixes. On Neuron it needs a block KV layout and
        # matching compiled buckets, so it stays the user's choice (docs/prefix-routing.md).
        args += ["--tensor-parallel-size", str(spec.accelerator.per_replica)]
        args += ["--enable-prefix-caching"]
    else:
        args += ["--device", "neuron", "--tensor-parallel-size", str(spec.accelerator.per_replica)]
    if spec.model.max_model_len is not None:
        args += ["--max-model-len", str(spec.model.max_model_len)]
    if spec.model.dtype in ("bfloat16", "float16", "auto"):
        args += ["--dtype", spec.model.dtype]
    elif spec.model.dtype == "fp8":
        args += ["--quantization", "fp8"]
    # int8/int4 come from the checkpoint's own quantization config; vLLM detects it.
    args += ["--disable-access-log-for-endpoints", "/health,/metrics,/ping"]
    args += lora.lora_args(spec)
    return [*args, *extra, *spec.engine.args]


def _node_affinity(spec: InferenceDeploymentSpec) -> dict[str, Any] | None:
    """Accelerator types as node affinity: required = any of them, preferred = in list order."""
    hyperpod = is_hyperpod(spec)
    by_key: dict[str, list[str]] = {}
    preferred = []
    for i, t in enumerate(spec.accelerator.types):
        label = type_label(t, hyperpod)
        if label is None:
            continue
        key, value = label
        by_key.setdefault(key, []).append(value)
        preferred.append(
            {
                "weight": max(1, 100 - 10 * i),
                "preference": {
                    "matchExpressions": [{"key": key, "operator": "In", "values": [value]}]
                },
            }
        )
    if not by_key:
        return None
    terms = [
        {"matchExpressions": [{"key": k, "operator": "In", "values": v}]} for k, v in by_key.items()
    ]
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred,
    }


def _resources(spec: InferenceDeploymentSpec) -> dict[str, Any]:
    devices = spec.accelerator.per_replica
    res = spec.engine.resources
    per_device_gpus = devices if spec.accelerator.kind == "nvidia" else math.ceil(devices / 2)
    cpu = res.cpu if res and res.cpu else str(2 * per_device_gpus)
    memory = res.memory if res and res.memory else f"{12 * per_device_gpus}Gi"
    requests = {"cpu": cpu, "memory": memory, device_resource(spec): str(devices)}
    return {"requests": requests, "limits": {"memory": memory, device_resource(spec): str(devices)}}


CACHE_MOUNT = "/cache"


def _cache(
    spec: InferenceDeploymentSpec, taken: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """spec.cache: the variables that point vLLM, the Hugging Face hub and the Neuron compiler
    into it (none whose name is `taken`: the user's wins), the volume and its mount."""
    cache = spec.cache
    if cache is None:
        return [], [], []
    source: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": cache.claim_name}}
        if cache.claim_name is not None
        else {"hostPath": {"path": cache.host_path, "type": "DirectoryOrCreate"}}
    )
    wanted = {
        "HF_HOME": f"{CACHE_MOUNT}/huggingface",
        # vLLM's own cache: torch.compile artifacts and, on Neuron, the local NEFF cache.
        "VLLM_CACHE_ROOT": f"{CACHE_MOUNT}/vllm",
    }
    if spec.accelerator.kind == "neuron":
        # vLLM Neuron shares compiled NEFFs across nodes through this remote-cache directory;
        # the Neuron compiler's persistent cache (NxD Inference) reads this one.
        wanted["NEURON_LIBTORCH_REMOTE_CACHE"] = f"{CACHE_MOUNT}/neuron-remote"
        wanted["NEURON_COMPILE_CACHE_URL"] = f"{CACHE_MOUNT}/neuron-compile-cache"
    return (
        [{"name": k, "value": v} for k, v in wanted.items() if k not in taken],
        [{"name": "model-cache", **source}],
        [{"name": "model-cache", "mountPath": CACHE_MOUNT}],
    )


def build_deployment(
    owner: Owner, spec: InferenceDeploymentSpec, node_pool: str | None = None
) -> dict[str, Any]:
    _, _, volumes, mounts = _model_source(spec)
    env: list[dict[str, Any]] = [{"name": "VLLM_NO_USAGE_STATS", "value": "1"}]
    token = spec.model.token_secret_ref
    if token is not None:
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}},
            }
        )
    env += lora.lora_env(spec)
    env += [{"name": e.name, "value": e.value} for e in spec.engine.env]
    cache_env, cache_volumes, cache_mounts = _cache(spec, {e["name"] for e in env})
    env += cache_env
    adapter_volumes, adapter_mounts = lora.lora_volumes(spec)

    def probe() -> dict[str, Any]:
        return {"httpGet": {"path": "/health", "port": "http"}}

    image = spec.engine.image or (
        DEFAULT_IMAGE if spec.accelerator.kind == "nvidia" else DEFAULT_NEURON_IMAGE
    )
    shm_gib = 2 * spec.accelerator.per_replica + 2
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "enableServiceLinks": False,
        "tolerations": [{"key": taint_key(spec), "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": owner.selector},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        "containers": [
            {
                "name": "vllm",
                "image": image,
                "command": ["vllm", "serve"],
                "args": vllm_args(owner, spec),
                "env": env,
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "resources": _resources(spec),
                "startupProbe": {
                    **probe(),
                    "periodSeconds": 10,
                    "failureThreshold": STARTUP_BUDGET_SECONDS // 10,
                },
                "readinessProbe": {**probe(), "periodSeconds": 5, "failureThreshold": 3},
                "livenessProbe": {**probe(), "periodSeconds": 10, "failureThreshold": 6},
                "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
                "volumeMounts": [
                    {"name": "shm", "mountPath": "/dev/shm"},
                    {"name": "cache", "mountPath": "/root/.cache"},
                    *mounts,
                    *cache_mounts,
                    *adapter_mounts,
                ],
            }
        ],
        "volumes": [
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_gib}Gi"}},
            {"name": "cache", "emptyDir": {}},
            *volumes,
            *cache_volumes,
            *adapter_volumes,
        ],
    }
    affinity = _node_affinity(spec)
    if affinity:
        pod_spec["affinity"] = {"nodeAffinity": affinity}
    if node_pool:
        pod_spec["nodeSelector"] = {"karpenter.sh/nodepool": node_pool}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": owner.selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": owner.labels(),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def build_service(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": owner.selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_pdb(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": owner.metadata(),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": owner.selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def build_pod_monitor(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": owner.metadata(),
        "spec": {
            "selector": {"matchLabels": owner.selector},
            "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    }


def pool_name(owner: Owner, spec: InferenceDeploymentSpec) -> str | None:
    if spec.node_pool is None:
        return None
    return owner.cluster_name if spec.node_pool.create else spec.node_pool.name


def build_workload(
    owner: Owner, spec: InferenceDeploymentSpec, monitoring: bool
) -> list[dict[str, Any]]:
    """The vLLM Deployment, Service, PDB and (when the CRD exists) PodMonitor."""
    objs = [
        build_deployment(owner, spec, pool_name(owner, spec)),
        build_service(owner),
        build_pdb(owner),
    ]
    if monitoring:
        objs.append(build_pod_monitor(owner))
    return objs
