"""``qbench history``: each commit of a range benchmarked; the steps along history, told from noise."""

from __future__ import annotations

import argparse
import sys

from qbench.cli.common import add_machine, add_out, add_selection, fail, load, under_root, whole

HELP = "benchmark each commit of a range; report steps along history"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    add_machine(parser)
    parser.add_argument("range", nargs="?", help="git range, e.g. v0.1..main (default: the last 10 commits)")
    parser.add_argument("-n", "--max-count", type=whole(1), default=10, help="commits when no range is given")
    parser.add_argument("--rounds", type=whole(1), default=2, help="rounds per commit (default: %(default)s)")
    add_out(parser, "reports/history")


def execute(args: argparse.Namespace) -> int:
    from qbench.analysis.busy import from_file
    from qbench.analysis.regress import detect_steps
    from qbench.analysis.results import ResultsError, machine_info
    from qbench.measure.runner import (
        SAMPLES_PER_ROUND,
        RunError,
        UsageError,
        benchmark_commits,
        checkout_root,
        git,
        publish_asv,
        touches_measured,
    )
    from qbench.report import build_history_report

    try:
        root = checkout_root()
        spec = args.range or "HEAD"
        listed = (
            git(root, "rev-list", "--max-count", str(args.max_count), spec)
            if not args.range
            else git(root, "rev-list", args.range)
        )
    except RunError as exc:
        return fail(f"cannot list commits {args.range or ''}: {exc}", 2)
    hashes = list(reversed(listed.split()))
    if not hashes:
        return fail(f"the range {args.range!r} holds no commits", 2)
    print(
        f"qbench history: {len(hashes)} commits, {hashes[0][:8]} .. {hashes[-1][:8]} (already measured ones are "
        "skipped)"
    )
    try:
        outcome = benchmark_commits(
            hashes,
            quick=args.quick,
            bench=args.bench,
            rounds=args.rounds,
            machine=args.machine,
            skip_existing=True,
            log_name="qbench-history.log",
        )
    except UsageError as exc:
        return fail(str(exc), 2)
    except RunError as exc:
        return fail(str(exc), 2)
    results_dir = root / ".asv" / "results"
    try:
        frame, _ = load(results_dir, outcome.machine)
    except ResultsError as exc:
        return fail(str(exc), 2)
    frame = frame[frame["commit"].isin(hashes) & frame["env"].astype(str).str.startswith("virtualenv")]
    if frame.empty:
        return fail("no results for these commits (see .asv/qbench-history.log)", 2)
    asv_html, why = publish_asv(root)
    if asv_html is None:
        print(f"qbench: warning: asv publish failed, no link to asv's pages: {why}", file=sys.stderr)
    steps = detect_steps(
        frame, order=hashes, changed=lambda a, b: touches_measured(root, a, b), per_round=SAMPLES_PER_ROUND
    )
    out = under_root(root, args.out)
    busy = from_file(frame, outcome.busy)
    page = build_history_report(
        frame,
        steps,
        machine_info(results_dir, outcome.machine),
        out,
        machine=outcome.machine,
        commits=hashes,
        asv_html=asv_html,
        busy=busy,
    )
    if busy.is_busy:
        for line in busy.lines():
            print(line)
    mine = steps[steps["change"].isin(["regression", "improvement"])]
    for r in mine.itertuples(index=False):
        print(
            f"{r.change:<11} x{r.ratio:5.2f} at {r.commit[:8]} (t = {r.t:.0f}, noise "
            f"{100 * r.noise:.0f}% a round)  {r.benchmark} {r.params}"
        )
    aside = steps["change"].value_counts()
    extra = [f"{aside[k]} {k} (context)" for k in ("baseline slower", "baseline faster") if k in aside]
    if "no measured change" in aside:
        extra.append(f"{aside['no measured change']} at commits that changed no measured file (noise, set aside)")
    print(
        f"{len(mine)} step(s) of qbench's code" + (f"; also {', '.join(extra)}" if extra else "") + f"; report: {page}"
    )
    return 0
