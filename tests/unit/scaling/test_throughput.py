"""The throughput learner: what one replica sustains, from vLLM's own metrics (pure)."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from inference_operator.scaling.throughput import (
    LOAD_MIN,
    LOAD_RATIO,
    MISS_HALF_LIFE_REQUESTS,
    EngineModel,
    Evidence,
    Prior,
    Slo,
    ThroughputMemory,
    capacity,
    engine,
    learn,
    sustainable_rps,
    tail_limit,
    within,
)

TRUTH = EngineModel(0.020, 0.00026, 1 / 11000)
# A prior off by 2x in every coefficient: the evidence must win.
WRONG = Prior(EngineModel(0.010, 0.00013, 1 / 22000), kv_tokens=215_000)
SLO = Slo()
KV = 0.8


def window(
    rng: random.Random,
    batch: float,
    rps: float,
    prompt: float = 1200,
    output: float = 200,
    noise: float = 0.03,
    **extra: object,
) -> Evidence:
    """One minute of a replica running `batch` sequences at `rps`, as its metrics say it."""
    prompt_tps = rps * prompt
    # s = base + per_seq * batch + s * prompt_tps / rate  =>  solve for the mean step.
    s = (TRUTH.base_s + TRUTH.per_seq_s * batch) / (1 - prompt_tps * TRUTH.per_prompt_token_s)
    s *= 1 + rng.uniform(-noise, noise)
    return Evidence(
        ready=2,
        batch=batch,
        itl_s=s,
        prompt_tps=prompt_tps,
        output_tps=rps * output,
        completion_rps=rps,
        kv=batch * (prompt + output / 2) / 215_000,
        **extra,  # type: ignore[arg-type]
    )


def teach(memory: ThroughputMemory, windows: list[Evidence], t0: float = 0.0) -> ThroughputMemory:
    for i, ev in enumerate(windows):
        memory = learn(memory, ev, t0 + 15.0 * i, WRONG, SLO, KV)
    return memory


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_the_step_model_is_learned_from_noisy_windows_despite_a_wrong_prior(seed: int) -> None:
    rng = random.Random(seed)
    windows = [window(rng, batch=rng.uniform(5, 150), rps=rng.uniform(0.5, 5)) for _ in range(120)]
    model = engine(teach(ThroughputMemory(), windows), WRONG.engine)
    # Every coefficient within 15% of the truth, though the prior was 2x off.
    for got, want in zip(model.as_tuple(), TRUTH.as_tuple(), strict=True):
        assert abs(got - want) / want < 0.15, (model, TRUTH)


def test_statistics_of_the_learned_capacity_over_seeds() -> None:
    """Across 40 seeds of 30 windows, the learned capacity lands near what the true engine
    allows on that mix: mean error < 5%, worst < 15%."""
    true_rps, _ = sustainable_rps(TRUTH, 1200, 200, 215_000, SLO, KV)
    errors = []
    for seed in range(40):
        rng = random.Random(seed)
        windows = [window(rng, rng.uniform(10, 120), rng.uniform(0.5, 4)) for _ in range(30)]
        learned = capacity(teach(ThroughputMemory(), windows), WRONG, SLO, KV)
        assert learned.source == "learned" and learned.samples == 30
        errors.append(abs(learned.rps - true_rps) / true_rps)
    assert sum(errors) / len(errors) < 0.05
    assert max(errors) < 0.15


def test_before_any_evidence_the_prior_speaks() -> None:
    c = capacity(ThroughputMemory(), WRONG, SLO, KV)
    assert c.source == "prior" and c.samples == 0 and c.rps > 0
    assert c.tokens_per_s == c.rps * (WRONG.prompt_tokens + WRONG.output_tokens)


def test_windows_without_a_signal_or_traffic_teach_nothing() -> None:
    rng = random.Random(1)
    good = window(rng, 50, 2)
    memory = teach(ThroughputMemory(), [good])
    for bad in (
        Evidence(0, 50, 0.05, 1000, 100, 1, 0.3),  # no Ready replica
        Evidence(2, 50, None, 1000, 100, 1, 0.3),  # no ITL series
        Evidence(2, 50, 0.05, None, 100, 1, 0.3),  # no prompt counter
        Evidence(2, 50, 0.05, 1000, 100, 0.0, 0.3),  # nothing finished
        Evidence(2, 0, 0.05, 1000, 100, 1, 0.3),  # nothing running
        Evidence(2, 50, 0.05, 1000, 0.1, 1, 0.3),  # a handful of tokens
    ):
        assert learn(memory, bad, 100.0, WRONG, SLO, KV) == memory


def test_a_change_of_mix_moves_the_capacity_within_minutes() -> None:
    """Long prompts cost prefill: when the traffic turns to them, the capacity falls without
    relearning the engine."""
    rng = random.Random(7)
    chat = [window(rng, rng.uniform(10, 120), rng.uniform(0.5, 4)) for _ in range(60)]
    memory = teach(ThroughputMemory(), chat)
    before = capacity(memory, WRONG, SLO, KV).rps
    rag = [
        window(rng, rng.uniform(5, 60), rng.uniform(0.3, 2), prompt=6000, output=100)
        for _ in range(40)  # ten minutes
    ]
    memory = teach(memory, rag, t0=15.0 * 60)
    after = capacity(memory, WRONG, SLO, KV).rps
    want, _ = sustainable_rps(TRUTH, 6000, 100, 215_000, SLO, KV)
    assert after < 0.5 * before
    assert abs(after - want) / want < 0.2


def test_the_memory_survives_a_round_trip_through_status() -> None:
    rng = random.Random(3)
    memory = teach(ThroughputMemory(), [window(rng, 40, 2, ttft_ok=0.9, first_tokens=300)] * 5)
    again = ThroughputMemory.from_dict(memory.to_dict())
    # Kept to six decimals: the same capacity to a part in ten thousand.
    assert math.isclose(
        capacity(again, WRONG, SLO, KV).rps, capacity(memory, WRONG, SLO, KV).rps, rel_tol=1e-4
    )
    assert again.misses and again.samples == memory.samples
    assert ThroughputMemory.from_dict({"xx": [1, 2]}) == ThroughputMemory()  # damaged: start over


def _missing_tail(rng: random.Random, model_rps: float, repeat: int = 5) -> list[Evidence]:
    """Windows missing 10% from 40% of the step model's capacity up, none below."""
    windows = []
    for share in (0.1, 0.2, 0.3, 0.45, 0.6):
        ok = 1.0 if share < 0.4 else 0.9
        rps = share * model_rps
        windows += [
            window(rng, 30, rps, ttft_ok=ok, first_tokens=400, load=rps) for _ in range(repeat)
        ]
    return windows


