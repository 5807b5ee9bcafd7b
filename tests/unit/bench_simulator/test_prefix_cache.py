"""The engine's prefix cache and the fleet's prefix routing (what bench-routing measures)."""

from __future__ import annotations

from dataclasses import replace

from inference_operator.bench.routing import Workload, compare, shared_prefix
from inference_operator.bench.simulator.engine import Replica, Request
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S
from inference_operator.routing.prefix import DEFAULT_EPSILON


def serve_alone(replica: Replica, request: Request) -> Request:
    assert replica.t <= request.arrival
    replica.advance(request.arrival)
    replica.enqueue(request)
    while request.finished_at is None:
        replica.advance(replica.t + 0.5)
    return request


def test_a_cached_prefix_is_not_prefilled_again() -> None:
    replica = Replica(LLAMA3_8B_L40S, 0.0)
    first = serve_alone(replica, Request(0.0, 6000, 4, prefixes=((1, 5000),)))
    again = serve_alone(replica, Request(100.0, 6000, 4, prefixes=((1, 5000),)))
    other = serve_alone(replica, Request(200.0, 6000, 4, prefixes=((2, 5000),)))
    assert (first.cached_tokens, again.cached_tokens, other.cached_tokens) == (0, 5000, 0)
    assert first.ttft is not None and again.ttft is not None and other.ttft is not None
    # 5,000 of 6,000 prompt tokens skipped: prefill is most of an idle replica's TTFT.
    assert again.ttft < 0.3 * first.ttft
    assert abs(other.ttft - first.ttft) < 0.01
    assert (replica.prefix_queries, replica.prefix_hits) == (18000, 5000)


def test_a_conversation_finds_its_earlier_turns_and_the_whole_prompt_is_never_skipped() -> None:
    replica = Replica(LLAMA3_8B_L40S, 0.0)
    serve_alone(replica, Request(0.0, 3000, 200, prefixes=((1, 2000),), cache_as=77))
    turn2 = serve_alone(replica, Request(50.0, 3400, 10, prefixes=((1, 2000), (77, 3200))))
    assert turn2.cached_tokens == 3200
    same = serve_alone(replica, Request(90.0, 2000, 10, prefixes=((1, 2000),)))
    assert same.cached_tokens == 1999  # at least one token is computed, as vLLM does


def test_prefixes_are_evicted_least_recently_used_when_they_outgrow_the_free_cache() -> None:
    small = replace(LLAMA3_8B_L40S, kv_capacity_tokens=20_000)
    replica = Replica(small, 0.0)
    for pid in range(4):  # 4 x 6,000 tokens > 20,000
        serve_alone(replica, Request(10.0 * pid, 6001, 1, prefixes=((pid, 6000),)))
    # The first is evicted to admit the next request, the second to make room for its prompt.
    late = serve_alone(replica, Request(100.0, 6001, 1, prefixes=((0, 6000),)))
    assert late.cached_tokens == 0
    assert list(replica.cache) == [2, 3, 0] and replica.cached_tokens == 18000
    recent = serve_alone(replica, Request(200.0, 6001, 1, prefixes=((3, 6000),)))
    assert recent.cached_tokens == 6000


def test_prefix_routing_finds_more_of_the_cache_at_equal_throughput_within_its_bound() -> None:
    w = Workload(seconds=300.0, conversations_per_s=2.0, seed=5)
    requests = shared_prefix(w)
    assert len({r.prefixes[0][0] for r in requests}) > 20  # many contexts are in use
    lor, pre = compare(w, 6, "llama-3.1-8b/l40s")
    assert lor.completed == pre.completed == lor.requests
    assert pre.hit_rate > lor.hit_rate + 0.15, (lor, pre)
    assert pre.ttft_p50 < lor.ttft_p50
    assert abs(pre.output_tokens_per_s / lor.output_tokens_per_s - 1) < 0.01
    # Requests per replica stay within the bound the router keeps on requests in flight.
    assert pre.busiest_share <= 1 + DEFAULT_EPSILON + 0.05, pre
