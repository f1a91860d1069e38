"""The ``qbench`` command: orchestration only; the work lives in the library modules."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from qbench.demo import run_demo

    run_demo(size=args.size)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbench", description="Measure what quantization buys on this CPU.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="quantize one random tensor; print error, memory and speed ratios")
    demo.add_argument("--size", type=int, default=1 << 22, help="number of float32 elements (default 2**22)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
