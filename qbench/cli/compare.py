"""``qbench compare``: two commits benchmarked in their own environments, interleaved; exit 1 on a regression."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from qbench.cli.common import add_machine, add_selection, fail, load, time_factor, whole

if TYPE_CHECKING:
    from qbench.analysis.regress import Rule

HELP = "benchmark two commits in their own environments; exit 1 on a regression"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    add_machine(parser)
    parser.add_argument("base", help="branch, tag or commit to compare against")
    parser.add_argument("head", nargs="?", default="HEAD", help="branch, tag or commit to test (default: HEAD)")
    parser.add_argument(
        "--factor",
        type=time_factor,
        help="slower than this time ratio, and significant, is a regression (default: 1.10; the gate holds "
        "the points it counted to 1.05 in instructions, and every point to 2.0 in time)",
    )
    parser.add_argument(
        "--rounds",
        type=whole(1),
        default=5,
        help="rounds, each in fresh processes, interleaved across the two commits; the significance test "
        "needs at least 4 (default: %(default)s)",
    )
    parser.add_argument(
        "--gate",
        action="store_true",
        help="the CI gate: qbench's kernels only, 1 thread, one size in cache and one beyond L3 each; in cache "
        "the instructions per call (counted under valgrind) decide, from memory the time",
    )
    parser.add_argument("--out", help="report folder (default: reports/compare-<base8>-<head8>)")


def rule_of(args: argparse.Namespace) -> Rule:
    """The factors of ``compare``: ``--factor`` on time (default 1.10); the gate's own where it counted
    instructions (:data:`grid.GATE_INSTRUCTIONS_FACTOR`) and from memory, never below ``--factor``."""
    from qbench.analysis.regress import Rule
    from qbench.cases import grid

    factor = args.factor or 1.10
    if not args.gate:
        return Rule(time=factor)
    return Rule(
        time=factor,
        memory=max(factor, grid.GATE_TIME_FACTOR),
        counted=max(factor, grid.GATE_TIME_FACTOR),
        instructions=grid.GATE_INSTRUCTIONS_FACTOR,
        from_memory=grid.gate_from_memory,
    )


def execute(args: argparse.Namespace) -> int:
    import time

    from qbench.analysis.busy import from_file
    from qbench.analysis.regress import Verdict, compare_commits
    from qbench.analysis.results import ResultsError, machine_info
    from qbench.measure.runner import RunError, UsageError, benchmark_commits, checkout_root
    from qbench.report import build_compare_report

    started = time.time() * 1000
    if args.rounds < 4:
        return fail("--rounds must be at least 4: fewer rounds cannot show a significant difference", 2)
    try:
        outcome = benchmark_commits(
            [args.base, args.head],
            quick=args.quick or args.gate,
            bench=args.bench,
            rounds=args.rounds,
            machine=args.machine,
            log_name="qbench-compare.log",
            gate=args.gate,
        )
    except UsageError as exc:
        return fail(str(exc), 2)
    except RunError as exc:
        return fail(str(exc), 2)
    base, head = outcome.commit.split(",")
    root = checkout_root()
    try:
        frame, _ = load(root / ".asv" / "results", outcome.machine)
    except ResultsError as exc:
        return fail(str(exc), 2)
    # Only what this run measured: earlier runs may have left other benchmarks' results for these commits.
    fresh = frame[frame["started_at"].notna() & (frame["started_at"] >= started - 1000)]
    rule = rule_of(args)
    table = compare_commits(fresh, base, head, rule.time, rounds=args.rounds, rule=rule)
    if table.empty:
        return fail("no benchmark was measured at both commits (does -b match any? see .asv/qbench-compare.log)", 2)
    out = Path(args.out or f"reports/compare-{base[:8]}-{head[:8]}")
    out = out if out.is_absolute() else root / out
    verdict = Verdict(table, rule.time, rule.instructions)
    busy = from_file(fresh, outcome.busy)
    page = build_compare_report(
        table,
        machine_info(root / ".asv" / "results", outcome.machine),
        out,
        base=base,
        head=head,
        factor=rule.time,
        machine=outcome.machine,
        instructions=rule.instructions,
        verdict=verdict.lines(),
        busy=busy,
    )
    print(
        f"\ncompared {len(table)} benchmark results, {base[:8]} (base) -> {head[:8]} (head), "
        f"in {outcome.seconds / 60:.1f} min"
    )
    for line in verdict.lines():
        print(line)
    if busy.is_busy:  # a gate on a busy runner says so beside its verdict
        for line in busy.lines():
            print(line)
    if args.gate and table["instructions_ratio"].isna().all():
        print(
            "no instructions were counted (is valgrind installed? see .asv/qbench-compare.log): cache-resident "
            f"points were judged by time alone, at x{rule.time:g}"
        )
    print(f"report: {page}")
    return verdict.exit_code
