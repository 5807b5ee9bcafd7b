"""Where a replica may run: accelerator types as node labels, for pod affinity and NodePools."""

from __future__ import annotations

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.capacity.catalogue import GPU_NAMES

INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def is_hyperpod(spec: InferenceDeploymentSpec) -> bool:
    return spec.node_pool is not None and spec.node_pool.node_class_ref.group.startswith(
        "karpenter.sagemaker"
    )


def instance_type(name: str, hyperpod: bool) -> str:
    """HyperPod spells EC2 instance types with an `ml.` prefix."""
    return f"ml.{name}" if hyperpod and not name.startswith("ml.") else name


def type_label(accelerator_type: str, hyperpod: bool) -> tuple[str, str] | None:
    """The node label and value that select one entry of spec.accelerator.types: an instance
    type (g6e.xlarge), a GPU name (L40S) or an instance family (g6e). None on HyperPod for the
    latter two: its nodes carry only the well-known Kubernetes labels."""
    t = accelerator_type
    if "." in t:
        return INSTANCE_TYPE, instance_type(t, hyperpod)
    if hyperpod:
        return None
    if t.lower() in GPU_NAMES:
        return "karpenter.k8s.aws/instance-gpu-name", t.lower()
    return "karpenter.k8s.aws/instance-family", t.lower()
