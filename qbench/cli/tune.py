"""``qbench tune``: where each kernel's parallel form starts to pay on this machine, stored for ``parallel=None``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from qbench.cli.common import fail, whole

HELP = "measure where each kernel's parallel form starts to pay on this machine, for parallel=None"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qbench.ops.tuning import LADDER

    parser.add_argument(
        "--max-bytes",
        type=whole(1),
        default=LADDER[-1],
        help="largest call measured, in bytes touched; larger calls take its decision (default: %(default)s)",
    )
    parser.add_argument("--rounds", type=whole(1), default=5, help="interleaved rounds per size (default: %(default)s)")
    parser.add_argument(
        "--passes",
        type=whole(1),
        default=2,
        help="passes over all sizes; the least time of each counts (default: %(default)s)",
    )
    parser.add_argument(
        "--extra",
        type=whole(0),
        default=2,
        help="more passes, of twice the rounds, over the sizes where the two forms are still close "
        "(default: %(default)s)",
    )
    parser.add_argument("--file", help="where to write the tuning (default: this machine's file in the user cache)")
    parser.add_argument("--no-verify", action="store_true", help="skip the check at the quick grid's sizes")
    parser.add_argument("--show", action="store_true", help="print the tuning in force and exit")


def execute(args: argparse.Namespace) -> int:
    import numba

    from qbench import cases
    from qbench.measure import tune
    from qbench.ops import tuning

    if args.show:
        print(tuning.summary())
        print(f"tuning file: {tuning.path() or 'none (QBENCH_TUNING=off)'}")
        return 0
    if numba.get_num_threads() < 2:
        return fail("Numba has one thread here: nothing to tune (every kernel runs serially)")
    ladder = [b for b in tuning.LADDER if b <= args.max_bytes]
    if not ladder:
        return fail(f"--max-bytes {args.max_bytes} is below the smallest size tuned ({tuning.LADDER[0]} bytes)")
    file = Path(args.file) if args.file else (tuning.path() or tuning.default_path())
    os.environ[tuning.ENV] = str(file)  # this process checks the tuning it writes
    print(
        f"timing serial and parallel forms of {len(tuning.TUNED)} kernels at {len(ladder)} sizes "
        f"({ladder[0]:,} to {ladder[-1]:,} bytes touched), {numba.get_num_threads()} threads, side by side:"
    )
    measured = tune.measure(
        tuning.TUNED, ladder, rounds=args.rounds, passes=args.passes, extra=args.extra, progress=print
    )
    print(f"tuning written to {tuning.save(measured, file)}")
    if args.no_verify:
        return 0
    print("\nchecking parallel=None at the quick grid's sizes against the faster form (and the untuned rule):")
    checks = tune.verify(tune.quick_cases(), cases.SIZES_QUICK, rounds=args.rounds, passes=args.passes, progress=print)
    for line in tune.check_lines(checks):
        print(line)
    return 0
