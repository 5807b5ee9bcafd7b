"""Defaults shared by the API's builders and the operator's settings (pure constants)."""

from __future__ import annotations

DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
DEFAULT_IMAGE = "ghcr.io/inference-operator/inference-operator:0.1.0"
