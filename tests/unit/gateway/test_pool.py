"""Who gets the next request: its prefix's owner within the load bound, else least outstanding
first, own zone on near-ties, never a full, draining or cooling replica."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inference_operator.gateway.discovery import targets_of
from inference_operator.gateway.pool import Pool, Target
from inference_operator.routing.prefix import rendezvous_order


def t(name: str, zone: str | None = None) -> Target:
    return Target(name, "10.0.0.1", 8000, zone)


def test_least_outstanding_then_zone() -> None:
    pool = Pool(zone="a", max_per_replica=4)
    pool.update([t("p1", "a"), t("p2", "b")])
    picks = [pool.acquire() for _ in range(4)]
    # p1 (own zone) first; p2 costs one extra, so they alternate once p1 has one in flight.
    assert [p.name for p in picks if p] == ["p1", "p1", "p2", "p1"]


def test_full_replicas_make_requests_wait() -> None:
    pool = Pool(max_per_replica=1)
    pool.update([t("p1")])
    first = pool.acquire()
    assert first is not None and pool.acquire() is None
    pool.release(first)
    assert pool.acquire() is not None


def test_a_dropped_replica_drains_and_a_refusing_one_cools() -> None:
    pool = Pool()
    pool.update([t("p1"), t("p2")])
    held = pool.acquire()
    assert held is not None
    pool.update([t("p2")] if held.name == "p1" else [t("p1")])
    assert pool.ready == 1 and held.name in pool.slots  # still finishing its request
    pool.release(held)
    assert held.name not in pool.slots
    (other,) = pool.slots.values()
    pool.cool(other.target, until=10.0)
    assert pool.acquire(now=5.0) is None
    assert pool.acquire(now=10.0) == other.target


@given(st.lists(st.booleans(), min_size=1, max_size=200), st.integers(1, 5), st.integers(1, 8))
def test_outstanding_never_exceeds_the_limit_nor_goes_negative(
    ops: list[bool], replicas: int, limit: int
) -> None:
    pool = Pool(max_per_replica=limit)
    pool.update([t(f"p{i}") for i in range(replicas)])
    held: list[Target] = []
    for take in ops:
        if take:
            got = pool.acquire()
            if got is not None:
                held.append(got)
        elif held:
            pool.release(held.pop())
        assert all(0 <= s.outstanding <= limit for s in pool.slots.values())
        assert pool.outstanding == len(held)


def test_targets_from_endpoint_slices() -> None:
    slices = [
        {
            "ports": [{"name": "http", "port": 8000}],
            "endpoints": [
                {
                    "addresses": ["10.0.0.5"],
                    "conditions": {"ready": True},
                    "zone": "us-east-1a",
                    "targetRef": {"kind": "Pod", "name": "m-1"},
                },
                {
                    "addresses": ["10.0.0.6"],
                    "conditions": {"ready": False},
                    "targetRef": {"kind": "Pod", "name": "m-2"},
                },
                {
                    "addresses": ["10.0.0.7"],
                    "conditions": {"ready": True, "terminating": True},
                    "targetRef": {"kind": "Pod", "name": "m-3"},
                },
                {
                    "addresses": ["10.0.0.8"],
                    "conditions": {},
                    "targetRef": {"kind": "Pod", "name": "m-4"},
                },
            ],
        },
        {
            "ports": [{"name": "metrics", "port": 9000}],
            "endpoints": [{"addresses": ["10.0.0.9"], "targetRef": {"name": "x"}}],
        },
    ]
    assert targets_of(slices) == [
        Target("m-1", "10.0.0.5", 8000, "us-east-1a"),
        Target("m-4", "10.0.0.8", 8000, None),
    ]


def test_a_prefix_key_sticks_to_its_owner_and_spills_only_past_the_bound_or_when_full() -> None:
    pool = Pool(max_per_replica=3, epsilon=0.25)
    pool.update([t("p1"), t("p2"), t("p3")])
    key = 99
    owner = rendezvous_order(key, ["p1", "p2", "p3"])[0]
    first = pool.acquire(key=key)
    assert first is not None and first.name == owner
    pool.release(first)
    # One in flight elsewhere does not move the key: the owner is within 1.25 x the mean.
    others = [n for n in ("p1", "p2", "p3") if n != owner]
    pool.slots[others[0]].outstanding = 1
    got = pool.acquire(key=key)
    assert got is not None and got.name == owner
    # Full owner (max_per_replica): the next replica takes it, and requests with no key still
    # go to the least loaded.
    pool.slots[owner].outstanding = 3
    spilled = pool.acquire(key=key)
    assert spilled is not None and spilled.name != owner


def test_without_affinity_the_key_is_ignored() -> None:
    pool = Pool(epsilon=None)
    pool.update([t("p1"), t("p2")])
    picks = [pool.acquire(key=7) for _ in range(4)]
    assert [p.name for p in picks if p] == ["p1", "p2", "p1", "p2"]
