"""What one replica sustains within the SLO, learned online from the replicas' own vLLM metrics.

The user gives no per-replica number. A vLLM engine runs in steps: every step decodes one token
for each running sequence and carries a share of the prompts being prefilled, so

    step seconds = base + per_seq * batch + prompt tokens in the step * per_prompt_token

(the memory-bound floor, what each sequence in the batch adds, and chunked prefill). The mean
inter-token latency is the mean step time, so every window of metrics (ITL histogram, running
requests, prompt-token counter) is one noisy point on that line. A ridge regression, anchored on a
prior from the capacity planner (model size, accelerator, tensor parallelism), learns the three
coefficients; the traffic mix (prompt and output tokens per request, from the token counters) and
the KV cache one token takes (KV usage over the tokens held) are tracked beside it.

From those, at an arrival rate of L requests/s per replica with P prompt and O output tokens per
request, a replica's steps take s(L) = base / (1 - L * (P * per_prompt_token + O * per_seq)) and
it holds about L * (O + 1) * s(L) sequences. The capacity is the largest L that keeps the mean
step within the TPOT objective and the KV cache below its target. The engine coefficients are
learned once and the mix moves on its own, so a change of traffic mix moves the capacity at once.

Windows with missing or stale metrics, or no traffic, teach nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Statistics decay with this half-life, so the engine model follows a new image or a new
# vLLM flag within the hour, and the mix within minutes.
MODEL_HALF_LIFE_S = 3600.0
MIX_HALF_LIFE_S = 300.0
# The prior counts as this many windows of evidence: enough to pin a direction the traffic has
# not explored (a fleet that never ran a big batch), little enough that real windows win fast.
PRIOR_WEIGHT = 4.0
# Representative points on which the prior speaks: (batch, prompt tokens per step).
_PRIOR_POINTS = ((1.0, 0.0), (64.0, 0.0), (16.0, 2048.0))
# Below this KV usage the ratio usage/tokens is mostly rounding (vLLM reports whole blocks).
_KV_MIN_USAGE = 0.05
# A window needs at least this many output tokens per replica to say anything about step times.
_MIN_TOKENS = 20.0


@dataclass(frozen=True)
class EngineModel:
    """Seconds of one engine step: base + per_seq * batch + per_prompt_token * prompt tokens."""

    base_s: float
    per_seq_s: float
    per_prompt_token_s: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.base_s, self.per_seq_s, self.per_prompt_token_s)


@dataclass(frozen=True)
class Slo:
    """spec.autoscaling.slo: time to first token and time per output token, at a percentile."""

    ttft_s: float = 2.0
    tpot_s: float = 0.100
    percentile: float = 99.0


@dataclass(frozen=True)
class Evidence:
    """One window of one model's metrics, per Ready replica (rates over the same window)."""

    ready: int
    batch: float  # vllm:num_requests_running per Ready replica
    itl_s: float | None  # mean inter-token latency (ITL histogram sum / count)
    prompt_tps: float | None  # vllm:prompt_tokens_total rate per replica
    output_tps: float | None  # vllm:generation_tokens_total rate per replica
    completion_rps: float | None  # vllm:request_success_total rate per replica
    kv: float | None  # mean KV-cache usage, 0-1


@dataclass(frozen=True)
class Capacity:
    """What one replica sustains within the SLO, and where the number comes from."""

    rps: float
    tokens_per_s: float
    # spec (targets.requestsPerSecondPerReplica), prior (the planner only) or learned.
    source: str
    samples: int
    # Which limit binds: tpot or kvCache.
    bound_by: str


def _decay(weight: float, dt: float, half_life: float) -> float:
    return weight * float(0.5 ** (max(0.0, dt) / half_life))


@dataclass(frozen=True)
class ThroughputMemory:
    """The learner's sufficient statistics: small, and kept in status so a restart resumes."""

    # Weighted X'X (upper triangle: 11 12 13 22 23 33) and X'y of the step-time regression.
    xx: tuple[float, ...] = (0.0,) * 6
    xy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Mix: exponentially weighted prompt and output tokens per request.
    prompt_tokens: float | None = None
    output_tokens: float | None = None
    # Tokens one replica's KV cache holds (from usage over tokens held).
    kv_tokens: float | None = None
    samples: int = 0
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "xx": [round(v, 6) for v in self.xx],
            "xy": [round(v, 6) for v in self.xy],
            "prompt": self.prompt_tokens,
            "output": self.output_tokens,
            "kvTokens": self.kv_tokens,
            "samples": self.samples,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ThroughputMemory:
        if not raw:
            return cls()
        xx = tuple(float(v) for v in raw.get("xx", ()))
        xy = tuple(float(v) for v in raw.get("xy", ()))
        if len(xx) != 6 or len(xy) != 3:
            return cls()

        def opt(key: str) -> float | None:
            v = raw.get(key)
            return None if v is None else float(v)

        return cls(
            xx=xx,
            xy=(xy[0], xy[1], xy[2]),
            prompt_tokens=opt("prompt"),
            output_tokens=opt("output"),
            kv_tokens=opt("kvTokens"),
            samples=int(raw.get("samples", 0)),
            at=opt("at"),
        )


