"""What the planner knows: model architectures and AWS accelerator instances (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelArch:
    name: str
    params_b: float  # billions of parameters
    layers: int
    kv_heads: int
    head_dim: int


# From each model's published config.json (num_hidden_layers, num_key_value_heads, head_dim).
MODELS = {
    m.name: m
    for m in (
        ModelArch("llama-3-8b", 8.03, 32, 8, 128),
        ModelArch("llama-3-70b", 70.6, 80, 8, 128),
        ModelArch("llama-3-405b", 405.9, 126, 8, 128),
        ModelArch("mistral-7b", 7.25, 32, 8, 128),
        ModelArch("mixtral-8x7b", 46.7, 32, 8, 128),
        ModelArch("qwen2.5-7b", 7.62, 28, 4, 128),
        ModelArch("qwen2.5-32b", 32.8, 64, 8, 128),
        ModelArch("qwen2.5-72b", 72.7, 80, 8, 128),
    )
}

# Substrings of a model URI that identify a catalogue entry (checked in order).
_ALIASES = [
    ("405b", "llama-3-405b"),
    ("llama-3.1-70b", "llama-3-70b"),
    ("llama-3.3-70b", "llama-3-70b"),
    ("llama-3-70b", "llama-3-70b"),
    ("meta-llama-3-70b", "llama-3-70b"),
    ("llama-3.1-8b", "llama-3-8b"),
    ("llama-3-8b", "llama-3-8b"),
    ("meta-llama-3-8b", "llama-3-8b"),
    ("llama-3.2-8b", "llama-3-8b"),
    ("mixtral-8x7b", "mixtral-8x7b"),
    ("mistral-7b", "mistral-7b"),
    ("qwen2.5-72b", "qwen2.5-72b"),
    ("qwen2.5-32b", "qwen2.5-32b"),
    ("qwen2.5-7b", "qwen2.5-7b"),
]


def find_model(uri: str) -> ModelArch | None:
    lowered = uri.lower()
    for needle, name in _ALIASES:
        if needle in lowered:
            return MODELS[name]
    return None


@dataclass(frozen=True)
class Instance:
    name: str  # EC2 instance type (HyperPod prefixes "ml.")
    family: str
    accelerator: str  # GPU name, or inferentia2/trainium
    kind: str  # nvidia | neuron
    devices: int  # GPUs, or NeuronCores for neuron
    memory_gib_per_device: float  # per GPU, or per NeuronCore
    vcpu: int = 0
    memory_gib: int = 0


def _gpu(name: str, gpu: str, count: int, mem: float, vcpu: int, ram: int) -> Instance:
    return Instance(name, name.split(".")[0], gpu, "nvidia", count, mem, vcpu, ram)


def _neuron(name: str, chip: str, cores: int, mem_per_core: float, vcpu: int, ram: int) -> Instance:
    return Instance(name, name.split(".")[0], chip, "neuron", cores, mem_per_core, vcpu, ram)


INSTANCES = [
    _gpu("p5.48xlarge", "h100", 8, 80, 192, 2048),
    _gpu("p5e.48xlarge", "h200", 8, 141, 192, 2048),
    _gpu("p5en.48xlarge", "h200", 8, 141, 192, 2048),
    _gpu("p4d.24xlarge", "a100", 8, 40, 96, 1152),
    _gpu("p4de.24xlarge", "a100", 8, 80, 96, 1152),
    _gpu("g6e.xlarge", "l40s", 1, 48, 4, 32),
    _gpu("g6e.2xlarge", "l40s", 1, 48, 8, 64),
    _gpu("g6e.12xlarge", "l40s", 4, 48, 48, 384),
    _gpu("g6e.24xlarge", "l40s", 4, 48, 96, 768),
    _gpu("g6e.48xlarge", "l40s", 8, 48, 192, 1536),
    _gpu("g6.xlarge", "l4", 1, 24, 4, 16),
    _gpu("g6.12xlarge", "l4", 4, 24, 48, 192),
    _gpu("g6.48xlarge", "l4", 8, 24, 192, 768),
    _gpu("g5.xlarge", "a10g", 1, 24, 4, 16),
    _gpu("g5.2xlarge", "a10g", 1, 24, 8, 32),
    _gpu("g5.12xlarge", "a10g", 4, 24, 48, 192),
    _gpu("g5.48xlarge", "a10g", 8, 24, 192, 768),
    # Inferentia2: 32 GB and 2 NeuronCores per chip. Trainium: 32 GB / 2 cores (trn1), 96 GB /
    # 8 physical cores (trn2).
    _neuron("inf2.xlarge", "inferentia2", 2, 16, 4, 16),
    _neuron("inf2.8xlarge", "inferentia2", 2, 16, 32, 128),
    _neuron("inf2.24xlarge", "inferentia2", 12, 16, 96, 384),
    _neuron("inf2.48xlarge", "inferentia2", 24, 16, 192, 768),
    _neuron("trn1.2xlarge", "trainium", 2, 16, 8, 32),
    _neuron("trn1.32xlarge", "trainium", 32, 16, 128, 512),
    _neuron("trn2.48xlarge", "trainium2", 128, 12, 192, 2048),
]

BY_NAME = {i.name: i for i in INSTANCES}

GPU_NAMES = frozenset(i.accelerator for i in INSTANCES if i.kind == "nvidia") | {"t4", "b200"}
