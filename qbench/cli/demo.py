"""``qbench demo``: one random tensor quantized, with its error, memory and speed ratios, in seconds."""

from __future__ import annotations

import argparse

from qbench.cli.common import fail, whole

HELP = "quantize one random tensor; print error, memory and speed ratios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=whole(1), default=1 << 22, help="number of float32 elements (default 2**22)")


def execute(args: argparse.Namespace) -> int:
    from qbench.measure import demo

    try:
        demo.run_demo(size=args.size)
    except MemoryError:
        return fail(f"not enough memory for --size {args.size:,} (the demo holds about 14 bytes per element)")
    return 0
