"""The ``qbench`` command: orchestration only; the work lives in the library modules."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qbench.regress import Rule


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (what was wrong, what is accepted) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def _thread_list(text: str) -> str:
    """An argparse type: thread counts ``N[,N...]``, each a whole number >= 1, as asv's environment wants them."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected thread counts like 1,4,16 (whole numbers >= 1), got {text!r}")
    return ",".join(str(n) for n in sorted({int(p) for p in parts}))


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time ratio above 1 such as 1.10, got {text!r}") from None
    if not value > 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a time ratio above 1 such as 1.10, got {text}")
    return value


def _fail(message: str, code: int = 1) -> int:
    print(f"qbench: error: {message}", file=sys.stderr)
    return code


def _demo(args: argparse.Namespace) -> int:
    from qbench.demo import run_demo

    try:
        run_demo(size=args.size)
    except MemoryError:
        return _fail(f"not enough memory for --size {args.size:,} (the demo holds about 14 bytes per element)")
    return 0


def _print_summary(frame, out: Path, commit: str, caches: dict[str, int]) -> list[str]:
    """Print the run's headline numbers and the report's path; return the failed benchmarks."""
    from qbench.report import run_summary, select

    for line in run_summary(frame, commit, caches):
        print(line)
    print(f"\nreport: {out / 'index.html'}")
    return sorted(select(frame[frame["commit"] == commit], status="failed")["benchmark"].unique())


def _run(args: argparse.Namespace) -> int:
    from qbench import tuning
    from qbench.results import ResultsError
    from qbench.runner import RunError, UsageError, checkout_root, run_suite

    if tuning.load() is None:
        print(f"note: this machine is not tuned; qbench's parallel switch is {tuning.summary()}")
    try:
        outcome = run_suite(
            quick=args.quick, bench=args.bench, threads=args.threads, allow_dirty=args.allow_dirty, machine=args.machine
        )
    except UsageError as exc:
        return _fail(str(exc), 2)
    except RunError as exc:
        return _fail(str(exc))
    root = checkout_root()
    results_dir = root / ".asv" / "results"
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    print(f"suite finished in {outcome.seconds / 60:.1f} min; building the report")
    try:
        frame, machine = _load(results_dir, outcome.machine)
    except ResultsError as exc:
        return _fail(str(exc))
    from qbench.results import machine_info

    info = machine_info(results_dir, machine)
    code = _write_report(frame, info, out, outcome.commit)
    if code:
        return code
    failed = _print_summary(frame, out, outcome.commit, info.get("caches", {}))
    if failed or outcome.failed:
        names = ", ".join(failed or outcome.failed)
        return _fail(f"benchmarks failed: {names} (details in .asv/qbench-run.log); the report was built from the rest")
    return 0


def _load(results_dir: Path, machine: str | None, several: bool = False):
    """(results of one machine, its name); files skipped while reading are named on stderr.

    Raises ResultsError when there are none, or several machines, none was chosen and ``several`` is False.
    """
    from qbench.results import ResultsError, load_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_results(results_dir, machine=machine)
    for w in caught:
        print(f"qbench: warning: {w.message}", file=sys.stderr)
    machines = sorted(frame["machine"].unique())
    if machine is None and len(machines) > 1 and not several:
        raise ResultsError(f"results hold several machines ({', '.join(machines)}); pick one with --machine")
    return frame, machine or machines[0]


def _write_report(frame, info: dict, out: Path, commit: str | None) -> int:
    from qbench.report import build_report

    try:
        index = build_report(frame, info, out, commit=commit)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"wrote {index}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import pandas as pd

    from qbench.report import readme_table
    from qbench.report.machines import build_machines_report
    from qbench.results import ResultsError, machine_info

    frames, infos = [], {}
    for folder in map(Path, args.results):
        try:
            frame, _ = _load(folder, args.machine, several=True)
        except ResultsError as exc:
            return _fail(str(exc))
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
        return _write_report(frame, infos[machines[0]], out, args.commit)
    if args.readme_table or args.commit:
        flag = "--readme-table" if args.readme_table else "--commit"
        return _fail(f"{flag} reads one machine; the results hold {', '.join(machines)}: add --machine NAME", 2)
    index = build_machines_report(frame, infos, out)
    print(f"wrote {index} ({len(machines)} machines side by side; each one's own report in its folder)")
    return 0


