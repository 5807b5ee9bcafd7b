"""`python -m inference_operator render -f FILE`: every object the operator would create for the
InferenceDeployments in FILE, as a YAML stream, without a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inference_operator.api.models import InferenceDeploymentSpec
from inference_operator.builders.names import Owner
from inference_operator.builders.plan import Available, build_all
from inference_operator.capacity.assess import assess

# Not known before the API server creates the object; review tools ignore it.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


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


def _errors(kind: str, name: str, e: ValidationError) -> list[str]:
    return [
        f"{kind} {name}: spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} "
        f"(got {err.get('input')!r})"
        for err in e.errors()
    ]


def render(docs: list[Any], available: Available) -> tuple[list[dict[str, Any]], list[str]]:
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or doc.get("kind") != "InferenceDeployment":
            continue
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or f"document {i + 1}")
        if doc.get("apiVersion") != "infer.dev/v1alpha1":
            problems.append(
                f"InferenceDeployment {name}: apiVersion: {doc.get('apiVersion')!r}"
                " is not infer.dev/v1alpha1"
            )
            continue
        if not meta.get("name"):
            problems.append(f"InferenceDeployment {name}: metadata.name: Required value")
            continue
        try:
            spec = InferenceDeploymentSpec.model_validate(doc.get("spec") or {})
        except ValidationError as e:
            problems += _errors("InferenceDeployment", name, e)
            continue
        owner = Owner(name, str(meta.get("namespace") or "default"), PLACEHOLDER_UID)
        capacity, _ = assess(spec)
        out += build_all(owner, spec, available, capacity.get("instanceTypes") or None).apply
    return out, problems


def run(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if str(args.filename) == "-" else args.filename.read_text()
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 2
    available = Available(
        pod_monitor=not args.no_monitoring, keda=not args.no_keda, karpenter=not args.no_karpenter
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
