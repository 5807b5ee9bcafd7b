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

The mean is not the tail. One long prompt holds the prefill budget while the requests behind it
wait (TTFT), and a short answer decoded beside a few prefill chunks has a slow mean inter-token
latency (TPOT). So the objective itself is watched too: each window's share of first tokens later
than the TTFT objective and of requests slower than the TPOT objective (the two histograms,
vllm:time_to_first_token_seconds and vllm:request_time_per_output_token_seconds) is recorded
against the load per replica as a share of what the step model allows, in log-spaced bins. The
first bin whose misses exceed 100 - percentile caps the capacity at its lower edge.

From those, at an arrival rate of L requests/s per replica with P prompt and O output tokens per
request, a replica's steps take s(L) = base / (1 - L * (P * per_prompt_token + O * per_seq)) and
it holds about L * (O + 1) * s(L) sequences. The capacity is the largest L that keeps the mean
step within the TPOT objective and the KV cache below its target. The engine coefficients are
learned once and the mix moves on its own, so a change of traffic mix moves the capacity at once.

Windows with missing or stale metrics, or no traffic, teach nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# Statistics decay with this half-life, so the engine model follows a new image or a new
# vLLM flag within the hour, and the mix within minutes.
MODEL_HALF_LIFE_S = 3600.0
MIX_HALF_LIFE_S = 120.0
# The least share of the prior a fitted coefficient may keep.
FLOOR = 0.1
# The prior counts as this many windows of evidence: enough to pin a direction the traffic has
# not explored (a fleet that never ran a big batch), little enough that real windows win fast.
PRIOR_WEIGHT = 1.0
# Representative points on which the prior speaks: (batch, prompt tokens per step).
_PRIOR_POINTS = ((1.0, 0.0), (64.0, 0.0), (16.0, 256.0))
# Below this KV usage the ratio usage/tokens is mostly rounding (vLLM reports whole blocks).
_KV_MIN_USAGE = 0.05
# The span of the rates behind one window (the fleet queries' rate(...[1m])); a change in flight
# over the same span turns completions into arrivals (recommend.arrival_rate).
WINDOW_S = 60.0
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
    # Share of the window's first tokens within the TTFT objective and of its finished requests
    # within the TPOT objective, and how many there were (fleet-wide, from the histograms).
    ttft_ok: float | None = None
    first_tokens: float = 0.0
    tpot_ok: float | None = None
    finished: float = 0.0
    # Whether the whole window was steady: no replica starting, no backlog beyond the queue
    # target, nothing held at the gateway. Misses while the fleet catches up on a burst say
    # how late the replicas came, not what one replica sustains, so only steady windows count.
    settled: bool = True
    # Requests/s arriving per Ready replica (completions saturate under overload; this not).
    load: float | None = None


@dataclass(frozen=True)
class Capacity:
    """What one replica sustains within the SLO, and where the number comes from."""

    rps: float
    tokens_per_s: float
    # spec (targets.requestsPerSecondPerReplica), prior (the planner only) or learned.
    source: str
    samples: int
    # Which limit binds: tpot, kvCache or ttft.
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
    # Load bin -> (requests, SLO misses), decayed: the tail against the load (see LOAD_BINS).
    misses: tuple[tuple[int, float, float], ...] = ()
    samples: int = 0
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "xx": [round(v, 6) for v in self.xx],
            "xy": [round(v, 6) for v in self.xy],
            "prompt": self.prompt_tokens,
            "output": self.output_tokens,
            "kvTokens": self.kv_tokens,
            "misses": [[i, round(n, 2), round(m, 2)] for i, n, m in self.misses],
            "samples": self.samples,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ThroughputMemory:
        if not raw:
            return cls()
        xx = tuple(float(v) for v in raw.get("xx", ()))
        xy = tuple(float(v) for v in raw.get("xy", ()))
        misses = tuple((int(i), float(n), float(m)) for i, n, m in raw.get("misses", ()))
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
            misses=misses,
            samples=int(raw.get("samples", 0)),
            at=opt("at"),
        )


