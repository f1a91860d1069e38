"""Instructions per kernel call, counted by Valgrind's callgrind: a measure other work on the machine cannot move.

On a shared machine a cache-resident kernel's time moves 10-15% between two
runs of the same code; the instructions it executes do not. One callgrind
process counts every point of a commit: it builds each case as the timed suite
does (:func:`_common.prepare`), warms it, then calls it :data:`CALLS` times
between two calls of :data:`MARK`, before each of which callgrind writes out its
counters. The count of a point is the part between its two marks over
:data:`CALLS` (the Python entry path included: a slower entry is a slower call).

The code counted is what Numba compiles for the CPU Valgrind presents (Valgrind
3.x runs no AVX-512; on x86-64 it presents at most an AVX2 CPU): it is compiled once
natively for that CPU into a private cache, so no compilation runs under
Valgrind, where it would take minutes. A slowdown that only the host's wider
code shows is left to the time.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: A libc function nothing else calls while a point is counted: callgrind dumps its counters before each call.
MARK = "getppid"
#: Calls counted per point (after a warm-up call): enough to average out a call's rare slow path.
CALLS = 5
_CPU = "import llvmlite.binding as ll; print(ll.get_host_cpu_name()); print(ll.get_host_cpu_features().flatten())"


def valgrind() -> str | None:
    """The valgrind executable, or None where it is not installed."""
    return shutil.which("valgrind")


def valgrind_cpu(python: str = sys.executable) -> dict[str, str]:
    """``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` of the CPU that Valgrind presents to a program.

    The same two variables in the native warm-up and under Valgrind make both
    compile for one CPU, so the second finds the first's code in the cache.
    """
    run = subprocess.run(
        [valgrind() or "valgrind", "-q", python, "-c", _CPU], capture_output=True, text=True, check=True, timeout=300
    )
    name, features = run.stdout.split("\n")[:2]
    return {"NUMBA_CPU_NAME": name.strip(), "NUMBA_CPU_FEATURES": features.strip()}


def count(points: list[tuple[str, str, int | str]], python: str = sys.executable) -> list[float | None]:
    """Instructions per call of each ``(kernel, dtype, size or shape)`` at 1 thread, in order.

    None for a point that cannot be built (not in the commit measured, or not on this machine).
    Raises ``RuntimeError`` with the child's output when a run fails.
    """
    with tempfile.TemporaryDirectory(prefix="qbench-counts-") as tmp:
        env = {
            **os.environ,
            **valgrind_cpu(python),
            "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"),
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
        }
        spec = Path(tmp) / "points.json"
        spec.write_text(json.dumps(points))
        child = [python, __file__, str(spec)]
        _run(child, env, "compiling the counted points natively")
        out = Path(tmp) / "callgrind.out"
        grind = [
            valgrind() or "valgrind",
            "--tool=callgrind",
            "--smc-check=all-non-file",  # Numba's code is made at run time, in no file
            f"--dump-before={MARK}",
            f"--callgrind-out-file={out}",
        ]
        built = json.loads(_run(grind + child, env, "counting under callgrind"))
        # Dump k is what ran between mark k-1 and mark k: the calls of the i-th point built are dump 2i + 2.
        dumps = iter(range(2, 2 * len(points) + 2, 2))
        return [dump_total(Path(f"{out}.{next(dumps)}")) / CALLS if ok else None for ok in built]


def _run(cmd: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def dump_total(path: Path) -> int:
    """The instructions (``Ir``) a callgrind dump file holds: its ``summary:`` line."""
    with open(path) as lines:
        for line in lines:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise ValueError(f"{path} has no summary line: not a callgrind dump")


def _child(spec: str) -> None:
    """Build, warm and call each point between two marks; print whether each was built, as JSON, last."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks._common import prepare

    built = []
    for kernel, dtype, point in json.loads(Path(spec).read_text()):
        try:
            case = prepare(kernel, dtype, point, 1, "qbench")
        except Exception as exc:  # not in this commit, or not on this machine: the other points still count
            print(f"{kernel}:{dtype} at {point} not counted: {exc!r}", file=sys.stderr)
            built.append(False)
            continue
        case.run()
        gc.disable()  # a collection would land in whichever point's calls it falls
        os.getppid()  # MARK
        for _ in range(CALLS):
            case.run()
        os.getppid()  # MARK
        gc.enable()
        built.append(True)
    print(json.dumps(built))


if __name__ == "__main__":
    _child(sys.argv[1])
