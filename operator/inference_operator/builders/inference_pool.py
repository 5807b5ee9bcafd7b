"""The Gateway API Inference Extension's InferencePool for one model (pure).

Where the cluster serves `inference.networking.k8s.io/v1` InferencePool, each model gets one,
selecting its vLLM pods on their serving port, so that a Gateway implementation that supports
the extension (Envoy Gateway, Istio, kgateway, GKE's Gateway) can route to it through an
HTTPRoute whose backendRef is the pool. The endpoint picker (EPP) that such a Gateway consults
is deployed with the Gateway, not by us: `spec.endpointPickerRef` is left out and can be added
by the user's own field manager (server-side apply keeps fields we do not own).
"""

from __future__ import annotations

from typing import Any

from inference_operator.builders.names import PORT, Owner

API_VERSION = "inference.networking.k8s.io/v1"
KIND = "InferencePool"


def build_inference_pool(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": owner.metadata(),
        "spec": {
            # The same pods as the model's Service: Ready or not, the picker reads their metrics.
            "selector": {"matchLabels": owner.selector},
            "targetPorts": [{"number": PORT}],
        },
    }
