"""The duration strings the API accepts ("90s", "5m", "1h30m", "100ms")."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration: {text!r} is not like 100ms, 90s, 5m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in parts)
