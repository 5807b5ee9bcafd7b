"""Judge an InferenceDeployment's spec against the capacity plan: status.capacity and the
CapacityPlanned condition (pure)."""

from __future__ import annotations

from typing import Any

from inference_operator.api.conditions import Cond
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.capacity.catalogue import INSTANCES, find_model
from inference_operator.capacity.plan import Request, matches, parse_parameters, plan

DEFAULT_MAX_MODEL_LEN = 8192


def unknown_types(spec: InferenceDeploymentSpec) -> list[str]:
    """Entries of accelerator.types that name no instance type, GPU or family of this kind."""
    kind = [i for i in INSTANCES if i.kind == spec.accelerator.kind]
    return [t for t in spec.accelerator.types if not any(matches(i, (t,)) for i in kind)]


def assess(spec: InferenceDeploymentSpec) -> tuple[dict[str, Any], Cond]:
    unknown = unknown_types(spec)
    if unknown and len(unknown) == len(spec.accelerator.types):
        known = sorted({i.accelerator for i in INSTANCES if i.kind == spec.accelerator.kind})
        return {"fits": None}, Cond(
            "CapacityPlanned",
            "Unknown",
            "UnknownAcceleratorType",
            f"spec.accelerator.types: {', '.join(unknown)} names no {spec.accelerator.kind} "
            f"instance type, GPU or family the operator knows ({', '.join(known)}, or an "
            "instance type such as g6e.xlarge); pods ask for the node labels as written",
        )
    arch = find_model(spec.model.uri)
    if arch is not None:
        params = arch.params_b
    elif spec.model.parameters:
        params = parse_parameters(spec.model.parameters)
    else:
        return {"fits": None}, Cond(
            "CapacityPlanned",
            "Unknown",
            "ModelUnknown",
            f"{spec.model.uri} is not in the catalogue; set spec.model.parameters (such as 8B) "
            "to plan its memory",
        )
    length = spec.model.max_model_len or DEFAULT_MAX_MODEL_LEN
    result = plan(
        Request(
            params,
            spec.model.dtype,
            length,
            1,
            spec.accelerator.kind,
            tuple(spec.accelerator.types),
            arch,
        )
    )
    have = spec.accelerator.per_replica
    usable = [
        o for o in result.options if o.devices_per_replica <= have and o.instance.devices >= have
    ]
    capacity: dict[str, Any] = {
        "weightsGiB": result.weights_gib,
        "kvCacheBytesPerToken": result.kv_bytes_per_token,
        "devicesPerReplica": result.devices_per_replica,
        "fits": bool(usable),
        "instanceTypes": [o.instance.name for o in usable][:16],
    }
    unit = "GPUs" if spec.accelerator.kind == "nvidia" else "NeuronCores"
    if not result.fits:
        return capacity, Cond("CapacityPlanned", "False", "DoesNotFit", result.reason)
    if not usable and result.devices_per_replica is not None and result.devices_per_replica <= have:
        largest = ", ".join(
            sorted({f"{o.instance.name}: {o.instance.devices}" for o in result.options})
        )
        return capacity, Cond(
            "CapacityPlanned",
            "False",
            "NoInstanceLargeEnough",
            f"spec.accelerator.perReplica is {have} {unit}, more than any accepted instance "
            f"type has ({largest}); {result.devices_per_replica} would fit the model",
        )
    if not usable:
        return capacity, Cond(
            "CapacityPlanned",
            "False",
            "TooFewDevices",
            f"{result.weights_gib:.1f} GiB of weights and one {length}-token sequence of KV cache "
            f"({result.kv_bytes_per_token // 1024} KiB/token) need {result.devices_per_replica} "
            f"{unit} per replica on the accepted types; spec.accelerator.perReplica is {have}",
        )
    best = usable[0]
    return capacity, Cond(
        "CapacityPlanned",
        "True",
        "Fits",
        f"{result.weights_gib:.1f} GiB of weights on {have} {unit} leaves "
        f"{best.kv_gib_available_per_replica:.1f} GiB of KV cache on {best.instance.name} "
        f"(~{best.max_concurrency} full {length}-token sequences)",
    )
