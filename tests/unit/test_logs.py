"""Logged exceptions: plain tracebacks without local variables, in both formats."""

from __future__ import annotations

import io
import json
import logging

import pytest

from inference_operator.logs import configure_logging


def _log_failure(stream: io.StringIO, fmt: str) -> str:
    configure_logging(fmt, "INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    streams = {f"stream-{i}": list(range(50)) for i in range(2000)}  # noqa: F841 (a big local)
    try:
        raise RuntimeError("410 Expired")
    except RuntimeError:
        logging.getLogger("kopf.test").exception("watcher failed")
    return stream.getvalue()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_logged_exception_has_its_traceback_and_no_locals(fmt: str) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        out = _log_failure(io.StringIO(), fmt)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "watcher failed" in out
    assert "RuntimeError: 410 Expired" in out
    assert "stream-1999" not in out, "local variables rendered into the log"
    if fmt == "json":
        record = json.loads(out.strip().splitlines()[-1])
        assert "Traceback" in record["exception"]
