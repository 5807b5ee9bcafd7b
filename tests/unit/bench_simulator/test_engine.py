"""The engine model: conservation, batching, KV pressure and calibration anchors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_operator.bench.simulator.engine import Replica, Request
from inference_operator.bench.simulator.profiles import (
    LLAMA3_8B_H100,
    LLAMA3_8B_L40S,
    EngineProfile,
)


def run(
    profile: EngineProfile, rate: float, seconds: float, prompt: int, output: int, seed: int = 3
) -> tuple[Replica, list[Request]]:
    rng = random.Random(seed)
    replica, reqs, t = Replica(profile, 0.0), [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t > seconds:
            break
        r = Request(t, prompt, output)
        replica.advance(t)
        replica.enqueue(r)
        reqs.append(r)
    replica.advance(1e9)
    return replica, reqs


def test_saturated_h100_decode_throughput_matches_the_published_anchor() -> None:
    # 256 sequences decoding at once: ~8,088 output tok/s (Lambda, vLLM 0.6, H100, 8B).
    replica = Replica(LLAMA3_8B_H100, 0.0)
    for _ in range(256):
        replica.enqueue(Request(0.0, 16, 1000))
    replica.advance(1e9)
    decode_only = replica.last_finish_at - replica.step_seconds(256, 256 * 16)
    assert 7500 < 256 * 1000 / decode_only < 8500


def test_kv_capacity_is_the_planners_and_near_the_research_anchor() -> None:
    # The planner (80 GiB x 0.9 - 2 GiB overhead - 15 GiB weights) against the research note's
    # ~50 GiB / 128 KiB per token (performance.md section 3.1, an upper bound by its own words).
    assert LLAMA3_8B_H100.kv_capacity_tokens == pytest.approx(55.04 * 2**30 / 131072, rel=0.01)
    assert LLAMA3_8B_H100.kv_capacity_tokens == pytest.approx(50 * 2**30 / 131072, rel=0.12)


def test_latency_grows_with_load() -> None:
    p95 = []
    for rate in (1.0, 3.0, 6.0):
        _, reqs = run(LLAMA3_8B_L40S, rate, 300, 1000, 200)
        ttfts = sorted(r.ttft or 0 for r in reqs)
        p95.append(ttfts[int(0.95 * len(ttfts))])
    assert p95[0] < p95[1] < p95[2]


def test_kv_exhaustion_preempts_and_still_finishes_everything() -> None:
    small = EngineProfile("tiny", 0.01, 0.0001, 10_000, kv_capacity_tokens=20_000)
    replica, reqs = run(small, 5.0, 60, 2000, 400)
    assert replica.preemptions > 0
    assert all(r.finished_at is not None and not r.failed for r in reqs)
    assert replica.kv_used == 0


def test_prompt_larger_than_the_cache_fails_cleanly() -> None:
    small = EngineProfile("tiny", 0.01, 0.0001, 10_000, kv_capacity_tokens=1_000)
    replica = Replica(small, 0.0)
    r = Request(0.0, 5_000, 10)
    replica.enqueue(r)
    done = replica.advance(10)
    assert done == [r] and r.failed


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 30), st.integers(1, 6000), st.integers(1, 600)),
        min_size=1,
        max_size=60,
    )
)
def test_every_request_finishes_once_in_order_of_its_tokens(
    arrivals: list[tuple[float, int, int]],
) -> None:
    replica = Replica(LLAMA3_8B_L40S, 0.0)
    reqs = []
    finished = []
    for t, p, o in sorted(arrivals):
        finished += replica.advance(t)
        r = Request(t, p, o)
        replica.enqueue(r)
        reqs.append(r)
    finished += replica.advance(1e9)
    assert sorted(map(id, finished)) == sorted(map(id, reqs))
    for r in reqs:
        assert r.first_token_at is not None and r.finished_at is not None
        assert r.arrival <= r.first_token_at <= r.finished_at
    assert replica.kv_used == 0 and not replica.running and not replica.waiting
