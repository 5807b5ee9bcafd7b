"""`render`: the operator's objects without a cluster, and the same refusals as admission."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bad_manifests import BAD
from inference_operator.__main__ import main

ROOT = Path(__file__).resolve().parents[3]


def test_examples_render(capsys: pytest.CaptureFixture[str]) -> None:
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        assert main(["render", "-f", str(example)]) == 0
        kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
        assert kinds[:3] == ["Deployment", "Service", "PodDisruptionBudget"]
        assert "ScaledObject" in kinds


@pytest.mark.parametrize(("spec", "field", "detail"), BAD, ids=[b[1][:60] for b in BAD])
def test_render_refuses_what_admission_refuses(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spec: dict[str, Any],
    field: str,
    detail: str,
) -> None:
    doc = {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["render", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    # The top-level part of the field the API server names appears in ours too.
    top = (
        field.replace("unknown field ", "").replace('"', "").lstrip(".").split(":")[0].split("[")[0]
    )
    assert top.split(".")[1] in err, err


def test_render_without_input_or_with_broken_yaml(tmp_path: Path) -> None:
    empty = tmp_path / "e.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\n")
    assert main(["render", "-f", str(empty)]) == 1
    broken = tmp_path / "b.yaml"
    broken.write_text("a: [")
    assert main(["render", "-f", str(broken)]) == 2


def test_render_with_the_inference_extension_adds_one_pool_per_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = ROOT / "examples" / "llama-3-8b.yaml"
    assert main(["render", "-f", str(example)]) == 0
    assert "InferencePool" not in capsys.readouterr().out
    assert main(["render", "-f", str(example), "--inference-pool"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    pools = [d for d in docs if d["kind"] == "InferencePool"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert len(pools) == 1
    pool = pools[0]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == service["metadata"]["name"]
    assert pool["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert pool["spec"]["targetPorts"] == [{"number": service["spec"]["ports"][0]["port"]}]