def _ewma(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else old + alpha * (new - old)


def learn(memory: ThroughputMemory, ev: Evidence, now: float) -> ThroughputMemory:
    """Fold one window in; a window without traffic or without a signal changes nothing."""
    if (
        ev.ready < 1
        or ev.itl_s is None
        or ev.prompt_tps is None
        or ev.output_tps is None
        or ev.completion_rps is None
        or not ev.itl_s > 0
        or not ev.completion_rps > 0
        or ev.output_tps * 60.0 < _MIN_TOKENS
        or ev.batch <= 0
    ):
        return memory
    dt = 0.0 if memory.at is None else now - memory.at
    # Each window weighs as much as the time it covers since the last one, so the tick rate does
    # not decide how fast the prior is overruled.
    w = 1.0
    keep = _decay(1.0, dt, MODEL_HALF_LIFE_S)
    x = (1.0, ev.batch, ev.prompt_tps * ev.itl_s)
    y = ev.itl_s
    upper = np.outer(x, x)[np.triu_indices(3)]
    xx = tuple(float(v) for v in keep * np.array(memory.xx) + w * upper)
    xy = tuple(keep * old + w * x[i] * y for i, old in enumerate(memory.xy))
    alpha = 1.0 - _decay(1.0, max(dt, 15.0), MIX_HALF_LIFE_S)
    prompt = _ewma(memory.prompt_tokens, ev.prompt_tps / ev.completion_rps, alpha)
    output = _ewma(memory.output_tokens, ev.output_tps / ev.completion_rps, alpha)
    kv_tokens = memory.kv_tokens
    if ev.kv is not None and ev.kv >= _KV_MIN_USAGE:
        held = ev.batch * (prompt + output / 2.0)
        kv_tokens = _ewma(kv_tokens, held / ev.kv, alpha)
    return ThroughputMemory(
        xx=xx,
        xy=(xy[0], xy[1], xy[2]),
        prompt_tokens=prompt,
        output_tokens=output,
        kv_tokens=kv_tokens,
        samples=memory.samples + 1,
        at=now,
    )


def engine(memory: ThroughputMemory, prior: EngineModel) -> EngineModel:
    """The step-time model: the evidence, anchored by the prior's pseudo-windows."""
    xx = np.zeros((3, 3))
    xx[np.triu_indices(3)] = memory.xx
    xx = xx + np.triu(xx, 1).T
    xy = np.array(memory.xy)
    for batch, prompt in _PRIOR_POINTS:
        x = np.array([1.0, batch, prompt])
        xx += PRIOR_WEIGHT * np.outer(x, x)
        xy += PRIOR_WEIGHT * x * float(x @ np.array(prior.as_tuple()))
    # The columns differ by orders of magnitude (1, a batch, thousands of tokens): scale them.
    scale = np.sqrt(np.diag(xx))
    sol, *_ = np.linalg.lstsq(xx / np.outer(scale, scale), xy / scale, rcond=None)
    base, per_seq, per_prompt = (float(v) for v in sol / scale)
    # A coefficient fitted below zero is noise around zero; the floors keep the model physical.
    return EngineModel(max(base, 0.1 * prior.base_s), max(per_seq, 0.0), max(per_prompt, 0.0))


def sustainable_rps(
    model: EngineModel,
    prompt_tokens: float,
    output_tokens: float,
    kv_tokens: float | None,
    slo: Slo,
    kv_target: float,
) -> tuple[float, str]:
    """The largest arrival rate per replica within the TPOT objective and the KV target."""
    # Seconds of step time each request/s adds, per second: prefill plus its share of decode.
    demand = prompt_tokens * model.per_prompt_token_s + output_tokens * model.per_seq_s
    if demand <= 0 or model.base_s >= slo.tpot_s:
        return 0.0, "tpot"
    tpot = (1.0 - model.base_s / slo.tpot_s) / demand
    if kv_tokens is None:
        return tpot, "tpot"
    # Sequences the cache holds at the target, with each holding its prompt and half its output.
    seqs = kv_target * kv_tokens / max(1.0, prompt_tokens + output_tokens / 2.0)
    kv = seqs / ((output_tokens + 1.0) * model.base_s + seqs * demand)
    return (kv, "kvCache") if kv < tpot else (tpot, "tpot")


@dataclass(frozen=True)
class Prior:
    """What the capacity planner expects before any evidence (capacity/performance.py)."""

    engine: EngineModel
    # Tokens of KV cache one replica holds; None: unknown model.
    kv_tokens: float | None = None
    # A typical chat request until the counters say otherwise.
    prompt_tokens: float = 1024.0
    output_tokens: float = 256.0


def capacity(memory: ThroughputMemory, prior: Prior, slo: Slo, kv_target: float) -> Capacity:
    """Per-replica capacity now: learned once there is evidence, else the prior."""
    model = engine(memory, prior.engine)
    prompt = memory.prompt_tokens if memory.prompt_tokens is not None else prior.prompt_tokens
    output = memory.output_tokens if memory.output_tokens is not None else prior.output_tokens
    kv_tokens = memory.kv_tokens if memory.kv_tokens is not None else prior.kv_tokens
    rps, bound = sustainable_rps(model, prompt, output, kv_tokens, slo, kv_target)
    return Capacity(
        rps=rps,
        tokens_per_s=rps * (prompt + output),
        source="learned" if memory.samples else "prior",
        samples=memory.samples,
        bound_by=bound,
    )
