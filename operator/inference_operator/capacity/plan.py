"""Capacity planning: weights + KV cache against accelerator memory (pure)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from inference_operator.capacity.catalogue import BY_NAME, INSTANCES, MODELS, Instance, ModelArch

GIB = 1024**3
# Bytes per weight by --dtype; int8/int4 are the checkpoint's own quantization.
BYTES_PER_PARAM = {
    "auto": 2.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
# vLLM's --gpu-memory-utilization default, and what the runtime, activations and CUDA graphs
# hold back on every device (the real peak depends on max_num_batched_tokens).
GPU_MEMORY_UTILIZATION = 0.9
OVERHEAD_GIB_PER_DEVICE = 2.0
GPU_TP_SIZES = (1, 2, 4, 8)
NEURON_TP_SIZES = (1, 2, 4, 8, 12, 16, 24, 32)


def weights_gb(params_b: float, dtype: str) -> float:
    """Decimal gigabytes of weights: the unit AWS's sizing guidance uses (7B at 16 bit = 14 GB)."""
    return params_b * BYTES_PER_PARAM[dtype]


def kv_bytes_per_token(arch: ModelArch, kv_bytes: int = 2) -> int:
    # K and V, for every layer and KV head.
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * kv_bytes


def parse_parameters(text: str) -> float:
    """'8B' -> 8.0, '500M' -> 0.5 (billions)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([MB])", text.strip())
    if not m:
        raise ValueError(f"parameters: {text!r} is not like 8B or 500M")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "M" else value


@dataclass(frozen=True)
class Request:
    params_b: float
    dtype: str = "auto"
    max_model_len: int = 8192
    # Full-length sequences one replica must hold at once.
    concurrency: int = 1
    kind: str = "nvidia"
    # GPU names, families or instance types to consider; empty: every one of `kind`.
    types: tuple[str, ...] = ()
    arch: ModelArch | None = None
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    # CUDA/Neuron runtime, activations and graphs: held back from every device.
    overhead_gib_per_device: float = OVERHEAD_GIB_PER_DEVICE


@dataclass(frozen=True)
class Option:
    instance: Instance
    devices_per_replica: int
    kv_gib_available_per_replica: float
    max_concurrency: int  # full-length sequences that fit


@dataclass(frozen=True)
class Plan:
    weights_gib: float
    kv_bytes_per_token: int
    kv_gib_per_replica: float  # what `concurrency` full-length sequences need
    devices_per_replica: int | None
    options: list[Option] = field(default_factory=list)
    reason: str = ""

    @property
    def fits(self) -> bool:
        return self.devices_per_replica is not None


def matches(instance: Instance, types: tuple[str, ...]) -> bool:
    if not types:
        return True
    for t in types:
        t = t.lower().removeprefix("ml.")
        if t in (instance.name, instance.family, instance.accelerator):
            return True
    return False


def plan(req: Request) -> Plan:
    weights = weights_gb(req.params_b, req.dtype) * 1e9 / GIB
    if req.arch is not None:
        per_token = kv_bytes_per_token(req.arch)
    else:
        # Unknown architecture: Llama-like scaling from the parameter count (GQA, 8 KV heads),
        # ~16 KiB per token per billion parameters, as Llama-3-8B's 128 KiB suggests.
        per_token = int(16 * 1024 * max(req.params_b, 0.5))
    kv_needed = per_token * req.max_model_len * req.concurrency / GIB
    sizes = GPU_TP_SIZES if req.kind == "nvidia" else NEURON_TP_SIZES
    options: list[Option] = []
    best: int | None = None
    for inst in INSTANCES:
        if inst.kind != req.kind or not matches(inst, req.types):
            continue
        for tp in sizes:
            if tp > inst.devices:
                break
            kv_room = kv_room_gib(
                inst, tp, weights, req.gpu_memory_utilization, req.overhead_gib_per_device
            )
            if kv_room >= kv_needed and kv_room > 0:
                conc = math.floor(kv_room * GIB / (per_token * req.max_model_len))
                options.append(Option(inst, tp, round(kv_room, 2), conc))
                best = tp if best is None else min(best, tp)
                break
    options.sort(
        key=lambda o: (o.devices_per_replica, o.instance.memory_gib_per_device, o.instance.devices)
    )
    reason = ""
    if best is None:
        largest = max(
            (
                i.memory_gib_per_device * i.devices
                for i in INSTANCES
                if i.kind == req.kind and matches(i, req.types)
            ),
            default=0.0,
        )
        reason = (
            f"needs {weights:.1f} GiB of weights + {kv_needed:.1f} GiB of KV cache "
            f"({req.concurrency} x {req.max_model_len} tokens x {per_token // 1024} KiB); "
            f"the largest matching instance has {largest:.0f} GiB of accelerator memory "
            f"at {req.gpu_memory_utilization:.0%} utilization less "
            f"{req.overhead_gib_per_device:g} GiB per device"
        )
    return Plan(round(weights, 2), per_token, round(kv_needed, 2), best, options, reason)


def kv_room_gib(
    inst: Instance,
    devices: int,
    weights_gib: float,
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
    overhead_gib_per_device: float = OVERHEAD_GIB_PER_DEVICE,
) -> float:
    """What `devices` accelerators of `inst` leave for the KV cache once weights are loaded."""
    usable = inst.memory_gib_per_device * gpu_memory_utilization - overhead_gib_per_device
    return usable * devices - weights_gib


def kv_capacity_tokens(model: str, instance: str, devices: int, dtype: str = "bfloat16") -> int:
    """Tokens of KV cache one replica holds: the planner's arithmetic, for the simulator."""
    arch = MODELS[model]
    weights = weights_gb(arch.params_b, dtype) * 1e9 / GIB
    room = kv_room_gib(BY_NAME[instance], devices, weights)
    return int(room * GIB // kv_bytes_per_token(arch))
