"""spec.gateway.fallbacks: rendered inline into the gateway's arguments, in the form the gateway
reads, with each key mounted from its Secret."""

from __future__ import annotations

import json
from typing import Any

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.gateway import build_gateway
from inference_operator.builders.names import Owner
from inference_operator.gateway.run import inline_fallbacks

OWNER = Owner(name="chat", namespace="team-a", uid="u1")


def gateway_pod(gateway: dict[str, Any]) -> dict[str, Any]:
    spec = InferenceDeploymentSpec.model_validate(
        {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "servedName": "llama"},
            "accelerator": {"kind": "nvidia"},
            "gateway": gateway,
        }
    )
    (deployment,) = [o for o in build_gateway(OWNER, spec, "img") if o["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_fallbacks_render_to_what_the_gateway_reads() -> None:
    pod = gateway_pod(
        {
            "fallbacks": [
                {
                    "name": "us-west-2",
                    "url": "https://llm.west.example.com",
                    "spillAfter": "5s",
                    "timeout": "1m",
                    "keySecretRef": {"name": "west", "key": "api-key"},
                },
                {"name": "eu", "url": "http://eu-gw", "priority": 1, "remoteModel": "llama-eu"},
            ]
        }
    )
    args = pod["containers"][0]["args"]
    text = args[args.index("--fallbacks-json") + 1]
    fallbacks = inline_fallbacks(text)
    assert fallbacks is not None
    west, eu = (r.config for r in fallbacks.remotes)
    assert (west.model, west.spill_after_seconds, west.timeout_seconds) == ("llama", 5, 60)
    assert west.key_file == "/etc/infop/fallbacks/us-west-2/api-key"
    assert (eu.priority, eu.remote_model, eu.key_file) == (1, "llama-eu", None)
    assert pod["volumes"] == [
        {
            "name": "fallback-us-west-2",
            "secret": {"secretName": "west", "items": [{"key": "api-key", "path": "api-key"}]},
        }
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {
            "name": "fallback-us-west-2",
            "mountPath": "/etc/infop/fallbacks/us-west-2",
            "readOnly": True,
        }
    ]
    assert json.loads(text)["fallbacks"][0]["name"] == "us-west-2"


def test_no_fallbacks_no_flag_and_no_volumes() -> None:
    pod = gateway_pod({})
    assert "--fallbacks-json" not in pod["containers"][0]["args"]
    assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]
