"""Conditions from what the workload shows; apply's containment check."""

from __future__ import annotations

from typing import Any

import pytest

from inference_operator.api.conditions import (
    Cond,
    WorkloadView,
    set_conditions,
    workload_conditions,
)
from inference_operator.kube.apply import contains


@pytest.mark.parametrize(
    ("view", "want"),
    [
        (
            WorkloadView(2, 2, 2, 2),
            {
                "Ready": ("True", "AllReplicasReady"),
                "Progressing": ("False", "Stable"),
                "Degraded": ("False", "AsExpected"),
            },
        ),
        (
            WorkloadView(3, 3, 1, 3),
            {"Ready": ("False", "ReplicasNotReady"), "Progressing": ("True", "RollingOut")},
        ),
        (WorkloadView(2, 3, 2, 1), {"Ready": ("False", "ReplicasNotReady")}),
        (WorkloadView(0, 0, 0, 0), {"Ready": ("True", "ScaledToZero")}),
        (
            WorkloadView(1, 1, 0, 1, unschedulable="0/3 nodes are available"),
            {"Degraded": ("True", "InsufficientCapacity")},
        ),
        (
            WorkloadView(0, 0, 0, 0, invalid="spec.x: bad"),
            {"Ready": ("False", "InvalidSpec"), "Degraded": ("True", "InvalidSpec")},
        ),
    ],
)
def test_workload_conditions(view: WorkloadView, want: dict[str, tuple[str, str]]) -> None:
    got = {c.type: (c.status, c.reason) for c in workload_conditions(view)}
    for k, v in want.items():
        assert got[k] == v


def test_transition_time_moves_only_on_status_change() -> None:
    first = set_conditions([], [Cond("Ready", "False", "A", "")], "t1", 1)
    same = set_conditions(first, [Cond("Ready", "False", "B", "x")], "t2", 2)
    flipped = set_conditions(same, [Cond("Ready", "True", "C", "")], "t3", 3)
    assert [c["lastTransitionTime"] for c in (first[0], same[0], flipped[0])] == ["t1", "t1", "t3"]


@pytest.mark.parametrize(
    ("desired", "live", "want"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2], "c": 0}}, True),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
        ({"cpu": "2"}, {"cpu": "2"}, True),
        ({"n": 1}, {"n": 1.0}, True),
        ({"f": True}, {"f": 1}, False),
        ({"a": 1}, {}, False),
    ],
)
def test_contains(desired: Any, live: Any, want: bool) -> None:
    assert contains(desired, live) is want


def test_without_nulls_is_what_a_merge_patch_leaves() -> None:
    from inference_operator.api.conditions import without_nulls

    written = {"fits": None, "instanceTypes": ["g6e.xlarge"], "plan": {"tp": 1, "note": None}}
    assert without_nulls(written) == {"instanceTypes": ["g6e.xlarge"], "plan": {"tp": 1}}
    # Written once in this form, it compares equal to itself read back: no write next pass.
    assert without_nulls(without_nulls(written)) == without_nulls(written)


def test_replacing_nulls_the_keys_that_went_away() -> None:
    from inference_operator.api.conditions import replacing

    stored = {"queue": 3.0, "gatewayQueue": 1.0, "observedAt": "t0"}
    assert replacing(stored, {"observedAt": "t1"}) == {
        "queue": None,
        "gatewayQueue": None,
        "observedAt": "t1",
    }
    assert replacing(None, {"a": 1}) == {"a": 1}
