"""``qbench run``: the asv suite on this checkout, then the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.cli.common import add_machine, add_out, add_selection, fail, load, thread_list, under_root, write_report

HELP = "run the asv benchmark suite on this checkout and build the report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    add_machine(parser)
    add_out(parser, "reports/latest", "report folder, replaced as a whole")
    parser.add_argument(
        "--threads", metavar="N[,N...]", type=thread_list, help="thread counts to sweep (default: 1 and all cores)"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="measure uncommitted changes (recorded under the current commit hash)",
    )


def print_summary(frame, out: Path, commit: str, info: dict) -> list[str]:
    """Print the run's headline numbers and the report's path; return the failed benchmarks."""
    from qbench.report import run_summary, select

    for line in run_summary(frame, commit, info.get("caches", {}), info.get("busy_runs", {}).get(commit[:8])):
        print(line)
    print(f"\nreport: {out / 'index.html'}")
    return sorted(select(frame[frame["commit"] == commit], status="failed")["benchmark"].unique())


def execute(args: argparse.Namespace) -> int:
    from qbench.analysis.results import ResultsError, machine_info
    from qbench.measure.runner import RunError, UsageError, checkout_root, run_suite
    from qbench.ops import tuning

    if tuning.load() is None:
        print(f"note: this machine is not tuned; qbench's parallel switch is {tuning.summary()}")
    try:
        outcome = run_suite(
            quick=args.quick, bench=args.bench, threads=args.threads, allow_dirty=args.allow_dirty, machine=args.machine
        )
    except UsageError as exc:
        return fail(str(exc), 2)
    except RunError as exc:
        return fail(str(exc))
    root = checkout_root()
    results_dir = root / ".asv" / "results"
    out = under_root(root, args.out)
    print(f"suite finished in {outcome.seconds / 60:.1f} min; building the report")
    try:
        frame, machine = load(results_dir, outcome.machine)
    except ResultsError as exc:
        return fail(str(exc))
    info = machine_info(results_dir, machine)
    code = write_report(frame, info, out, outcome.commit)
    if code:
        return code
    failed = print_summary(frame, out, outcome.commit, info)
    if failed or outcome.failed:
        names = ", ".join(failed or outcome.failed)
        return fail(f"benchmarks failed: {names} (details in .asv/qbench-run.log); the report was built from the rest")
    return 0
