"""Discovery keeps the gateway's routes and targets equal to what the API server holds, across
broken watches: an EndpointSlice deleted while the watch reconnects is dropped by the next
session's list (a watch that only resumes would never send its DELETED)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inference_operator.gateway import discovery as disc
from inference_operator.gateway.proxy import Gateway


def _slice(name: str, pod: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "serving",
            "labels": {disc.SERVICE_NAME: "llama"},
        },
        "ports": [{"name": "http", "port": 8000}],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": True}, "targetRef": {"name": pod}}
        ],
    }


INFD = {"metadata": {"name": "llama", "namespace": "serving"}, "spec": {"model": {}}}


class Broken(Exception):
    """The watch stream dropped."""


def test_a_slice_deleted_during_a_reconnect_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions: dict[str, Iterator[list[tuple[str, Any]]]] = {
        "InferenceDeployment": iter([[("SYNC", [INFD])]]),
        # Session 1: two slices listed, then the stream breaks. Meanwhile slice b is deleted.
        # Session 2 lists only a.
        "EndpointSlice": iter(
            [
                [("SYNC", [_slice("a", "pod-a", "10.0.0.1"), _slice("b", "pod-b", "10.0.0.2")])],
                [("SYNC", [_slice("a", "pod-a", "10.0.0.1")])],
            ]
        ),
    }
    synced = threading.Event()
    stop = threading.Event()

    def list_and_watch(_api: str, kind: str, *_: Any, **__: Any) -> Iterator[tuple[str, Any]]:
        try:
            events = next(sessions[kind])
        except StopIteration:
            if kind == "EndpointSlice":
                synced.set()
            stop.wait(5)
            return
        yield from events
        raise Broken

    monkeypatch.setattr(disc.kube, "list_and_watch", list_and_watch)
    monkeypatch.setattr(disc, "_RETRY_SECONDS", 0.01)

    async def scenario() -> list[str]:
        gateway = Gateway()
        d = disc.Discovery(gateway, asyncio.get_running_loop())
        d.start()
        while not synced.is_set():
            await asyncio.sleep(0.01)
        for _ in range(100):  # the last publish is scheduled onto this loop
            await asyncio.sleep(0.01)
        d.stop.set()
        stop.set()
        return sorted(gateway.routes["llama"].pool.slots)

    assert asyncio.run(scenario()) == ["pod-a"]
