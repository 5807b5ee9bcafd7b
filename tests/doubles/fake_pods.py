"""Fake vLLM replicas for pods that exist only on kwok's fake nodes.

One FakeVllm per scheduled pod, each on its own loopback address (kwok's pod IPs route nowhere
here, and EndpointSlices refuse loopback addresses, so the pod is the key, not its IP). A
Prometheus file_sd file lists them with the `namespace` and `pod` labels a PodMonitor gives, so
Prometheus scrapes exactly the pods Kubernetes says are Ready, and `dial()` lets the gateway
reach the replica behind an EndpointSlice entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from doubles.fake_vllm import FakeVllm, make_app
from inference_operator.bench.simulator.profiles import PROFILES, EngineProfile
from inference_operator.kube import apply as kube

PORT = 8000


def pod_serving(pod: dict[str, Any]) -> bool:
    """Bound to a node and not going away. The fake starts then, not at Ready: a real vLLM
    answers before its readiness probe passes, and Ready is what the EndpointSlice follows."""
    return bool(pod["spec"].get("nodeName")) and not pod["metadata"].get("deletionTimestamp")


def served_model(pod: dict[str, Any]) -> str:
    for container in pod["spec"]["containers"]:
        args = [*(container.get("command") or []), *(container.get("args") or [])]
        for i, arg in enumerate(args[:-1]):
            if arg == "--served-model-name":
                return str(args[i + 1])
    return str(pod["metadata"]["name"])


def lora_settings(pod: dict[str, Any]) -> dict[str, Any]:
    """What vLLM would make of the pod's LoRA flags and environment."""
    container = pod["spec"]["containers"][0]
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    max_loras = args[args.index("--max-loras") + 1] if "--max-loras" in args[:-1] else "1"
    return {
        "lora": "--enable-lora" in args,
        "max_loras": int(max_loras),
        "runtime_lora_updates": str(env.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING")).lower()
        in ("true", "1"),
    }


@dataclass
class Replica:
    pod: str
    host: str
    fake: FakeVllm
    runner: web.AppRunner


class FakePods:
    def __init__(
        self,
        namespace: str,
        selector: str,
        sd_file: Path,
        profile: EngineProfile | None = None,
        speed: float = 1.0,
        subnet: str = "127.0.1",
        period: float = 0.1,
        on_pod_ip: bool = False,
    ) -> None:
        self.namespace, self.selector, self.sd_file = namespace, selector, sd_file
        self.profile = profile or PROFILES["llama-3.1-8b/h100"]
        self.speed, self.subnet, self.period = speed, subnet, period
        # Listen on the pod's own IP instead of a loopback address of our choosing: for tests
        # that made kwok's pod CIDR local in their own network namespace, so the operator reaches
        # a replica at the pod's IP as it would in a cluster.
        self.on_pod_ip = on_pod_ip
        self.replicas: dict[str, Replica] = {}
        self._free = list(range(2, 255))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, daemon=True, name="fake-pods")

    @staticmethod
    def with_max_num_seqs(profile: EngineProfile, n: int) -> EngineProfile:
        return dataclasses.replace(profile, max_num_seqs=n)

    def start(self) -> FakePods:
        self._write_sd()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def dial(self, pod: str, address: str, port: int) -> str:
        """For the gateway: the fake replica standing in for this pod (a closed port if none)."""
        with self._lock:
            r = self.replicas.get(pod)
        return f"{r.host}:{PORT}" if r else f"{self.subnet}.1:1"

    def adapters(self) -> dict[str, dict[str, str]]:
        """The LoRA adapters each running replica serves: pod -> {name: path}."""
        with self._lock:
            return {pod: dict(r.fake.adapters) for pod, r in self.replicas.items()}

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pods = await asyncio.to_thread(
                    kube.list_objects, "v1", "Pod", self.namespace, self.selector
                )
            except (kube.ApiException, OSError):
                pods = None
            if pods is not None:
                try:
                    await self._sync(pods)
                except Exception:  # keep standing in; say what went wrong
                    traceback.print_exc()
            await asyncio.sleep(self.period)
        for pod in list(self.replicas):
            await self._stop_replica(pod)

    async def _sync(self, pods: list[dict[str, Any]]) -> None:
        ready = {
            p["metadata"]["name"]: p
            for p in pods
            if pod_serving(p) and (not self.on_pod_ip or (p.get("status") or {}).get("podIP"))
        }
        changed = False
        for name in list(self.replicas):
            if name not in ready:
                await self._stop_replica(name)
                changed = True
        for name, pod in ready.items():
            if name not in self.replicas:
                host = pod["status"]["podIP"] if self.on_pod_ip else None
                await self._start_replica(name, served_model(pod), lora_settings(pod), host)
                changed = True
        if changed:
            self._write_sd()

    async def _start_replica(
        self, pod: str, model: str, lora: dict[str, Any] | None = None, host: str | None = None
    ) -> None:
        host = host or f"{self.subnet}.{self._free.pop(0)}"
        fake = FakeVllm(model, self.profile, self.speed, **(lora or {}))
        runner = web.AppRunner(make_app(fake), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, PORT).start()
        with self._lock:
            self.replicas[pod] = Replica(pod, host, fake, runner)

    async def _stop_replica(self, pod: str) -> None:
        with self._lock:
            r = self.replicas.pop(pod)
        # The pod is gone: its connections go with it, as they would on a real node.
        await r.runner.shutdown()
        await r.runner.cleanup()
        if r.host.startswith(self.subnet + "."):
            self._free.append(int(r.host.rsplit(".", 1)[1]))

    def _write_sd(self) -> None:
        with self._lock:
            groups = [
                {
                    "targets": [f"{r.host}:{PORT}"],
                    "labels": {"namespace": self.namespace, "pod": r.pod},
                }
                for r in self.replicas.values()
            ]
        tmp = self.sd_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, self.sd_file)
