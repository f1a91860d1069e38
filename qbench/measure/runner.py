"""``qbench run``: check the checkout, run the asv suite on it, show progress, build the report."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from qbench.measure import busy
from qbench.measure.progress import FINISHED, PROGRESS, TOTAL, Progress, progress_for
from qbench.measure.timing import clock


class RunError(Exception):
    """A precondition or step of a run failed; the message says what to do."""


@dataclass
class RunOutcome:
    commit: str
    machine: str
    failed: list[str]
    seconds: float
    busy: Path | None = None  # what else used the CPUs, point by point (qbench.measure.busy)


def git(root: Path | None, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.rstrip()  # keep leading columns (git status)


def checkout_root(start: Path | None = None) -> Path:
    """The top of the git checkout holding asv.conf.json."""
    try:
        root = Path(git(start or Path.cwd(), "rev-parse", "--show-toplevel"))
    except (RunError, FileNotFoundError) as exc:
        raise RunError(
            "not inside a git checkout: qbench runs its suite on a commit of a qbench clone "
            "(asv records results per commit)"
        ) from exc
    if not (root / "asv.conf.json").exists():
        raise RunError(f"{root} has no asv.conf.json: run qbench from a clone of the qbench repository")
    return root


def require_asv() -> None:
    if importlib.util.find_spec("asv") is None:
        raise RunError('asv is not installed; install the benchmark extra: pip install -e ".[bench]"')


def dirty_files(root: Path) -> list[str]:
    # "XY path" lines; -z keeps the leading status columns intact and paths unquoted.
    entries = git(root, "status", "--porcelain", "-z").split("\0")
    return [e[3:] for e in entries if len(e) > 3]


def ensure_machine(root: Path, machine: str) -> None:
    """Register ``machine`` with asv non-interactively, unless asv already knows it."""
    config = Path(os.path.expanduser("~/.asv-machine.json"))  # where asv keeps its machines
    try:
        known = json.loads(config.read_text())
    except (OSError, ValueError):
        known = {}
    if machine in known:
        return
    proc = subprocess.run(
        [sys.executable, "-m", "asv", "machine", "--yes", "--machine", machine],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RunError(f"asv machine --yes failed: {proc.stderr.strip() or proc.stdout.strip()}")


_COMMIT = re.compile(r"^For \S+ commit ")  # "For qbench commit 1a2b3c4d <main> (round 1/2):"


def _stream(cmd: list[str], root: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    with (
        log.open("w") as sink,
        subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            yield line.rstrip("\n")
        proc.wait()
        sink.flush()  # the tail below is read back from the file
        if proc.returncode not in (0, 2):  # asv exits 2 when some benchmarks failed; those are reported below
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise RunError(
                f"asv run exited with status {proc.returncode} (a build or setup error?); see {log}:\n{tail}"
            )


def _prepare(root: Path | None, machine: str | None) -> tuple[Path, str]:
    root = checkout_root(root)
    require_asv()
    machine = machine or platform.node() or "localhost"
    ensure_machine(root, machine)
    write_machine_info(root, machine)
    return root, machine


def _suite_env(quick: bool, threads: str | None, gate: bool = False) -> dict[str, str]:
    """The environment the suite reads its grid from, checked here so a bad value never reaches asv."""
    from qbench.cases.grid import GATE, check_environment

    env = {**os.environ, "QBENCH_QUICK": "1" if quick else "0"}
    if threads:
        env["QBENCH_THREADS"] = threads
    if gate:
        env.update(GATE)
    try:
        check_environment(env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return env


def run_asv(args: list[str], root: Path, env: dict[str, str], log_name: str, echo=print) -> tuple[list[str], float]:
    """Run ``asv run ARGS``, echo progress (benchmark, how many done, elapsed, time left); return failures, seconds."""
    # The fork server imports the suite once and forks a process per parameter set: about 4x faster than
    # spawning an interpreter for each, and the timings were the same within this machine's noise.
    cmd = [sys.executable, "-m", "asv", "run", "--launch-method=forkserver", "--show-stderr", *args]
    log = root / ".asv" / log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    echo(f"asv's full output: {log}")
    busy_path = env.get(busy.BUSY_FILE)
    if busy_path:
        busy.append(busy_path, {"phase": "before", **asdict(busy.quiet_second())})
        others = busy.CpuTimes()
    start = time.monotonic()
    failed: list[str] = []
    progress = Progress({})
    for line in _stream(cmd, root, env, log):
        if m := TOTAL.search(line):
            progress = progress_for(m, root, args)
            rounds = f", {progress.rounds} rounds each" if progress.rounds > 1 else ""
            echo(f"{progress.total} benchmarks to run, {progress.total_sets} parameter sets{rounds}")
            continue
        if line.startswith("·") and ("Building" in line or "Installing" in line or "Creating" in line):
            echo(f"{clock(time.monotonic() - start)} {line.lstrip('· ')}")
            continue
        m = PROGRESS.match(line)
        if not m:
            continue
        progress.steps_share = float(m.group(1)) / 100
        what = m.group(2).strip()
        finished = None if what.startswith(("Running", "For ")) else FINISHED.match(what)
        if not (finished or what.startswith("Running") or _COMMIT.match(what)):
            continue  # asv's tables and per-parameter notes stay in the log
        if finished:
            progress.finish(finished.group(1))
            if "failed" in finished.group(2):
                failed.append(finished.group(1))  # asv may shorten the name; the results have it whole
            what = f"{finished.group(1)} {finished.group(2).strip()}"
        echo(progress.line(time.monotonic() - start, what))
    seconds = time.monotonic() - start
    if busy_path:
        top = busy.CpuTimes().top(others, busy.own_tree())
        busy.append(busy_path, {"phase": "run", "seconds": seconds, "top": top})
        busy.append(busy_path, {"phase": "after", **asdict(busy.quiet_second())})
    return failed, seconds


def run_suite(
    *,
    quick: bool,
    bench: str | None,
    threads: str | None,
    allow_dirty: bool,
    machine: str | None = None,
    root: Path | None = None,
    echo=print,
) -> RunOutcome:
    """Run the suite on the current commit in this Python environment; return what happened."""
    root = checkout_root(root)
    dirty = dirty_files(root)
    if dirty and not allow_dirty:
        listed = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise RunError(
            f"the working tree has uncommitted changes ({listed}); results are recorded under the "
            "commit hash, so commit or stash them first, or pass --allow-dirty to measure them anyway"
        )
    env = _suite_env(quick, threads)  # a bad grid variable stops here, before anything starts
    root, machine = _prepare(root, machine)
    commit = git(root, "rev-parse", "HEAD")
    echo(f"qbench run: {'quick' if quick else 'full'} sweep of commit {commit[:8]} on machine '{machine}'")
    args = ["--python=same", f"--set-commit-hash={commit}", "--machine", machine]
    rounds = rounds_file(root / ".asv" / "results", machine, commit)
    watched = busy.busy_file(root / ".asv" / "results", machine, commit)
    if not bench:  # a whole run replaces the spread and the busy record of every point; a partial one adds
        rounds.unlink(missing_ok=True)
        watched.unlink(missing_ok=True)
    env["QBENCH_ROUNDS_FILE"], env[busy.BUSY_FILE] = str(rounds), str(watched)
    failed, seconds = run_asv(args + ["--bench", bench or RUN_BENCH], root, env, "qbench-run.log", echo)
    return RunOutcome(commit, machine, failed, seconds, watched)


ROUNDS_PREFIX = "qbench-rounds-"


def rounds_file(results_dir: Path, machine: str, commit: str) -> Path:
    """Where a run keeps its side-by-side points' per-round ratios: beside asv's results of that commit."""
    return Path(results_dir) / machine / f"{ROUNDS_PREFIX}{commit[:8]}.jsonl"


SAMPLES_PER_ROUND = 5
#: The gate's benchmarks: every kernel family's timed call (not the probes, the peers' side-by-side ratios,
#: accuracy or memory: nothing there is qbench's code running faster or slower) and the instruction counts of
#: its cache-resident points. asv matches a parameterized benchmark as ``name(param, ...)``, hence the parenthesis.
GATE_BENCH = r"^(bench_(quantize|accumulate|blocks|matmul)\.[A-Za-z]+\.time_run\(|bench_counts\.)"
#: What ``qbench run`` measures unless told otherwise: everything but the instruction counts (Valgrind, the gate's).
RUN_BENCH = r"^(?!bench_counts\.)"

#: What a commit must touch to change a measurement: the package, its build, the suite.
MEASURED_PATHS = ("qbench", "benchmarks", "pyproject.toml", "asv.conf.json")


def touches_measured(root: Path, a: str, b: str) -> bool:
    """Whether anything measured differs between commits ``a`` and ``b`` (git's diff of those paths)."""
    return bool(git(root, "diff", "--name-only", a, b, "--", *MEASURED_PATHS).strip())


class UsageError(RunError):
    """The command was given something it cannot use (exit status 2)."""


def resolve(root: Path, rev: str) -> str:
    """Full hash of a branch, tag or commit; a clear error if there is none."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except RunError:
        raise UsageError(f"unknown revision {rev!r}: not a branch, tag or commit of this repository") from None


def _hashfile(root: Path, name: str, hashes: list[str]) -> Path:
    path = root / ".asv" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(hashes) + "\n")
    return path


def benchmark_commits(
    revs: list[str],
    *,
    quick: bool,
    bench: str | None,
    rounds: int,
    machine: str | None = None,
    skip_existing: bool = False,
    root: Path | None = None,
    log_name: str = "qbench-commits.log",
    echo=print,
    gate: bool = False,
) -> RunOutcome:
    """Build each commit from a clean checkout into asv's own environment and benchmark it.

    Rounds are interleaved across commits (commit A, B, A, B, ...) so that
    drift of a shared machine spreads over both sides instead of posing as a
    change; raw samples are kept for the significance test.
    """
    root = checkout_root(root)
    hashes = [resolve(root, r) for r in revs]
    from qbench.cases.grid import ROUNDS

    env = {**_suite_env(quick, None, gate), ROUNDS: str(rounds)}  # read by the timed benchmarks
    root, machine = _prepare(root, machine)
    hashfile = _hashfile(root, "qbench-hashes.txt", hashes)
    # A fixed number of samples per round lets the comparison split them back into rounds.
    args = [
        f"HASHFILE:{hashfile}",
        "--machine",
        machine,
        "--record-samples",
        "-a",
        f"repeat={SAMPLES_PER_ROUND}",
    ]
    if rounds > 1 and len(hashes) > 1:
        args.append("--interleave-rounds")
    if skip_existing:
        args.append("--skip-existing-commits")
    args += ["--bench", bench or (GATE_BENCH if gate else RUN_BENCH)]
    watched = root / ".asv" / f"{busy.BUSY_PREFIX}{Path(log_name).stem}.jsonl"
    watched.unlink(missing_ok=True)
    env[busy.BUSY_FILE] = str(watched)
    failed, seconds = run_asv(args, root, env, log_name, echo)
    return RunOutcome(",".join(hashes), machine, failed, seconds, watched)


def write_machine_info(root: Path, machine: str) -> Path:
    """Record this machine's CPU, caches and software beside asv's results, for report headers."""
    from qbench.measure.machine import describe

    folder = root / ".asv" / "results" / machine
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qbench-machine.json"
    path.write_text(json.dumps({"machine": machine, **describe()}, indent=2))
    return path


def publish_asv(root: Path) -> tuple[Path | None, str]:
    """``asv publish``: (asv's HTML folder, "") or (None, why it failed); a report links to it when it exists."""
    proc = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, proc.stderr.strip()[-300:] or proc.stdout.strip()[-300:]
    return root / ".asv" / "html", ""
