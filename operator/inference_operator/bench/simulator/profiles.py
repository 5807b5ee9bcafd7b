"""Engine and start-up calibration for the simulator; sources and arithmetic: docs/simulator.md."""

from __future__ import annotations

from dataclasses import dataclass

from inference_operator.capacity.plan import kv_capacity_tokens


@dataclass(frozen=True)
class EngineProfile:
    """One vLLM replica: a model on an accelerator, as the continuous-batching model sees it."""

    name: str
    # Decode step time = decode_base_s + decode_per_seq_s * batch (memory-bound floor plus the
    # part that grows with the batch).
    decode_base_s: float
    decode_per_seq_s: float
    # Prefill throughput (prompt tokens per second) when a step carries prompt tokens.
    prefill_tokens_per_s: float
    # KV-cache capacity in tokens after weights and activations (gpu_memory_utilization 0.9):
    # the capacity planner's arithmetic (capacity/plan.py), not a number typed here.
    kv_capacity_tokens: int
    max_num_seqs: int = 256
    # Prompt tokens one step may carry (chunked prefill's max_num_batched_tokens).
    max_batched_tokens: int = 8192
    kv_block_tokens: int = 16
    devices: int = 1
    # How a user would write this replica in an InferenceDeployment (for the product's policy).
    model_uri: str = "hf://meta-llama/Llama-3.1-8B-Instruct"
    accelerator_types: tuple[str, ...] = ("l40s",)


# Llama-3.1-8B, BF16, 1x H100-80GB SXM. Decode: 8,088 output tok/s at 256 seqs (TPOT 31.6 ms)
# and ~7 ms at batch 1 (16 GB of weights over 3.35 TB/s plus kernel overhead). KV from the
# planner: 80 GiB x 0.9 - 2 GiB - 15 GiB of weights = ~55 GiB / 128 KiB = ~451k tokens.
LLAMA3_8B_H100 = EngineProfile(
    name="llama-3.1-8b/h100",
    decode_base_s=0.007,
    decode_per_seq_s=0.000096,
    prefill_tokens_per_s=30_000,
    kv_capacity_tokens=kv_capacity_tokens("llama-3-8b", "p5.48xlarge", 1),
    accelerator_types=("h100",),
)

# Llama-3.1-8B, BF16, 1x L40S-48GB (g6e.xlarge). 864 GB/s (~1/3.9 of H100) sets the decode floor;
# 362 dense BF16 TFLOPS (~1/2.7) the per-sequence and prefill cost. KV (planner): ~26 GiB = ~215k.
LLAMA3_8B_L40S = EngineProfile(
    name="llama-3.1-8b/l40s",
    decode_base_s=0.020,
    decode_per_seq_s=0.00026,
    prefill_tokens_per_s=11_000,
    kv_capacity_tokens=kv_capacity_tokens("llama-3-8b", "g6e.xlarge", 1),
    max_batched_tokens=2048,
)

# Llama-3.1-70B, BF16, 4x H100 (TP 4): 3,543 output tok/s at 256 seqs (TPOT 61 ms -> ~72 ms step);
# KV (planner): ~149 GiB / 320 KiB per token = ~487k tokens.
LLAMA3_70B_4XH100 = EngineProfile(
    name="llama-3.1-70b/4xh100",
    decode_base_s=0.018,
    decode_per_seq_s=0.00021,
    prefill_tokens_per_s=12_000,
    kv_capacity_tokens=kv_capacity_tokens("llama-3-70b", "p5.48xlarge", 4),
    devices=4,
    model_uri="hf://meta-llama/Llama-3.1-70B-Instruct",
    accelerator_types=("h100",),
)

PROFILES = {p.name: p for p in (LLAMA3_8B_H100, LLAMA3_8B_L40S, LLAMA3_70B_4XH100)}


@dataclass(frozen=True)
class StartupScenario:
    """Seconds from "replica created" to "replica Ready", by stage."""

    name: str
    node_launch_s: float
    image_pull_s: float
    weight_load_s: float
    engine_warmup_s: float
    # Relative spread of each start (deterministic per replica in the simulator).
    jitter: float = 0.15

    @property
    def total_s(self) -> float:
        return self.node_launch_s + self.image_pull_s + self.weight_load_s + self.engine_warmup_s


SCENARIOS = {
    s.name: s
    for s in (
        # Node already there, image cached, weights on local disk, compile cache warm: ~82 s pod
        # start (Tensorfuse 8B/L40S cached) plus readiness.
        StartupScenario("warm-node", 0, 5, 20, 65),
        # A new Karpenter GPU node (~100 s until the device plugin advertises GPUs), SOCI/streamed
        # image, S3-streamed weights, cached compile.
        StartupScenario("new-node", 100, 40, 30, 65),
        # New node, 15-20 GB image pulled plainly (4-6 min), weights downloaded, no compile cache.
        StartupScenario("fully-cold", 100, 300, 95, 200),
    )
}
