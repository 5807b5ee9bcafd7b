"""Server-side apply with one field manager, skipping writes only when the live object is what
we last applied and still holds it."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from inference_operator import telemetry
from inference_operator.builders.names import FIELD_MANAGER

_lock = threading.RLock()


# Every request has a deadline (seconds to connect, then to read). The client's default is
# none: a request nobody answers (a half-open connection, a frozen API server) would hold its
# pass, and with it the operator's one periodic timer, for good. Reads wait longer than the API
# server's own request timeout (60 s), watches longer than the server-side timeout
# list_and_watch asks for, so a slow answer is never cut, only a missing one.
REQUEST_TIMEOUT = (10.0, 90.0)
WATCH_TIMEOUT = (10.0, 120.0)


class _DeadlineApiClient(client.ApiClient):
    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        if _request_timeout is None:
            _request_timeout = WATCH_TIMEOUT if "watch=true" in url else REQUEST_TIMEOUT
        return super().call_api(method, url, header_params, body, post_params, _request_timeout)


@functools.cache
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    configuration = client.Configuration.get_default_copy()
    # One connection per handler thread (kopf's pool of 20) and the scaler's: with the client's
    # default (5 per core) the extra ones are opened, used once and dropped, a TLS handshake each.
    configuration.connection_pool_maxsize = 32
    return _DeadlineApiClient(configuration)


@functools.cache
def dynamic() -> DynamicClient:
    return DynamicClient(api_client())


def contains(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (defaults may be extra)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and contains(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contains(d, x) for d, x in zip(desired, live, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return bool(desired == live) or str(desired) == str(live)


# On every object we apply: a digest of the body we applied. Server-side apply drops a field only
# when its manager applies again without it, so "live already holds what we want" is not enough
# to skip a write: a field we stopped wanting would stay forever. The digest tells "what we
# asked for changed" apart from "someone edited it" (contains() then finds the drift).
APPLIED_ANNOTATION = "infer.dev/applied"


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with APPLIED_ANNOTATION set to the digest of `obj` itself (pure)."""
    digest = hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:20]
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("annotations", {})[APPLIED_ANNOTATION] = digest
    return out


