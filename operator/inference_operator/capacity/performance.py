"""The planner's prior for the throughput learner (scaling/throughput.py): step-time coefficients
of a model on an accelerator from its memory bandwidth and dense BF16 compute. Pure.

Decode is memory-bound: every step reads the weights once (the base) and each sequence's KV cache
(part of the per-sequence cost, with its share of the matmuls). Prefill is compute-bound. The
numbers are datasheet peaks with typical efficiencies; the learner replaces them within minutes
of traffic, so they only have to be the right order of magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference_operator.api.models import AcceleratorSpec, ModelSpec
from inference_operator.capacity.assess import DEFAULT_MAX_MODEL_LEN
from inference_operator.capacity.catalogue import ModelArch, find_model
from inference_operator.capacity.plan import (
    BYTES_PER_PARAM,
    GIB,
    Request,
    kv_bytes_per_token,
    kv_room_gib,
    parse_parameters,
    plan,
)
from inference_operator.scaling.throughput import EngineModel, Prior


@dataclass(frozen=True)
class Silicon:
    bandwidth_gbs: float  # HBM/GDDR per device (GPU or NeuronCore)
    bf16_tflops: float  # dense, per device


# Datasheets: NVIDIA H100 SXM, H200, A100, L40S, L4, A10G; AWS Inferentia2 and Trainium (per
# NeuronCore: a chip's figures over its cores).
SILICON = {
    "h100": Silicon(3350, 989),
    "h200": Silicon(4800, 989),
    "b200": Silicon(8000, 2250),
    "a100": Silicon(2039, 312),
    "l40s": Silicon(864, 362),
    "l4": Silicon(300, 121),
    "a10g": Silicon(600, 70),
    "t4": Silicon(320, 65),
    "inferentia2": Silicon(410, 95),
    "trainium": Silicon(410, 95),
    "trainium2": Silicon(362, 83),
}
# Fractions of peak a serving engine reaches: bandwidth while streaming weights, compute in
# prefill matmuls and in the decode batch.
BANDWIDTH_EFFICIENCY = 0.85
PREFILL_EFFICIENCY = 0.5
DECODE_EFFICIENCY = 0.5
# Context a decoding sequence holds on average, for the KV read each step (tokens).
TYPICAL_CONTEXT = 1024


def engine_prior(
    params_b: float, dtype: str, accelerator: str, devices: int, arch: ModelArch | None
) -> EngineModel | None:
    """Step-time coefficients of one replica; None for an accelerator the table lacks."""
    chip = SILICON.get(accelerator)
    if chip is None:
        return None
    bandwidth = chip.bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY * devices
    weight_bytes = params_b * 1e9 * BYTES_PER_PARAM.get(dtype, 2.0)
    flops_per_token = 2.0 * params_b * 1e9
    kv = kv_bytes_per_token(arch) if arch is not None else 16 * 1024 * max(params_b, 0.5)
    return EngineModel(
        base_s=weight_bytes / bandwidth,
        per_seq_s=flops_per_token / (chip.bf16_tflops * 1e12 * DECODE_EFFICIENCY * devices)
        + kv * TYPICAL_CONTEXT / bandwidth,
        per_prompt_token_s=flops_per_token
        / (chip.bf16_tflops * 1e12 * PREFILL_EFFICIENCY * devices),
    )


def prior_for(model: ModelSpec, accelerator: AcceleratorSpec) -> Prior | None:
    """The learner's prior for a spec: the planner's first accepted instance type (the one
    Karpenter launches first), its KV room and step times; None when the model or accelerator is
    unknown (then only the queue and KV-cache signals scale it until metrics teach a capacity)."""
    arch = find_model(model.uri)
    if arch is not None:
        params = arch.params_b
    elif model.parameters:
        params = parse_parameters(model.parameters)
    else:
        return None
    devices = accelerator.per_replica
    result = plan(
        Request(
            params,
            model.dtype,
            model.max_model_len or DEFAULT_MAX_MODEL_LEN,
            1,
            accelerator.kind,
            tuple(accelerator.types),
            arch,
        )
    )
    usable = [
        o
        for o in result.options
        if o.devices_per_replica <= devices and o.instance.devices >= devices
    ]
    if not usable:
        return None
    first = usable[0]
    steps = engine_prior(params, model.dtype, first.instance.accelerator, devices, arch)
    if steps is None:
        return None
    room = kv_room_gib(first.instance, devices, result.weights_gib)
    return Prior(steps, kv_tokens=max(0.0, room * GIB / result.kv_bytes_per_token))
