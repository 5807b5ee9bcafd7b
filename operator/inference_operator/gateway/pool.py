"""The replicas of one model and who gets the next request. Pure bookkeeping, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inference_operator.routing import prefix


@dataclass(frozen=True)
class Target:
    """A Ready replica as discovery reports it."""

    name: str  # the pod
    ip: str
    port: int
    zone: str | None = None


@dataclass
class Slot:
    target: Target
    outstanding: int = 0
    # Discovery dropped it while requests were in flight: finish those, send no more.
    draining: bool = False
    # It refused a connection: skip it until then (Ready in its EndpointSlice a moment before
    # its server listens, or a moment after it stopped).
    cooling_until: float = 0.0
    # LoRA adapters it serves, as its /v1/models last said.
    adapters: frozenset[str] = frozenset()


class Pool:
    """A request with a prompt-prefix key goes to the replica that owns the key, within a bound
    on its load (routing/prefix.py); otherwise, or with affinity off, least outstanding requests
    first. The gateway's own zone wins ties and near-ties (a cross-zone hop costs latency and AWS
    bills it), but never at the price of queueing."""

    def __init__(
        self,
        zone: str | None = None,
        max_per_replica: int = 64,
        epsilon: float | None = prefix.DEFAULT_EPSILON,
    ) -> None:
        self.zone = zone
        self.max_per_replica = max_per_replica
        # None: no prefix affinity (least outstanding only).
        self.epsilon = epsilon
        self.slots: dict[str, Slot] = {}

    def update(self, targets: Iterable[Target]) -> None:
        fresh = {t.name: t for t in targets}
        for name, slot in list(self.slots.items()):
            if name not in fresh:
                if slot.outstanding:
                    slot.draining = True
                else:
                    del self.slots[name]
        for name, t in fresh.items():
            known = self.slots.get(name)
            if known is None:
                self.slots[name] = Slot(t)
            else:
                known.target, known.draining = t, False

    @property
    def ready(self) -> int:
        return sum(1 for s in self.slots.values() if not s.draining)

    @property
    def outstanding(self) -> int:
        return sum(s.outstanding for s in self.slots.values())

    def acquire(
        self, now: float = 0.0, key: int | None = None, adapter: str | None = None
    ) -> Target | None:
        """Take a slot on the best replica for a request with this prefix key (None: no
        prompt) and, for a LoRA adapter, among the replicas that serve it (any replica while
        none is known to: the operator is loading it), or None when every replica is full."""
        free = {
            name: s
            for name, s in self.slots.items()
            if not s.draining and s.outstanding < self.max_per_replica and s.cooling_until <= now
        }
        if adapter is not None and any(adapter in s.adapters for s in self.slots.values()):
            free = {name: s for name, s in free.items() if adapter in s.adapters}
        if not free:
            return None
        # Another zone counts as one extra request in flight.
        remote = {
            name: 1
            for name, s in free.items()
            if self.zone is not None and s.target.zone not in (None, self.zone)
        }
        loads = {name: s.outstanding for name, s in free.items()}
        chosen = prefix.choose(key, loads, self.epsilon, remote)
        assert chosen is not None  # `free` is not empty
        best = free[chosen]
        best.outstanding += 1
        return best.target

    def serve_adapters(self, name: str, adapters: frozenset[str]) -> None:
        slot = self.slots.get(name)
        if slot is not None:
            slot.adapters = adapters

    def cool(self, target: Target, until: float) -> None:
        slot = self.slots.get(target.name)
        if slot is not None:
            slot.cooling_until = until

    def release(self, target: Target) -> None:
        slot = self.slots.get(target.name)
        if slot is None:
            return
        slot.outstanding = max(0, slot.outstanding - 1)
        if slot.draining and slot.outstanding == 0:
            del self.slots[target.name]
