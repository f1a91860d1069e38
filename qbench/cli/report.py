"""``qbench report``: pages from stored asv results, of one machine or of several side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.cli.common import add_machine, add_out, fail, load, write_report

HELP = "build plots and pages from asv result files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_machine(parser)
    parser.add_argument(
        "--results",
        nargs="+",
        default=[".asv/results"],
        metavar="DIR",
        help="asv results folder(s), merged; several machines give a page comparing them (default: .asv/results)",
    )
    add_out(parser, "reports/latest")
    parser.add_argument("--commit", help="commit for the main plots (default: the newest measured)")
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="JSON",
        help="model.json files of qbench model from several machines: one page comparing them (instead of asv results)",
    )
    parser.add_argument(
        "--readme-table",
        action="store_true",
        help="print the peers comparison as a Markdown table (for the README) and exit",
    )


def _models(args: argparse.Namespace) -> int:
    import json

    from qbench.report.runtime import build_across_machines

    documents = []
    for name in args.models:
        try:
            doc = json.loads(Path(name).read_text())
            doc["variants"], doc["machine_name"], doc["verdict"]  # noqa: B018 - the keys a page needs
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return fail(f"{name}: not a model.json written by qbench model ({type(exc).__name__}: {exc})", 2)
        documents.append(doc)
    index = build_across_machines(documents, Path(args.out))
    print(f"wrote {index} ({len(documents)} model runs side by side)")
    return 0


def execute(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.models:
        return _models(args)

    from qbench.analysis.results import ResultsError, machine_info
    from qbench.report import readme_table
    from qbench.report.machines import build_machines_report

    frames, infos = [], {}
    for folder in map(Path, args.results):
        try:
            frame, _ = load(folder, args.machine, several=True)
        except ResultsError as exc:
            return fail(str(exc))
        frames.append(frame)
        for machine in frame["machine"].unique():
            infos.setdefault(machine, machine_info(folder, machine))  # the first folder that has it describes it
    frame = pd.concat(frames, ignore_index=True)
    machines = sorted(frame["machine"].unique())
    out = Path(args.out)
    if len(machines) == 1:
        if args.readme_table:
            print(readme_table(frame, infos[machines[0]], args.commit), end="")
            return 0
        return write_report(frame, infos[machines[0]], out, args.commit)
    if args.readme_table or args.commit:
        flag = "--readme-table" if args.readme_table else "--commit"
        return fail(f"{flag} reads one machine; the results hold {', '.join(machines)}: add --machine NAME", 2)
    index = build_machines_report(frame, infos, out)
    print(f"wrote {index} ({len(machines)} machines side by side; each one's own report in its folder)")
    return 0
