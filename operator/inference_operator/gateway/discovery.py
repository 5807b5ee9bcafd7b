"""Where the replicas are: watches InferenceDeployments (model name -> deployment) and the
EndpointSlices of their Services (Ready endpoints, zones), and hands changes to the gateway's
event loop. Watches, not polls: a request never waits on the API server. Each watch session
starts with a list that replaces what the last one knew (kube.list_and_watch), so endpoints
deleted while a watch was reconnecting are not routed to."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from inference_operator.api.models import GROUP, VERSION
from inference_operator.gateway.pool import Target
from inference_operator.gateway.proxy import Gateway
from inference_operator.kube import apply as kube

SERVICE_NAME = "kubernetes.io/service-name"
# Pause before a new session after a broken one (not a poll: sessions end only on errors).
_RETRY_SECONDS = 1.0


def targets_of(slices: list[dict[str, Any]]) -> list[Target]:
    """Ready endpoints of a Service's EndpointSlices, as the pool wants them (pure)."""
    out: dict[str, Target] = {}
    for s in slices:
        port = next((p.get("port") for p in s.get("ports") or [] if p.get("name") == "http"), None)
        if port is None:
            continue
        for ep in s.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            # Ready is unset for an endpoint that is neither known ready nor not: treat as ready
            # (the EndpointSlice API's own rule); terminating endpoints take no new requests.
            if cond.get("ready") is False or cond.get("terminating") is True:
                continue
            pod = (ep.get("targetRef") or {}).get("name")
            if not pod or not ep.get("addresses"):
                continue
            out[pod] = Target(pod, ep["addresses"][0], int(port), ep.get("zone"))
    return sorted(out.values(), key=lambda t: t.name)


def adapters_of(obj: dict[str, Any]) -> list[str]:
    """The LoRA adapters an InferenceDeployment names (pure)."""
    adapters = (obj.get("spec") or {}).get("adapters") or []
    return [str(a["name"]) for a in adapters if isinstance(a, dict) and a.get("name")]


def _service_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (str(meta["namespace"]), str((meta.get("labels") or {})[SERVICE_NAME]))


class Discovery:
    def __init__(
        self,
        gateway: Gateway,
        loop: asyncio.AbstractEventLoop,
        namespace: str | None = None,
        only: str | None = None,
    ) -> None:
        self.gateway, self.loop, self.namespace = gateway, loop, namespace
        # One InferenceDeployment's gateway (spec.gateway) rather than the namespace's.
        self.only = only
        self.stop = threading.Event()
        # (namespace, service) -> {slice name: slice}
        self._slices: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._deployments: dict[tuple[str, str], str] = {}  # -> model name
        self._lock = threading.Lock()

    def start(self) -> None:
        for target in (self._watch_deployments, self._watch_slices):
            threading.Thread(target=self._forever, args=(target,), daemon=True).start()

    def _forever(self, body: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                body()
            except Exception:
                # A dropped watch (urllib3 ProtocolError, ApiException 410 Gone, a reset
                # connection): list and watch again. This thread must outlive every error.
                if self.stop.wait(_RETRY_SECONDS):
                    return

    def _watch_deployments(self) -> None:
        api = f"{GROUP}/{VERSION}"
        for kind, got in kube.list_and_watch(api, "InferenceDeployment", self.namespace):
            if self.stop.is_set():
                return
            if kind == "SYNC":
                self._sync_deployments(got)
                continue
            key, model = self._model_of(got)
            if model is None:
                continue
            with self._lock:
                old = self._deployments.pop(key, None)
                if kind != "DELETED":
                    self._deployments[key] = model
            if old and (kind == "DELETED" or old != model):
                self.loop.call_soon_threadsafe(self.gateway.remove_route, old)
            if kind != "DELETED":
                self.loop.call_soon_threadsafe(self.gateway.set_route, model, *key)
                self.loop.call_soon_threadsafe(self.gateway.set_adapters, model, adapters_of(got))
                self._publish(key)

    def _model_of(self, obj: dict[str, Any]) -> tuple[tuple[str, str], str | None]:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        key = (str(meta["namespace"]), str(meta["name"]))
        if self.only is not None and meta["name"] != self.only:
            return key, None
        return key, str((spec.get("model") or {}).get("servedName") or meta["name"])

    def _sync_deployments(self, items: list[dict[str, Any]]) -> None:
        """A fresh list replaces what the last session knew (a deletion missed is dropped)."""
        models: dict[tuple[str, str], str] = {}
        adapters: dict[tuple[str, str], list[str]] = {}
        for obj in items:
            key, model = self._model_of(obj)
            if model is not None:
                models[key], adapters[key] = model, adapters_of(obj)
        with self._lock:
            before, self._deployments = self._deployments, dict(models)
        for key, old in before.items():
            if models.get(key) != old:
                self.loop.call_soon_threadsafe(self.gateway.remove_route, old)
        for key, model in models.items():
            self.loop.call_soon_threadsafe(self.gateway.set_route, model, *key)
            self.loop.call_soon_threadsafe(self.gateway.set_adapters, model, adapters[key])
            self._publish(key)

    def _watch_slices(self) -> None:
        api = "discovery.k8s.io/v1"
        selector = SERVICE_NAME if self.only is None else f"{SERVICE_NAME}={self.only}"
        for kind, got in kube.list_and_watch(api, "EndpointSlice", self.namespace, selector):
            if self.stop.is_set():
                return
            if kind == "SYNC":
                self._sync_slices(got)
                continue
            meta = got["metadata"]
            key = _service_of(got)
            with self._lock:
                slices = self._slices.setdefault(key, {})
                if kind == "DELETED":
                    slices.pop(meta["name"], None)
                else:
                    slices[meta["name"]] = got
            self._publish(key)

    def _sync_slices(self, items: list[dict[str, Any]]) -> None:
        fresh: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for obj in items:
            fresh.setdefault(_service_of(obj), {})[obj["metadata"]["name"]] = obj
        with self._lock:
            touched = set(self._slices) | set(fresh)
            self._slices = fresh
        for key in touched:
            self._publish(key)

    def _publish(self, key: tuple[str, str]) -> None:
        with self._lock:
            if key not in self._deployments:
                return
            targets = targets_of(list(self._slices.get(key, {}).values()))
        asyncio.run_coroutine_threadsafe(self.gateway.set_targets(*key, targets), self.loop)
