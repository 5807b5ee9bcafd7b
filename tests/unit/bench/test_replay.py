"""Replaying through every policy: the report's shape, and the sanity of its numbers."""

from __future__ import annotations

import json
from pathlib import Path

from inference_operator.__main__ import main
from inference_operator.bench.replay import POLICY_NAMES, BenchConfig, flaps, replay
from inference_operator.bench.simulator.profiles import LLAMA3_8B_L40S, SCENARIOS
from inference_operator.bench.traces import synthetic


def test_every_policy_serves_every_request_and_the_oracle_is_cheapest_at_the_slo() -> None:
    trace = synthetic("step", seconds=1200)
    reports = replay(trace, BenchConfig(LLAMA3_8B_L40S, SCENARIOS["warm-node"]))
    assert set(reports) == set(POLICY_NAMES)
    for name, r in reports.items():
        assert r.unfinished == 0, name
        assert r.gpu_hours > 0
        assert (
            abs(r.gpu_hours - (r.gpu_hours_serving + r.gpu_hours_idle + r.gpu_hours_starting))
            < 1e-6
        )
    assert reports["oracle"].slo_attainment >= 0.99
    assert reports["oracle"].gpu_hours < reports["static-peak"].gpu_hours


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
        } <= keys
    assert main(["bench", "--trace", str(tmp_path / "missing.csv"), "--quiet"]) == 2
