"""Record and plot the live loop: load, queues, desired and ready replicas, decisions."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    t: float
    offered_rps: float
    gateway_waiting: float
    vllm_waiting: float
    replicas: int
    desired: int | None
    ready: int


@dataclass
class Timeline:
    sample: Callable[[], Row]
    period: float = 1.0
    rows: list[Row] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    # What the run measured, saved beside the rows (the test's numbers for the docs).
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="timeline")

    def start(self) -> Timeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _main(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.rows.append(self.sample())
            except Exception as e:  # a missed sample is a gap in the plot, not a failure
                print(f"timeline: sample failed: {e!r}")

    def save(self, json_path: Path, png_path: Path | None = None, title: str = "") -> None:
        t0 = self.rows[0].t if self.rows else 0.0
        data = {
            "rows": [{**asdict(r), "t": round(r.t - t0, 2)} for r in self.rows],
            "decisions": [{**d, "t": round(d["t"] - t0, 2)} for d in self.decisions],
            "notes": self.notes,
        }
        json_path.write_text(json.dumps(data, indent=1))
        if png_path is not None:
            plot(data, png_path, title)


def plot(data: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    t = [r["t"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    top.plot(t, [r["offered_rps"] for r in rows], label="offered load (req/s)", color="black")
    top.plot(
        t, [r["gateway_waiting"] for r in rows], label="waiting at the gateway", color="tab:red"
    )
    top.plot(
        t, [r["vllm_waiting"] for r in rows], label="waiting in vLLM (sum)", color="tab:orange"
    )
    top.set_ylabel("load / queue")
    top.legend(loc="upper right")
    top.set_title(title)
    bottom.step(t, [r["replicas"] for r in rows], where="post", label="spec.replicas (HPA/KEDA)")
    bottom.step(
        t,
        [r["desired"] if r["desired"] is not None else float("nan") for r in rows],
        where="post",
        label="recommended (status.desiredReplicas)",
        linestyle="--",
    )
    bottom.step(t, [r["ready"] for r in rows], where="post", label="Ready replicas")
    for d in data["decisions"]:
        bottom.axvline(d["t"], color="grey", alpha=0.3, linewidth=0.8)
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
