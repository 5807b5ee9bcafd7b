"""Spill-over: remote OpenAI-compatible endpoints that serve a model when the local replicas
cannot (the same model's gateway in another region or cluster).

A request spills when it has waited `spillAfterSeconds` for a local replica (zero replicas
starting, or all busy), at once when the local queue is full, and when the local replicas fail
it (refused connections, a 5xx before any byte was sent). Fallbacks are tried in priority order,
healthy ones only: a fallback is ejected after `FAILURES_TO_EJECT` failed requests or failed
health checks in a row, and taken back at its next good health check. With no healthy fallback
the request waits locally, as it would with none configured.

Keys come from files (a mounted Secret), re-read now and then, and are sent only to their own
fallback; the client's own Authorization never leaves this gateway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from inference_operator.gateway.config_file import parse_file, unique_names

FALLBACK_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
FAILURES_TO_EJECT = 3


class FallbackConfig(BaseModel):
    """One remote endpoint that may serve a model."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=63, pattern=FALLBACK_NAME)
    model: str = Field(min_length=1, description="The local model it backs up.")
    url: str = Field(
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Base URL of an OpenAI-compatible server, without /v1.",
    )
    remote_model: str | None = Field(
        None, alias="remoteModel", min_length=1, description="The model's name there."
    )
    priority: int = Field(0, ge=0, le=1000, description="Lower is tried first.")
    timeout_seconds: float = Field(
        30.0, alias="timeoutSeconds", gt=0, le=3600, description="Connect and first byte."
    )
    spill_after_seconds: float = Field(
        30.0,
        alias="spillAfterSeconds",
        ge=0,
        le=3600,
        description="A request that waited this long for a local replica spills.",
    )
    key_file: str | None = Field(
        None, alias="keyFile", min_length=1, description="A file with its API key (Bearer)."
    )


class FallbacksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fallbacks: tuple[FallbackConfig, ...] = Field(min_length=1)


def parse_fallbacks(text: str, where: str = "fallbacks file") -> tuple[FallbackConfig, ...]:
    """The fallbacks, or ValueError naming the field, the value and what is allowed."""
    found = parse_file(FallbacksFile, text, where).fallbacks
    unique_names([f.name for f in found], "fallbacks[].name", where)
    return found


@dataclass(eq=False)
class Remote:
    config: FallbackConfig
    key: str | None = None
    healthy: bool = True
    failures: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def base(self) -> str:
        return self.config.url.rstrip("/")

    def succeeded(self) -> None:
        self.failures, self.healthy = 0, True

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= FAILURES_TO_EJECT:
            self.healthy = False


class Fallbacks:
    """The configured fallbacks, by model, with their health and keys."""

    def __init__(self, configs: Iterable[FallbackConfig]) -> None:
        self.remotes = [Remote(c) for c in configs]
        self.problems: list[str] = []
        self.reload()

    def reload(self) -> list[str]:
        """Re-read the key files; what could not be read (never a key) is returned."""
        problems = []
        for r in self.remotes:
            if r.config.key_file is None:
                continue
            try:
                key = Path(r.config.key_file).read_text().strip()
            except OSError as e:
                # Keep the last key read: a Secret being rotated is briefly unreadable.
                problems.append(f"fallback {r.name}: keyFile {r.config.key_file}: {e.strerror}")
                continue
            if not key:
                problems.append(f"fallback {r.name}: keyFile {r.config.key_file} is empty")
            r.key = key or None
        self.problems = problems
        return problems

    def for_model(self, model: str) -> list[Remote]:
        """Healthy fallbacks of a model, in the order to try them."""
        return sorted(
            (r for r in self.remotes if r.config.model == model and r.healthy),
            key=lambda r: (r.config.priority, r.name),
        )

    def spill_after(self, model: str) -> float | None:
        """Seconds a request of this model waits locally before it spills (None: it never
        spills, no healthy fallback)."""
        usable = self.for_model(model)
        return min(r.config.spill_after_seconds for r in usable) if usable else None
