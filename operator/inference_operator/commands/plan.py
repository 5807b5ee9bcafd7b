"""`python -m inference_operator plan`: print a capacity plan as a table."""

from __future__ import annotations

import argparse
import sys

from inference_operator.capacity.catalogue import MODELS, find_model
from inference_operator.capacity.plan import BYTES_PER_PARAM, Request, parse_parameters, plan


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help=f"a catalogue name ({', '.join(MODELS)}), a model URI, or a size like 8B",
    )
    p.add_argument("--dtype", default="bfloat16", choices=sorted(BYTES_PER_PARAM))
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="full-length sequences one replica must hold at once",
    )
    p.add_argument("--accelerator", default="nvidia", choices=["nvidia", "neuron"])
    p.add_argument("--types", default="", help="comma-separated GPU names, families or types")


def run(args: argparse.Namespace) -> int:
    arch = MODELS.get(args.model) or find_model(args.model)
    if arch is not None:
        params = arch.params_b
    else:
        try:
            params = parse_parameters(args.model)
        except ValueError:
            print(
                f"plan: --model {args.model!r} is neither in the catalogue "
                f"({', '.join(MODELS)}) nor a size like 8B or 500M",
                file=sys.stderr,
            )
            return 2
    if args.max_model_len < 128 or args.concurrency < 1:
        print("plan: --max-model-len must be >= 128 and --concurrency >= 1", file=sys.stderr)
        return 2
    types = tuple(t for t in args.types.split(",") if t)
    p = plan(
        Request(
            params, args.dtype, args.max_model_len, args.concurrency, args.accelerator, types, arch
        )
    )
    print(f"model {arch.name if arch else args.model}: {params:g}B parameters, {args.dtype}")
    print(f"weights            {p.weights_gib:8.2f} GiB")
    print(f"KV cache per token {p.kv_bytes_per_token / 1024:8.0f} KiB")
    print(
        f"KV cache needed    {p.kv_gib_per_replica:8.2f} GiB "
        f"({args.concurrency} x {args.max_model_len} tokens)"
    )
    if not p.fits:
        print(f"does not fit: {p.reason}")
        return 1
    print(f"devices per replica {p.devices_per_replica} (tensor parallel size)\n")
    print(
        f"{'instance':<16} {'accelerator':<12} {'devices':>7} {'per replica':>11} "
        f"{'KV GiB':>7} {'max seqs':>8}"
    )
    for o in p.options:
        i = o.instance
        print(
            f"{i.name:<16} {i.accelerator:<12} {i.devices:>7} {o.devices_per_replica:>11} "
            f"{o.kv_gib_available_per_replica:>7.1f} {o.max_concurrency:>8}"
        )
    return 0
