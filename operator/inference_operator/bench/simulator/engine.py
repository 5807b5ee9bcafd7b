"""A discrete-event model of one vLLM replica doing continuous batching.

Each engine step decodes one token for every running sequence; a step that admits new requests
also carries their prompt tokens (prefill), which slows that step for everyone. KV cache is
counted in tokens; when it runs out the newest request is preempted and later recomputed
(vLLM's RECOMPUTE policy). Between admissions and completions every step is alike, so the model
jumps over runs of identical steps: the cost is per request, not per token.

Automatic prefix caching: a request names the prefixes its prompt starts with (a system prompt,
a conversation's earlier turns), each as (id, tokens). The engine keeps the prefixes it has
computed in the KV blocks that no running request uses, least recently used evicted first, and
a request prefills only what follows the longest prefix it finds there. Shared blocks are still
counted once per running request (vLLM counts them once): the model errs towards less memory.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from inference_operator.bench.simulator.profiles import EngineProfile
from inference_operator.metrics.queries import VLLM_TPOT_BUCKETS, VLLM_TTFT_BUCKETS


@dataclass(eq=False)
class Request:
    arrival: float
    prompt_tokens: int
    output_tokens: int
    first_token_at: float | None = None
    finished_at: float | None = None
    # Output tokens generated before the current admission (non-zero after a preemption).
    generated: int = 0
    preemptions: int = 0
    failed: bool = False
    # Prefixes the prompt starts with, shortest first: (id, tokens from the prompt's start).
    prefixes: tuple[tuple[int, int], ...] = ()
    # Once done, its prompt and output are cached under this id (the next turn's prefix).
    cache_as: int | None = None
    # Prompt tokens found in the prefix cache at its (last) admission.
    cached_tokens: int = 0

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.arrival

    @property
    def tpot(self) -> float | None:
        if self.finished_at is None or self.first_token_at is None:
            return None
        if self.output_tokens <= 1:
            return 0.0
        return (self.finished_at - self.first_token_at) / (self.output_tokens - 1)


@dataclass(eq=False)
class _Running:
    request: Request
    prefill_tokens: int
    prefill_left: int
    # Output tokens still to produce in this admission.
    remaining: int
    # Step index such that (step - decode_base) tokens have been produced; set when prefill ends.
    decode_base: int = -1
    key: int = 0
    dead: bool = False

    def produced(self, step: int) -> int:
        return 0 if self.decode_base < 0 else step - self.decode_base


@dataclass(eq=False)
class Replica:
    """One engine. `advance(t)` runs it up to the first step boundary at or after t."""

    profile: EngineProfile
    t: float
    waiting: deque[Request] = field(default_factory=deque)
    running: dict[int, _Running] = field(default_factory=dict)
    prefilling: deque[_Running] = field(default_factory=deque)
    step: int = 0
    kv_used: int = 0
    busy_seconds: float = 0.0
    completed: int = 0
    preemptions: int = 0
    last_finish_at: float = 0.0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    # vllm:inter_token_latency_seconds' sum and count: one observation per decoded token.
    itl_sum: float = 0.0
    itl_count: int = 0
    # vllm:time_to_first_token_seconds_bucket, not cumulative: [i] counts VLLM_TTFT_BUCKETS[i-1]
    # < ttft <= VLLM_TTFT_BUCKETS[i] (the last one: above every boundary).
    ttft_buckets: list[int] = field(default_factory=lambda: [0] * (len(VLLM_TTFT_BUCKETS) + 1))
    # vllm:request_time_per_output_token_seconds, the same way (0 for one output token).
    tpot_buckets: list[int] = field(default_factory=lambda: [0] * (len(VLLM_TPOT_BUCKETS) + 1))
    # vllm:prefix_cache_queries and vllm:prefix_cache_hits (tokens).
    prefix_queries: int = 0
    prefix_hits: int = 0
    # Prefix id -> (tokens from the prompt's start, tokens it holds past its parent), least
    # recently used first.
    cache: OrderedDict[int, tuple[int, int]] = field(default_factory=OrderedDict)
    cached_tokens: int = 0
    _heap: list[tuple[int, int, _Running]] = field(default_factory=list)
    _seq: int = 0

    @property
    def outstanding(self) -> int:
        return len(self.running) + len(self.waiting)

    @property
    def kv_utilization(self) -> float:
        return self.kv_used / self.profile.kv_capacity_tokens

    def enqueue(self, request: Request) -> None:
        self.waiting.append(request)

    def _lookup(self, request: Request) -> int:
        """Prompt tokens the longest cached prefix covers (at least one token is computed)."""
        found: list[int] = []
        for pid, _ in request.prefixes:
            if pid not in self.cache:
                break
            found.append(pid)
        # Touched tail first, so a prefix stays more recent than what extends it and eviction
        # takes the tails first (vLLM frees a sequence's blocks in reverse for the same reason).
        for pid in reversed(found):
            self.cache.move_to_end(pid)
        hit = self.cache[found[-1]][0] if found else 0
        return min(hit, request.prompt_tokens - 1)

    def _remember(self, chain: list[tuple[int, int]]) -> None:
        """Cache a chain of prefixes, each holding the tokens past the one before it."""
        before = 0
        sized = []
        for pid, tokens in chain:
            sized.append((pid, tokens, max(0, tokens - before)))
            before = max(before, tokens)
        for pid, tokens, size in reversed(sized):
            old = self.cache.pop(pid, None)
            self.cached_tokens += size - (old[1] if old else 0)
            self.cache[pid] = (tokens, size)

    def _evict(self, wanted: int) -> None:
        """Cached prefixes live in blocks no request holds: drop the oldest until they fit
        (when a request is admitted: between admissions nothing else needs the room)."""
        room = self.profile.kv_capacity_tokens - self.kv_used - wanted
        while self.cache and self.cached_tokens > room:
            _, (_, size) = self.cache.popitem(last=False)
            self.cached_tokens -= size

    def step_seconds(self, batch: int, prefill_tokens: int = 0) -> float:
        p = self.profile
        return (
            p.decode_base_s + p.decode_per_seq_s * batch + prefill_tokens / p.prefill_tokens_per_s
        )

    def advance(self, until: float) -> list[Request]:
        """Run steps until the clock reaches `until`; return the requests that finished."""
        done: list[Request] = []
        while self.t < until:
            if not self.running and not self.waiting:
                self.t = until
                break
            self._admit()
            if not self.running:
                # Nothing fits even in an empty engine: the prompt exceeds the KV cache.
                request = self.waiting.popleft()
                request.failed = True
                done.append(request)
                continue
            decoding = len(self.running) - len(self.prefilling)
            if self.kv_used + decoding + len(self.prefilling) > self.profile.kv_capacity_tokens:
                self._preempt_newest()
                continue
            if self.prefilling:
                self._prefill_step(decoding, done)
                continue
            dt = self.step_seconds(decoding)
            free = self.profile.kv_capacity_tokens - self.kv_used
            n = min(
                self._heap[0][0] - self.step,
                max(1, math.ceil((until - self.t) / dt)),
                free // decoding,
            )
            self._decode_steps(max(1, n), dt, decoding, done)
        return done

    def _admit(self) -> None:
        p = self.profile
        while self.waiting and len(self.running) < p.max_num_seqs:
            request = self.waiting[0]
            # After a preemption, vLLM recomputes the prompt and the tokens generated so far.
            tokens = request.prompt_tokens + request.generated
            # Admit only with room for the prompt and a block of growth for every sequence,
            # or a preempted request would be re-admitted at once and preempted again.
            reserve = (len(self.running) + 1) * p.kv_block_tokens
            if self.kv_used + tokens + reserve > p.kv_capacity_tokens:
                break
            self.waiting.popleft()
            self._evict(0)
            hit = self._lookup(request) if request.generated == 0 else 0
            request.cached_tokens = hit
            self.prefix_queries += request.prompt_tokens
            self.prefix_hits += hit
            self._evict(tokens)
            entry = _Running(
                request, tokens, tokens - hit, request.output_tokens - request.generated
            )
            self._seq += 1
            entry.key = self._seq
            self.running[self._seq] = entry
            self.prefilling.append(entry)
            self.kv_used += tokens
            self.prompt_tokens += tokens

    def _prefill_step(self, decoding: int, done: list[Request]) -> None:
        """One chunked-prefill step: up to max_batched_tokens prompt tokens plus one decode token
        for every decoding sequence; sequences whose prompt completes get their first token."""
        budget = self.profile.max_batched_tokens
        used = 0
        completed: list[_Running] = []
        for entry in self.prefilling:
            take = min(entry.prefill_left, budget - used)
            entry.prefill_left -= take
            used += take
            if entry.prefill_left == 0:
                completed.append(entry)
            if used >= budget:
                break
        dt = self.step_seconds(decoding + len(completed), used)
        self._decode_steps(1, dt, decoding, done, completed)

    def _decode_steps(
        self,
        n: int,
        dt: float,
        decoding: int,
        done: list[Request],
        completed: list[_Running] | None = None,
    ) -> None:
        self.t += n * dt
        self.step += n
        self.kv_used += n * decoding
        self.generated_tokens += n * decoding
        self.itl_sum += n * dt * decoding
        self.itl_count += n * decoding
        self.busy_seconds += n * dt
        for entry in completed or ():
            self.prefilling.popleft()
            entry.decode_base = self.step - 1
            self._remember(list(entry.request.prefixes))
            self.kv_used += 1
            self.generated_tokens += 1
            if entry.request.first_token_at is None:
                entry.request.first_token_at = self.t
                ttft = self.t - entry.request.arrival
                self.ttft_buckets[bisect.bisect_left(VLLM_TTFT_BUCKETS, ttft)] += 1
            heapq.heappush(self._heap, (entry.decode_base + entry.remaining, entry.key, entry))
        while self._heap and self._heap[0][0] <= self.step:
            finish_step, key, entry = heapq.heappop(self._heap)
            if entry.dead:
                continue
            del self.running[key]
            self.kv_used -= entry.prefill_tokens + entry.remaining
            request = entry.request
            request.finished_at = self.t - (self.step - finish_step) * dt
            request.generated = request.output_tokens
            if request.cache_as is not None:
                whole = request.prompt_tokens + request.output_tokens
                self._remember([*request.prefixes, (request.cache_as, whole)])
            tpot = request.tpot or 0.0
            self.tpot_buckets[bisect.bisect_left(VLLM_TPOT_BUCKETS, tpot)] += 1
            self.completed += 1
            self.last_finish_at = request.finished_at
            done.append(request)

    def _preempt_newest(self) -> None:
        key = next(reversed(self.running))
        entry = self.running.pop(key)
        entry.dead = True
        if entry in self.prefilling:
            self.prefilling.remove(entry)
        produced = entry.produced(self.step)
        self.kv_used -= entry.prefill_tokens + produced
        entry.request.generated += produced
        entry.request.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(entry.request)
