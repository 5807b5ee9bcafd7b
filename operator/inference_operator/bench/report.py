"""Reports: a text table with ratios to the references, JSON, and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference_operator.bench.replay import KNOBS, PolicyReport, Run


def _point(r: PolicyReport) -> dict[str, float]:
    return {"gpu_hours": round(r.gpu_hours, 4), "slo_attainment": round(r.slo_attainment, 6)}


def as_json(run: Run) -> dict[str, Any]:
    static_n, static = run.cheapest
    oracle = run.policies.get("oracle")
    doc: dict[str, Any] = {
        "trace": run.trace,
        "scenario": run.scenario,
        "capacity": {
            "rps": round(run.capacity.rps, 4),
            "concurrency": round(run.capacity.concurrency, 2),
        },
        "policies": {name: r.as_json() for name, r in run.policies.items()},
        "references": {
            "fluid_bound": {"gpu_hours": round(run.fluid.gpu_hours, 4)},
            "cheapest_static": {"replicas": static_n, **_point(static)},
        },
        "curves": {
            name: [{"knob": KNOBS[name][0], "value": v, **_point(r)} for v, r in points]
            for name, points in run.curves.items()
        },
    }
    if oracle is not None:
        doc["references"]["oracle"] = {**_point(oracle), "margin": round(run.oracle_margin, 4)}
    if run.errors:
        doc["capacity_error"] = {
            name: {f"x{e:g}": _point(r) for e, r in by.items()} for name, by in run.errors.items()
        }
    return doc


def write_json(path: Path, documents: list[dict[str, Any]]) -> None:
    body: Any = documents[0] if len(documents) == 1 else documents
    path.write_text(json.dumps(body, indent=2) + "\n")


def _ratio(a: float, b: float | None) -> str:
    return "-" if b is None or b == 0 else f"{a / b:.2f}"


def table(run: Run, label: str | None = None) -> str:
    oracle = run.policies.get("oracle")
    head = (
        f"{'policy':<14} {'GPU-h':>7} {'serve/idle/start':>17} {'SLO%':>6} {'TTFTp50':>8} "
        f"{'p95':>7} {'p99':>7} {'TPOTp95':>8} {'events':>6} {'flaps':>5} {'react95':>7} "
        f"{'miss@start':>10} {'xOracle':>7} {'xFluid':>6}"
    )
    lines = [f"== {run.trace} / {label or run.scenario}", head]
    for name, r in run.policies.items():
        split = f"{r.gpu_hours_serving:.1f}/{r.gpu_hours_idle:.1f}/{r.gpu_hours_starting:.1f}"
        missed = r.misses_in_startup + r.misses_outside_startup
        lines.append(
            f"{name:<14} {r.gpu_hours:>7.2f} {split:>17} {100 * r.slo_attainment:>6.2f} "
            f"{r.ttft_p50_s:>8.2f} {r.ttft_p95_s:>7.2f} {r.ttft_p99_s:>7.2f} {r.tpot_p95_s:>8.3f} "
            f"{r.scaling_events:>6} {r.flaps:>5} {r.reaction_time_p95_s:>7.0f} "
            f"{r.misses_in_startup:>5}/{missed:<4} "
            f"{_ratio(r.gpu_hours, oracle.gpu_hours if oracle else None):>7} "
            f"{_ratio(r.gpu_hours, run.fluid.gpu_hours):>6}"
        )
    static_n, static = run.cheapest
    lines.append(
        f"   references: fluid bound {run.fluid.gpu_hours:.2f} GPU-h; oracle margin "
        f"{run.oracle_margin:.3f}; cheapest static {static_n} replicas = {static.gpu_hours:.2f} "
        f"GPU-h at {100 * static.slo_attainment:.2f}%"
    )
    for name, by in run.errors.items():
        parts = [
            f"x{e:g}: {r.gpu_hours:.2f} GPU-h {100 * r.slo_attainment:.2f}%"
            for e, r in sorted(by.items())
        ]
        lines.append(f"   capacity error, {name}: " + "; ".join(parts))
    return "\n".join(lines)


def frontier_misses(run: Run, name: str = "ours") -> list[str]:
    """Baseline curve points with >= ours' attainment at <= 0.95x ours' GPU-hours."""
    ours = run.policies[name]
    out = []
    for baseline, points in run.curves.items():
        for v, r in points:
            if r.slo_attainment >= ours.slo_attainment and r.gpu_hours <= 0.95 * ours.gpu_hours:
                out.append(
                    f"{baseline} {KNOBS[baseline][0]}={v:g}: {r.gpu_hours:.2f} GPU-h at "
                    f"{100 * r.slo_attainment:.2f}%"
                )
    return out


def plot(path: Path, title: str, run: Run) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = run.policies
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
    axes[1].legend(loc="upper right", fontsize=7, ncol=2)
    axes[2].set_ylabel("TTFT p95 per minute (s)")
    axes[2].set_yscale("log")
    axes[2].axhline(2.0, color="grey", ls="--", lw=0.8)
    axes[2].set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_curves(path: Path, title: str, run: Run) -> None:
    """Cost against attainment: each baseline's knob swept into a curve, ours and the
    references as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, points in run.curves.items():
        pts = sorted(points, key=lambda p: p[1].gpu_hours)
        ax.plot(
            [r.gpu_hours for _, r in pts],
            [100 * r.slo_attainment for _, r in pts],
            marker="o",
            ms=4,
            lw=1,
            label=f"{name} ({KNOBS[name][0]})",
        )
    marks = {"ours": ("*", 14), "ours-hinted": ("P", 9), "ours-buffered": ("X", 8)}
    for name, (marker, size) in marks.items():
        if name in run.policies:
            r = run.policies[name]
            ax.plot(r.gpu_hours, 100 * r.slo_attainment, marker, ms=size, color="black", label=name)
    if "oracle" in run.policies:
        o = run.policies["oracle"]
        ax.plot(o.gpu_hours, 100 * o.slo_attainment, "D", ms=7, color="green", label="oracle")
    static_n, static = run.cheapest
    ax.plot(
        static.gpu_hours,
        100 * static.slo_attainment,
        "s",
        ms=7,
        color="grey",
        label=f"cheapest static ({static_n})",
    )
    ax.axvline(run.fluid.gpu_hours, color="green", ls=":", lw=1, label="fluid bound")
    ax.axhline(99.0, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("GPU-hours (log)")
    ax.set_ylabel("SLO attainment (%)")
    lo = min(
        [100 * r.slo_attainment for points in run.curves.values() for _, r in points]
        + [100 * r.slo_attainment for r in run.policies.values()]
    )
    ax.set_ylim(max(0.0, lo - 2), 100.5)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
