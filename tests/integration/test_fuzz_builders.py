"""Fuzzing from the CRD's own schema: for every spec the API server accepts, the operator either
reports it (InvalidSpec, a check the schema cannot make) or builds objects that the API server,
with the real KEDA, Karpenter and prometheus-operator CRDs, accepts too."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from inference_operator.api.crd import render_crd
from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all
from inference_operator.capacity.assess import assess
from kubeharness import Cluster
from schema_strategy import from_schema

pytestmark = pytest.mark.integration
SPEC_SCHEMA = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
EVERYTHING = Available(
    pod_monitor=True, keda=True, karpenter=True, scaler_address="inference-operator.system.svc:6000"
)
stats = {"generated": 0, "admitted": 0, "invalid_spec": 0, "built": 0, "objects": 0}


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> Any:
    cluster.create_namespace("fuzz")
    yield "fuzz"
    cluster.delete_namespace("fuzz")
    print(f"\nfuzz: {stats}")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=from_schema(SPEC_SCHEMA))
def test_what_the_api_server_admits_the_builders_turn_into_admissible_objects(
    cluster: Cluster, ns: str, spec: dict[str, Any]
) -> None:
    stats["generated"] += 1
    infd = {
        "apiVersion": "infer.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "fuzz", "namespace": ns},
        "spec": spec,
    }
    try:
        stored = cluster.dry_run(infd)["spec"]
    except ApiException as e:  # the dynamic client's errors are ApiExceptions too
        # Refused with a reason: fine. Server-side apply answers 500 for a list-map key given
        # twice ("failed to create typed patch object"), an upstream quirk; still a refusal.
        refused = e.status in (400, 422) or (e.status == 500 and "typed patch" in str(e.body))
        assert refused, e
        assume(False)
    stats["admitted"] += 1
    try:
        model = InferenceDeploymentSpec.model_validate(stored)
    except ValidationError:
        # Admitted but not valid for the operator (a cron or time zone only Python can check):
        # the reconciler reports InvalidSpec and builds nothing.
        stats["invalid_spec"] += 1
        return
    owner = Owner("fuzz", ns, "00000000-0000-0000-0000-000000000000")
    capacity, _ = assess(model)
    desired = build_all(owner, model, EVERYTHING, capacity.get("instanceTypes") or None)
    stats["built"] += 1
    for obj in desired.apply:
        if (
            obj["kind"] == "NodePool"
            and obj["spec"]["template"]["spec"]["nodeClassRef"]["group"] != "karpenter.k8s.aws"
        ):
            continue  # the AWS variant's CEL refuses HyperPod's node class; HyperPod has its own
        note(f"{obj['kind']}: {obj}")
        cluster.dry_run(obj)
        stats["objects"] += 1


def test_fuzzing_reached_the_builders() -> None:
    """Runs after the fuzz test (file order): a fuzzer whose specs the API server refuses, or
    the operator reports, proves nothing about the builders. Floors at about half of what a run
    reaches (60 examples: ~40 admitted, ~35 built, ~200 objects dry-run)."""
    assert stats["generated"] >= 60, stats
    assert stats["admitted"] >= 20, stats
    assert stats["built"] >= 15, stats
    assert stats["objects"] >= 4 * stats["built"], stats
