"""How long a new replica takes to serve, learned from the pods' own creation -> Ready times.

The recommender looks this far ahead. spec.autoscaling.startupTime holds until the first replicas
have started; then the observed times take over, kept apart by whether the pod had to wait for a
new node (Karpenter's launch) or found one. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The newest start-ups kept, per kind; older ones say less about today's image and nodes.
KEEP = 20
# The look-ahead covers this share of start-ups: a scale-up planned for the median start-up is
# late half the time.
QUANTILE = 0.8


@dataclass(frozen=True)
class Startup:
    ready_at: float
    seconds: float
    new_node: bool


@dataclass(frozen=True)
class StartupMemory:
    observed: tuple[Startup, ...] = ()

    def to_list(self) -> list[list[float]]:
        return [[s.ready_at, round(s.seconds, 1), float(s.new_node)] for s in self.observed]

    @classmethod
    def from_list(cls, raw: Iterable[Iterable[float]] | None) -> StartupMemory:
        out = []
        for row in raw or ():
            t, secs, new = (float(v) for v in row)
            out.append(Startup(t, secs, bool(new)))
        return cls(tuple(out))


def observe(memory: StartupMemory, seen: Iterable[Startup]) -> StartupMemory:
    """Add start-ups not yet known (by Ready time), keeping the newest KEEP of each kind."""
    known = {(s.ready_at, s.seconds) for s in memory.observed}
    merged = [*memory.observed, *(s for s in seen if (s.ready_at, s.seconds) not in known)]
    merged.sort(key=lambda s: s.ready_at)
    kept = [s for s in merged if s.new_node][-KEEP:] + [s for s in merged if not s.new_node][-KEEP:]
    return StartupMemory(tuple(sorted(kept, key=lambda s: s.ready_at)))


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def estimate(memory: StartupMemory, new_node: bool | None = None) -> float | None:
    """The QUANTILE start-up of one kind (None: both), or None before any observation."""
    values = [s.seconds for s in memory.observed if new_node is None or s.new_node == new_node]
    return _quantile(values, QUANTILE) if values else None


def lookahead(memory: StartupMemory, default: float) -> float:
    """Seconds the recommender looks ahead. A scale-up mostly waits for new nodes, unless spare
    ones are kept; the longer kind is the safe side until both have been seen."""
    new, found = estimate(memory, True), estimate(memory, False)
    known = [v for v in (new, found) if v is not None]
    return max(known) if known else default
