"""Prefix-cache-aware choice of a replica: consistent hashing with bounded loads.

vLLM keeps the KV blocks of prompts it has seen (automatic prefix caching), so a request whose
prompt starts like an earlier one skips that part of prefill, but only on the replica that saw it.
The key is the start of the prompt as the engine sees it (the chat messages in template order),
so requests sharing a system prompt, or the turns of one conversation, share a key.

Each key ranks the replicas by rendezvous hashing (highest random weight): adding or removing a
replica moves only the keys it owned. The first replica in that order whose load stays within
(1 + epsilon) x the mean load takes the request (Mirrokni, Thorup and Zadimoghaddam, "Consistent
Hashing with Bounded Loads", 2018): a hot prefix spills to its next replicas instead of queueing
on one, and no replica carries more than its bound. When no replica is within it, or the request
has no key, the least loaded replica takes it.

Pure: no I/O; the caller says who is eligible and how loaded each one is.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

# Characters of the templated prompt that make the key: ~64-128 tokens, long enough to tell
# system prompts apart, short enough that a conversation's later turns keep its first turn's key.
DEFAULT_PREFIX_CHARS = 512
DEFAULT_EPSILON = 0.25


def _text(content: Any) -> str:
    """A message's content: a string, or OpenAI's list of parts (text parts only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def prompt_prefix(body: Mapping[str, Any], chars: int = DEFAULT_PREFIX_CHARS) -> str | None:
    """The start of the prompt the engine will prefill, or None when the body has none.

    Chat messages are joined in order with their roles, as every chat template does: what
    differs between two templates is markup, and the same markup wraps the same messages."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        size = 0
        for m in messages:
            if not isinstance(m, dict):
                continue
            part = f"<|{m.get('role', '')}|>{_text(m.get('content'))}\n"
            parts.append(part)
            size += len(part)
            if size >= chars:
                break
        text = "".join(parts)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            return None
        text = prompt
    return text[:chars] or None


def prefix_key(body: Mapping[str, Any], chars: int = DEFAULT_PREFIX_CHARS) -> int | None:
    """A 64-bit key for the prompt's prefix (stable across processes: not Python's hash())."""
    text = prompt_prefix(body, chars)
    if text is None:
        return None
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _weight(key: int, replica: str) -> int:
    digest = hashlib.blake2b(replica.encode(), digest_size=8, key=key.to_bytes(8, "big"))
    return int.from_bytes(digest.digest(), "big")


def rendezvous_order(key: int, replicas: Sequence[str]) -> list[str]:
    """Replicas in the key's preference order (highest random weight first)."""
    return sorted(replicas, key=lambda r: (-_weight(key, r), r))


def bound(loads: Mapping[str, int], epsilon: float) -> int:
    """The most requests one replica may hold, counting the one being placed."""
    total = sum(loads.values()) + 1
    return max(1, math.ceil((1 + epsilon) * total / len(loads)))


def choose(
    key: int | None,
    loads: Mapping[str, int],
    epsilon: float | None = DEFAULT_EPSILON,
    penalty: Mapping[str, int] | None = None,
) -> str | None:
    """The replica that takes the request, from the eligible ones and their loads (requests in
    flight); None when none is eligible. `epsilon` None: no affinity, least loaded only.
    `penalty` adds to a replica's load when ties are broken by load (another zone's replica
    counts one more), never to the bound."""
    if not loads:
        return None
    extra = penalty or {}

    def least() -> str:
        return min(loads, key=lambda r: (loads[r] + extra.get(r, 0), r))

    if key is None or epsilon is None:
        return least()
    most = bound(loads, epsilon)
    for replica in rendezvous_order(key, list(loads)):
        if loads[replica] + 1 <= most:
            return replica
    return least()
