"""Prefix keys and consistent hashing with bounded loads (routing/prefix.py)."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from inference_operator.routing.prefix import (
    DEFAULT_PREFIX_CHARS,
    bound,
    choose,
    prefix_key,
    prompt_prefix,
    rendezvous_order,
)

SYSTEM = "You are a support agent for ACME. " * 20  # > DEFAULT_PREFIX_CHARS


def chat(*messages: tuple[str, str]) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": r, "content": c} for r, c in messages]}


def test_the_turns_of_one_conversation_and_users_of_one_system_prompt_share_a_key() -> None:
    turn1 = chat(("system", SYSTEM), ("user", "my order is late"))
    turn2 = chat(
        ("system", SYSTEM),
        ("user", "my order is late"),
        ("assistant", "Sorry to hear that."),
        ("user", "it is #42"),
    )
    other_user = chat(("system", SYSTEM), ("user", "how do I reset my password"))
    other_app = chat(("system", "You translate French to English. " * 20), ("user", "bonjour"))
    assert prefix_key(turn1) == prefix_key(turn2) == prefix_key(other_user)
    assert prefix_key(turn1) != prefix_key(other_app)


def test_a_short_system_prompt_keys_on_the_conversation_start() -> None:
    a = chat(("system", "Be brief."), ("user", "first question of conversation A " * 30))
    a2 = chat(*[(m["role"], m["content"]) for m in a["messages"]], ("user", "and then?"))  # type: ignore[index,union-attr]
    b = chat(("system", "Be brief."), ("user", "first question of conversation B " * 30))
    assert prefix_key(a) == prefix_key(a2) != prefix_key(b)


def test_roles_and_content_parts_are_part_of_the_key() -> None:
    as_parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    as_text = {"messages": [{"role": "user", "content": "hi"}]}
    as_system = {"messages": [{"role": "system", "content": "hi"}]}
    assert prefix_key(as_parts) == prefix_key(as_text) != prefix_key(as_system)


def test_completions_key_on_the_prompt_and_bodies_without_one_have_none() -> None:
    long = "x" * (DEFAULT_PREFIX_CHARS + 100)
    assert prefix_key({"prompt": long}) == prefix_key({"prompt": long + "more"})
    assert prefix_key({"prompt": [long, "second"]}) == prefix_key({"prompt": long})
    assert prefix_key({"prompt": ""}) is None
    assert prefix_key({"prompt": [1, 2, 3]}) is None  # token ids: no text to hash
    assert prefix_key({"model": "m"}) is None
    assert prompt_prefix({"prompt": long}) == long[:DEFAULT_PREFIX_CHARS]


def test_removing_a_replica_moves_only_the_keys_it_owned() -> None:
    replicas = [f"pod-{i}" for i in range(8)]
    keys = [random.Random(i).getrandbits(64) for i in range(4000)]
    before = {k: rendezvous_order(k, replicas)[0] for k in keys}
    after = {k: rendezvous_order(k, replicas[:-1])[0] for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "pod-7"}
    # And ownership is even: each of 8 replicas owns 1/8 of the keys, within 20%.
    shares = Counter(before.values())
    assert len(shares) == 8
    assert all(abs(n - 500) <= 100 for n in shares.values()), shares


def test_an_idle_fleet_sends_a_key_to_its_owner_every_time() -> None:
    loads = {f"pod-{i}": 0 for i in range(5)}
    key = prefix_key({"prompt": SYSTEM})
    assert key is not None
    owner = rendezvous_order(key, list(loads))[0]
    assert {choose(key, loads) for _ in range(10)} == {owner}
    assert choose(None, {"a": 3, "b": 1, "c": 1}) == "b"  # no key: least loaded, then by name
    assert choose(key, {}) is None


@given(
    loads=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    key=st.integers(0, 2**64 - 1),
    epsilon=st.floats(0.05, 2.0),
)
def test_the_chosen_replica_stays_within_the_bound_or_is_the_least_loaded(
    loads: list[int], key: int, epsilon: float
) -> None:
    by_name = {f"pod-{i}": n for i, n in enumerate(loads)}
    chosen = choose(key, by_name, epsilon)
    assert chosen is not None
    most = bound(by_name, epsilon)
    assert by_name[chosen] + 1 <= most or by_name[chosen] == min(loads)
    # And it is the first within the bound in the key's own order.
    order = rendezvous_order(key, list(by_name))
    within = [r for r in order if by_name[r] + 1 <= most]
    assert chosen == (within[0] if within else chosen)


def test_one_hot_key_spreads_over_the_fleet_within_its_bound() -> None:
    """Requests of one prefix arrive and stay in flight: the owner takes them until its bound,
    then the next replicas in the key's order; no replica ever holds more than (1+e) x mean."""
    epsilon = 0.25
    loads = {f"pod-{i}": 0 for i in range(6)}
    key = 12345
    for n in range(1, 121):
        chosen = choose(key, loads, epsilon)
        assert chosen is not None
        loads[chosen] += 1
        assert max(loads.values()) <= math.ceil((1 + epsilon) * n / len(loads)), (n, loads)
    # Concentrated on as few replicas as the bound allows (their caches hold the prefix).
    used = sum(1 for n in loads.values() if n)
    assert used == math.ceil(120 / math.ceil((1 + epsilon) * 120 / 6)), loads


def test_many_keys_keep_their_owner_under_light_load() -> None:
    """With as many requests in flight as replicas, most still go to their key's owner:
    affinity holds while the bound is loose (the statistic prefix caching needs)."""
    rng = random.Random(3)
    replicas = [f"pod-{i}" for i in range(6)]
    loads = dict.fromkeys(replicas, 0)
    in_flight: list[str] = []
    owned = 0
    for _ in range(3000):
        key = rng.randrange(40)
        chosen = choose(key, loads)
        assert chosen is not None
        owned += chosen == rendezvous_order(key, replicas)[0]
        loads[chosen] += 1
        in_flight.append(chosen)
        if len(in_flight) > 6:
            loads[in_flight.pop(rng.randrange(len(in_flight)))] -= 1
    assert owned / 3000 >= 0.6, owned
