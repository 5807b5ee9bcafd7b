"""When a periodic pass is due, per object, on a timer that ticks at a shorter period (pure)."""

from __future__ import annotations


class Cadence:
    """A pass that runs every `period` seconds per object, checked on every `tick`. Half a tick
    of slack keeps a period that is a multiple of the tick from slipping to the next one."""

    def __init__(self, period: float, tick: float, first: bool) -> None:
        self.period = period
        self.tick = tick
        # Whether an object's first tick runs the pass, or starts its first period.
        self.first = first
        self._last: dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        """Whether the pass is due for `key` at `now` (monotonic); if so it counts as run."""
        last = self._last.get(key)
        if last is None:
            self._last[key] = now
            return self.first
        if now - last >= self.period - self.tick / 2:
            self._last[key] = now
            return True
        return False

    def forget(self, key: str) -> None:
        self._last.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Forget every key not in `keys` (objects that are gone)."""
        for key in [k for k in self._last if k not in keys]:
            del self._last[key]