def test_the_latency_tail_caps_the_capacity_at_the_first_load_that_misses() -> None:
    """Misses at 40% of the step model's capacity and above, none below: the capacity is capped
    at the floor of the first failing load bin."""
    model_rps = capacity(ThroughputMemory(), WRONG, SLO, KV).rps
    memory = teach(ThroughputMemory(), _missing_tail(random.Random(5), model_rps))
    assert tail_limit(memory, SLO) is not None
    c = capacity(memory, WRONG, SLO, KV)
    assert c.bound_by == "latencyTail"
    # Below the first load that missed, and no more than one bin below the last that did not.
    assert 0.3 * model_rps / LOAD_RATIO <= c.rps <= 0.45 * model_rps


def test_a_quiet_stretch_does_not_forget_the_latency_tail() -> None:
    """Found on azure-code: two hours at a request a minute say nothing about the tail at load,
    and a memory that faded by the clock forgot it there, so the burst after the lull met a
    fleet sized by the step model alone (2.24 req/s against a true 0.68: 95.4% SLO)."""
    rng = random.Random(5)
    model_rps = capacity(ThroughputMemory(), WRONG, SLO, KV).rps
    memory = teach(ThroughputMemory(), _missing_tail(rng, model_rps))
    assert tail_limit(memory, SLO) is not None
    quiet = [window(rng, 1, 1 / 60, ttft_ok=1.0, first_tokens=1, load=1 / 60)] * 480
    after = teach(memory, quiet, t0=15.0 * 25)
    assert tail_limit(after, SLO) == tail_limit(memory, SLO)


def test_new_evidence_at_the_same_load_replaces_the_tail() -> None:
    """The memory fades with the requests seen since, not with the clock: once the loads that
    missed are served within the objective for several half-lives' worth of requests (a new
    image, a shorter mix), the cap is lifted."""
    rng = random.Random(6)
    model_rps = capacity(ThroughputMemory(), WRONG, SLO, KV).rps
    memory = teach(ThroughputMemory(), _missing_tail(rng, model_rps))
    assert tail_limit(memory, SLO) is not None
    rps = 0.5 * model_rps
    clean = [window(rng, 30, rps, ttft_ok=1.0, first_tokens=400, load=rps)]
    # teach() steps 15 s: each window adds a quarter of its minute's 400 first tokens.
    per_window = 400 * 15.0 / 60.0
    per_half_life = math.ceil(MISS_HALF_LIFE_REQUESTS / per_window)
    assert tail_limit(teach(memory, clean * per_half_life, t0=15.0 * 25), SLO) is not None
    healed = teach(memory, clean * 8 * per_half_life, t0=15.0 * 25)
    assert tail_limit(healed, SLO) is None


def test_a_noisy_bin_below_clean_ones_does_not_cap_the_capacity() -> None:
    """Misses never fall as load rises: a few bad windows at low load, under many clean
    windows at higher load, are read together with them (pool-adjacent violators)."""
    rng = random.Random(9)
    model_rps = capacity(ThroughputMemory(), WRONG, SLO, KV).rps
    low = [window(rng, 10, 0.1 * model_rps, ttft_ok=0.9, first_tokens=200, load=0.1 * model_rps)]
    high = [
        window(rng, 60, 0.5 * model_rps, ttft_ok=1.0, first_tokens=400, load=0.5 * model_rps)
        for _ in range(30)
    ]
    assert tail_limit(teach(ThroughputMemory(), low + high), SLO) is None


