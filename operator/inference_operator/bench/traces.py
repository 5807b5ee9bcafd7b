"""Request traces: CSV (time, prompt tokens, output tokens), the Azure files, synthetic shapes."""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class TraceRequest:
    at: float  # seconds from the start of the trace
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Trace:
    name: str
    requests: tuple[TraceRequest, ...]

    @property
    def duration(self) -> float:
        return self.requests[-1].at if self.requests else 0.0

    def scaled(self, time_scale: float) -> Trace:
        """Replay `time_scale` times slower (>1) or faster (<1): the same requests, stretched."""
        if time_scale <= 0:
            raise ValueError(f"time scale: {time_scale!r} must be > 0")
        return Trace(
            f"{self.name}@{time_scale:g}x",
            tuple(
                TraceRequest(r.at * time_scale, r.prompt_tokens, r.output_tokens)
                for r in self.requests
            ),
        )


class TraceFormatError(ValueError):
    pass


_TIME_COLUMNS = ("TIMESTAMP", "timestamp", "Timestamp", "time", "arrival")
_PROMPT_COLUMNS = ("ContextTokens", "prompt_tokens", "Request tokens", "input_tokens")
_OUTPUT_COLUMNS = ("GeneratedTokens", "output_tokens", "Response tokens", "generated_tokens")


def _pick(header: list[str], names: tuple[str, ...], what: str, path: Path) -> str:
    for name in names:
        if name in header:
            return name
    raise TraceFormatError(f"{path}: no {what} column; expected one of {', '.join(names)}")


def _parse_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    # Azure writes 7 fractional digits, one more than datetime parses.
    head, _, frac = value.partition(".")
    parsed = datetime.fromisoformat(head)
    return parsed.timestamp() + (float("0." + frac) if frac else 0.0)


def load_csv(path: Path, name: str | None = None) -> Trace:
    """A CSV with a header: a time column (seconds, or ISO date-time), prompt and output tokens."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        tcol = _pick(header, _TIME_COLUMNS, "timestamp", path)
        pcol = _pick(header, _PROMPT_COLUMNS, "prompt-token", path)
        ocol = _pick(header, _OUTPUT_COLUMNS, "output-token", path)
        rows: list[tuple[float, int, int]] = []
        for line, row in enumerate(reader, start=2):
            try:
                t = _parse_time(row[tcol])
                p, o = int(row[pcol]), int(row[ocol])
            except (TypeError, ValueError) as e:
                raise TraceFormatError(f"{path}:{line}: {e}") from None
            if p < 0 or o < 0 or not math.isfinite(t):
                raise TraceFormatError(f"{path}:{line}: negative token count or bad time")
            rows.append((t, max(1, p), max(1, o)))
    if not rows:
        raise TraceFormatError(f"{path}: no requests")
    rows.sort()
    t0 = rows[0][0]
    return Trace(name or path.stem, tuple(TraceRequest(t - t0, p, o) for t, p, o in rows))


def _token_pool(seed: int) -> list[tuple[int, int]]:
    # Chat-like lengths (log-normal, medians ~1k prompt / ~130 output, as the Azure conv trace).
    rng = random.Random(seed)
    return [
        (
            min(8000, max(16, int(rng.lognormvariate(6.9, 0.6)))),
            min(1000, max(1, int(rng.lognormvariate(4.9, 0.8)))),
        )
        for _ in range(4096)
    ]


def _from_rate(name: str, rate: list[float], seed: int) -> Trace:
    """Poisson arrivals with a piecewise-constant rate given per second."""
    rng = random.Random(seed)
    pool = _token_pool(seed)
    out: list[TraceRequest] = []
    for second, lam in enumerate(rate):
        t = float(second)
        while lam > 0:
            t += rng.expovariate(lam)
            if t >= second + 1:
                break
            p, o = pool[rng.randrange(len(pool))]
            out.append(TraceRequest(t, p, o))
    return Trace(name, tuple(out))


def synthetic(kind: str, base_rps: float = 4.0, seconds: int = 3600, seed: int = 7) -> Trace:
    """step: base, then 4x from 1/3 to 2/3; spike: 6x for 2 min twice; ramp: 0.5x to 5x and back;
    idle-gap: bursts of load separated by 20-minute silences (scale to zero and back)."""
    rate: list[float]
    if kind == "step":
        rate = [base_rps * (4 if seconds / 3 <= s < 2 * seconds / 3 else 1) for s in range(seconds)]
    elif kind == "spike":
        rate = [
            base_rps * (6 if (600 <= s < 720 or 2400 <= s < 2520) else 1) for s in range(seconds)
        ]
    elif kind == "ramp":
        half = seconds / 2
        rate = [base_rps * (0.5 + 4.5 * (1 - abs(s - half) / half)) for s in range(seconds)]
    elif kind == "idle-gap":
        rate = [base_rps * 2 if (s % 1800) < 600 else 0.0 for s in range(seconds)]
    else:
        raise ValueError(f"synthetic trace: {kind!r} is not one of step, spike, ramp, idle-gap")
    return _from_rate(f"synthetic-{kind}", rate, seed)
