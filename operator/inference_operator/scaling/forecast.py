"""Short-term forecast of the arrival rate: a damped linear trend over a look-back window."""

from __future__ import annotations

import math
from collections.abc import Sequence

# A trend is followed only when its slope is this many standard errors above zero: the rates
# are noisy, and following every positive slope (falling ones are ignored) buys replicas for
# noise alone.
SIGNIFICANCE = 2.0


def trend_slope(points: Sequence[tuple[float, float]], significance: float = 0.0) -> float:
    """Least-squares slope (units per second) of (time, value) points; 0 with too little data,
    or when the slope is within `significance` standard errors of zero."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t < 1e-9:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var_t
    if significance > 0:
        residual = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in points)
        error = math.sqrt(residual / max(1, n - 2) / var_t)
        if abs(slope) < significance * error:
            return 0.0
    return slope


def forecast_rate(
    points: Sequence[tuple[float, float]], lookahead: float, max_growth: float
) -> float:
    """The rate expected `lookahead` seconds after the last point.

    Only rising trends are followed (a falling one is left to the stabilized scale-down, so noise
    never removes capacity early), and never beyond `max_growth` times the last value: a trend
    fitted to a few minutes of noisy rates must not buy many replicas on its own.
    """
    if not points:
        return 0.0
    last = points[-1][1]
    rise = max(0.0, trend_slope(points, SIGNIFICANCE)) * lookahead
    return min(last + rise, last * max_growth)
