"""Replaying through every policy: the report's shape, and the sanity of its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference_operator.__main__ import main
from inference_operator.bench.replay import POLICY_NAMES, BenchConfig, Slo, flaps, replay
from inference_operator.bench.simulator.engine import Request
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, SCENARIOS
from inference_operator.bench.traces import synthetic


def test_every_policy_serves_every_request_and_the_references_bound_them() -> None:
    trace = synthetic("step", seconds=1200)
    run = replay(trace, BenchConfig(LLAMA3_8B_L40S, SCENARIOS["warm-node"], calibration_seeds=1))
    reports = run.policies
    assert set(reports) == set(POLICY_NAMES)
    for name, r in reports.items():
        assert r.unfinished == 0, name
        assert r.gpu_hours > 0
        assert (
            abs(r.gpu_hours - (r.gpu_hours_serving + r.gpu_hours_idle + r.gpu_hours_starting))
            < 1e-6
        )
        missed = sum(1 for q in r.result.requests if not run_slo_met(q)) if r.result else 0
        assert r.misses_in_startup + r.misses_outside_startup == missed, name
    # The oracle's margin is tuned to the goal, from above where its steps allow.
    assert reports["oracle"].slo_attainment >= 0.989
    # Nothing that pays for start-ups and carries backlogs beats the fluid bound.
    assert run.fluid.gpu_hours <= reports["oracle"].gpu_hours
    _, static = run.cheapest
    assert static.slo_attainment >= 0.99
    assert static.gpu_hours >= run.fluid.gpu_hours
    # Ours ran the product's path with no capacity hint, and learned one.
    assert reports["ours"].learned_rps is not None and reports["ours"].learned_rps > 0
    assert reports["ours-hinted"].learned_rps is not None


def run_slo_met(q: Request) -> bool:
    return Slo().met(q)


def test_flaps_count_reversals_within_the_window() -> None:
    assert flaps([(0, 1, 3), (100, 3, 2), (200, 2, 4), (1000, 4, 1)]) == 2


def test_cli_writes_the_documented_json(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(
        "timestamp,prompt_tokens,output_tokens\n"
        + "".join(f"{i * 0.5},{500},{50}\n" for i in range(600))
    )
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "bench",
                "--trace",
                str(csv),
                "--policy",
                "ours",
                "--policy",
                "oracle",
                "--scenario",
                "new-node",
                "--json",
                str(out),
                "--quiet",
                "--curves",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["trace"] == "t" and doc["scenario"] == "new-node"
    for policy in ("ours", "oracle"):
        keys = set(doc["policies"][policy])
        assert {
            "gpu_hours",
            "slo_attainment",
            "ttft_p95_s",
            "tpot_p95_s",
            "scaling_events",
            "flaps",
            "reaction_time_p95_s",
            "misses_in_startup",
        } <= keys
    refs = doc["references"]
    assert set(refs["fluid_bound"]) >= {"gpu_hours"}
    assert set(refs["oracle"]) >= {"gpu_hours", "slo_attainment"}
    assert set(refs["cheapest_static"]) >= {"replicas", "gpu_hours", "slo_attainment"}
    assert set(doc["curves"]) == {"keda-default", "keda-tuned", "knative-kpa", "aibrix-apa", "wva"}
    for points in doc["curves"].values():
        assert len(points) >= 4
        for point in points:
            assert set(point) == {"knob", "value", "gpu_hours", "slo_attainment"}
    assert main(["bench", "--trace", str(tmp_path / "missing.csv"), "--quiet"]) == 2


def test_cli_rejects_gateway_slots_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--trace", "synthetic:spike", "--gateway-slots", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--gateway-slots is 0" in err and "at least 1" in err
