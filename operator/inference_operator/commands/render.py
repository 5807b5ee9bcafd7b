"""`python -m inference_operator render -f FILE`: every object the operator would create for the
InferenceDeployments in FILE, as a YAML stream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from inference_operator.builders.plan import Available
from inference_operator.builders.render import render


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        type=Path,
        help="a YAML file with one or more InferenceDeployments ('-' for stdin)",
    )
    p.add_argument("--no-keda", action="store_true", help="as if KEDA were not installed")
    p.add_argument("--no-karpenter", action="store_true", help="as if Karpenter were not installed")
    p.add_argument(
        "--no-monitoring",
        action="store_true",
        help="as if the prometheus-operator CRDs were not installed",
    )
    p.add_argument(
        "--inference-pool",
        action="store_true",
        help="as if the Gateway API Inference Extension's InferencePool CRD were installed",
    )


def run(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if str(args.filename) == "-" else args.filename.read_text()
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 2
    available = Available(
        pod_monitor=not args.no_monitoring,
        keda=not args.no_keda,
        karpenter=not args.no_karpenter,
        inference_pool=args.inference_pool,
    )
    objects, problems = render(docs, available)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    if not objects:
        print("render: no InferenceDeployment in the input", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0
