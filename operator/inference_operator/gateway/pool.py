"""The replicas of one model and who gets the next request. Pure bookkeeping, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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


class Pool:
    """Least outstanding requests first; the gateway's own zone wins ties and near-ties (a
    cross-zone hop costs latency and AWS bills it), but never at the price of queueing."""

    def __init__(self, zone: str | None = None, max_per_replica: int = 64) -> None:
        self.zone = zone
        self.max_per_replica = max_per_replica
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

    def acquire(self, now: float = 0.0) -> Target | None:
        """Take a slot on the best replica, or None when every replica is full (or none)."""
        free = [
            s
            for s in self.slots.values()
            if not s.draining and s.outstanding < self.max_per_replica and s.cooling_until <= now
        ]
        if not free:
            return None

        def cost(s: Slot) -> tuple[float, str]:
            # Another zone counts as one extra request in flight.
            remote = 0 if self.zone is None or s.target.zone in (None, self.zone) else 1
            return (s.outstanding + remote, s.target.name)

        best = min(free, key=cost)
        best.outstanding += 1
        return best.target

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
