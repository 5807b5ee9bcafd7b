"""The `infer.dev/v1alpha1` InferenceDeployment API as pydantic models: the contract.

The CRD in crds/ is generated from these models (`hack/gen_crds.py`); every field's description
becomes `kubectl explain` text, and the rules the API server enforces (OpenAPI bounds, enums and
CEL `x-kubernetes-validations`) live here beside the fields they guard.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "infer.dev"
VERSION = "v1alpha1"
KIND = "InferenceDeployment"
PLURAL = "inferencedeployments"
SHORT_NAME = "infd"

DEFAULT_IMAGE = "vllm/vllm-openai:v0.33.0"
DEFAULT_NEURON_IMAGE = (
    "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:"
    "0.13.0-neuronx-py311-sdk2.26.1-ubuntu22.04"
)

# Flags the operator sets itself; a user's copy would silently fight it.
OWNED_FLAGS = (
    "--port",
    "--host",
    "--model",
    "--served-model-name",
    "--tensor-parallel-size",
    "--max-model-len",
    "--dtype",
    "--enable-lora",
    "--max-loras",
    "--max-lora-rank",
)

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS subdomain: the names of Secrets, PersistentVolumeClaims and most objects.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


# List items with their own limits (pydantic enforces them; the CRD gets them as `items`).
Arg = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\n\r\x00]*$")]
# Both become node-label values: they must start and end with a letter or digit.
AcceleratorType = Annotated[
    str, StringConstraints(max_length=32, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
]
Zone = Annotated[str, StringConstraints(max_length=32, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")]

MIN_LE_MAX = "minReplicas must be <= maxReplicas"
SCHEDULE_LE_MAX = "schedules[].minReplicas must be <= maxReplicas (a floor above the ceiling)"

# Accelerator vocabulary by kind, for refusing the other kind's names at admission (a test keeps
# it in step with capacity/catalogue.py). Matched lower-cased, with an optional `ml.` (HyperPod).
NVIDIA_FAMILIES = (
    "p3",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6",
    "g4dn",
    "g5",
    "g6",
    "g6e",
)
NVIDIA_GPUS = ("v100", "a100", "h100", "h200", "b200", "a10g", "l4", "l40s", "t4")
NEURON_FAMILIES = ("inf1", "inf2", "trn1", "trn1n", "trn2")
NEURON_CHIPS = ("inferentia", "inferentia2", "trainium", "trainium2")


def _names_regex(families: tuple[str, ...], chips: tuple[str, ...]) -> str:
    # `[.]`, not a backslash: the pattern is also a CEL string literal.
    return f"^((ml[.])?({'|'.join(families)})([.][a-z0-9]+)?|{'|'.join(chips)})$"


NVIDIA_NAMES = _names_regex(NVIDIA_FAMILIES, NVIDIA_GPUS)
NEURON_NAMES = _names_regex(NEURON_FAMILIES, NEURON_CHIPS)
NVIDIA_TYPE_RULE = (
    "types may not name Neuron accelerators or instances with kind: nvidia (allowed: NVIDIA "
    "GPU names such as H100, L40S, families such as p5, g6e, or their instance types)"
)
NEURON_TYPE_RULE = (
    "types may not name NVIDIA GPUs or instances with kind: neuron (allowed: inf2, trn1, trn2 "
    "families, their instance types, or inferentia2, trainium)"
)
ZERO_NEEDS_MIN_0 = "scaleToZero requires minReplicas: 0"
OWNED_ARGS = "args may not set flags the operator owns: " + ", ".join(OWNED_FLAGS)
# Variables the operator sets itself; a second entry with the same name is refused by the API
# server when the Deployment is applied, long after admission.
OWNED_ENV = ("HF_TOKEN", "VLLM_NO_USAGE_STATS", "VLLM_ALLOW_RUNTIME_LORA_UPDATING")
OWNED_ENV_RULE = "env may not set variables the operator owns: " + ", ".join(OWNED_ENV)
UNIQUE_ENV = "env names must be unique"
NVIDIA_TP = "perReplica must be 1, 2, 4 or 8 for nvidia (tensor parallel size)"
NEURON_TP = "perReplica must be 1, 2, 4, 8, 12, 16, 24 or 32 for neuron (NeuronCores)"
POOL_NAME = "name is required when create is false"


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **extra}


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class Base(BaseModel):
    # strict: "4" is not 4, as the API server's schema says; what render accepts, admission does.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True
    )


class SecretKeyRef(Base):
    """A key in a Secret in the InferenceDeployment's namespace."""

    name: str = Field(
        description="Name of the Secret.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
    )
    key: str = Field(
        description="Key within the Secret.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class ModelSpec(Base):
    """What to serve."""

    uri: str = Field(
        description="Where the weights come from: hf://ORG/NAME (Hugging Face), s3://BUCKET/PATH, "
        "or pvc://CLAIM/PATH (a PersistentVolumeClaim in this namespace).",
        min_length=6,
        max_length=512,
        pattern=r"^(hf://[^/\s]+/[^\s]+|s3://[^/\s]+(/[^\s]*)?"
        r"|pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[^\s]*)?)$",
    )
    served_name: str | None = Field(
        None,
        description="The model name clients send (vLLM --served-model-name). Defaults to "
        "the InferenceDeployment's name.",
        max_length=63,
        pattern=DNS_LABEL.replace("[-a-z0-9]", "[-a-z0-9.]"),
    )
    parameters: str | None = Field(
        None,
        description="Parameter count, such as 8B or 70B or 500M, for capacity planning when "
        "the model is not in the operator's catalogue.",
        pattern=r"^[0-9]+(\.[0-9]+)?[MB]$",
        max_length=12,
    )
    dtype: Literal["auto", "bfloat16", "float16", "fp8", "int8", "int4"] = Field(
        "auto", description="Weight precision (vLLM --dtype, or the quantization it implies)."
    )
    max_model_len: int | None = Field(
        None,
        description="Longest context (prompt + output) in tokens (vLLM --max-model-len).",
        ge=128,
        le=1_048_576,
    )
    token_secret_ref: SecretKeyRef | None = Field(
        None, description="A Secret key holding the Hugging Face token (HF_TOKEN); never inline."
    )


class EnvVar(Base):
    """An environment variable for the vLLM container."""

    name: str = Field(
        description="Variable name.",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    value: str = Field(
        "", description="Literal value (use tokenSecretRef for secrets).", max_length=4096
    )


class Resources(Base):
    """CPU and memory per replica (accelerators come from spec.accelerator)."""

    cpu: str | None = Field(
        None,
        description="CPU request and limit, a Kubernetes quantity.",
        pattern=r"^[0-9]+(\.[0-9]+)?m?$",
        max_length=16,
    )
    memory: str | None = Field(
        None,
        description="Memory request and limit, a quantity.",
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        max_length=16,
    )


class EngineSpec(Base):
    """The vLLM engine."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.args) || self.args.all(a, "
                + " && ".join(f"!a.startsWith('{f}')" for f in OWNED_FLAGS)
                + ")",
                OWNED_ARGS,
                fieldPath=".args",
                reason="FieldValueForbidden",
            ),
            cel(
                "!has(self.env) || self.env.all(e, !(e.name in ["
                + ", ".join(f"'{n}'" for n in OWNED_ENV)
                + "]))",
                OWNED_ENV_RULE,
                fieldPath=".env",
                reason="FieldValueForbidden",
            ),
        )
    )

    image: str | None = Field(
        None,
        description=f"vLLM container image. Defaults to {DEFAULT_IMAGE} (NVIDIA) or the "
        "AWS Neuron vLLM image (neuron).",
        max_length=512,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$",
    )
    args: list[Arg] = Field(
        default_factory=list,
        description="Extra `vllm serve` flags, passed as arguments (never "
        "through a shell). The operator owns the model, port, tensor-parallel size, dtype and "
        "max model length.",
        max_length=64,
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables, unique by name.",
        max_length=64,
        # A map keyed by name: the API server itself refuses a name given twice.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    resources: Resources | None = Field(None, description="CPU and memory per replica.")

    # The same rules as the CRD's CEL, for `render` and for objects that bypassed admission.
    @model_validator(mode="after")
    def _owned_flags(self) -> EngineSpec:
        if any(a.startswith(OWNED_FLAGS) for a in self.args):
            raise ValueError(OWNED_ARGS)
        names = [e.name for e in self.env]
        if any(n in OWNED_ENV for n in names):
            raise ValueError(OWNED_ENV_RULE)
        if len(set(names)) != len(names):
            raise ValueError(UNIQUE_ENV)
        return self


class AcceleratorSpec(Base):
    """The accelerators one replica uses."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.kind != 'nvidia' || self.perReplica in [1, 2, 4, 8]",
                NVIDIA_TP,
                fieldPath=".perReplica",
            ),
            cel(
                "self.kind != 'neuron' || self.perReplica in [1, 2, 4, 8, 12, 16, 24, 32]",
                NEURON_TP,
                fieldPath=".perReplica",
            ),
            cel(
                f"self.kind != 'nvidia' || !has(self.types) || "
                f"self.types.all(t, !t.lowerAscii().matches('{NEURON_NAMES}'))",
                NVIDIA_TYPE_RULE,
                fieldPath=".types",
            ),
            cel(
                f"self.kind != 'neuron' || !has(self.types) || "
                f"self.types.all(t, !t.lowerAscii().matches('{NVIDIA_NAMES}'))",
                NEURON_TYPE_RULE,
                fieldPath=".types",
            ),
        )
    )

    kind: Literal["nvidia", "neuron"] = Field(
        description="nvidia (nvidia.com/gpu) or neuron (aws.amazon.com/neuroncore). Immutable.",
        json_schema_extra=validations(
            cel("self == oldSelf", "kind is immutable; create a new InferenceDeployment instead")
        ),
    )
    per_replica: int = Field(
        1,
        description="Devices per replica: GPUs (the tensor parallel size) or NeuronCores.",
        ge=1,
        le=32,
    )
    types: list[AcceleratorType] = Field(
        default_factory=list,
        description="Accepted accelerators or instance families in order "
        "of preference: GPU names (H100, L40S, A10G), families (p5, g6e, inf2) or instance types "
        "(g6e.xlarge).",
        max_length=16,
    )

    @model_validator(mode="after")
    def _tensor_parallel(self) -> AcceleratorSpec:
        if self.kind == "nvidia" and self.per_replica not in (1, 2, 4, 8):
            raise ValueError(NVIDIA_TP)
        if self.kind == "neuron" and self.per_replica not in (1, 2, 4, 8, 12, 16, 24, 32):
            raise ValueError(NEURON_TP)
        other, rule = (
            (NEURON_NAMES, NVIDIA_TYPE_RULE)
            if self.kind == "nvidia"
            else (NVIDIA_NAMES, NEURON_TYPE_RULE)
        )
        if any(re.match(other, t.lower()) for t in self.types):
            raise ValueError(rule)
        return self


