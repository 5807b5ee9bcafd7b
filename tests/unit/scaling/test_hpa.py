"""The HPA's arithmetic for an AverageValue external metric, and the value our scaler reports
so that the HPA lands on the recommendation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_operator.scaling.hpa import hpa_replicas, metric_value, milli


@pytest.mark.parametrize(
    ("value", "status_replicas", "expected"),
    [
        (12.0, 10, 12),  # ratio 1.2: outside the band -> ceil(12 / 1)
        (11.0, 10, 10),  # ratio 11/10 == 1.1 exactly: inside [0.9, 1.1] -> hold
        (9.0, 10, 10),  # ratio 0.9: inside -> hold
        (8.9, 10, 9),  # ratio 0.89 -> ceil(8.9)
        (3.0, 0, 3),  # from zero pods (KEDA activated the target): any value moves it
        (0.0, 3, 0),  # nothing asked: 0 (the HPA then clamps to its minReplicas)
        (1.0009, 1, 1),  # KEDA truncates to milli-units: 1000m, ratio 1
        (2.0, 1, 2),
        (100.0, 4, 100),  # the HPA proposes; behavior policies limit the step afterwards
    ],
)
def test_hpa_replicas_matches_the_replica_calculator(
    value: float, status_replicas: int, expected: int
) -> None:
    assert hpa_replicas(value, status_replicas) == expected


def test_milli_truncates_like_keda() -> None:
    assert milli(1.2345) == 1234
    assert milli(0.0004) == 0


@pytest.mark.parametrize(
    ("recommended", "status_replicas", "reported", "lands_on"),
    [
        (5, 2, 5.0, 5),
        (1, 4, 1.0, 1),
        (0, 3, 0.0, 0),
        (3, 0, 3.0, 3),
        (10, 9, 10.0, 10),  # 11% up: outside the band, exact
        (11, 10, 12.0, 12),  # 10% up is inside: the least the HPA will move to
        (21, 20, 23.0, 23),
        (9, 10, 9.0, 10),  # 10% down is inside: the HPA holds (the safe side)
        (8, 10, 8.0, 8),
    ],
)
def test_metric_value_lands_the_hpa_on_the_recommendation(
    recommended: int, status_replicas: int, reported: float, lands_on: int
) -> None:
    value = metric_value(recommended, status_replicas)
    assert value == reported
    assert hpa_replicas(value, status_replicas) == lands_on


@given(st.integers(0, 1000), st.integers(0, 1000))
def test_the_hpa_never_lands_below_a_scale_up_nor_moves_the_wrong_way(
    recommended: int, status_replicas: int
) -> None:
    lands = hpa_replicas(metric_value(recommended, status_replicas), status_replicas)
    if recommended > status_replicas:
        assert lands >= recommended
        # Over-asking only inside the tolerance band, and by no more than it.
        assert lands == recommended or lands <= status_replicas * 1.1 + 2
    elif recommended < status_replicas:
        assert lands in (recommended, status_replicas)
    else:
        assert lands == recommended
    # Whenever the step leaves the band, the landing is exact.
    if hpa_replicas(float(recommended), status_replicas) != status_replicas:
        assert lands == recommended