def test_misses_while_catching_up_are_not_evidence() -> None:
    rng = random.Random(2)
    unsettled = [window(rng, 60, 2, ttft_ok=0.2, first_tokens=500, settled=False)] * 20
    memory = teach(ThroughputMemory(), unsettled)
    assert memory.misses == ()
    assert tail_limit(memory, SLO) is None


def test_misses_at_every_load_are_not_the_loads_doing() -> None:
    """Prompts too long for the objective miss even on an idle fleet: more replicas would not
    help, so the tail does not cap the capacity (the lowest bin fails)."""
    rng = random.Random(4)
    rps = LOAD_MIN * 0.5 * capacity(ThroughputMemory(), WRONG, SLO, KV).rps
    idle = [window(rng, 1, rps, ttft_ok=0.95, first_tokens=400, load=rps) for _ in range(10)]
    assert tail_limit(teach(ThroughputMemory(), idle), SLO) is None


def test_within_reads_a_histogram_like_histogram_quantile() -> None:
    buckets = ((1.0, 50.0), (2.5, 80.0), (5.0, 100.0), (math.inf, 100.0))
    assert within(buckets, 1.0) == 0.5
    # Linear inside a bucket: 2 s is 2/3 of the way from 1 to 2.5.
    assert abs((within(buckets, 2.0) or 0) - 0.7) < 1e-9
    assert within(buckets, 10.0) == 1.0
    assert within(((0.1, 0.0), (math.inf, 0.0)), 1.0) is None
    assert within((), 1.0) is None
    # Observations beyond the last finite bucket count as misses at any threshold past it.
    assert within(((1.0, 9.0), (math.inf, 10.0)), 50.0) == 0.9


def test_sustainable_rps_binds_on_the_tighter_limit() -> None:
    tpot_only, bound = sustainable_rps(TRUTH, 1200, 200, None, SLO, KV)
    assert bound == "tpot"
    small_cache, bound = sustainable_rps(TRUTH, 1200, 200, 20_000, SLO, KV)
    assert bound == "kvCache" and small_cache < tpot_only
    # A floor step above the TPOT objective leaves nothing.
    assert sustainable_rps(EngineModel(0.2, 0.001, 1e-4), 100, 100, None, SLO, KV)[0] == 0.0


def test_behind_a_gateway_a_replica_holds_no_more_than_its_max_per_replica() -> None:
    """spec.gateway.maxPerReplica bounds the sequences a replica runs, as the KV cache does:
    the step model's batch cannot grow past it (on the ramp behind the gateway the unbounded
    model said 5.0 req/s where one replica sustains 4.1, and the gateway held the rest)."""
    free, bound = sustainable_rps(TRUTH, 1200, 200, 215_000, SLO, KV)
    assert bound == "tpot"
    slots, bound = sustainable_rps(TRUTH, 1200, 200, 215_000, SLO, KV, max_seqs=64)
    assert bound == "maxPerReplica" and slots < free
    # The KV bound's arithmetic with 64 sequences: the rate at which 64 are in flight.
    demand = 1200 * TRUTH.per_prompt_token_s + 200 * TRUTH.per_seq_s
    assert math.isclose(slots, 64 / (201 * TRUTH.base_s + 64 * demand))
    # A bound above what the cache or the TPOT objective allow changes nothing.
    assert sustainable_rps(TRUTH, 1200, 200, 215_000, SLO, KV, max_seqs=10_000) == (free, "tpot")
    small, _ = sustainable_rps(TRUTH, 1200, 200, 20_000, SLO, KV)
    assert sustainable_rps(TRUTH, 1200, 200, 20_000, SLO, KV, max_seqs=64) == (small, "kvCache")
    # The learned capacity carries it.
    cap = capacity(ThroughputMemory(), WRONG, SLO, KV, max_seqs=8)
    assert cap.bound_by == "maxPerReplica"
    assert cap.rps < capacity(ThroughputMemory(), WRONG, SLO, KV).rps


def test_traffic_that_never_varies_keeps_a_physical_model() -> None:
    """Found on the live loop: tiny prompts at a batch of 3 for minutes fitted the per-sequence
    and per-token costs below zero, and the capacity came out 0. The floors keep it physical."""
    rng = random.Random(11)
    flat = [window(rng, 3.0, 1.0, prompt=5, output=20, noise=0.2) for _ in range(60)]
    memory = teach(ThroughputMemory(), flat)
    model = engine(memory, WRONG.engine)
    assert model.per_seq_s > 0 and model.per_prompt_token_s > 0
    assert capacity(memory, WRONG, SLO, KV).rps > 0