def _compare_rule(args: argparse.Namespace) -> Rule:
    """The factors of ``compare``: ``--factor`` on time (default 1.10); the gate's own where it counted
    instructions (:data:`grid.GATE_INSTRUCTIONS_FACTOR`) and from memory, never below ``--factor``."""
    from qbench.cases import grid
    from qbench.regress import Rule

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


def _compare(args: argparse.Namespace) -> int:
    import time

    from qbench.regress import Verdict, compare_commits
    from qbench.report import build_compare_report
    from qbench.results import ResultsError, machine_info
    from qbench.runner import RunError, UsageError, benchmark_commits, checkout_root

    started = time.time() * 1000
    if args.rounds < 4:
        return _fail("--rounds must be at least 4: fewer rounds cannot show a significant difference", 2)
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
        return _fail(str(exc), 2)
    except RunError as exc:
        return _fail(str(exc), 2)
    base, head = outcome.commit.split(",")
    root = checkout_root()
    try:
        frame, _ = _load(root / ".asv" / "results", outcome.machine)
    except ResultsError as exc:
        return _fail(str(exc), 2)
    # Only what this run measured: earlier runs may have left other benchmarks' results for these commits.
    fresh = frame[frame["started_at"].notna() & (frame["started_at"] >= started - 1000)]
    rule = _compare_rule(args)
    table = compare_commits(fresh, base, head, rule.time, rounds=args.rounds, rule=rule)
    if table.empty:
        return _fail("no benchmark was measured at both commits (does -b match any? see .asv/qbench-compare.log)", 2)
    out = Path(args.out or f"reports/compare-{base[:8]}-{head[:8]}")
    out = out if out.is_absolute() else root / out
    page = build_compare_report(
        table,
        machine_info(root / ".asv" / "results", outcome.machine),
        out,
        base=base,
        head=head,
        factor=rule.time,
        machine=outcome.machine,
        instructions=rule.instructions,
    )
    verdict = Verdict(table, rule.time, rule.instructions)
    print(
        f"\ncompared {len(table)} benchmark results, {base[:8]} (base) -> {head[:8]} (head), "
        f"in {outcome.seconds / 60:.1f} min"
    )
    for line in verdict.lines():
        print(line)
    if args.gate and table["instructions_ratio"].isna().all():
        print(
            "no instructions were counted (is valgrind installed? see .asv/qbench-compare.log): cache-resident "
            f"points were judged by time alone, at x{rule.time:g}"
        )
    print(f"report: {page}")
    return verdict.exit_code


def _history(args: argparse.Namespace) -> int:
    from qbench.regress import detect_steps
    from qbench.report import build_history_report
    from qbench.results import ResultsError, machine_info
    from qbench.runner import (
        SAMPLES_PER_ROUND,
        RunError,
        UsageError,
        benchmark_commits,
        checkout_root,
        git,
        publish_asv,
        touches_measured,
    )

    try:
        root = checkout_root()
        spec = args.range or "HEAD"
        listed = (
            git(root, "rev-list", "--max-count", str(args.max_count), spec)
            if not args.range
            else git(root, "rev-list", args.range)
        )
    except RunError as exc:
        return _fail(f"cannot list commits {args.range or ''}: {exc}", 2)
    hashes = list(reversed(listed.split()))
    if not hashes:
        return _fail(f"the range {args.range!r} holds no commits", 2)
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
        return _fail(str(exc), 2)
    except RunError as exc:
        return _fail(str(exc), 2)
    results_dir = root / ".asv" / "results"
    try:
        frame, _ = _load(results_dir, outcome.machine)
    except ResultsError as exc:
        return _fail(str(exc), 2)
    frame = frame[frame["commit"].isin(hashes) & frame["env"].astype(str).str.startswith("virtualenv")]
    if frame.empty:
        return _fail("no results for these commits (see .asv/qbench-history.log)", 2)
    asv_html, why = publish_asv(root)
    if asv_html is None:
        print(f"qbench: warning: asv publish failed, no link to asv's pages: {why}", file=sys.stderr)
    steps = detect_steps(
        frame, order=hashes, changed=lambda a, b: touches_measured(root, a, b), per_round=SAMPLES_PER_ROUND
    )
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    page = build_history_report(
        frame,
        steps,
        machine_info(results_dir, outcome.machine),
        out,
        machine=outcome.machine,
        commits=hashes,
        asv_html=asv_html,
    )
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


