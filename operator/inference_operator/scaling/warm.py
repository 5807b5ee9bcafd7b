"""How much warm capacity (spare nodes, a Karpenter CapacityBuffer) to keep: pure.

A buffer pays off for the part of a burst that arrives faster than a node launches. So the brain
remembers, each decision, how far demand rose above the replicas that existed one start-up time
earlier (`growth`): that is what a scaler without spare nodes could not have had ready in time.
The warm capacity is the largest such growth over the last hour, kept as per-bin maxima (a few
numbers, so it survives restarts inside status), bounded by the user's ceiling and by what
maxReplicas still allows. A quiet hour lets the buffer fall back to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

# How long a burst keeps the buffer sized for it, and the resolution of that memory.
WINDOW_SECONDS = 3600.0
BIN_SECONDS = 300.0


@dataclass(frozen=True)
class WarmMemory:
    # (time, replicas asked for) over the last start-up time.
    supply: tuple[tuple[float, int], ...] = ()
    # (bin start, largest growth seen in the bin) over WINDOW_SECONDS.
    peaks: tuple[tuple[float, int], ...] = ()


def remember(
    memory: WarmMemory, now: float, need: int, replicas: int, startup_seconds: float
) -> WarmMemory:
    """Record one decision: `need` is what the signals asked for, `replicas` what was asked of
    the fleet before this decision."""
    supply = tuple(x for x in memory.supply if x[0] >= now - startup_seconds)
    # The fewest replicas that existed within the last start-up time: demand above it could not
    # have been served by replicas created after the rise began.
    had = min((r for _, r in supply), default=replicas)
    growth = max(0, need - min(had, replicas))
    start = now - now % BIN_SECONDS
    peaks = [p for p in memory.peaks if p[0] > now - WINDOW_SECONDS]
    if peaks and peaks[-1][0] == start:
        peaks[-1] = (start, max(peaks[-1][1], growth))
    elif growth > 0:
        peaks.append((start, growth))
    return WarmMemory((*supply, (now, replicas)), tuple(peaks))


def warm_replicas(
    memory: WarmMemory, now: float, ceiling: int, replicas: int, max_replicas: int
) -> tuple[int, str]:
    """Spare replicas' worth of nodes to keep now, and why."""
    seen = max((g for t, g in memory.peaks if t > now - WINDOW_SECONDS), default=0)
    room = max(0, max_replicas - replicas)
    n = min(seen, ceiling, room)
    why = f"demand rose by up to {seen} replicas within one start-up time in the last hour"
    if n < seen:
        limit = (
            f"maxReplicas leaves room for {room}"
            if room < ceiling
            else f"auto.maxReplicas {ceiling}"
        )
        why += f"; limited: {limit}"
    return n, why
