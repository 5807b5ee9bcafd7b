"""Tenants of a shared gateway: who they are (an API key each, read from a mounted Secret), what
they may use (models), and their share of the replicas when requests must wait.

Keys are kept only as SHA-256 digests and are never logged, put in a metric or forwarded to a
replica. A tenant's concurrency and queue limits hold across all models; its share decides who
gets a freed slot (`fair_pick`): the waiting tenant with the fewest requests in flight on that
model per unit of share, so one tenant's burst cannot starve another.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inference_operator.gateway.config_file import parse_file, unique_names

TENANT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class TenantConfig(BaseModel):
    """One tenant in the gateway's tenants file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=63, pattern=TENANT_NAME)
    key_file: str = Field(alias="keyFile", min_length=1, description="A file with the API key.")
    share: float = Field(1.0, gt=0, le=1000, description="Weight when requests wait.")
    max_concurrency: int | None = Field(
        None, alias="maxConcurrency", ge=1, description="Requests in flight at once, all models."
    )
    max_waiting: int | None = Field(
        None, alias="maxWaiting", ge=0, description="Requests waiting at once, all models."
    )
    models: tuple[str, ...] = Field((), description="Models it may use; empty: all.")


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: tuple[TenantConfig, ...] = Field(min_length=1)


def parse_tenants(text: str, where: str = "tenants file") -> tuple[TenantConfig, ...]:
    """The tenants, or ValueError naming the field, the value and what is allowed."""
    tenants = parse_file(TenantsFile, text, where).tenants
    unique_names([t.name for t in tenants], "tenants[].name", where)
    return tenants


@dataclass(eq=False)
class Waiter:
    tenant: Tenant
    arrived: float
    future: Any  # asyncio.Future[Target]: set by the dispatcher when a slot is taken for it
    key: int | None = None  # its prompt prefix's key (routing/prefix.py)


@dataclass(eq=False)
class Tenant:
    config: TenantConfig
    in_flight: int = 0
    waiting: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def at_capacity(self) -> bool:
        most = self.config.max_concurrency
        return most is not None and self.in_flight >= most

    def may_use(self, model: str) -> bool:
        return not self.config.models or model in self.config.models


# Without a tenants file every request is this one tenant: no key, no limit, first come first
# served, as before tenancy existed.
ANONYMOUS = TenantConfig(name="anonymous", key_file="-")


@dataclass
class Queues:
    """One model's waiting requests, by tenant, and its requests in flight by tenant."""

    waiting: dict[str, deque[Waiter]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    def push(self, w: Waiter) -> None:
        self.waiting.setdefault(w.tenant.name, deque()).append(w)

    def remove(self, w: Waiter) -> None:
        q = self.waiting.get(w.tenant.name)
        if q is not None and w in q:
            q.remove(w)
            if not q:
                del self.waiting[w.tenant.name]

    def __len__(self) -> int:
        return sum(len(q) for q in self.waiting.values())


def fair_pick(queues: Queues) -> Waiter | None:
    """The next waiter to serve: among tenants with a waiter and below their concurrency, the
    fewest in flight on this model per unit of share, then the longest waiting."""
    best: tuple[float, float] | None = None
    chosen: Waiter | None = None
    for name, q in queues.waiting.items():
        head = q[0]
        if head.tenant.at_capacity:
            continue
        rank = (queues.in_flight.get(name, 0) / head.tenant.config.share, head.arrived)
        if best is None or rank < best:
            best, chosen = rank, head
    return chosen


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.strip().encode()).digest()


class Tenants:
    """The tenants and their keys; `reload` re-reads the key files (a rotated Secret)."""

    def __init__(
        self, configs: Iterable[TenantConfig], read: Callable[[str], str] | None = None
    ) -> None:
        self.by_name = {c.name: Tenant(c) for c in configs}
        self._read = read or (lambda path: Path(path).read_text())
        self._owners: dict[bytes, Tenant] = {}
        self.problems: list[str] = []
        self.reload()

    def reload(self) -> list[str]:
        """Re-read every key; returns (and keeps) what could not be read, naming tenant and
        file, never a key. A tenant whose key cannot be read is refused until it can."""
        seen: dict[bytes, list[Tenant]] = {}
        problems = []
        for t in self.by_name.values():
            try:
                key = self._read(t.config.key_file)
            except OSError as e:
                problems.append(f"tenant {t.name}: key file {t.config.key_file}: {e.strerror}")
                continue
            if not key.strip():
                problems.append(f"tenant {t.name}: key file {t.config.key_file} is empty")
                continue
            seen.setdefault(_digest(key), []).append(t)
        for ts in seen.values():
            if len(ts) > 1:
                names = ", ".join(t.name for t in ts)
                problems.append(f"tenants {names} share one key: all of them are refused")
        self._owners = {d: ts[0] for d, ts in seen.items() if len(ts) == 1}
        self.problems = problems
        return problems

    def authenticate(self, authorization: str | None) -> Tenant | None:
        """The tenant whose key the `Authorization: Bearer <key>` header carries, or None."""
        if not authorization:
            return None
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return self._owners.get(_digest(key))
