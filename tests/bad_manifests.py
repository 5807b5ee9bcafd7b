"""Invalid InferenceDeployment specs, each with the field the API server must name: shared by the
admission tests (real API server) and the render tests (no cluster)."""

from __future__ import annotations

import copy
from typing import Any

GOOD: dict[str, Any] = {
    "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
    "accelerator": {"kind": "nvidia", "perReplica": 1},
}


def with_(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(base or GOOD)
    node = spec
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        node.pop(leaf)
    else:
        node[leaf] = value
    return spec


_DELETE = object()

BAD = [
    (
        with_(
            "autoscaling",
            {
                "maxReplicas": 4,
                "schedules": [{"cron": "0 8 * * 1-5", "minReplicas": 6, "duration": "10h"}],
            },
        ),
        "spec.autoscaling.schedules: Invalid value",
        "schedules[].minReplicas must be <= maxReplicas",
    ),
    (
        with_("accelerator", {"kind": "neuron", "perReplica": 2, "types": ["inf2", "H100"]}),
        "spec.accelerator.types: Invalid value",
        "types may not name NVIDIA GPUs or instances with kind: neuron",
    ),
    (
        with_("accelerator", {"kind": "neuron", "perReplica": 2, "types": ["ml.g5.xlarge"]}),
        "spec.accelerator.types: Invalid value",
        "types may not name NVIDIA GPUs or instances with kind: neuron",
    ),
    (
        with_("accelerator", {"kind": "nvidia", "types": ["L40S", "inf2.xlarge"]}),
        "spec.accelerator.types: Invalid value",
        "types may not name Neuron accelerators or instances with kind: nvidia",
    ),
    (
        with_("accelerator", {"kind": "nvidia", "types": ["Trainium2"]}),
        "spec.accelerator.types: Invalid value",
        "types may not name Neuron accelerators or instances with kind: nvidia",
    ),
    (
        with_("autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
        "spec.autoscaling.minReplicas: Invalid value",
        "minReplicas must be <= maxReplicas",
    ),
    (
        with_("autoscaling.targets", {"queuePerReplica": 0}),
        "spec.autoscaling.targets.queuePerReplica",
        "should be greater than 0",
    ),
    (
        with_("autoscaling.targets", {"kvCacheUtilization": 1.5}),
        "spec.autoscaling.targets.kvCacheUtilization",
        "less than or equal to 1",
    ),
    (
        with_("autoscaling.targets", {"kvCacheUtilization": -0.1}),
        "spec.autoscaling.targets.kvCacheUtilization",
        "greater than 0",
    ),
    (
        with_("autoscaling.targets", {"requestsPerSecondPerReplica": 0}),
        "spec.autoscaling.targets.requestsPerSecondPerReplica",
        "greater than 0",
    ),
    (
        with_("accelerator.kind", "tpu"),
        'spec.accelerator.kind: Unsupported value: "tpu"',
        '"nvidia", "neuron"',
    ),
    (
        with_("accelerator.perReplica", 3),
        "spec.accelerator.perReplica",
        "perReplica must be 1, 2, 4 or 8 for nvidia",
    ),
    (
        with_("accelerator.perReplica", 0),
        "spec.accelerator.perReplica",
        "greater than or equal to 1",
    ),
    (
        with_("accelerator.perReplica", 64),
        "spec.accelerator.perReplica",
        "less than or equal to 32",
    ),
    (
        with_("accelerator", {"kind": "neuron", "perReplica": 3}),
        "spec.accelerator.perReplica",
        "1, 2, 4, 8, 12, 16, 24 or 32 for neuron",
    ),
    (with_("accelerator.types", ["H100; rm -rf /"]), "spec.accelerator.types[0]", "should match"),
    (with_("model.uri", "ftp://example/model"), "spec.model.uri", "should match"),
    (with_("model", _DELETE), "spec.model: Required value", ""),
    (with_("accelerator", _DELETE), "spec.accelerator: Required value", ""),
    (with_("model.dtype", "fp4"), 'spec.model.dtype: Unsupported value: "fp4"', "bfloat16"),
    (with_("model.maxModelLen", 10), "spec.model.maxModelLen", "greater than or equal to 128"),
    (
        with_("engine.args", ["--port=9000"]),
        "spec.engine.args",
        "args may not set flags the operator owns",
    ),
    (with_("engine.args", ["--max-num-seqs 8\n--port 1"]), "spec.engine.args[0]", "should match"),
    (
        with_("engine.env", [{"name": "1BAD", "value": "x"}]),
        "spec.engine.env[0].name",
        "should match",
    ),
    (with_("replicas", -1), "spec.replicas", "greater than or equal to 0"),
    (with_("replicas", 100000), "spec.replicas", "less than or equal to 1000"),
    (with_("replicas", "two"), ".spec.replicas: expected numeric", ""),
    (with_("surprise", True), ".spec.surprise: field not declared in schema", ""),
    (
        with_("autoscaling", {"minReplicas": 1, "scaleToZero": {"idleAfter": "5m"}}),
        "spec.autoscaling.scaleToZero",
        "scaleToZero requires minReplicas: 0",
    ),
    (
        with_("autoscaling.schedules", [{"cron": "nope", "minReplicas": 2, "duration": "1h"}]),
        "spec.autoscaling.schedules[0].cron",
        "",
    ),
    (
        with_(
            "autoscaling.schedules",
            [{"cron": "0 8 * * 1-5", "minReplicas": 2, "duration": "10 hours"}],
        ),
        "spec.autoscaling.schedules[0].duration",
        "should match",
    ),
    (
        with_("autoscaling.behavior", {"scaleDown": {"stabilizationWindow": "5 minutes"}}),
        "spec.autoscaling.behavior.scaleDown.stabilizationWindow",
        "should match",
    ),
    (
        with_("nodePool", {"create": False}),
        "spec.nodePool.name",
        "name is required when create is false",
    ),
    (
        with_(
            "nodePool",
            {
                "create": True,
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "HyperpodNodeClass"},
            },
        ),
        "spec.nodePool.nodeClassRef.kind",
        "must be EC2NodeClass",
    ),
    (
        with_("nodePool", {"create": True, "capacityTypes": ["cheap"]}),
        'spec.nodePool.capacityTypes[0]: Unsupported value: "cheap"',
        "spot",
    ),
    (
        with_("nodePool", {"create": True, "zones": ["US-EAST-1A"]}),
        "spec.nodePool.zones[0]",
        "should match",
    ),
    (
        with_("model.tokenSecretRef", {"name": "Bad_Name", "key": "token"}),
        "spec.model.tokenSecretRef.name",
        "should match",
    ),
    (with_("model.servedName", "x" * 64), "spec.model.servedName", "may not be more than 63"),
    (
        with_("autoscaling.prometheus", {"url": "not a url"}),
        "spec.autoscaling.prometheus.url",
        "should match",
    ),
    (with_("engine.image", "vllm image:latest"), "spec.engine.image", "should match"),
    # Wrong types, huge and negative numbers.
    (with_("replicas", 1.5), "spec.replicas", "must be of type integer"),
    (with_("accelerator.perReplica", "4"), ".spec.accelerator.perReplica: expected numeric", ""),
    (with_("model", "llama"), ".spec.model: expected map", ""),
    (with_("accelerator.types", "L40S"), ".spec.accelerator.types: expected list", ""),
    (
        with_("autoscaling.maxReplicas", 10**12),
        "spec.autoscaling.maxReplicas",
        "less than or equal",
    ),
    (with_("autoscaling.minReplicas", -3), "spec.autoscaling.minReplicas", "greater than or equal"),
    (
        with_("autoscaling.targets", {"queuePerReplica": 1e308}),
        "spec.autoscaling.targets.queuePerReplica",
        "less than or equal to 10000",
    ),
    (
        with_("autoscaling.behavior", {"scaleUp": {"maxFactor": 1}}),
        "spec.autoscaling.behavior.scaleUp.maxFactor",
        "greater than 1",
    ),
    (with_("gateway", {"replicas": 0}), "spec.gateway.replicas", "greater than or equal to 1"),
    # Too long, too many.
    (with_("model.uri", "hf://org/" + "m" * 1000), "spec.model.uri", "may not be more than 512"),
    (with_("engine.args", ["--x"] * 100), "spec.engine.args", "must have at most 64 items"),
    (with_("engine.args", ["--x=" + "y" * 2000]), "spec.engine.args[0]", "more than 1024"),
    (
        with_("accelerator.types", [f"t{i}" for i in range(50)]),
        "spec.accelerator.types",
        "must have at most",
    ),
    # Control characters, path tricks, unicode where names are expected.
    (with_("engine.args", ["--max-num-seqs=8\r--port=1"]), "spec.engine.args[0]", "should match"),
    (with_("engine.args", ["--x\u0000"]), "spec.engine.args[0]", "should match"),
    (with_("model.servedName", "llama-🦙"), "spec.model.servedName", "should match"),
    (
        with_("model.tokenSecretRef", {"name": "hf", "key": "../../token"}),
        "spec.model.tokenSecretRef.key",
        "should match",
    ),
    (
        with_(
            "autoscaling.schedules",
            [
                {
                    "cron": "0 8 * * *",
                    "timezone": "../../etc/passwd",
                    "minReplicas": 1,
                    "duration": "1h",
                }
            ],
        ),
        "spec.autoscaling.schedules[0].timezone",
        "should match",
    ),
    (with_("nodePool.zones", ["US-EAST-1A"]), "spec.nodePool.zones[0]", "should match"),
    (with_("gateway", {"queueTimeout": "forever"}), "spec.gateway.queueTimeout", "should match"),
    (
        with_("engine.env", [{"name": "PATH=/tmp", "value": "x"}]),
        "spec.engine.env[0].name",
        "should match",
    ),
    (with_("capacity.warm", {}), "spec.capacity.warm", "set exactly one of replicas"),
    (
        with_("capacity.warm", {"replicas": 2, "auto": {"maxReplicas": 4}}),
        "spec.capacity.warm",
        "set exactly one of replicas",
    ),
    (with_("capacity.warm.auto", {"maxReplicas": 0}), "spec.capacity.warm.auto.maxReplicas", ""),
    (with_("cache", {}), "spec.cache", "set exactly one of claimName"),
    (
        with_("cache", {"claimName": "models", "hostPath": "/var/cache"}),
        "spec.cache",
        "set exactly one of claimName",
    ),
    (with_("cache", {"hostPath": "/var/../etc"}), "spec.cache.hostPath", "should match"),
    (with_("cache", {"hostPath": "relative/dir"}), "spec.cache.hostPath", "should match"),
    # Found by the schema fuzzer: values that would have been refused only in the Deployment.
    (
        with_("engine.env", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        ".spec.engine.env: duplicate entries for key",
        "",
    ),
    (
        with_("engine.env", [{"name": "HF_TOKEN", "value": "inline"}]),
        "spec.engine.env",
        "env may not set variables the operator owns",
    ),
    (with_("accelerator.types", ["0."]), "spec.accelerator.types[0]", "should match"),
    (with_("nodePool.zones", ["us-east-1a-"]), "spec.nodePool.zones[0]", "should match"),
    # LoRA adapters.
    (
        with_("adapters", [{"name": "sql", "uri": "s3://bucket/sql-lora"}]),
        "spec.adapters[0].uri",
        "should match",
    ),
    (
        with_(
            "adapters",
            [{"name": "sql", "uri": "hf://org/a"}, {"name": "sql", "uri": "hf://org/b"}],
        ),
        "spec.adapters: Invalid value",
        "adapters[].name must be unique",
    ),
    (
        with_(
            "adapters",
            [
                {"name": "a", "uri": "hf://org/a", "tokenSecretRef": {"name": "t1", "key": "k"}},
                {"name": "b", "uri": "hf://org/b", "tokenSecretRef": {"name": "t2", "key": "k"}},
            ],
        ),
        "spec.adapters: Invalid value",
        "vLLM reads one HF_TOKEN",
    ),
    (with_("lora", {"maxRank": 24}), "spec.lora.maxRank", "supported values"),
    (with_("engine.args", ["--enable-lora"]), "spec.engine.args", "operator owns"),
    # Unknown fields, deeply nested junk: refused by name (server-side apply's typed patch).
    (with_("replicaz", 3), ".spec.replicaz: field not declared in schema", ""),
    (
        with_("model.junk", {"a": {"b": {"c": {"d": {"e": [1, {"f": None}]}}}}}),
        ".spec.model.junk: field not declared in schema",
        "",
    ),
]

# metadata.name becomes a Service name: a DNS-1035 label of at most 63 characters.
BAD_NAMES = ["a" * 64, "1llama", "llama.v2", "Llama"]
