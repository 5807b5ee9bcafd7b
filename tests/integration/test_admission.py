"""The API server itself refuses bad InferenceDeployments, naming the field and what is allowed;
and every spec it accepts round-trips through the pydantic models."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bad_manifests import BAD, BAD_NAMES, GOOD, with_
from inference_operator.api.models import InferenceDeploymentSpec
from kubeharness import Cluster

pytestmark = pytest.mark.integration


def body(namespace: str, spec: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> Any:
    cluster.create_namespace("admission")
    yield "admission"
    cluster.delete_namespace("admission")


@pytest.mark.parametrize(("spec", "field", "detail"), BAD, ids=[f"{b[1][:60]}" for b in BAD])
def test_bad_manifest_is_rejected_naming_the_field(
    cluster: Cluster, ns: str, spec: dict[str, Any], field: str, detail: str
) -> None:
    res = cluster.apply(body(ns, spec), check=False)
    assert not res.ok, "accepted"
    assert field in res.message
    assert detail in res.message


def test_the_corpus_is_large() -> None:
    assert len(BAD) + len(BAD_NAMES) >= 50


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_cannot_name_a_service_are_rejected(
    cluster: Cluster, ns: str, name: str
) -> None:
    res = cluster.apply(body(ns, GOOD, name), check=False)
    assert not res.ok, "accepted"
    assert "metadata.name must be a DNS-1035 label" in res.message or (
        "metadata.name" in res.message  # the API server's own name rule, for "Llama" and dots
    ), res.message


def test_accelerator_kind_is_immutable(cluster: Cluster, ns: str) -> None:
    cluster.apply(body(ns, GOOD, "immutable"))
    res = cluster.apply(body(ns, with_("accelerator.kind", "neuron"), "immutable"), check=False)
    assert not res.ok
    assert "spec.accelerator.kind: Invalid value" in res.message
    assert "kind is immutable" in res.message
    cluster.kubectl("delete", "infd", "immutable", "-n", ns)


names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
durations = st.sampled_from(["30s", "5m", "1h", "1h30m", "90s"])
valid_specs = st.fixed_dictionaries(
    {
        "model": st.fixed_dictionaries(
            {
                "uri": st.sampled_from(
                    [
                        "hf://meta-llama/Llama-3.1-70B",
                        "s3://bucket/llama/8b",
                        "pvc://weights/llama",
                        "hf://mistralai/Mistral-7B-v0.3",
                    ]
                )
            },
            optional={
                "dtype": st.sampled_from(["auto", "bfloat16", "fp8", "int4"]),
                "maxModelLen": st.integers(128, 131072),
                "servedName": names,
                "parameters": st.sampled_from(["8B", "70B", "500M", "1.5B"]),
            },
        ),
        "accelerator": st.one_of(
            st.fixed_dictionaries(
                {"kind": st.just("nvidia"), "perReplica": st.sampled_from([1, 2, 4, 8])},
                optional={
                    "types": st.lists(
                        st.sampled_from(["H100", "L40S", "g6e", "p5.48xlarge"]), max_size=3
                    )
                },
            ),
            st.fixed_dictionaries(
                {"kind": st.just("neuron"), "perReplica": st.sampled_from([1, 2, 8, 24])}
            ),
        ),
    },
    optional={
        "replicas": st.integers(0, 1000),
        "engine": st.fixed_dictionaries(
            {},
            optional={
                "args": st.lists(
                    st.sampled_from(
                        [
                            "--max-num-seqs=64",
                            "--enable-prefix-caching",
                            "--gpu-memory-utilization=0.85",
                        ]
                    ),
                    max_size=3,
                ),
                # Valid: names unique (a list-map key) and not the operator's own.
                "env": st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True).filter(
                                lambda n: n not in ("HF_TOKEN",)
                            ),
                            "value": st.text(max_size=20),
                        }
                    ),
                    max_size=2,
                    unique_by=lambda e: e["name"],
                ),
            },
        ),
        "autoscaling": st.integers(0, 50).flatmap(
            lambda lo: st.fixed_dictionaries(
                {"minReplicas": st.just(lo), "maxReplicas": st.integers(max(1, lo), 1000)},
                optional={
                    "targets": st.fixed_dictionaries(
                        {},
                        optional={
                            "queuePerReplica": st.floats(0.5, 100),
                            "kvCacheUtilization": st.floats(0.05, 1.0),
                            "requestsPerSecondPerReplica": st.floats(0.1, 500),
                        },
                    ),
                    "startupTime": durations,
                    "behavior": st.fixed_dictionaries(
                        {},
                        optional={
                            "scaleDown": st.fixed_dictionaries(
                                {},
                                optional={
                                    "stabilizationWindow": durations,
                                    "maxPercent": st.floats(0, 100),
                                },
                            )
                        },
                    ),
                },
            )
        ),
        "nodePool": st.fixed_dictionaries(
            {"create": st.just(True)},
            optional={
                "capacityTypes": st.lists(
                    st.sampled_from(["spot", "on-demand"]), min_size=1, max_size=2, unique=True
                ),
                "zones": st.lists(
                    st.sampled_from(["us-east-1a", "us-east-1b"]), max_size=2, unique=True
                ),
            },
        ),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=valid_specs)
def test_valid_specs_pass_the_api_server_and_round_trip(
    cluster: Cluster, ns: str, spec: dict[str, Any]
) -> None:
    stored = cluster.dry_run(body(ns, spec, "roundtrip"))["spec"]
    ours = InferenceDeploymentSpec.model_validate(spec)
    theirs = InferenceDeploymentSpec.model_validate(stored)
    assert theirs == ours
    # What the models would write back is what the API server keeps.
    again = ours.model_dump(by_alias=True, exclude_none=True)
    assert InferenceDeploymentSpec.model_validate(again) == theirs
