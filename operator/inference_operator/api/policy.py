"""The `infer.dev/v1alpha1` InferencePolicy API: what the InferenceDeployments in the namespaces
it selects may ask for. Cluster-scoped, so that a tenant with rights in its own namespace cannot
write its own.

Enforced twice: at admission by the ValidatingAdmissionPolicy in `api/admission.py` (CEL, no
webhook), and by the operator before it builds anything (`api/guardrails.py`), for objects
admitted before a policy existed or where the admission policy is not installed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from inference_operator.api.models import (
    DEFAULT_IMAGE,
    DEFAULT_NEURON_IMAGE,
    DNS_LABEL,
    AcceleratorType,
    Base,
    CapacityType,
)

# Bounded, so the API server can bound the cost of the CEL that reads them.
LabelValue = Annotated[str, StringConstraints(max_length=63)]
ImagePrefix = Annotated[str, StringConstraints(min_length=1, max_length=512)]
PoolName = Annotated[str, StringConstraints(max_length=63, pattern=DNS_LABEL)]

POLICY_KIND = "InferencePolicy"
POLICY_PLURAL = "inferencepolicies"
POLICY_SHORT_NAME = "infpol"

# The images the operator ships with, as repository prefixes: a policy that names no images
# allows these and nothing else.
DEFAULT_IMAGE_PREFIXES = (
    DEFAULT_IMAGE.split(":", 1)[0] + ":",
    DEFAULT_NEURON_IMAGE.split(":", 1)[0] + ":",
)


class SelectorRequirement(Base):
    """One requirement on a namespace's labels, as in a Kubernetes label selector."""

    key: str = Field(description="Label key.", min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[LabelValue] = Field(
        default_factory=list,
        description="Values for In and NotIn.",
        max_length=64,
    )


class NamespaceSelector(Base):
    """Which namespaces a policy governs, by their labels. Empty: every namespace."""

    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        description="Labels a namespace must carry, all of them.",
        max_length=64,
    )
    match_expressions: list[SelectorRequirement] = Field(
        default_factory=list,
        description="Requirements a namespace must meet, all of them.",
        max_length=64,
    )


class AcceleratorRules(Base):
    """Accelerators the selected namespaces may ask for."""

    kinds: list[Literal["nvidia", "neuron"]] = Field(
        default_factory=list, description="Allowed accelerator kinds; empty: any.", max_length=2
    )
    types: list[AcceleratorType] = Field(
        default_factory=list,
        description="Allowed GPU names, instance families or instance types (matched "
        "case-insensitively; a family allows its instance types: g6e allows g6e.xlarge). When "
        "set, every InferenceDeployment must list its accelerator.types, all of them allowed: an "
        "empty list would let the capacity planner choose any. Empty: any.",
        max_length=64,
    )


class ImageRules(Base):
    """Container images the vLLM pods may run."""

    prefixes: list[ImagePrefix] = Field(
        default_factory=lambda: list(DEFAULT_IMAGE_PREFIXES),
        description="Allowed image prefixes (registry/repository: or registry/). Default: the "
        "vLLM images the operator ships with. An InferenceDeployment that sets no image runs "
        "the default image.",
        min_length=1,
        max_length=64,
    )


class NodePoolRules(Base):
    """Karpenter NodePools: cluster-scoped, so creating one is a cluster-wide act."""

    create: bool = Field(
        False, description="Whether InferenceDeployments may create their own NodePool."
    )
    max_devices: int | None = Field(
        None,
        description="When set, a created NodePool must set maxDevices, at most this many GPUs "
        "or NeuronCores.",
        ge=1,
        le=100_000,
    )
    capacity_types: list[CapacityType] = Field(
        default_factory=list,
        description="Capacity types a created NodePool may use; empty: any.",
        max_length=3,
    )
    names: list[PoolName] = Field(
        default_factory=list,
        description="Existing NodePools InferenceDeployments may schedule on (nodePool.name); "
        "empty: any.",
        max_length=64,
    )


class InferencePolicySpec(Base):
    """Guardrails for the InferenceDeployments in the namespaces a policy selects. Every policy
    that selects a namespace applies there: a request must pass all of them."""

    namespace_selector: NamespaceSelector = Field(
        default_factory=NamespaceSelector,
        description="The namespaces governed, by label. Empty: every namespace.",
    )
    accelerators: AcceleratorRules = Field(
        default_factory=AcceleratorRules, description="Allowed accelerators."
    )
    images: ImageRules = Field(default_factory=ImageRules, description="Allowed vLLM images.")
    max_devices_per_deployment: int | None = Field(
        None,
        description="Most GPUs or NeuronCores one InferenceDeployment may reach: perReplica x "
        "autoscaling.maxReplicas (x replicas without autoscaling). Enforced at admission.",
        ge=0,
        le=100_000,
    )
    max_devices_per_namespace: int | None = Field(
        None,
        description="A budget: the most GPUs or NeuronCores all InferenceDeployments of a "
        "namespace hold at once. The operator never scales past it; the one held back says "
        "LimitedByBudget.",
        ge=0,
        le=1_000_000,
    )
    node_pools: NodePoolRules = Field(
        default_factory=NodePoolRules, description="Karpenter NodePools."
    )
    warm_capacity: bool = Field(
        False, description="Whether InferenceDeployments may keep warm capacity (spare nodes)."
    )


class InferencePolicy(Base):
    """InferencePolicy: what the InferenceDeployments of the namespaces it selects may use."""

    spec: InferencePolicySpec
