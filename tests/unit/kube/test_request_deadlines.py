"""Requests to the API server end: one that is never answered fails instead of holding the
operator's pass (and its one periodic timer) for good."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import urllib3
from kubernetes import client

from inference_operator.kube import apply as kube


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that completes the TCP handshake (the kernel's listen backlog) and never
    answers a byte: a frozen API server, or a half-open connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("watch", [False, True])
def test_a_request_nobody_answers_times_out(
    silent_server: str, watch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", (1.0, 0.5))
    monkeypatch.setattr(kube, "WATCH_TIMEOUT", (1.0, 0.7))
    api = kube._DeadlineApiClient(client.Configuration(host=silent_server))
    api.configuration.retries = 0
    core = client.CoreV1Api(api)
    with pytest.raises(urllib3.exceptions.HTTPError) as e:
        if watch:
            core.list_namespace(watch=True, timeout_seconds=60)
        else:
            core.list_namespace()
    assert "timed out" in str(e.value), e.value
    assert "0.7" in str(e.value) if watch else "0.5" in str(e.value), e.value


def test_a_deadline_the_caller_gives_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def record(self: object, *args: object) -> None:
        seen.append(args[-1])  # (method, url, headers, body, post params, deadline)

    monkeypatch.setattr(client.ApiClient, "call_api", record)
    api = kube._DeadlineApiClient(client.Configuration(host="http://127.0.0.1:1"))
    api.call_api("GET", "http://127.0.0.1:1/api/v1/namespaces", _request_timeout=3)
    api.call_api("GET", "http://127.0.0.1:1/api/v1/namespaces")
    api.call_api("GET", "http://127.0.0.1:1/api/v1/namespaces?watch=true")
    assert seen == [3, kube.REQUEST_TIMEOUT, kube.WATCH_TIMEOUT]
