"""The ``qbench`` command: orchestration only; the work lives in the library modules."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def _fail(message: str, code: int = 1) -> int:
    print(f"qbench: error: {message}", file=sys.stderr)
    return code


def _demo(args: argparse.Namespace) -> int:
    from qbench.demo import run_demo

    run_demo(size=args.size)
    return 0


def _print_summary(out: Path, commit: str, machine: str, results_dir: Path) -> list[str]:
    """Print the headline numbers (a cache-sized and a DRAM-sized array); return the failed benchmarks."""
    from qbench.report import _timings, speedup_table, summary_table
    from qbench.results import load_results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = load_results(results_dir, machine=machine, commit=commit)
    t = _timings(frame)
    table = summary_table(t)
    if not table.empty:
        sizes = sorted(table["size"].unique())
        picks = [s for s in (2**14, sizes[-1]) if s in sizes]
        shown = table[table["size"].isin(picks)]
        print("\nkernel           dtype              size       GB/s   x NumPy  % of ceiling")
        for r in shown.to_dict("records"):
            print(
                f"{r['kernel']:<16} {r['dtype']:<18} {r['size']:>10,} {r['GB/s']:>8.2f} {r['x NumPy']:>8.1f} "
                f"{r['% of ceiling']:>7.0f} ({r['ceiling']})"
            )
    sp = speedup_table(t)
    if not sp.empty:
        print("\n8-bit over float32 (elements/s, qbench, 1 thread):")
        for r in sp[sp["threads"] == 1].sort_values(["kernel", "size"]).itertuples(index=False):
            print(f"  {r.kernel:<11} {r.pair:<34} {r.size:>10,}  {r.speedup:5.2f}x")
    print(f"\nreport: {out / 'index.html'}")
    return sorted(frame.loc[frame["status"] == "failed", "benchmark"].unique())


def _run(args: argparse.Namespace) -> int:
    from qbench.runner import RunError, checkout_root, run_suite

    try:
        outcome = run_suite(
            quick=args.quick, bench=args.bench, threads=args.threads, allow_dirty=args.allow_dirty, machine=args.machine
        )
    except RunError as exc:
        return _fail(str(exc))
    root = checkout_root()
    results_dir = root / ".asv" / "results"
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    print(f"suite finished in {outcome.seconds / 60:.1f} min; building the report")
    code = _build(results_dir, out, outcome.machine, outcome.commit)
    if code:
        return code
    failed = _print_summary(out, outcome.commit, outcome.machine, results_dir)
    if failed or outcome.failed:
        names = ", ".join(failed or outcome.failed)
        return _fail(f"benchmarks failed: {names} (details in .asv/qbench-run.log); the report was built from the rest")
    return 0


def _build(results_dir: Path, out: Path, machine: str | None, commit: str | None) -> int:
    from qbench.report import build_report
    from qbench.results import ResultsError, load_results, machine_info

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = load_results(results_dir, machine=machine)
        for w in caught:
            print(f"qbench: warning: {w.message}", file=sys.stderr)
    except ResultsError as exc:
        return _fail(str(exc))
    machines = sorted(frame["machine"].unique())
    if machine is None and len(machines) > 1:
        return _fail(f"results hold several machines ({', '.join(machines)}); pick one with --machine")
    machine = machine or machines[0]
    try:
        index = build_report(frame, machine_info(results_dir, machine), out, commit=commit)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"wrote {index}")
    return 0


def _report(args: argparse.Namespace) -> int:
    return _build(Path(args.results), Path(args.out), args.machine, args.commit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbench", description="Measure what quantization buys on this CPU.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the asv benchmark suite on this checkout and build the report")
    run.add_argument("--quick", action="store_true", help="reduced grid and few repeats (a few minutes)")
    run.add_argument("-b", "--bench", metavar="REGEX", help="only benchmarks whose name matches REGEX")
    run.add_argument(
        "--out", default="reports/latest", help="report folder, replaced as a whole (default: %(default)s)"
    )
    run.add_argument("--threads", metavar="N[,N...]", help="thread counts to sweep (default: 1 and all cores)")
    run.add_argument("--machine", help="asv machine name (default: this host's name)")
    run.add_argument(
        "--allow-dirty",
        action="store_true",
        help="measure uncommitted changes (recorded under the current commit hash)",
    )
    run.set_defaults(func=_run)

    report = sub.add_parser("report", help="build plots and pages from asv result files")
    report.add_argument("--results", default=".asv/results", help="asv results folder (default: %(default)s)")
    report.add_argument("--out", default="reports/latest", help="report folder (default: %(default)s)")
    report.add_argument("--machine", help="machine whose results to use (default: the only one)")
    report.add_argument("--commit", help="commit for the main plots (default: the newest measured)")
    report.set_defaults(func=_report)

    demo = sub.add_parser("demo", help="quantize one random tensor; print error, memory and speed ratios")
    demo.add_argument("--size", type=int, default=1 << 22, help="number of float32 elements (default 2**22)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
