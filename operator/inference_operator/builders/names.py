"""Names and labels shared by every object built for one InferenceDeployment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MANAGED_BY = "inference-operator"
OWNER_LABEL = "infer.dev/deployment"
FIELD_MANAGER = "inference-operator"
# The status conditions' two writers, each applying only its own (api/conditions.py).
WORKLOAD_MANAGER = f"{FIELD_MANAGER}-reconciler"
SCALING_MANAGER = f"{FIELD_MANAGER}-autoscaler"
PORT = 8000


@dataclass(frozen=True)
class Owner:
    """The InferenceDeployment as its children see it."""

    name: str
    namespace: str
    uid: str
    api_version: str = "infer.dev/v1alpha1"
    kind: str = "InferenceDeployment"

    @property
    def selector(self) -> dict[str, str]:
        return {OWNER_LABEL: self.name}

    @property
    def selector_string(self) -> str:
        return f"{OWNER_LABEL}={self.name}"

    def labels(self, component: str = "server") -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            **self.selector,
        }

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(self, name: str | None = None, component: str = "server") -> dict[str, Any]:
        return {
            "name": name or self.name,
            "namespace": self.namespace,
            "labels": self.labels(component),
            "ownerReferences": [self.reference()],
        }

    @property
    def cluster_name(self) -> str:
        """A name for cluster-scoped objects: unique across namespaces, at most 63 characters."""
        full = f"{self.namespace}-{self.name}"
        if len(full) <= 63:
            return full
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        return f"{full[:54]}-{digest}"