def _model(args: argparse.Namespace) -> int:
    import numba

    from qbench import modelscan, modeltime
    from qbench.machine import describe
    from qbench.modelfile import ModelError, open_model
    from qbench.report.model import build_model_report, headline, size_text, terminal_summary, with_speedups
    from qbench.timing import Ticker

    cores = numba.config.NUMBA_NUM_THREADS
    if args.threads and args.threads > cores:
        return _fail(f"--threads {args.threads} exceeds the {cores} threads Numba has on this machine", 2)
    threads = args.threads or cores
    numba.set_num_threads(threads)
    try:
        fmts = modelscan.formats(args.formats, args.calibration)
        model = open_model(args.path, args.channel_axis)
    except (ModelError, ValueError) as exc:
        return _fail(str(exc), 2)
    with model:
        values = sum(t.size for t in model.tensors)
        print(
            f"{model.path.name}: {len(model.tensors)} weight tensors, {values:,} values "
            f"({size_text(sum(t.stored_bytes for t in model.tensors))} stored), {len(fmts)} formats, "
            f"{threads} thread(s)"
        )
        ticker = Ticker("tensors", len(model.tensors))
        try:
            result = modelscan.scan(
                model, fmts, progress=lambda done, total, t: ticker.step(done / total, t.name), parallel=threads > 1
            )
        except ModelError as exc:
            ticker.close()
            return _fail(str(exc), 2)
        ticker.close()
        summary = modelscan.summarize(result, model)
        times = None
        counts = modeltime.shapes(model.tensors)
        if args.time and counts:
            variants = [f.timed_as for f in fmts if f.timed_as]
            print(f"timing {len(counts)} weight shape(s), GEMV and {args.batch}-row GEMM, side by side with float32")
            times = modeltime.time_shapes(
                counts, variants, batch=args.batch, threads=threads, progress=lambda s: print(f"  {s}", flush=True)
            )
        summary = with_speedups(summary, fmts, times, args.batch)
    notes = [f"skipped (NaN/inf values, kept in float32): {name}" for name in result.skipped]
    if args.time and not counts:
        notes.append("no tensor feeds a matrix product as far as the file says: nothing timed")
    info = describe()
    header = [
        ("model", f"{model.path.name} ({model.kind})"),
        ("weight tensors", f"{len(model.tensors)} ({values:,} values); {model.others} smaller tensors kept in float32"),
        ("CPU", f"{info.get('cpu', 'unknown')}, {', '.join(info.get('simd', []))}, {info.get('cores', '?')} cores"),
        ("threads", str(threads)),
        ("scan", f"{result.seconds:.1f} s, {result.rate:.3g} GB/s of float32 weights, {len(fmts)} formats"),
        (
            "memory",
            f"{size_text(result.peak_anon - result.anon_before)} at most beyond the "
            f"{size_text(result.anon_before)} before the scan (largest tensor as float32: "
            f"{size_text(result.largest_float32)}); peak resident {size_text(result.peak_rss)} with the file's "
            "mapped pages",
        ),
    ]
    out = Path(args.out or f"reports/model-{model.path.stem}")
    page = build_model_report(
        out,
        title=f"qbench model {model.path.name}",
        header=header,
        summary=summary,
        frame=result.frame,
        times=times,
        notes=notes,
    )
    print()
    for line in terminal_summary(summary):
        print(line)
    print()
    for line in [*headline(summary), *notes]:
        print(textwrap.fill(line, width=100, subsequent_indent="  "))
    print()
    for key, text in header[4:6]:
        print(textwrap.fill(f"{key}: {text}", width=100, subsequent_indent="  "))
    print(f"report: {page}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    import numba

    from qbench import cases, tune, tuning

    if args.show:
        print(tuning.summary())
        print(f"tuning file: {tuning.path() or 'none (QBENCH_TUNING=off)'}")
        return 0
    if numba.get_num_threads() < 2:
        return _fail("Numba has one thread here: nothing to tune (every kernel runs serially)")
    ladder = [b for b in tuning.LADDER if b <= args.max_bytes]
    if not ladder:
        return _fail(f"--max-bytes {args.max_bytes} is below the smallest size tuned ({tuning.LADDER[0]} bytes)")
    file = Path(args.file) if args.file else (tuning.path() or tuning.default_path())
    os.environ[tuning.ENV] = str(file)  # this process checks the tuning it writes
    print(
        f"timing serial and parallel forms of {len(tuning.TUNED)} kernels at {len(ladder)} sizes "
        f"({ladder[0]:,} to {ladder[-1]:,} bytes touched), {numba.get_num_threads()} threads, side by side:"
    )
    measured = tune.measure(tuning.TUNED, ladder, rounds=args.rounds, passes=args.passes, progress=print)
    print(f"tuning written to {tuning.save(measured, file)}")
    if args.no_verify:
        return 0
    print("\nchecking parallel=None at the quick grid's sizes against the faster form (and the untuned rule):")
    checks = tune.verify(tune.quick_cases(), cases.SIZES_QUICK, rounds=args.rounds, passes=args.passes, progress=print)
    for line in tune.check_lines(checks):
        print(line)
    return 0


def tuning_ladder_top() -> int:
    from qbench.tuning import LADDER

    return LADDER[-1]


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Flags several subcommands share, defined once (as asv's common_args does)."""
    select = _Parser(add_help=False)
    select.add_argument("-b", "--bench", metavar="REGEX", help="only benchmarks whose name matches REGEX")
    select.add_argument("--quick", action="store_true", help="the reduced grid and few repeats (a few minutes)")
    machine = _Parser(add_help=False)
    machine.add_argument(
        "--machine", help="asv machine name (default: this host's name; when reading results, the only one there)"
    )
    return {"select": select, "machine": machine}


def build_parser() -> argparse.ArgumentParser:
    from qbench import __version__

    parser = _Parser(prog="qbench", description="Measure what quantization buys on this CPU.")
    parser.add_argument("--version", action="version", version=f"qbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    shared = _parents()
    sweep = [shared["select"], shared["machine"]]

    run = sub.add_parser("run", parents=sweep, help="run the asv benchmark suite on this checkout and build the report")
    run.add_argument(
        "--out", default="reports/latest", help="report folder, replaced as a whole (default: %(default)s)"
    )
    run.add_argument(
        "--threads", metavar="N[,N...]", type=_thread_list, help="thread counts to sweep (default: 1 and all cores)"
    )
    run.add_argument(
        "--allow-dirty",
        action="store_true",
        help="measure uncommitted changes (recorded under the current commit hash)",
    )
    run.set_defaults(func=_run)

    report = sub.add_parser("report", parents=[shared["machine"]], help="build plots and pages from asv result files")
    report.add_argument(
        "--results",
        nargs="+",
        default=[".asv/results"],
        metavar="DIR",
        help="asv results folder(s), merged; several machines give a page comparing them (default: .asv/results)",
    )
    report.add_argument("--out", default="reports/latest", help="report folder (default: %(default)s)")
    report.add_argument("--commit", help="commit for the main plots (default: the newest measured)")
    report.add_argument(
        "--readme-table",
        action="store_true",
        help="print the peers comparison as a Markdown table (for the README) and exit",
    )
    report.set_defaults(func=_report)

    compare = sub.add_parser(
        "compare", parents=sweep, help="benchmark two commits in their own environments; exit 1 on a regression"
    )
    compare.add_argument("base", help="branch, tag or commit to compare against")
    compare.add_argument("head", nargs="?", default="HEAD", help="branch, tag or commit to test (default: HEAD)")
    compare.add_argument(
        "--factor",
        type=_factor,
        help="slower than this time ratio, and significant, is a regression (default: 1.10; the gate holds "
        "the points it counted to 1.05 in instructions, and every point to 2.0 in time)",
    )
    compare.add_argument(
        "--rounds",
        type=_whole(1),
        default=5,
        help="rounds, each in fresh processes, interleaved across the two commits; the significance test "
        "needs at least 4 (default: %(default)s)",
    )
    compare.add_argument(
        "--gate",
        action="store_true",
        help="the CI gate: qbench's kernels only, 1 thread, one size in cache and one beyond L3 each; in cache "
        "the instructions per call (counted under valgrind) decide, from memory the time",
    )
    compare.add_argument("--out", help="report folder (default: reports/compare-<base8>-<head8>)")
    compare.set_defaults(func=_compare)

    history = sub.add_parser(
        "history", parents=sweep, help="benchmark each commit of a range; report steps along history"
    )
    history.add_argument("range", nargs="?", help="git range, e.g. v0.1..main (default: the last 10 commits)")
    history.add_argument("-n", "--max-count", type=_whole(1), default=10, help="commits when no range is given")
    history.add_argument("--rounds", type=_whole(1), default=2, help="rounds per commit (default: %(default)s)")
    history.add_argument("--out", default="reports/history", help="report folder (default: %(default)s)")
    history.set_defaults(func=_history)

    tune = sub.add_parser(
        "tune", help="measure where each kernel's parallel form starts to pay on this machine, for parallel=None"
    )
    tune.add_argument(
        "--max-bytes",
        type=_whole(1),
        default=tuning_ladder_top(),
        help="largest call measured, in bytes touched; larger calls take its decision (default: %(default)s)",
    )
    tune.add_argument("--rounds", type=_whole(1), default=5, help="interleaved rounds per size (default: %(default)s)")
    tune.add_argument(
        "--passes",
        type=_whole(1),
        default=2,
        help="passes over all sizes; the least time of each counts (default: %(default)s)",
    )
    tune.add_argument("--file", help="where to write the tuning (default: this machine's file in the user cache)")
    tune.add_argument("--no-verify", action="store_true", help="skip the check at the quick grid's sizes")
    tune.add_argument("--show", action="store_true", help="print the tuning in force and exit")
    tune.set_defaults(func=_tune)

    model = sub.add_parser(
        "model", help="what each quantization format does to a model file: size, accuracy and speed per layer"
    )
    model.add_argument("path", help="an .onnx, .safetensors, .gguf or .npz file")
    model.add_argument(
        "--formats",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        help="comma-separated: float16, int8, uint8, int8-channel, int4-b32, int4-b128, Q8_0, Q4_0 (default: all)",
    )
    model.add_argument(
        "--calibration",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        help="per-tensor int8/uint8 calibration methods: minmax, percentile, entropy, mse (default: all)",
    )
    model.add_argument("--out", help="report folder (default: reports/model-<file name>)")
    model.add_argument(
        "--time",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time each weight shape's GEMV and GEMM per format against float32 (default: on)",
    )
    model.add_argument("--batch", type=_whole(2), default=16, help="rows of the batched GEMM (default: %(default)s)")
    model.add_argument("--threads", type=_whole(1), help="threads for the scan and the timing (default: all cores)")
    model.add_argument(
        "--channel-axis",
        type=int,
        help="output-channel axis of every tensor (default: per file type; see the README), e.g. -1 for (in, out)",
    )
    model.set_defaults(func=_model)

    demo = sub.add_parser("demo", help="quantize one random tensor; print error, memory and speed ratios")
    demo.add_argument("--size", type=_whole(1), default=1 << 22, help="number of float32 elements (default 2**22)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
