"""Condition bookkeeping; apply's containment check and when apply may skip a write."""

from __future__ import annotations

from typing import Any

import pytest

from inference_operator.api.conditions import Cond, set_conditions
from inference_operator.kube.apply import contains, stamped, up_to_date


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


DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "llama", "namespace": "serving"},
    "spec": {"replicas": 2, "template": {"spec": {"affinity": {"nodeAffinity": {"x": 1}}}}},
}


def _live(desired: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`desired` as the API server returns it after our apply: stamped, with defaults."""
    out = stamped(desired)
    out["metadata"] = {**out["metadata"], "uid": "u", "resourceVersion": "7", **extra}
    out["spec"] = {**out["spec"], "revisionHistoryLimit": 10}
    return out


def test_unchanged_desired_needs_no_write() -> None:
    assert up_to_date(stamped(DEPLOY), _live(DEPLOY))


def test_a_dropped_field_needs_a_write_although_live_holds_all_we_want() -> None:
    # Live contains every field of the new desired object (the old affinity is extra): only
    # a new apply removes it, so containment alone must not skip the write.
    dropped = {**DEPLOY, "spec": {"replicas": 2, "template": {"spec": {}}}}
    live = _live(DEPLOY)
    assert contains(dropped, live)  # what the old check looked at
    assert not up_to_date(stamped(dropped), live)


def test_an_edit_by_someone_else_needs_a_write() -> None:
    live = _live(DEPLOY)
    live["spec"]["replicas"] = 5
    assert not up_to_date(stamped(DEPLOY), live)


def test_an_object_applied_before_digests_existed_is_applied_once() -> None:
    live = {**DEPLOY, "metadata": {**DEPLOY["metadata"], "annotations": {}}}
    assert not up_to_date(stamped(DEPLOY), live)
    assert not up_to_date(stamped(DEPLOY), None)


def test_the_digest_is_stable_and_ignores_key_order() -> None:
    reordered = {k: DEPLOY[k] for k in reversed(list(DEPLOY))}
    assert stamped(DEPLOY) == stamped(reordered)
    assert "annotations" not in DEPLOY["metadata"]  # the input is not changed
