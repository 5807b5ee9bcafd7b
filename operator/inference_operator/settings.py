"""Operator settings: read from the environment once, at start-up, into a typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from inference_operator.api.defaults import DEFAULT_IMAGE, DEFAULT_PROMETHEUS_URL


class Settings(BaseModel):
    """Everything the operator process can be told from outside; env var INFOP_<FIELD>."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str | None = Field(None, description="Watch only this namespace; all when unset.")
    home_namespace: str | None = Field(
        None,
        description="The operator's own namespace: its Namespace object carries the operator's "
        "one periodic timer. Default: `namespace`, else `default`.",
    )
    standalone: bool = Field(True, description="Run without kopf peering (single replica).")
    peering_name: str = Field("inference-operator", description="kopf peering object name.")
    log_format: str = Field("console", pattern="^(console|json)$", description="Log renderer.")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    resync_seconds: float = Field(60.0, gt=0, description="Period of the drift-restoring pass.")
    pending_threshold_seconds: float = Field(
        120.0, gt=0, description="Pods unschedulable this long make Degraded=InsufficientCapacity."
    )
    autoscale_seconds: float = Field(
        15.0, gt=0, le=300, description="Period of the recommender per InferenceDeployment."
    )
    scaler_port: int = Field(
        6000, ge=0, le=65535, description="KEDA external scaler gRPC port; 0 off."
    )
    scaler_address: str | None = Field(
        None,
        description="host:port at which KEDA reaches the scaler (the operator's Service); "
        "unset: ScaledObjects use Prometheus triggers only.",
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
    )
    scaler_tls_dir: str | None = Field(
        None,
        description="Directory with tls.crt and tls.key (a mounted Secret) for the scaler's gRPC "
        "port; with a ca.crt there too, KEDA must present a client certificate it signed "
        "(mutual TLS). Unset: plaintext.",
    )
    scaler_trigger_auth: str | None = Field(
        None,
        description="The ClusterTriggerAuthentication with which KEDA reaches the scaler over "
        "TLS (caCert; tlsClientCert and tlsClientKey for mutual TLS). Needed with "
        "scaler_tls_dir.",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    prometheus_url: str = Field(
        DEFAULT_PROMETHEUS_URL,
        description="Prometheus for InferenceDeployments that do not name one.",
        pattern=r"^https?://[^\s]+$",
    )
    image: str = Field(
        DEFAULT_IMAGE, description="The operator's own image; gateways run it too.", min_length=1
    )
    prometheus_token_file: str | None = Field(
        None, description="File with a bearer token for Prometheus (re-read on every query)."
    )
    bind_host: str = Field("0.0.0.0", description="Address the metrics and health ports bind.")
    metrics_port: int = Field(8080, ge=0, le=65535, description="Operator /metrics port; 0 off.")
    health_port: int = Field(8081, ge=0, le=65535, description="kopf liveness port; 0 off.")
    heap_trim_seconds: float = Field(
        60.0, ge=0, description="Period of giving freed heap back to the OS (glibc); 0 off."
    )
    allocator: str = Field(
        "auto",
        pattern="^(auto|jemalloc|system)$",
        description="Memory allocator: jemalloc where installed (auto), always, or the system's.",
    )

    @property
    def home(self) -> str:
        return self.home_namespace or self.namespace or "default"

    @model_validator(mode="after")
    def _tls_pairs(self) -> Settings:
        if self.scaler_tls_dir and self.scaler_address and not self.scaler_trigger_auth:
            raise ValueError(
                "scaler_tls_dir needs scaler_trigger_auth: KEDA cannot verify the scaler's "
                "certificate without the CA a ClusterTriggerAuthentication gives it"
            )
        return self


class SettingsError(ValueError):
    pass


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    source = os.environ if env is None else env
    raw = {
        name: source[f"INFOP_{name.upper()}"]
        for name in Settings.model_fields
        if f"INFOP_{name.upper()}" in source
    }
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"INFOP_{str(err['loc'][0]).upper()}={raw.get(str(err['loc'][0]))!r}: {err['msg']}"
            if err["loc"]
            else str(err["msg"])  # a rule across fields
            for err in e.errors()
        )
        raise SettingsError(f"invalid operator settings: {problems}") from None