def _ewma(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else old + alpha * (new - old)


def learn(
    memory: ThroughputMemory, ev: Evidence, now: float, prior: Prior, slo: Slo, kv_target: float
) -> ThroughputMemory:
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
    keep = _decay(1.0, dt, MODEL_HALF_LIFE_S)
    x = (1.0, ev.batch, ev.prompt_tps * ev.itl_s)
    y = ev.itl_s
    upper = np.outer(x, x)[np.triu_indices(3)]
    xx = tuple(float(v) for v in keep * np.array(memory.xx) + upper)
    xy = tuple(keep * old + x[i] * y for i, old in enumerate(memory.xy))
    prompt, output, kv_tokens = memory.prompt_tokens, memory.output_tokens, memory.kv_tokens
    if ev.settled:
        # A window weighs what the minute it covers is worth, however long since the last one
        # (a model woken from zero must not take its first, odd minute as the whole mix). While
        # the fleet catches up, prompts are counted as admitted and requests as finished, far
        # apart: the ratio says nothing about the mix then.
        alpha = 1.0 - _decay(1.0, min(max(dt, 15.0), WINDOW_S), MIX_HALF_LIFE_S)
        prompt = _ewma(prompt, ev.prompt_tps / ev.completion_rps, alpha)
        output = _ewma(output, ev.output_tps / ev.completion_rps, alpha)
        if ev.kv is not None and ev.kv >= _KV_MIN_USAGE:
            held = ev.batch * (prompt + output / 2.0)
            kv_tokens = _ewma(kv_tokens, held / ev.kv, alpha)
    learned = ThroughputMemory(
        xx=xx,
        xy=(xy[0], xy[1], xy[2]),
        prompt_tokens=prompt,
        output_tokens=output,
        kv_tokens=kv_tokens,
        misses=memory.misses,
        samples=memory.samples + 1,
        at=now,
    )
    return _record_misses(learned, ev, dt, prior, slo, kv_target)


# Load per replica as a share of the step model's capacity, in bins LOAD_RATIO apart from
# LOAD_MIN up: wide enough for a mix whose tail binds at 3% of what the mean allows.
LOAD_MIN = 0.01
LOAD_RATIO = 1.25
LOAD_BINS = 24
# The misses fade with the requests seen since, not with the clock: a quiet night says nothing
# about the tail at load, and fading by the clock (a half-hour) forgot it before the morning's
# burst. At azure-code's 3 requests a second this is under two hours; a fleet serving 100/s
# renews it from as many requests within minutes. (6,000 and 2,000 were measured too: on
# azure-code's warm nodes 97.6% at 14.5 GPU-h and 97.4% at 11.9, against 98.4% at 13.1.)
MISS_HALF_LIFE_REQUESTS = 20_000.0


def _load_bin(share: float) -> int:
    if share <= LOAD_MIN:
        return 0
    return min(LOAD_BINS - 1, int(math.log(share / LOAD_MIN) / math.log(LOAD_RATIO)))


def _bin_floor(i: int) -> float:
    return float(LOAD_MIN * LOAD_RATIO**i)


def _record_misses(
    memory: ThroughputMemory, ev: Evidence, dt: float, prior: Prior, slo: Slo, kv_target: float
) -> ThroughputMemory:
    n = max(ev.first_tokens, ev.finished)
    counted = ev.settled and n > 0 and (ev.ttft_ok is not None or ev.tpot_ok is not None)
    # The requests this window adds to what the last one saw (windows overlap when ticks are
    # closer than the rate window).
    fresh = n / WINDOW_S * min(dt, WINDOW_S) if counted else 0.0
    keep = 0.5 ** (fresh / MISS_HALF_LIFE_REQUESTS)
    bins = {i: (n * keep, m * keep) for i, n, m in memory.misses if n * keep >= 0.5}
    if counted:
        # Either objective missed: the union, counted as if no request missed both (cautious).
        missed = ev.first_tokens * (1.0 - (ev.ttft_ok if ev.ttft_ok is not None else 1.0))
        missed += ev.finished * (1.0 - (ev.tpot_ok if ev.tpot_ok is not None else 1.0))
        model_rps = _model_rps(memory, prior, slo, kv_target)[0]
        load = ev.load if ev.load is not None else ev.completion_rps
        if model_rps > 0 and load is not None:
            i = _load_bin(load / model_rps)
            old_n, old_m = bins.get(i, (0.0, 0.0))
            bins[i] = (old_n + n, old_m + min(n, missed))
    return replace(memory, misses=tuple(sorted((i, n, m) for i, (n, m) in bins.items())))


def tail_limit(memory: ThroughputMemory, slo: Slo) -> float | None:
    """The share of the step model's capacity at which the SLO's misses begin: the floor of the
    first load bin, with enough requests to tell, whose misses (made non-decreasing in load)
    exceed the allowance. None: no such bin, or it is the lowest one, where misses are not the
    load's doing (prompts too long for the objective) and more replicas would not help."""
    allowed = 1.0 - slo.percentile / 100.0
    shares = _monotone([(i, n, m) for i, n, m in memory.misses if n > 0])
    for i, n, share in shares:
        if n >= 2.0 / allowed and share > allowed:
            return _bin_floor(i) if i > 0 else None
    return None


def _monotone(bins: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """(bin, requests, misses) -> (bin, requests of its pool, miss share), the shares made
    non-decreasing in load by pooling neighbours (pool-adjacent-violators): misses never fall as
    load rises, so a noisy bin below clean ones is read with them, not alone."""
    pools: list[tuple[list[int], float, float]] = []  # (bins, requests, misses)
    for i, n, m in bins:
        pools.append(([i], n, m))
        while len(pools) > 1 and pools[-2][2] / pools[-2][1] > pools[-1][2] / pools[-1][1]:
            top, below = pools.pop(), pools.pop()
            pools.append((below[0] + top[0], below[1] + top[1], below[2] + top[2]))
    return [(i, n, m / n) for members, n, m in pools for i in members]


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
    # A coefficient fitted below a tenth of the prior is noise (traffic that never varied the
    # batch or the prompts cannot tell them apart); the floors keep the model physical: every
    # step, sequence and prompt token costs something.
    return EngineModel(
        max(base, FLOOR * prior.base_s),
        max(per_seq, FLOOR * prior.per_seq_s),
        max(per_prompt, FLOOR * prior.per_prompt_token_s),
    )


def within(buckets: tuple[tuple[float, float], ...], threshold: float) -> float | None:
    """Share of a histogram's observations at or below `threshold`, from cumulative (le, rate)
    buckets, linear within a bucket as histogram_quantile assumes; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]  # the +Inf bucket: every observation
    prev_le, prev_v = 0.0, 0.0
    for le, v in buckets:
        if math.isinf(le):
            return prev_v / total
        if threshold <= le:
            part = (threshold - prev_le) / (le - prev_le) if le > prev_le else 1.0
            return min(1.0, (prev_v + part * (v - prev_v)) / total)
        prev_le, prev_v = le, v
    return 1.0


def sustainable_rps(
    model: EngineModel,
    prompt_tokens: float,
    output_tokens: float,
    kv_tokens: float | None,
    slo: Slo,
    kv_target: float,
    max_seqs: float | None = None,
) -> tuple[float, str]:
    """The largest arrival rate per replica within the TPOT objective, the KV target and, where
    a gateway caps what a replica is sent (spec.gateway.maxPerReplica), `max_seqs` in flight."""
    # Seconds of step time each request/s adds, per second: prefill plus its share of decode.
    demand = prompt_tokens * model.per_prompt_token_s + output_tokens * model.per_seq_s
    if demand <= 0 or model.base_s >= slo.tpot_s:
        return 0.0, "tpot"
    tpot = (1.0 - model.base_s / slo.tpot_s) / demand
    bound, name = tpot, "tpot"
    caps: list[tuple[float, str]] = []
    if kv_tokens is not None:
        # Sequences the cache holds at the target, each holding its prompt and half its output.
        caps.append(
            (kv_target * kv_tokens / max(1.0, prompt_tokens + output_tokens / 2.0), "kvCache")
        )
    if max_seqs is not None:
        caps.append((max_seqs, "maxPerReplica"))
    for seqs, why in caps:
        # The rate at which `seqs` are in flight: each lives its output's steps of that batch.
        rps = seqs / ((output_tokens + 1.0) * model.base_s + seqs * demand)
        if rps < bound:
            bound, name = rps, why
    return bound, name


@dataclass(frozen=True)
class Prior:
    """What the capacity planner expects before any evidence (capacity/performance.py)."""

    engine: EngineModel
    # Tokens of KV cache one replica holds; None: unknown model.
    kv_tokens: float | None = None
    # A typical chat request until the counters say otherwise.
    prompt_tokens: float = 1024.0
    output_tokens: float = 256.0


def _model_rps(
    memory: ThroughputMemory,
    prior: Prior,
    slo: Slo,
    kv_target: float,
    max_seqs: float | None = None,
) -> tuple[float, str, float]:
    """The step model's capacity: (rps, which limit binds, tokens per request)."""
    model = engine(memory, prior.engine)
    prompt = memory.prompt_tokens if memory.prompt_tokens is not None else prior.prompt_tokens
    output = memory.output_tokens if memory.output_tokens is not None else prior.output_tokens
    kv_tokens = memory.kv_tokens if memory.kv_tokens is not None else prior.kv_tokens
    rps, bound = sustainable_rps(model, prompt, output, kv_tokens, slo, kv_target, max_seqs)
    return rps, bound, prompt + output


def capacity(
    memory: ThroughputMemory,
    prior: Prior,
    slo: Slo,
    kv_target: float,
    max_seqs: float | None = None,
) -> Capacity:
    """Per-replica capacity now: learned once there is evidence, else the prior; `max_seqs`:
    the most a gateway sends one replica at a time."""
    rps, bound, tokens = _model_rps(memory, prior, slo, kv_target)
    tail = tail_limit(memory, slo)
    if tail is not None and tail < 1.0:
        # The tail is a share of the unbounded step model's capacity (its load bins are).
        rps, bound = rps * tail, "latencyTail"
    if max_seqs is not None:
        held, why, _ = _model_rps(memory, prior, slo, kv_target, max_seqs)
        if held < rps:
            rps, bound = held, why
    return Capacity(
        rps=rps,
        tokens_per_s=rps * tokens,
        source="learned" if memory.samples else "prior",
        samples=memory.samples,
        bound_by=bound,
    )
