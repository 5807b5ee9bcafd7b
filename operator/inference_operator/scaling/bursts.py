"""Short bursts: spare Ready replicas after a burst that no scale-up could have caught: pure.

A burst that is over before the replicas launched for it are Ready cannot be chased: the
replicas arrive to the load that was there before it, while the burst's requests queued in the
replicas that were Ready (vLLM drains a request only where it landed). Only replicas Ready when
the next one begins serve it. So, once one start-up time after a burst's onset (panic) the
arrivals need no more replicas than the load before it did, the burst was short, and for a
while the fleet keeps `spare` Ready replicas above what that load needed. A burst still on when
its replicas come up is chased as before and leaves no spare: those replicas serve.

What this memory holds is a few numbers, so it survives an operator restart inside status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class BurstMemory:
    # The burst being watched: when panic began, and the arrival rate before it (requests/s).
    onset: float | None = None
    base_rps: float = 0.0
    # The last burst found short: when, and the fleet it leaves (what the load before it
    # needed, plus the spare).
    short_at: float | None = None
    floor: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "onset": self.onset,
            "baseRps": self.base_rps,
            "shortAt": self.short_at,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> BurstMemory:
        if not raw:
            return cls()
        return cls(
            onset=None if raw.get("onset") is None else float(raw["onset"]),
            base_rps=float(raw.get("baseRps", 0.0)),
            short_at=None if raw.get("shortAt") is None else float(raw["shortAt"]),
            floor=int(raw.get("floor", 0)),
        )


def _replicas(rps: float, target: float) -> int:
    return max(1, math.ceil(rps / target - 1e-9))


def watch(
    memory: BurstMemory,
    now: float,
    *,
    panic: bool,
    rps: float | None,
    base_rps: float | None,
    target_rps: float | None,
    startup_seconds: float,
    spare: int,
) -> BurstMemory:
    """One decision. `panic`: this decision is in panic; `rps`: the arrival rate now;
    `base_rps`: the rate before now (the forecast window's median); `target_rps`: what one
    replica is sized for. Both rates are sized at today's target, so a capacity learned
    meanwhile does not make the load before the burst look bigger or smaller."""
    if spare <= 0:
        return BurstMemory()
    if rps is None or target_rps is None or target_rps <= 0:
        return memory
    if memory.onset is None:
        # A burst is in the arrivals: panic on a queue or KV cache alone, the arrivals asking
        # for no more than before, is a fleet catching up, not a burst to remember.
        base = base_rps if base_rps is not None else rps
        rising = panic and _replicas(rps, target_rps) > _replicas(base, target_rps)
        return replace(memory, onset=now, base_rps=base) if rising else memory
    if now < memory.onset + startup_seconds:
        return memory
    # One start-up time on: the replicas launched at the onset are Ready about now.
    base = _replicas(memory.base_rps, target_rps)
    if _replicas(rps, target_rps) <= base:
        return BurstMemory(short_at=now, floor=base + spare)
    return replace(memory, onset=None)


def spare_floor(memory: BurstMemory, now: float, hold_seconds: float) -> int:
    """The replicas to keep Ready now (0: no short burst within `hold_seconds`)."""
    if memory.short_at is None or now - memory.short_at >= hold_seconds:
        return 0
    return memory.floor
