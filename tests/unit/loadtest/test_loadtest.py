"""The load test against the fake vLLM server running as its own process on 127.0.0.2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference_operator.__main__ import main


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def fake_vllm() -> Iterator[str]:
    host = "127.0.0.2"
    port = _free_port(host)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "doubles.fake_vllm",
            "--host",
            host,
            "--port",
            str(port),
            "--model",
            "m",
        ],
        # The fake vLLM is a test double: it lives in tests/doubles, not in the package.
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://{host}:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sweep_finds_a_sustainable_rate_and_prints_targets(
    fake_vllm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "loadtest",
            "--url",
            fake_vllm,
            "--model",
            "m",
            "--rates",
            "2,4",
            "--duration",
            "3",
            "--prompt-tokens",
            "256",
            "--max-tokens",
            "24",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "one replica sustains 4 req/s" in out
    assert "requestsPerSecondPerReplica: 3.4" in out


def test_unknown_model_is_all_errors_and_no_rate_meets_the_slo(
    fake_vllm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "loadtest",
            "--url",
            fake_vllm,
            "--model",
            "other",
            "--rates",
            "2",
            "--duration",
            "1",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert "no rate met the SLO" in out


def test_bad_rates_are_named() -> None:
    assert main(["loadtest", "--url", "http://127.0.0.1:1", "--model", "m", "--rates", "fast"]) == 2
