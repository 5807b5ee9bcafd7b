"""A real Prometheus on a free loopback port, for tests and the local demo: Debian's 2.42 or the
Prometheus 3 that hack/build-tools.sh builds. They scrape vLLM's metric names differently (2.42
asks for OpenMetrics first and stores `vllm_x`), so the e2e tests run on both."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from localcluster import build_tools, free_port

# The versions the e2e tests run on, by the name tests use.
VERSIONS = ("2.42", "3")
# How each stores vLLM's `vllm:x` names scraped from prometheus_client's negotiating app, as
# measured by tests/e2e/test_promql.py (docs/autoscaling.md quotes it): a change here is a change
# users' dashboards see.
STORED_PREFIX = {"2.42": "vllm_", "3": "vllm:"}


def prometheus_binary(version: str) -> str:
    if version == "3":
        return str(build_tools() / "prometheus3")
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    return binary


class LocalPrometheus:
    def __init__(
        self, scrape_configs: list[dict[str, Any]], interval: str = "1s", version: str = "2.42"
    ) -> None:
        self.version = version
        self.state = Path(tempfile.mkdtemp(prefix="infop-prom-"))
        self.config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": scrape_configs,
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.state / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 60) -> LocalPrometheus:
        binary = prometheus_binary(self.version)
        (self.state / "prometheus.yml").write_text(yaml.safe_dump(self.config))
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.state / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.state / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=(self.state / "log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready:\n{self.log[-2000:]}")

    def kill(self) -> None:
        """Stop the process only (an outage); start() brings it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.state, ignore_errors=True)
