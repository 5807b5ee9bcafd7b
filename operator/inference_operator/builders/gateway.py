"""The per-model gateway: Deployment, Service, PDB, and the namespaced RBAC its discovery needs
(watch InferenceDeployments and EndpointSlices). Pure spec -> manifests."""

from __future__ import annotations

import json
import math
from typing import Any

from inference_operator.api.durations import seconds
from inference_operator.api.models import GROUP, PLURAL, InferenceDeploymentSpec
from inference_operator.builders.names import MANAGED_BY, Owner
from inference_operator.builders.workload import served_name

GATEWAY_PORT = 8080
GATEWAY_LABEL = "infer.dev/gateway"
FALLBACK_KEYS = "/etc/infop/fallbacks"


def gateway_name(owner: Owner) -> str:
    return f"{owner.name}-gateway"[:63].rstrip("-")


def _labels(owner: Owner) -> dict[str, str]:
    # Not the vLLM pods' selector label: the model's Service and Deployment must never pick
    # gateway pods up.
    return {
        "app.kubernetes.io/name": "inference-gateway",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        GATEWAY_LABEL: owner.name,
    }


def _metadata(owner: Owner, name: str) -> dict[str, Any]:
    meta = owner.metadata(name, component="gateway")
    meta["labels"] = {**meta["labels"], **_labels(owner)}
    return meta


def build_gateway(owner: Owner, spec: InferenceDeploymentSpec, image: str) -> list[dict[str, Any]]:
    g = spec.gateway
    if g is None:
        return []
    name = gateway_name(owner)
    meta = _metadata(owner, name)
    selector = {GATEWAY_LABEL: owner.name, "app.kubernetes.io/component": "gateway"}
    timeout = seconds(g.queue_timeout)
    args = [
        "-m",
        "inference_operator",
        "gateway",
        "--port",
        str(GATEWAY_PORT),
        "--namespace",
        owner.namespace,
        "--deployment",
        owner.name,
        "--max-waiting",
        str(g.max_waiting),
        "--max-per-replica",
        str(g.max_per_replica),
        "--queue-timeout",
        f"{timeout:g}",
        "--shutdown-timeout",
        f"{timeout:g}",
        "--routing",
        g.routing,
    ]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if g.fallbacks:
        config = []
        for f in g.fallbacks:
            entry: dict[str, Any] = {
                "name": f.name,
                "model": served_name(owner, spec),
                "url": f.url,
                "priority": f.priority,
                "timeoutSeconds": seconds(f.timeout),
                "spillAfterSeconds": seconds(f.spill_after),
            }
            if f.remote_model:
                entry["remoteModel"] = f.remote_model
            if f.key_secret_ref is not None:
                ref = f.key_secret_ref
                entry["keyFile"] = f"{FALLBACK_KEYS}/{f.name}/{ref.key}"
                volumes.append(
                    {
                        "name": f"fallback-{f.name}",
                        "secret": {
                            "secretName": ref.name,
                            "items": [{"key": ref.key, "path": ref.key}],
                        },
                    }
                )
                mounts.append(
                    {
                        "name": f"fallback-{f.name}",
                        "mountPath": f"{FALLBACK_KEYS}/{f.name}",
                        "readOnly": True,
                    }
                )
            config.append(entry)
        # Inline: the spec is the file (no ConfigMap to keep in step); keys stay in Secrets.
        args += ["--fallbacks-json", json.dumps({"fallbacks": config}, sort_keys=True)]
    probe: dict[str, Any] = {"httpGet": {"path": "/healthz", "port": "http"}}
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": g.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": _labels(owner),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(GATEWAY_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": name,
                    "enableServiceLinks": False,
                    # Open streams and waiting requests get the whole queue timeout to finish.
                    "terminationGracePeriodSeconds": math.ceil(timeout) + 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                        }
                    ],
                    **({"volumes": volumes} if volumes else {}),
                    "containers": [
                        {
                            "name": "gateway",
                            "image": image,
                            "command": ["python"],
                            "args": args,
                            "ports": [
                                {"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}
                            ],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            **({"volumeMounts": mounts} if mounts else {}),
                            "readinessProbe": {**probe, "periodSeconds": 5},
                            "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch"]},
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["get", "list", "watch"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
    }
    return [account, role, binding, deployment, service, pdb]
