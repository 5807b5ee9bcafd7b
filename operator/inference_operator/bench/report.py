"""Reports: a text table with ratios to the oracle and to KEDA defaults, JSON, and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference_operator.bench.replay import PolicyReport


def as_json(trace: str, scenario: str, reports: dict[str, PolicyReport]) -> dict[str, Any]:
    return {
        "trace": trace,
        "scenario": scenario,
        "policies": {name: r.as_json() for name, r in reports.items()},
    }


def write_json(path: Path, documents: list[dict[str, Any]]) -> None:
    body: Any = documents[0] if len(documents) == 1 else documents
    path.write_text(json.dumps(body, indent=2) + "\n")


def _ratio(a: float, b: float | None) -> str:
    return "-" if b is None or b == 0 else f"{a / b:.2f}"


def table(trace: str, scenario: str, reports: dict[str, PolicyReport]) -> str:
    oracle = reports.get("oracle")
    keda = reports.get("keda-default")
    head = (
        f"{'policy':<13} {'GPU-h':>7} {'serve/idle/start':>17} {'SLO%':>6} {'TTFTp50':>8} "
        f"{'p95':>7} {'p99':>7} {'TPOTp95':>8} {'events':>6} {'flaps':>5} {'react95':>7} "
        f"{'xOracle':>7} {'xKEDA':>6}"
    )
    lines = [f"== {trace} / {scenario}", head]
    for name, r in reports.items():
        split = f"{r.gpu_hours_serving:.1f}/{r.gpu_hours_idle:.1f}/{r.gpu_hours_starting:.1f}"
        lines.append(
            f"{name:<13} {r.gpu_hours:>7.2f} {split:>17} {100 * r.slo_attainment:>6.2f} "
            f"{r.ttft_p50_s:>8.2f} {r.ttft_p95_s:>7.2f} {r.ttft_p99_s:>7.2f} {r.tpot_p95_s:>8.3f} "
            f"{r.scaling_events:>6} {r.flaps:>5} {r.reaction_time_p95_s:>7.0f} "
            f"{_ratio(r.gpu_hours, oracle.gpu_hours if oracle else None):>7} "
            f"{_ratio(r.gpu_hours, keda.gpu_hours if keda else None):>6}"
        )
    return "\n".join(lines)


def plot(path: Path, title: str, reports: dict[str, PolicyReport]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    first = next(iter(reports.values())).result
    assert first is not None
    axes[0].plot(
        [p.at / 60 for p in first.timeline],
        [p.arrival_rps for p in first.timeline],
        color="black",
        lw=1,
    )
    axes[0].set_ylabel("arrivals (req/s, 1 min)")
    for name, r in reports.items():
        res = r.result
        assert res is not None
        axes[1].step(
            [p.at / 60 for p in res.timeline],
            [p.ready for p in res.timeline],
            where="post",
            label=name,
            lw=1.2,
        )
        # p95 TTFT per minute of arrival.
        buckets: dict[int, list[float]] = {}
        for q in res.requests:
            ttft = q.ttft if q.ttft is not None else float("inf")
            buckets.setdefault(int(q.arrival // 60), []).append(ttft)
        xs = sorted(buckets)
        ys = [sorted(buckets[x])[int(0.95 * (len(buckets[x]) - 1))] for x in xs]
        axes[2].plot(xs, [min(y, 120.0) for y in ys], label=name, lw=1)
    axes[1].set_ylabel("Ready replicas")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].set_ylabel("TTFT p95 per minute (s)")
    axes[2].set_yscale("log")
    axes[2].axhline(2.0, color="grey", ls="--", lw=0.8)
    axes[2].set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
