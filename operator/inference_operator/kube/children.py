"""One InferenceDeployment's children as the operator's caches hold them (handlers/cache.py
fills the caches from kopf's watches): what a cache keeps of a child, lookups by owner, pods the
scheduler cannot place, and the tolerance of the HPA that KEDA made. No API calls here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from inference_operator.scaling.hpa import DEFAULT_TOLERANCE

Key = tuple[str, str]  # (namespace, InferenceDeployment name)


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def index(self) -> str:
        return f"children_{self.plural}"

    @property
    def group_version(self) -> tuple[str, str]:
        group, _, version = self.api_version.rpartition("/")
        return group, version


CHILD_KINDS = (
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("v1", "Service", "services"),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors"),
    Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
    Kind("keda.sh/v1alpha1", "TriggerAuthentication", "triggerauthentications"),
    Kind("karpenter.sh/v1", "NodePool", "nodepools", namespaced=False),
    Kind("autoscaling.x-k8s.io/v1beta1", "CapacityBuffer", "capacitybuffers"),
    Kind("inference.networking.k8s.io/v1", "InferencePool", "inferencepools"),
)
BY_KIND = {(k.api_version, k.kind): k for k in CHILD_KINDS}
PENDING_PODS = "pending_pods"
STARTED_PODS = "started_pods"
# A pod that waited longer than this to be scheduled waited for a node (Karpenter's launch).
WAITED_FOR_NODE_SECONDS = 10.0
KEDA_HPAS = "keda_hpas"
KEDA_SCALED_OBJECT_LABEL = "scaledobject.keda.sh/name"


@dataclass(frozen=True)
class Cached:
    """A child as a cache holds it: its name, and the object as compact JSON. A Deployment
    is ~3 KB so, against ~30 KB as nested dicts: at 5,000 models that is the operator's memory."""

    name: str
    json: str

    def object(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.json)
        return out


def trimmed(body: Mapping[str, Any], keep_status: bool) -> Cached:
    """A child as a pass compares it, without managedFields (most of an object's bytes) and
    without status (but a Deployment's)."""
    meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    out = {k: v for k, v in body.items() if k != "metadata" and (keep_status or k != "status")}
    out["metadata"] = meta
    return Cached(str(meta.get("name")), json.dumps(out, separators=(",", ":"), default=dict))


# Children whose status a pass reads: the Deployment's rollout, the NodePool's resources in use.
KEEP_STATUS = frozenset({"Deployment", "NodePool"})


def pool_limit_reached(pool: Mapping[str, Any] | None, device: str, per_replica: int) -> str | None:
    """Why Karpenter launches no more nodes in this NodePool, when its limits say so: another
    replica's devices would pass the device limit, or CPU or memory is already at its limit."""
    if not pool:
        return None
    limits = (pool.get("spec") or {}).get("limits") or {}
    used = (pool.get("status") or {}).get("resources") or {}
    name = (pool.get("metadata") or {}).get("name")
    for resource, raw in sorted(limits.items()):
        try:
            limit = parse_quantity(str(raw))
            have = parse_quantity(str(used.get(resource, 0)))
        except ValueError:
            continue
        if have + (per_replica if resource == device else 0) > limit or (
            resource != device and have >= limit
        ):
            return (
                f"NodePool {name} is at its limits: {resource} {have} in use of {limit} "
                "(spec.nodePool.maxDevices, or maxReplicas and the warm capacity)"
            )
    return None


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def startup_of(pod: Mapping[str, Any]) -> tuple[float, float, bool] | None:
    """(Ready at, seconds from creation to Ready, whether it waited for a node) of a vLLM pod
    that became Ready without a restart; None for any other pod (a restarted container's Ready
    time measures the crash, not a start-up)."""
    meta = pod.get("metadata") or {}
    if (meta.get("labels") or {}).get("app.kubernetes.io/component", "server") != "server":
        return None
    status = pod.get("status") or {}
    if any((c.get("restartCount") or 0) > 0 for c in status.get("containerStatuses") or []):
        return None
    times = {
        c.get("type"): _epoch(c.get("lastTransitionTime"))
        for c in status.get("conditions") or []
        if c.get("status") == "True"
    }
    created, ready, scheduled = (
        _epoch(meta.get("creationTimestamp")),
        times.get("Ready"),
        times.get("PodScheduled"),
    )
    if created is None or ready is None or ready < created:
        return None
    waited = scheduled is not None and scheduled - created > WAITED_FOR_NODE_SECONDS
    return ready, ready - created, waited


def hpa_tolerance(spec: Mapping[str, Any]) -> float:
    raw = ((spec.get("behavior") or {}).get("scaleUp") or {}).get("tolerance")
    if raw is None:
        return DEFAULT_TOLERANCE
    try:
        return float(parse_quantity(str(raw)))
    except ValueError:
        return DEFAULT_TOLERANCE


@dataclass(frozen=True)
class Children:
    """One InferenceDeployment's children as the indexes hold them."""

    key: Key
    indexes: Mapping[str, Any]
    # Kinds whose watch runs (served when the operator started); others are read with a GET.
    cached: frozenset[tuple[str, str]] = frozenset()

    def is_cached(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.cached and BY_KIND.get((api_version, kind)) is not None

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        found = BY_KIND[(api_version, kind)]
        index = self.indexes.get(found.index)
        if index is None or self.key not in index:
            return None
        held: list[Cached] = list(index[self.key])
        return next((c.object() for c in held if c.name == name), None)

    def hpa_tolerance(self) -> float:
        """Of the HPA KEDA made for our ScaledObject (named like the InferenceDeployment)."""
        index = self.indexes.get(KEDA_HPAS)
        if index is None or self.key not in index:
            return DEFAULT_TOLERANCE
        return min(index[self.key], default=DEFAULT_TOLERANCE)

    def startups(self) -> tuple[tuple[float, float, bool], ...]:
        """Start-ups of the model's pods the cache holds (startup_of)."""
        index = self.indexes.get(STARTED_PODS)
        if index is None or self.key not in index:
            return ()
        return tuple(index[self.key])

    def unschedulable(self, now: dt.datetime, threshold: float) -> str | None:
        index = self.indexes.get(PENDING_PODS)
        if index is None or self.key not in index:
            return None
        return first_stuck(index[self.key], now, threshold)


def first_stuck(
    pods: Iterable[tuple[str, str, str]], now: dt.datetime, threshold: float
) -> str | None:
    for name, since, message in sorted(pods):
        started = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        if (now - started).total_seconds() >= threshold:
            return f"pod {name} cannot be scheduled: {message}"
    return None
