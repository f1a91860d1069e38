"""The ``qbench`` command: one module per subcommand, orchestration only; the work lives in the library.

Each command module has ``HELP``, ``add_arguments(parser)`` and ``execute(args) -> exit status``; flags that
several commands share are functions in :mod:`qbench.cli.common` (as asv's ``common_args``).
"""

from __future__ import annotations

import argparse
import sys

from qbench.cli import compare, demo, history, model, report, run, tune
from qbench.cli.common import Parser

#: The subcommands, in the order ``qbench --help`` lists them.
COMMANDS = {
    "run": run,
    "report": report,
    "compare": compare,
    "history": history,
    "tune": tune,
    "model": model,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    from qbench import __version__

    parser = Parser(prog="qbench", description="Measure what quantization buys on this CPU.")
    parser.add_argument("--version", action="version", version=f"qbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP)
        module.add_arguments(command)
        command.set_defaults(func=module.execute)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
