"""The capacity planner: published anchors, rules as tables, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_operator.__main__ import main
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.capacity.assess import assess
from inference_operator.capacity.catalogue import MODELS, find_model
from inference_operator.capacity.plan import (
    Request,
    kv_bytes_per_token,
    parse_parameters,
    plan,
    weights_gb,
)


@pytest.mark.parametrize(
    ("params", "gb16", "gb8", "gb4"), [(7, 14, 7, 3.5), (13, 26, 13, 6.5), (70, 140, 70, 35)]
)
def test_aws_sizing_guidance_table(params: float, gb16: float, gb8: float, gb4: float) -> None:
    # docs.aws.amazon.com prescriptive guidance, "right-sizing and auto-scaling".
    assert (
        weights_gb(params, "bfloat16"),
        weights_gb(params, "int8"),
        weights_gb(params, "int4"),
    ) == (gb16, gb8, gb4)


def test_kv_cache_per_token_anchors() -> None:
    assert kv_bytes_per_token(MODELS["llama-3-8b"]) == 131072  # 128 KiB
    assert kv_bytes_per_token(MODELS["llama-3-70b"]) == 327680  # 320 KiB


def test_llama_8b_weights_match_vllms_own_log() -> None:
    # vLLM #12330: "Loading model weights took 14.96 GiB" for Llama-3-8B in BF16.
    assert plan(Request(8.03, "bfloat16")).weights_gib == pytest.approx(14.96, abs=0.01)


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", "llama-3-8b"),
        ("hf://meta-llama/Llama-3.3-70B-Instruct", "llama-3-70b"),
        ("s3://b/Meta-Llama-3.1-405B-Instruct-FP8", "llama-3-405b"),
        ("hf://mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
        ("hf://Qwen/Qwen2.5-32B-Instruct", "qwen2.5-32b"),
        ("pvc://weights/my-own-model", None),
    ],
)
def test_find_model(uri: str, name: str | None) -> None:
    found = find_model(uri)
    assert (found.name if found else None) == name


@pytest.mark.parametrize(
    ("model", "dtype", "types", "devices"),
    [
        ("llama-3-8b", "bfloat16", ("L40S",), 1),
        ("llama-3-8b", "bfloat16", ("a10g",), 1),
        # 131.5 GiB + one 8k sequence (2.5 GiB) in 2 x (80 x 0.9 - 2) = 140 GiB: tight, but fits.
        ("llama-3-70b", "bfloat16", ("p5",), 2),
        # 65.8 + 2.5 GiB in 70: on one H100 at 8k, as Lambda found for 70B-FP8 at short context.
        ("llama-3-70b", "fp8", ("p5",), 1),
        ("llama-3-70b", "bfloat16", ("l40s",), 4),
        ("llama-3-70b", "bfloat16", ("h200",), 2),
        ("llama-3-405b", "fp8", ("p5",), 8),
        ("llama-3-405b", "bfloat16", ("p5",), None),
    ],
)
def test_devices_per_replica(
    model: str, dtype: str, types: tuple[str, ...], devices: int | None
) -> None:
    arch = MODELS[model]
    assert (
        plan(Request(arch.params_b, dtype, 8192, 1, "nvidia", types, arch)).devices_per_replica
        == devices
    )


def test_neuron_plans_in_neuron_cores() -> None:
    arch = MODELS["llama-3-8b"]
    p = plan(Request(arch.params_b, "bfloat16", 4096, 1, "neuron", ("inf2",), arch))
    assert p.devices_per_replica == 2
    assert all(o.instance.kind == "neuron" for o in p.options)


@pytest.mark.parametrize(("text", "value"), [("8B", 8.0), ("500M", 0.5), ("1.5B", 1.5)])
def test_parse_parameters(text: str, value: float) -> None:
    assert parse_parameters(text) == value
    with pytest.raises(ValueError, match="parameters: 'eight' is not like 8B"):
        parse_parameters("eight")


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.1, 500),
    st.sampled_from(["bfloat16", "fp8", "int4"]),
    st.integers(128, 131072),
    st.integers(1, 64),
    st.integers(1, 64),
)
def test_more_demand_never_needs_fewer_devices(
    params: float, dtype: str, length: int, conc: int, extra: int
) -> None:
    small = plan(Request(params, dtype, length, conc))
    big = plan(Request(params, dtype, length, conc + extra))
    if big.fits:
        assert small.fits and small.devices_per_replica <= big.devices_per_replica  # type: ignore[operator]
    for o in small.options:
        # Every option really holds the weights and the KV cache asked for.
        usable = (o.instance.memory_gib_per_device * 0.9 - 2) * o.devices_per_replica
        assert usable - small.weights_gib >= small.kv_gib_per_replica - 1e-9
        assert o.devices_per_replica <= o.instance.devices


def spec(**over: Any) -> InferenceDeploymentSpec:
    base: dict[str, Any] = {
        "model": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"},
        "accelerator": {"kind": "nvidia", "perReplica": 4, "types": ["p5.48xlarge"]},
    }
    base.update(over)
    return InferenceDeploymentSpec.model_validate(base)


def test_assess_says_why_a_spec_does_not_fit() -> None:
    capacity, cond = assess(
        spec(accelerator={"kind": "nvidia", "perReplica": 1, "types": ["p5.48xlarge"]})
    )
    assert (cond.status, cond.reason) == ("False", "TooFewDevices")
    assert "131.5 GiB of weights" in cond.message and "need 2 GPUs" in cond.message
    assert capacity["fits"] is False and capacity["devicesPerReplica"] == 2
    capacity, cond = assess(spec())
    assert (cond.status, cond.reason) == ("True", "Fits")
    assert capacity["instanceTypes"] == ["p5.48xlarge"]
    _, cond = assess(
        spec(
            model={"uri": "hf://meta-llama/Llama-3.1-8B"},
            accelerator={"kind": "nvidia", "perReplica": 8, "types": ["g5.xlarge"]},
        )
    )
    assert (cond.status, cond.reason) == ("False", "NoInstanceLargeEnough")
    _, cond = assess(spec(model={"uri": "pvc://w/custom"}))
    assert (cond.status, cond.reason) == ("Unknown", "ModelUnknown")
    _, cond = assess(spec(model={"uri": "pvc://w/custom", "parameters": "7B"}))
    assert cond.status == "True"


def test_plan_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--model", "llama-3-70b", "--concurrency", "8"]) == 0
    out = capsys.readouterr().out
    assert "devices per replica 2" in out and "p5e.48xlarge" in out
    assert main(["plan", "--model", "llama-3-405b", "--types", "g6e"]) == 1
    assert main(["plan", "--model", "nonsense"]) == 2
