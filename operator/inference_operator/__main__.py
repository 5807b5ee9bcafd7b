"""Command line: `python -m inference_operator <command>`.

run      run the operator against the cluster in KUBECONFIG (or in-cluster config)
render   print every object the operator would create for InferenceDeployments in a file
plan     plan accelerator memory and tensor parallelism for a model
bench    replay a request trace through scaling policies on the fleet simulator
loadtest measure the request rate one replica sustains within a latency SLO
gateway  serve the OpenAI-compatible gateway in front of the models
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _run(args: argparse.Namespace) -> int:
    from inference_operator.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as e:
        print(e, file=sys.stderr)
        return 2
    from inference_operator import heap

    # First of all: this may re-execute the process under jemalloc (INFOP_ALLOCATOR).
    try:
        heap.use_jemalloc(settings.allocator)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 2
    # Before kopf starts its handler threads, each of which would get an arena of its own.
    heap.limit_arenas(2)
    import kopf

    from inference_operator import runtime

    # Before the handlers read them (their decorators need the periods): parsed once.
    runtime.use(settings)
    from inference_operator import handlers  # noqa: F401  (registers the handlers)
    from inference_operator.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    liveness = (
        f"http://{settings.bind_host}:{settings.health_port}/healthz"
        if settings.health_port
        else None
    )
    trimmer = (
        heap.Trimmer(settings.heap_trim_seconds).start() if settings.heap_trim_seconds else None
    )
    try:
        kopf.run(
            standalone=settings.standalone,
            namespaces=[settings.namespace] if settings.namespace else [],
            clusterwide=settings.namespace is None,
            liveness_endpoint=liveness,
        )
    finally:
        if trimmer is not None:
            trimmer.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inference_operator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the operator")
    from inference_operator.bench import cli as bench_cli

    bench_cli.add_arguments(sub.add_parser("bench", help="replay a trace through scaling policies"))
    from inference_operator.commands import plan as plan_cli

    plan_cli.add_arguments(sub.add_parser("plan", help="plan accelerator memory for a model"))
    from inference_operator.commands import render as render_cli

    render_cli.add_arguments(sub.add_parser("render", help="print the objects for a YAML file"))
    from inference_operator.loadtest import run as loadtest_cli

    loadtest_cli.add_arguments(sub.add_parser("loadtest", help="measure what one replica sustains"))
    from inference_operator.gateway import run as gateway_cli

    gateway_cli.add_arguments(sub.add_parser("gateway", help="serve the gateway"))
    args = parser.parse_args(argv)
    if args.command in (None, "run"):
        return _run(args)
    if args.command == "bench":
        return bench_cli.run(args)
    if args.command == "plan":
        return plan_cli.run(args)
    if args.command == "render":
        return render_cli.run(args)
    if args.command == "gateway":
        return gateway_cli.run(args)
    if args.command == "loadtest":
        return loadtest_cli.run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