def up_to_date(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """True when no write is needed: `live` carries the digest of the `desired` (stamped) body
    and every field of it (a dropped field changes the digest; an edit breaks contains)."""
    if live is None:
        return False
    applied = ((live.get("metadata") or {}).get("annotations") or {}).get(APPLIED_ANNOTATION)
    return bool(
        applied == desired["metadata"]["annotations"][APPLIED_ANNOTATION]
        and contains(desired, live)
    )


# Characters YAML does not allow raw in a document (DEL, C1 controls, BOM, non-characters).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\ufeff\ufffe\uffff]")


def apply_body(obj: dict[str, Any]) -> str:
    """An apply patch body. The API server decodes apply patches as YAML, which refuses the
    surrogate-pair escapes json.dumps writes for characters beyond the BMP, and refuses some
    characters raw; so: raw Unicode, with only what YAML forbids escaped."""
    text = json.dumps(obj, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_resources: dict[tuple[str, str], Any] = {}


def resource(api_version: str, kind: str) -> Any:
    # The client's discovery cache is not safe across threads (KeyError 'resources' when two
    # handlers discover at once); kopf runs sync handlers in a thread pool.
    with _lock:
        found = _resources.get((api_version, kind))
        if found is None:
            found = dynamic().resources.get(api_version=api_version, kind=kind)
            _resources[(api_version, kind)] = found
        return found


# A miss makes the client rediscover every API group (tens of requests), so a kind that is not
# served (KEDA or Karpenter not installed) is remembered as missing for a while.
MISSING_KIND_TTL_SECONDS = 60.0
_missing: dict[tuple[str, str], float] = {}


def has_kind(api_version: str, kind: str) -> bool:
    key = (api_version, kind)
    if time.monotonic() < _missing.get(key, 0.0):
        return False
    try:
        resource(api_version, kind)
    except ResourceNotFoundError:
        _missing[key] = time.monotonic() + MISSING_KIND_TTL_SECONDS
        return False
    return True


@telemetry.counted("get")
def get(api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    try:
        obj = resource(api_version, kind).get(name=name, namespace=namespace)
    except NotFoundError:
        return None
    out: dict[str, Any] = obj.to_dict()
    return out


def apply(obj: dict[str, Any], live: Any = ...) -> dict[str, Any] | None:
    """Make the fields we own equal `obj`, removing those we no longer set. Returns the object
    as written, or None when no write was needed. `live`: the object as a cache holds it (None:
    absent); read from the API server when not given."""
    obj = stamped(obj)
    meta = obj["metadata"]
    if live is ...:
        live = get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    if up_to_date(obj, live):
        return None
    # Counted here, not by decorator: a skipped apply makes no request, and the kind is the
    # object's (a label of the live object would be a new series per object version).
    with telemetry.api_call("apply", obj["kind"]):
        return _apply(obj, live)


def _apply(obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    meta = obj["metadata"]
    res = resource(obj["apiVersion"], obj["kind"])
    ssa = functools.partial(
        res.server_side_apply,
        body=apply_body(obj),
        name=meta["name"],
        namespace=meta.get("namespace"),
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        query_params=[("fieldValidation", "Strict")],
    )
    try:
        written = ssa()
    except ApiException as e:
        if e.status != 422 or live is None:
            raise
        # Someone else's edit of a keyed list item (a Service port changed in place) leaves
        # their item beside ours, which the API server refuses. A JSON merge patch replaces
        # whole lists with ours; the apply after it takes the fields back into our ownership.
        res.patch(
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )
        written = ssa()
    out: dict[str, Any] = written.to_dict()
    return out


def namespace_terminating(e: ApiException) -> bool:
    return e.status == 403 and "NamespaceTerminating" in str(e.body)


@telemetry.counted("list")
def list_objects(
    api_version: str, kind: str, namespace: str | None, selector: str
) -> list[dict[str, Any]]:
    items = resource(api_version, kind).get(namespace=namespace, label_selector=selector)
    return [i.to_dict() for i in items.items]


@telemetry.counted("delete")
def delete(api_version: str, kind: str, name: str, namespace: str | None) -> None:
    with contextlib.suppress(NotFoundError):
        resource(api_version, kind).delete(name=name, namespace=namespace)


__all__ = [
    "APPLIED_ANNOTATION",
    "ApiException",
    "apply",
    "contains",
    "delete",
    "get",
    "has_kind",
    "list_and_watch",
    "list_objects",
    "namespace_terminating",
    "patch_status",
    "stamped",
    "up_to_date",
]


@telemetry.counted("patch_status")
def patch_status(
    api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
) -> None:
    resource(api_version, kind).status.patch(
        name=name,
        namespace=namespace,
        body={"status": status},
        content_type="application/merge-patch+json",
    )


def apply_status(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    status: dict[str, Any],
    manager: str,
) -> None:
    """Server-side apply of the `status` fields `manager` owns: fields it applied before and
    left out now are removed; other managers' fields (and list entries, in keyed lists) stay."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    body = {"apiVersion": api_version, "kind": kind, "metadata": meta, "status": status}
    try:
        with telemetry.api_call("apply-status", kind):
            resource(api_version, kind).status.server_side_apply(
                body=apply_body(body),
                name=name,
                namespace=namespace,
                field_manager=manager,
                force_conflicts=True,
            )
    except NotFoundError:
        return  # deleted while this pass ran: no status to tell


def list_and_watch(
    api_version: str,
    kind: str,
    namespace: str | None = None,
    selector: str | None = None,
    timeout_seconds: int = 60,
) -> Iterator[tuple[str, Any]]:
    """A reflector's one session: ("SYNC", [every object that exists now]), then (event type,
    object) from the watch that continues that list. The caller calls again after it ends or
    breaks; the new SYNC replaces all it knew, so a deletion while disconnected is not lost."""
    res = resource(api_version, kind)
    listed = res.get(namespace=namespace, label_selector=selector)
    yield "SYNC", [dict(i.to_dict()) for i in listed.items]
    for event in res.watch(
        namespace=namespace,
        label_selector=selector,
        resource_version=listed.metadata.resourceVersion,
        timeout=timeout_seconds,
    ):
        yield str(event["type"]), dict(event["raw_object"])


@telemetry.counted("scale")
def scale(api_version: str, kind: str, name: str, namespace: str, replicas: int) -> None:
    """Write replicas through the /scale subresource, as KEDA and the HPA do."""
    resource(api_version, kind).subresources["scale"].patch(
        body={"spec": {"replicas": replicas}},
        name=name,
        namespace=namespace,
        content_type="application/merge-patch+json",
    )
