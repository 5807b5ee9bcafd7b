"""InferencePolicy rules as pure functions: the operator's second line after admission.

The ValidatingAdmissionPolicy (`api/admission.py`) says the same in CEL; the integration tests
send each case to the real API server and to `violations` and expect the same field refused.
Messages name the policy, the field, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.api.policy import InferencePolicySpec, NamespaceSelector

Named = tuple[str, InferencePolicySpec]


@dataclass(frozen=True)
class Violation:
    policy: str
    field: str  # as the user writes it: spec.accelerator.types
    message: str

    def __str__(self) -> str:
        return self.message


def selects(selector: NamespaceSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector selects every namespace."""
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for r in selector.match_expressions:
        present = r.key in labels
        if r.operator == "In" and not (present and labels[r.key] in r.values):
            return False
        if r.operator == "NotIn" and present and labels[r.key] in r.values:
            return False
        if r.operator == "Exists" and not present:
            return False
        if r.operator == "DoesNotExist" and present:
            return False
    return True


def governing(labels: Mapping[str, str], policies: Sequence[Named]) -> list[Named]:
    return sorted(
        (p for p in policies if selects(p[1].namespace_selector, labels)), key=lambda p: p[0]
    )


def devices_at_most(spec: InferenceDeploymentSpec) -> int:
    """The most devices one InferenceDeployment may hold: its ceiling times devices per replica."""
    ceiling = spec.autoscaling.max_replicas if spec.autoscaling.enabled else spec.replicas
    return spec.accelerator.per_replica * ceiling


def type_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Case-insensitive; a family allows its instance types (g6e allows g6e.xlarge)."""
    n = name.lower()
    return any(n == a.lower() or n.startswith(a.lower() + ".") for a in allowed)


def _refused(policy: str, field: str, value: object, allowed: str) -> Violation:
    return Violation(
        policy,
        field,
        f"InferencePolicy {policy}: {field} {value} is not allowed (allowed: {allowed})",
    )


def _listed(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def violations(
    spec: InferenceDeploymentSpec, labels: Mapping[str, str], policies: Sequence[Named]
) -> list[Violation]:
    """Every rule of every policy governing the namespace (by its labels) that `spec` breaks."""
    out: list[Violation] = []
    for name, p in governing(labels, policies):
        acc = spec.accelerator
        if p.accelerators.kinds and acc.kind not in p.accelerators.kinds:
            out.append(
                _refused(name, "spec.accelerator.kind", acc.kind, _listed(p.accelerators.kinds))
            )
        allowed_types = p.accelerators.types
        if allowed_types and (
            not acc.types or not all(type_allowed(t, allowed_types) for t in acc.types)
        ):
            out.append(
                _refused(
                    name,
                    "spec.accelerator.types",
                    f"[{', '.join(acc.types)}]",
                    f"a non-empty list of {_listed(allowed_types)}",
                )
            )
        image = spec.engine.image
        if image is not None and not image.startswith(tuple(p.images.prefixes)):
            out.append(_refused(name, "spec.engine.image", image, _listed(p.images.prefixes)))
        most = p.max_devices_per_deployment
        if most is not None and devices_at_most(spec) > most:
            out.append(
                _refused(
                    name,
                    "spec.autoscaling.maxReplicas" if spec.autoscaling.enabled else "spec.replicas",
                    f"x accelerator.perReplica = {devices_at_most(spec)} devices",
                    f"at most {most} devices per InferenceDeployment",
                )
            )
        pool, rules = spec.node_pool, p.node_pools
        if pool is not None and pool.create:
            if not rules.create:
                out.append(
                    _refused(name, "spec.nodePool.create", "true", "false: use an existing pool")
                )
            if rules.max_devices is not None and (
                pool.max_devices is None or pool.max_devices > rules.max_devices
            ):
                out.append(
                    _refused(
                        name,
                        "spec.nodePool.maxDevices",
                        pool.max_devices if pool.max_devices is not None else "(unset)",
                        f"set, at most {rules.max_devices}",
                    )
                )
            if rules.capacity_types and not set(pool.capacity_types) <= set(rules.capacity_types):
                out.append(
                    _refused(
                        name,
                        "spec.nodePool.capacityTypes",
                        f"[{', '.join(pool.capacity_types)}]",
                        _listed(rules.capacity_types),
                    )
                )
        if (
            pool is not None
            and not pool.create
            and pool.name is not None
            and rules.names
            and pool.name not in rules.names
        ):
            out.append(_refused(name, "spec.nodePool.name", pool.name, _listed(rules.names)))
        if spec.capacity.warm is not None and not p.warm_capacity:
            out.append(_refused(name, "spec.capacity.warm", "(set)", "none: warmCapacity is false"))
    return out


@dataclass(frozen=True)
class Budget:
    policy: str
    devices: int  # the namespace's devices, all InferenceDeployments together


def namespace_budget(labels: Mapping[str, str], policies: Sequence[Named]) -> Budget | None:
    """The tightest per-namespace device budget among the policies governing the namespace."""
    budgets = [
        Budget(name, p.max_devices_per_namespace)
        for name, p in governing(labels, policies)
        if p.max_devices_per_namespace is not None
    ]
    return min(budgets, key=lambda b: (b.devices, b.policy), default=None)


def within_budget(wanted: int, per_replica: int, budget: int, others: int) -> int:
    """The most replicas, up to `wanted`, that fit beside the `others` devices already held."""
    room = max(0, budget - others) // max(1, per_replica)
    return min(wanted, room)


def budget_message(budget: Budget, wanted: int, allowed: int, others: int) -> str:
    return (
        f"InferencePolicy {budget.policy}: maxDevicesPerNamespace {budget.devices} allows "
        f"{allowed} of the {wanted} replicas wanted ({others} devices held by the namespace's "
        "other InferenceDeployments)"
    )


def others_devices(me: str, held: Mapping[str, int], claimed: Mapping[str, int]) -> int:
    """Devices the namespace's other InferenceDeployments hold: for each, the larger of what it
    asks for now (its spec.replicas) and what this operator last granted it (a decision KEDA may
    not have applied yet). The larger, so two models growing at once cannot both take the room."""
    return sum(
        max(held.get(name, 0), claimed.get(name, 0))
        for name in set(held) | set(claimed)
        if name != me
    )
