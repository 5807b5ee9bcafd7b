"""examples/argocd/health.lua, run by a real Lua interpreter against sample statuses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEALTH = ROOT / "examples" / "argocd" / "health.lua"
LUA = shutil.which("lua5.4") or shutil.which("lua")
pytestmark = pytest.mark.skipif(LUA is None, reason="lua5.4 is installed by .ci/run")


def lua(value: Any) -> str:
    """A Python value as a Lua literal (what Argo CD hands the script as `obj`)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in value.items()) + "}"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    script = (
        f"obj = {lua(obj)}\n"
        f"local hs = dofile({lua(str(HEALTH))})\n"
        'io.write(hs.status, "\\t", hs.message)\n'
    )
    assert LUA is not None
    out = subprocess.run([LUA, "-"], input=script, capture_output=True, text=True, check=True)
    status, message = out.stdout.split("\t", 1)
    return status, message


def conds(**by_type: tuple[str, str]) -> list[dict[str, str]]:
    return [
        {"type": t, "status": s, "reason": r, "message": f"{t} says {r}"}
        for t, (s, r) in by_type.items()
    ]


def obj(generation: int = 2, observed: int | None = 2, **by_type: tuple[str, str]) -> Any:
    status: dict[str, Any] = {"conditions": conds(**by_type)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"name": "m", "generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("o", "status", "in_message"),
    [
        ({"metadata": {"generation": 1}}, "Progressing", "Waiting for the operator"),
        (obj(generation=3, Ready=("True", "AllReplicasReady")), "Progressing", "generation 3"),
        (obj(observed=None), "Progressing", "generation 2"),
        (
            obj(Ready=("True", "AllReplicasReady"), Degraded=("False", "AsExpected")),
            "Healthy",
            "Ready says",
        ),
        (
            obj(Ready=("False", "Unavailable"), Degraded=("True", "InsufficientCapacity")),
            "Degraded",
            "InsufficientCapacity",
        ),
        (obj(Ready=("False", "InvalidSpec"), Degraded=("True", "InvalidSpec")), "Degraded", ""),
        (obj(Ready=("True", "ScaledToZero")), "Suspended", "Scaled to zero"),
        (
            obj(Ready=("False", "Unavailable"), Progressing=("True", "RollingOut")),
            "Progressing",
            "RollingOut",
        ),
        (obj(Ready=("False", "Unavailable")), "Progressing", "Unavailable"),
    ],
)
def test_health(o: dict[str, Any], status: str, in_message: str) -> None:
    got_status, message = health(o)
    assert got_status == status
    assert in_message in message