class Targets(Base):
    """Per-replica operating point; the largest need among the signals wins."""

    queue_per_replica: float = Field(
        4.0,
        description="Requests waiting per replica "
        "(vllm:num_requests_waiting) before adding capacity.",
        gt=0,
        le=10_000,
    )
    kv_cache_utilization: float = Field(
        0.8,
        description="KV-cache usage per replica, a 0-1 fraction (vllm:kv_cache_usage_perc).",
        gt=0,
        le=1,
    )
    requests_per_second_per_replica: float | None = Field(
        None,
        description="Requests per second one replica serves within your latency SLO. Unset "
        "(the default), the operator learns it from the replicas' vLLM metrics against "
        "autoscaling.slo; set, it overrides what is learned.",
        gt=0,
        le=100_000,
    )
    tokens_per_second_per_replica: float | None = Field(
        None,
        description="Tokens per second (prompt + generated, from vLLM's token counters) one "
        "replica serves: a signal beside queue, KV cache and requests, for workloads whose "
        "requests vary so much in length that a request rate says little. Unset (the default), "
        "the learned per-replica capacity already accounts for the token mix "
        "(status.capacity.perReplica.tokensPerSecond).",
        gt=0,
        le=10_000_000,
    )
    capacity_utilization: float = Field(
        0.95,
        description="Share of the learned per-replica capacity each replica is sized to carry. "
        "The learned capacity is already where the SLO's misses begin; the rest absorbs "
        "what the forecast misses while new replicas start. Unused with "
        "requestsPerSecondPerReplica, which is an operating point already.",
        gt=0,
        le=1,
    )


