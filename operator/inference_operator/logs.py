"""structlog set-up: JSON lines in the cluster, readable console output locally."""

from __future__ import annotations

import logging

import structlog


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    # Tracebacks as plain text, never with local variables: structlog's console default (rich,
    # show_locals) rendered the locals of a failed kopf watcher (every stream of 5,000 objects)
    # for over ten minutes with the event loop blocked (found by hack/bench_operator.py --restart).
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        # exc_info becomes a plain "exception" string (no locals) that JSON can carry.
        shared.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # kopf and the kubernetes client log through the standard library; render them alike.
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
