"""Karpenter's kwok cloud provider beside the local control plane:
NodePools whose nodeClassRef is a KWOKNodeClass get NodeClaims and fake nodes that kwok makes
Ready, so a NodePool's requirements, limits, spot-first order and consolidation are exercised.

The instance-types file declares our GPU and Neuron shapes (capacity/catalogue.py) in the
format of the provider's built-in kwok/cloudprovider/instance_types.json. Offerings also carry
the AWS node labels (karpenter.k8s.aws/instance-family, instance-gpu-name, ...): the provider
turns every offering requirement key into a well-known label and puts it on the node, so the
NodePool the operator emits for EKS selects the same way here.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localcluster import REGION, ZONES, LocalCluster, free_port, install_crds

from inference_operator.capacity.catalogue import INSTANCES, Instance

NAMESPACE = "karpenter"
_UPSTREAM = Path(__file__).resolve().parents[2] / "shared/upstream/crds/karpenter"
# Karpenter's own CRDs (NodePool, NodeClaim, NodeOverlay, CapacityBuffer) and the kwok
# provider's KWOKNodeClass, as shared/upstream holds them.
CRDS = [*sorted(_UPSTREAM.glob("*.yaml")), *sorted((_UPSTREAM / "kwok").glob("*.yaml"))]
# On-demand $/h, us-east-1, rounded (for ordering and cost reports only).
ON_DEMAND = {
    "p5.48xlarge": 98.32, "p5e.48xlarge": 108.0, "p5en.48xlarge": 110.0, "p4d.24xlarge": 32.77,
    "p4de.24xlarge": 40.97, "g6e.xlarge": 1.861, "g6e.2xlarge": 2.242, "g6e.12xlarge": 10.49,
    "g6e.24xlarge": 15.07, "g6e.48xlarge": 30.13, "g6.xlarge": 0.805, "g6.12xlarge": 4.602,
    "g6.48xlarge": 13.35, "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.12xlarge": 5.672,
    "g5.48xlarge": 16.29, "inf2.xlarge": 0.758, "inf2.8xlarge": 1.968, "inf2.24xlarge": 6.491,
    "inf2.48xlarge": 12.98, "trn1.2xlarge": 1.344, "trn1.32xlarge": 21.5, "trn2.48xlarge": 44.7,
    "m6i.2xlarge": 0.384,
}  # fmt: skip
SPOT_DISCOUNT = 0.4


def _labels(i: Instance) -> dict[str, str]:
    labels = {
        "karpenter.k8s.aws/instance-family": i.family,
        "karpenter.k8s.aws/instance-size": i.name.split(".", 1)[1],
        "topology.kubernetes.io/region": REGION,
    }
    if i.kind == "nvidia":
        labels["karpenter.k8s.aws/instance-gpu-name"] = i.accelerator
        labels["karpenter.k8s.aws/instance-gpu-manufacturer"] = "nvidia"
        labels["karpenter.k8s.aws/instance-gpu-count"] = str(i.devices)
    elif i.kind == "neuron":
        labels["karpenter.k8s.aws/instance-accelerator-name"] = i.accelerator
        labels["karpenter.k8s.aws/instance-accelerator-manufacturer"] = "aws"
    return labels


# (instance type, zone, capacity type) -> offered? Tests take offerings away to see Karpenter try
# the next one and the operator report pods no offering can take.
Offered = Callable[[str, str, str], bool]


def instance_types(offered: Offered = lambda *_: True) -> list[dict[str, object]]:
    shapes = [*INSTANCES, Instance("m6i.2xlarge", "m6i", "", "cpu", 0, 0, 8, 32)]
    out = []
    for i in shapes:
        resources = {"cpu": str(i.vcpu), "memory": f"{i.memory_gib}Gi", "pods": "110",
                     "ephemeral-storage": "200Gi"}  # fmt: skip
        if i.kind == "nvidia":
            resources["nvidia.com/gpu"] = str(i.devices)
        elif i.kind == "neuron":
            # Devices (chips), as the Neuron device plugin counts them: 2 NeuronCores each.
            resources["aws.amazon.com/neuron"] = str(max(1, i.devices // 2))
        price = ON_DEMAND.get(i.name, 1.0)
        labels = _labels(i)
        offerings = [
            {
                "Price": round(price * (SPOT_DISCOUNT if capacity == "spot" else 1.0), 4),
                # The provider marks every offering it reads available (helpers.go): one that is
                # not offered is left out.
                "Available": True,
                "Requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity]},
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]},
                    *({"key": k, "operator": "In", "values": [v]} for k, v in labels.items()),
                ],
            }
            for zone in ZONES
            for capacity in ("spot", "on-demand")
            if offered(i.name, zone, capacity)
        ]
        if not offerings:
            continue
        out.append({"name": i.name, "architecture": "amd64", "operatingSystems": ["linux"],
                    "resources": resources, "offerings": offerings})  # fmt: skip
    return out


@dataclass
class LocalKarpenter:
    cluster: LocalCluster
    offered: Offered = lambda *_: True

    def start(self) -> LocalKarpenter:
        if not os.environ.get("INFOP_NETNS"):
            raise RuntimeError(
                "Karpenter binds its metrics and health ports on every interface: run it in a "
                "network namespace of its own (hack/netns.sh), where every interface is loopback"
            )
        c = self.cluster
        types = c.state / "instance-types.json"
        types.write_text(json.dumps(instance_types(self.offered)))
        install_crds(c.kubectl, CRDS, field_manager="localkarpenter")
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        c.kubectl("apply", "-f", "-", input=json.dumps(ns))
        env = {
            **os.environ,
            "KUBECONFIG": str(c.kubeconfig),
            "SYSTEM_NAMESPACE": NAMESPACE,
            "DISABLE_LEADER_ELECTION": "true",
            "FEATURE_GATES": "CapacityBuffer=true",
            "INSTANCE_TYPES_FILE_PATH": str(types),
            "METRICS_PORT": str(free_port()),
            "HEALTH_PROBE_PORT": str(free_port()),
            "LOG_LEVEL": "info",
        }
        c.spawn("karpenter", [str(c.bin_dir / "karpenter-kwok")], env=env)
        c.wait(
            lambda: self._healthy(env["HEALTH_PROBE_PORT"]),
            "Karpenter healthy",
            timeout=60,
            procs=["karpenter"],
        )
        return self

    @staticmethod
    def _healthy(port: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False
