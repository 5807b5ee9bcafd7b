"""The committed CRD is what the models generate; the schema is structural."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from inference_operator.api.crd import render_crd

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crd_matches_the_models() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "hack/gen_crds.py"), "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout


def test_committed_api_reference_matches_the_crd() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "hack/gen_api_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout


def _walk(node: Any, path: str = "") -> list[str]:
    """Paths where the schema is not structural (no type, or anyOf/$ref left over)."""
    bad: list[str] = []
    if isinstance(node, dict):
        if ("properties" in node or "items" in node) and "type" not in node:
            bad.append(path)
        for key in ("$ref", "anyOf", "allOf", "oneOf"):
            if key in node:
                bad.append(f"{path}.{key}")
        for k, v in node.get("properties", {}).items():
            if "type" not in v and "x-kubernetes-int-or-string" not in v:
                bad.append(f"{path}.{k}")
            bad += _walk(v, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            bad += _walk(node["items"], f"{path}[]")
    return bad


def test_schema_is_structural_and_every_spec_field_is_described() -> None:
    version = render_crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []

    def undocumented(node: dict[str, Any], path: str) -> list[str]:
        out = []
        for k, v in node.get("properties", {}).items():
            if not v.get("description"):
                out.append(f"{path}.{k}")
            out += undocumented(v, f"{path}.{k}")
            if isinstance(v.get("items"), dict):
                out += undocumented(v["items"], f"{path}.{k}[]")
        return out

    assert undocumented(schema["properties"]["spec"], "spec") == []
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Replicas",
        "Desired",
        "Queue",
        "KV%",
        "RPS",
        "RPS/Replica",
        "Age",
    ]