class SloSpec(Base):
    """The latency objective the learned per-replica capacity keeps (vLLM's definitions: TTFT
    from arrival to the first token; TPOT the mean inter-token latency of a request)."""

    ttft: str = Field(
        "2s", description="Time to first token.", pattern=DURATION_PATTERN, max_length=16
    )
    tpot: str = Field(
        "100ms",
        description="Time per output token (mean inter-token latency of a request).",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    percentile: float = Field(
        99.0, description="Share of requests, in percent, that must meet both.", ge=50, le=99.99
    )


class ScaleToZero(Base):
    """Scale to zero replicas when idle (requires minReplicas: 0)."""

    idle_after: str = Field(
        "15m",
        description="How long without requests before zero.",
        pattern=DURATION_PATTERN,
        max_length=16,
    )


class ScaleUp(Base):
    """How fast to add replicas."""

    panic_threshold: float = Field(
        2.0,
        description="Demand, as a multiple of Ready capacity, "
        "that enters panic mode (no scale-down for a minute).",
        gt=1,
        le=100,
    )
    max_factor: float = Field(
        10.0,
        description="At most this many times the current replicas per decision.",
        gt=1,
        le=1000,
    )


class ScaleDown(Base):
    """How slowly to remove replicas."""

    stabilization_window: str = Field(
        "5m",
        description="Scale down only to the highest need seen over this window.",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    max_percent: float = Field(
        50.0,
        description="At most this percentage of replicas per minute (at least one).",
        ge=0,
        le=100,
    )


class ShortBursts(Base):
    """Spare replicas after a burst that was over before the replicas launched for it were
    Ready: chasing such bursts cannot serve them, only replicas already Ready can."""

    spare_replicas: int = Field(
        2,
        description="Ready replicas kept above what the load before the burst needed "
        "(0: never keep spares).",
        ge=0,
        le=1000,
    )
    hold_for: str = Field(
        "1h",
        description="How long after such a burst the spares are kept.",
        pattern=DURATION_PATTERN,
        max_length=16,
    )


class Behavior(Base):
    """Scaling speed in each direction."""

    scale_up: ScaleUp = Field(default_factory=ScaleUp, description="Scale-up behaviour.")
    scale_down: ScaleDown = Field(default_factory=ScaleDown, description="Scale-down behaviour.")
    short_bursts: ShortBursts = Field(
        default_factory=ShortBursts,
        description="Spare replicas after bursts shorter than a replica's start-up.",
    )
    hpa_tolerance: float = Field(
        0.1,
        description="The HPA's tolerance when KEDA's Prometheus triggers alone drive it (no "
        "operator scaler): changes of the metric ratio within this fraction are ignored. With "
        "the operator's scaler the HPA gets tolerance 0 and follows the recommender exactly.",
        ge=0,
        le=1,
    )


class ScheduleSpec(Base):
    """A replica floor for a time window that repeats on a cron schedule."""

    cron: str = Field(
        description="Standard 5-field cron expression for the window's start.",
        min_length=9,
        max_length=100,
        pattern=r"^(\S+\s+){4}\S+$",
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone of the cron expression.",
        max_length=64,
        pattern=r"^[A-Za-z0-9_+\-/]+$",
    )
    min_replicas: int = Field(description="Floor while the window is open.", ge=0, le=1000)
    duration: str = Field(
        description="How long the window stays open.", pattern=DURATION_PATTERN, max_length=16
    )

    # CEL cannot parse cron or know the tz database: these reach the reconciler, which reports
    # them as InvalidSpec with the field, the value and what is allowed.
    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a 5-field cron expression such as '0 8 * * 1-5'")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone such as Europe/Paris") from None
        return v


class PrometheusSpec(Base):
    """Where the vLLM metrics are."""

    url: str | None = Field(
        None,
        description="Prometheus base URL; unset: the operator's own setting "
        "(INFOP_PROMETHEUS_URL, the Helm value prometheus.url).",
        max_length=512,
        pattern=r"^https?://[^\s]+$",
    )
    auth_secret_ref: SecretKeyRef | None = Field(
        None, description="A Secret key with a bearer token for an authenticated Prometheus."
    )


class AutoscalingSpec(Base):
    """Demand-driven scaling through KEDA and the operator's recommender."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                MIN_LE_MAX,
                fieldPath=".minReplicas",
            ),
            cel(
                "!has(self.scaleToZero) || self.minReplicas == 0",
                ZERO_NEEDS_MIN_0,
                fieldPath=".scaleToZero",
            ),
            cel(
                "!has(self.schedules) || self.schedules.all(s, s.minReplicas <= self.maxReplicas)",
                SCHEDULE_LE_MAX,
                fieldPath=".schedules",
            ),
        )
    )

    enabled: bool = Field(True, description="Create the ScaledObject and run the recommender.")
    min_replicas: int = Field(
        1, description="Fewest replicas (0 allows scale to zero).", ge=0, le=1000
    )
    max_replicas: int = Field(4, description="Most replicas.", ge=1, le=1000)
    targets: Targets = Field(default_factory=Targets, description="Per-replica targets.")
    slo: SloSpec = Field(
        default_factory=SloSpec, description="Latency objective for the learned capacity."
    )
    scale_to_zero: ScaleToZero | None = Field(None, description="Scale to zero when idle.")
    behavior: Behavior = Field(default_factory=Behavior, description="Scaling speed.")
    schedules: list[ScheduleSpec] = Field(
        default_factory=list, max_length=32, description="Time windows with replica floors."
    )
    startup_time: str = Field(
        "3m",
        description="How long a new replica takes to serve (node, "
        "image, weights, warm-up); the recommender looks this far ahead.",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    polling_interval: str = Field(
        "15s",
        description="How often KEDA asks the scaler whether a model at zero has demand (its "
        "pollingInterval; whole seconds, at least 1s). The HPA's own period, set on the "
        "cluster, paces scaling above one replica.",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    prometheus: PrometheusSpec = Field(
        default_factory=PrometheusSpec, description="Where the metrics are."
    )
    prometheus_triggers: bool = Field(
        False,
        description="Also give KEDA its own Prometheus triggers beside the operator's scaler, "
        "so scaling goes on while the operator is down; the HPA then follows whichever asks "
        "for more. Always on when the operator runs without its scaler.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(MIN_LE_MAX)
        if self.scale_to_zero is not None and self.min_replicas != 0:
            raise ValueError(ZERO_NEEDS_MIN_0)
        if any(s.min_replicas > self.max_replicas for s in self.schedules):
            raise ValueError(SCHEDULE_LE_MAX)
        return self


class NodeClassRef(Base):
    """The Karpenter node class the NodePool uses."""

    group: Literal[
        "karpenter.k8s.aws", "karpenter.sagemaker.amazonaws.com", "karpenter.kwok.sh"
    ] = Field(
        "karpenter.k8s.aws",
        description="karpenter.k8s.aws (EKS) or karpenter.sagemaker.amazonaws.com (HyperPod); "
        "karpenter.kwok.sh only for local clusters and tests (Karpenter's kwok provider).",
    )
    kind: Literal["EC2NodeClass", "HyperpodNodeClass", "KWOKNodeClass"] = Field(
        "EC2NodeClass", description="Node class kind."
    )
    name: str = Field("default", description="Node class name.", max_length=253, pattern=DNS_LABEL)


# The node class kind of each Karpenter provider group.
NODE_CLASS_KINDS = {
    "karpenter.k8s.aws": "EC2NodeClass",
    "karpenter.sagemaker.amazonaws.com": "HyperpodNodeClass",
    "karpenter.kwok.sh": "KWOKNodeClass",
}

CapacityType = Literal["spot", "on-demand", "reserved"]


def _on_demand() -> list[CapacityType]:
    return ["on-demand"]


class NodePoolSpec(Base):
    """A Karpenter NodePool for this model's nodes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.create || has(self.name)",
                POOL_NAME,
                fieldPath=".name",
            ),
            # One rule per provider group: its node class kind.
            *(
                cel(
                    f"!has(self.nodeClassRef) || self.nodeClassRef.group != '{group}' || "
                    f"self.nodeClassRef.kind == '{kind}'",
                    f"nodeClassRef.kind must be {kind} for group {group}",
                    fieldPath=".nodeClassRef.kind",
                )
                for group, kind in NODE_CLASS_KINDS.items()
            ),
        )
    )

    create: bool = Field(
        False,
        description="Create a NodePool for this InferenceDeployment; "
        "false uses the existing pool `name`.",
    )
    name: str | None = Field(
        None, description="An existing NodePool to schedule on.", max_length=63, pattern=DNS_LABEL
    )
    capacity_types: list[CapacityType] = Field(
        default_factory=_on_demand,
        description="Allowed capacity types; Karpenter "
        "prefers spot when listed, falling back to on-demand.",
        min_length=1,
        max_length=3,
    )
    zones: list[Zone] = Field(
        default_factory=list,
        description="Availability zones; empty means any.",
        max_length=16,
    )
    node_class_ref: NodeClassRef = Field(
        default_factory=NodeClassRef, description="Node class for the NodePool."
    )
    consolidate_after: str = Field(
        "5m",
        description="How long a node stays empty before Karpenter removes it (only empty nodes "
        "are consolidated: a serving replica is never moved to save money).",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    max_devices: int | None = Field(
        None,
        description="A spending cap: at most this many GPUs (or NeuronCores) on the pool's nodes. "
        "Default: room for maxReplicas (spec.replicas without autoscaling), the warm capacity and "
        "one replica of a rolling update, each alone on the smallest planned node. Pods beyond "
        "the cap stay Pending and Degraded says NodePoolLimitReached.",
        ge=1,
        le=100_000,
    )

    @model_validator(mode="after")
    def _pool(self) -> NodePoolSpec:
        if not self.create and self.name is None:
            raise ValueError(POOL_NAME)
        expected = NODE_CLASS_KINDS[self.node_class_ref.group]
        if self.node_class_ref.kind != expected:
            raise ValueError(
                f"nodeClassRef.kind must be {expected} for group {self.node_class_ref.group}"
            )
        return self


class GatewayFallback(Base):
    """A remote OpenAI-compatible endpoint (the same model's gateway in another region) that
    takes this model's requests when its replicas cannot (docs/spill-over.md)."""

    name: str = Field(
        description="Names it in metrics and in the X-Inference-Served-By header.",
        min_length=1,
        max_length=50,
        pattern=DNS_LABEL,
    )
    url: str = Field(
        description="Base URL, without /v1.",
        max_length=512,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
    )
    remote_model: str | None = Field(
        None, description="The model's name there (default: the same).", max_length=253
    )
    priority: int = Field(0, description="Lower is tried first.", ge=0, le=1000)
    timeout: str = Field(
        "30s", description="Connect and first byte.", pattern=DURATION_PATTERN, max_length=16
    )
    spill_after: str = Field(
        "30s",
        description="A request that waited this long for a local replica spills (0s: at once).",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    key_secret_ref: SecretKeyRef | None = Field(
        None, description="A Secret key with its API key (sent as a Bearer token)."
    )


class GatewaySpec(Base):
    """An OpenAI-compatible gateway for this model: holds requests while no replica is free
    (scale from zero, saturation) and balances by outstanding requests and zone."""

    replicas: int = Field(2, description="Gateway pods.", ge=1, le=20)
    max_waiting: int = Field(
        1000, description="Requests that may wait for a replica; more get 429.", ge=1, le=100_000
    )
    queue_timeout: str = Field(
        "10m",
        description="How long a request may wait for a replica before a 503 (cover a cold start).",
        pattern=DURATION_PATTERN,
        max_length=16,
    )
    max_per_replica: int = Field(
        64,
        description="Requests in flight per vLLM replica; more wait at the gateway "
        "(match vLLM's --max-num-seqs to keep vLLM's own queue short).",
        ge=1,
        le=10_000,
    )
    routing: Literal["prefix", "least-outstanding"] = Field(
        "prefix",
        description="prefix: requests whose prompts start alike go to the same replica, where "
        "vLLM's prefix cache skips their shared prefill, within a bound of 1.25x the mean load "
        "per replica (docs/prefix-routing.md); least-outstanding: the least busy replica.",
    )
    fallbacks: list[GatewayFallback] = Field(
        default_factory=list,
        description="Where requests spill when the replicas are at zero, saturated or failing.",
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


WARM_ONE_OF = "set exactly one of replicas (a fixed number) or auto (sized by the scaling brain)"


class WarmAuto(Base):
    """Warm capacity sized by the scaling brain: the largest rise in demand within one start-up
    time seen over the last hour (what replicas created after the rise began could not have
    served in time), never more than maxReplicas leaves room for. Shown in status.warm."""

    max_replicas: int = Field(
        4, description="At most this many replicas' worth of spare nodes.", ge=1, le=64
    )


class WarmCapacity(Base):
    """Room Karpenter keeps free for more replicas (a CapacityBuffer): a replica added while it
    lasts starts on a node that is already up instead of waiting for one to launch. Needs
    Karpenter v1.14+ with its CapacityBuffer feature gate on (off by default, and not settable on
    EKS Auto Mode); where the API is not served, status.capacity.warmCapacity says so."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.replicas) != has(self.auto)", WARM_ONE_OF))
    )

    replicas: int | None = Field(
        None,
        description="A fixed number of replicas' worth of spare nodes to keep, beyond what runs.",
        ge=1,
        le=64,
    )
    auto: WarmAuto | None = Field(
        None, description="Let the scaling brain size the spare capacity (set `auto: {}`)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> WarmCapacity:
        if (self.replicas is None) == (self.auto is None):
            raise ValueError(WARM_ONE_OF)
        return self

    @property
    def ceiling(self) -> int:
        """The most spare replicas this can ask for (NodePool limits leave room for it)."""
        return self.auto.max_replicas if self.auto is not None else self.replicas or 0


CACHE_ONE_OF = "set exactly one of claimName (a shared volume) or hostPath (a node-local directory)"


class CacheSpec(Base):
    """Where a new replica finds what earlier ones downloaded or compiled: Hugging Face weights
    (HF_HOME), vLLM's compile cache (VLLM_CACHE_ROOT) and, on Neuron, compiled NEFFs. Mounted at
    /cache. Weights from s3:// are streamed, not cached; pvc:// weights are already local."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.claimName) != has(self.hostPath)", CACHE_ONE_OF)
        )
    )

    claim_name: str | None = Field(
        None,
        description="A PersistentVolumeClaim in this namespace, shared by every replica: "
        "ReadWriteMany (EFS, FSx for Lustre), so one download or compilation serves all.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
    )
    host_path: str | None = Field(
        None,
        description="A directory on each node: a replica gains only on a node that served "
        "this model before (a warm node). The baseline and restricted Pod Security levels "
        "refuse hostPath volumes.",
        max_length=256,
        # Absolute, no "." or ".." segments.
        pattern=r"^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$",
    )

    @model_validator(mode="after")
    def _one_of(self) -> CacheSpec:
        if (self.claim_name is None) == (self.host_path is None):
            raise ValueError(CACHE_ONE_OF)
        return self


class CapacitySpec(Base):
    """Capacity beyond the running replicas."""

    warm: WarmCapacity | None = Field(
        None, description="Warm spare capacity (Karpenter CapacityBuffer); omit for none."
    )


ADAPTER_NAMES = "adapters[].name must be unique"
ADAPTER_TOKENS = (
    "adapters[].tokenSecretRef: vLLM reads one HF_TOKEN, so every adapter's tokenSecretRef "
    "must be the same Secret key, and the model's tokenSecretRef if it has one"
)
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


class Adapter(Base):
    """A LoRA adapter served on top of the base model: clients send its name as `model`."""

    name: str = Field(
        description="The name clients send as `model`; unique among the adapters.",
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL.replace("[-a-z0-9]", "[-a-z0-9.]"),
    )
    uri: str = Field(
        description="Where it comes from: hf://ORG/NAME (Hugging Face, loaded by vLLM) or "
        "pvc://CLAIM/PATH (a PersistentVolumeClaim in this namespace, mounted read-only).",
        min_length=6,
        max_length=512,
        pattern=r"^(hf://[^/\s]+/[^\s]+|pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[^\s]+)$",
    )
    token_secret_ref: SecretKeyRef | None = Field(
        None,
        description="A Secret key with the Hugging Face token for a private hf:// adapter "
        "(HF_TOKEN: one for the model and all adapters).",
    )


class LoraSpec(Base):
    """How vLLM serves LoRA adapters (--enable-lora). On whenever spec.adapters is not empty."""

    enabled: bool = Field(
        False,
        description="Serve adapters even while spec.adapters is empty, so adding the first one "
        "loads it at run time instead of rolling the replicas.",
    )
    max_loras: int = Field(
        4, description="Adapters in one batch at once (vLLM --max-loras).", ge=1, le=64
    )
    max_rank: Literal[8, 16, 32, 64, 128, 256, 320, 512] = Field(
        16, description="The largest adapter rank (vLLM --max-lora-rank)."
    )


class InferenceDeploymentSpec(Base):
    """Desired state of an InferenceDeployment."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.adapters) || self.adapters.all(a, "
                "self.adapters.exists_one(b, b.name == a.name))",
                ADAPTER_NAMES,
                fieldPath=".adapters",
            ),
            cel(
                "!has(self.adapters) || self.adapters.all(a, !has(a.tokenSecretRef) || "
                "(self.adapters.all(b, !has(b.tokenSecretRef) || "
                "b.tokenSecretRef == a.tokenSecretRef) && (!has(self.model.tokenSecretRef) || "
                "(self.model.tokenSecretRef.name == a.tokenSecretRef.name && "
                "self.model.tokenSecretRef.key == a.tokenSecretRef.key))))",
                ADAPTER_TOKENS,
                fieldPath=".adapters",
            ),
        )
    )

    model: ModelSpec = Field(description="What to serve.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The vLLM engine.")
    accelerator: AcceleratorSpec = Field(description="Accelerators per replica.")
    replicas: int = Field(
        1,
        description="Replicas now; the /scale subresource's field, written "
        "by KEDA/HPA when autoscaling is enabled.",
        ge=0,
        le=1000,
    )
    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec, description="Demand-driven scaling."
    )
    node_pool: NodePoolSpec | None = Field(None, description="Karpenter NodePool.")
    capacity: CapacitySpec = Field(
        default_factory=CapacitySpec, description="Capacity beyond the running replicas."
    )
    gateway: GatewaySpec | None = Field(
        None, description="Run a gateway in front of this model (omit: none, or a shared one)."
    )
    cache: CacheSpec | None = Field(
        None,
        description="A weights and compile cache that new replicas read instead of the hub "
        "(shorter start-ups); omit for none.",
    )
    adapters: list[Adapter] = Field(
        default_factory=list,
        description="LoRA adapters, loaded on every Ready replica and added or removed at run "
        "time without a restart (docs/lora.md).",
        max_length=64,
    )
    lora: LoraSpec = Field(default_factory=LoraSpec, description="vLLM's LoRA settings.")

    @model_validator(mode="after")
    def _adapters(self) -> InferenceDeploymentSpec:
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError(ADAPTER_NAMES)
        tokens = {a.token_secret_ref for a in self.adapters if a.token_secret_ref is not None}
        if len(tokens) > 1 or (
            tokens
            and self.model.token_secret_ref is not None
            and tokens != {self.model.token_secret_ref}
        ):
            raise ValueError(ADAPTER_TOKENS)
        return self

    @property
    def lora_enabled(self) -> bool:
        return bool(self.adapters) or self.lora.enabled


class Condition(Base):
    """A kstatus-style condition."""

    type: str = Field(description="Condition type.", max_length=64)
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason.", max_length=64)
    message: str = Field("", description="Human-readable detail.", max_length=4096)
    last_transition_time: str | None = Field(None, description="When status last changed.")
    observed_generation: int | None = Field(None, description="Generation it was computed for.")


class Signals(Base):
    """The last observed load."""

    queue: float | None = Field(None, description="Requests waiting, summed over pods.")
    kv_cache_utilization: float | None = Field(None, description="Mean KV-cache usage, 0-1.")
    requests_per_second: float | None = Field(None, description="Arrival rate.")
    gateway_queue: float | None = Field(None, description="Requests waiting at the gateway.")
    metric_prefix: str | None = Field(
        None,
        description="How Prometheus stores vLLM's metric names: `vllm:` (text or UTF-8 scrapes) "
        "or `vllm_` (OpenMetrics scrapes by Prometheus 2.x). Queries match both.",
    )
    observed_at: str | None = Field(None, description="When they were read.")
    arrival_source: str | None = Field(
        None,
        description="Where requestsPerSecond comes from: gateway (its count of requests "
        "received), completions+inflight (vLLM's completions plus the change in requests in "
        "flight over half a minute), burst (the same over the last scrape, where it says 1.5x "
        "that) or completions.",
    )


class RecommendationStatus(Base):
    """The recommender's last decision."""

    replicas: int | None = Field(None, description="Recommended replicas.")
    reason: str | None = Field(None, description="Why.", max_length=4096)
    at: str | None = Field(None, description="When.")


class WarmStatus(Base):
    """The warm capacity the scaling brain asks for (spec.capacity.warm.auto)."""

    replicas: int = Field(description="Replicas' worth of spare nodes in the CapacityBuffer.")
    reason: str = Field("", description="Why.", max_length=1024)
    at: str | None = Field(None, description="When it last changed.")


class PerReplicaStatus(Base):
    """What one replica sustains within spec.autoscaling.slo, and where the number comes from."""

    requests_per_second: float = Field(description="Requests per second one replica sustains.")
    tokens_per_second: float | None = Field(
        None, description="The same in prompt + generated tokens per second."
    )
    source: Literal["spec", "prior", "learned"] = Field(
        description="spec (targets.requestsPerSecondPerReplica), prior (the capacity planner, "
        "before any traffic) or learned (from the replicas' vLLM metrics)."
    )
    bound_by: str = Field(
        "",
        description="The limit that binds: tpot (step times), kvCache, maxPerReplica (what "
        "spec.gateway sends one replica at a time), latencyTail (the SLO's misses at higher "
        "loads), or spec.",
    )
    samples: int = Field(0, description="Windows of metrics learned from.")
    updated_at: str | None = Field(None, description="When the numbers last changed.")


class StartupStatus(Base):
    """How long a new replica takes to serve: the recommender's look-ahead."""

    seconds: int = Field(description="The look-ahead in use.")
    source: Literal["spec", "learned"] = Field(
        description="spec (autoscaling.startupTime, until pods have started) or learned (from "
        "the pods' creation -> Ready times)."
    )
    new_node_seconds: int | None = Field(
        None, description="Start-ups that waited for a new node (80th percentile)."
    )
    existing_node_seconds: int | None = Field(
        None, description="Start-ups on a node already there (80th percentile)."
    )
    samples: int = Field(0, description="Start-ups observed.")
    updated_at: str | None = Field(None, description="When the numbers last changed.")


class CapacityStatus(Base):
    """The capacity plan (the reconciler's) and what the autoscaler learned."""

    weights_gib: float | None = Field(None, alias="weightsGiB", description="Weights, GiB.")
    kv_cache_bytes_per_token: int | None = Field(None, description="KV cache per token, bytes.")
    devices_per_replica: int | None = Field(None, description="Devices the model needs.")
    fits: bool | None = Field(None, description="Whether an accepted instance type fits it.")
    instance_types: list[str] = Field(
        default_factory=list, description="Accepted instance types that fit, smallest first."
    )
    warm_capacity: str | None = Field(None, description="Why warm capacity is not applied.")
    per_replica: PerReplicaStatus | None = Field(None, description="Per-replica capacity.")
    startup: StartupStatus | None = Field(None, description="Start-up time.")


class GatewayStatus(Base):
    """Where the gateway is."""

    service: str = Field(description="Its Service, in this namespace (port 80).")


class AdapterStatus(Base):
    """Where one LoRA adapter is loaded."""

    name: str = Field(description="The adapter.")
    loaded: int = Field(description="Ready replicas that serve it.")
    replicas: int = Field(description="Ready replicas.")
    error: str | None = Field(
        None, description="The last load failure (the replica and vLLM's answer).", max_length=1024
    )


class InferenceDeploymentStatus(Base):
    """Observed state of an InferenceDeployment."""

    model_config = ConfigDict(extra="allow")

    observed_generation: int | None = Field(None, description="Generation last reconciled.")
    replicas: int | None = Field(None, description="Pods of the Deployment.")
    ready_replicas: int | None = Field(None, description="Ready pods.")
    desired_replicas: int | None = Field(None, description="Replicas the operator asks for.")
    selector: str | None = Field(None, description="Label selector of the pods (for /scale).")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions, one per type. Keyed by type so that the reconciler and the "
        "autoscaler each apply their own with server-side apply, never erasing the other's.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    signals: Signals | None = Field(None, description="Last observed load.")
    capacity: CapacityStatus | None = Field(
        None, description="The capacity plan, and the per-replica capacity and start-up time."
    )
    recommendation: RecommendationStatus | None = Field(None, description="Last decision.")
    gateway: GatewayStatus | None = Field(None, description="The gateway spec.gateway made.")
    warm: WarmStatus | None = Field(
        None, description="Warm capacity sized by the scaling brain (spec.capacity.warm.auto)."
    )
    adapters: list[AdapterStatus] | None = Field(
        None, description="LoRA adapters: loaded on how many of the Ready replicas."
    )
    scaler_state: dict[str, Any] | None = Field(
        None,
        description="The recommender's memory, kept here to survive operator restarts.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class InferenceDeployment(Base):
    """An LLM served by vLLM on GPU or Neuron nodes, scaled to demand."""

    api_version: Literal["infer.dev/v1alpha1"] = Field("infer.dev/v1alpha1", alias="apiVersion")
    kind: Literal["InferenceDeployment"] = "InferenceDeployment"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus | None = None
