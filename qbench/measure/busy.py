"""What else used the CPUs while qbench measured: other processes' CPU time and the hypervisor's steal.

A shared machine makes ratios wrong in ways no statistic inside one benchmark
sees: a program beside the run takes a core, and every 2-thread figure measured
meanwhile halves. So each measured point records, between the start of its
setup and the end of its timing, the CPU time the whole machine spent busy less
the time its own process spent (other processes, in cores), and the time the
hypervisor gave other guests (steal). ``qbench run`` adds a quiet second before
and after the run, and the processes that used the most CPU time in between.

The clock behind these counters ticks ``1 / SC_CLK_TCK`` (10 ms on Linux) per
CPU, so a short window carries an error of up to two ticks for each CPU whose
counters moved and for this process: :attr:`Window.uncertainty`, which a point
must clear before it counts as busy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

#: Where ``qbench run``, ``compare`` and ``history`` ask the suite to append each point's window.
BUSY_FILE = "QBENCH_BUSY_FILE"
BUSY_PREFIX = "qbench-busy-"
#: Other programs' use that makes a point busy, in cores, beyond the counters' uncertainty.
BUSY_CORES = 0.1
TICK = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def _busy_seconds(times) -> float:
    """CPU seconds the machine spent running anything (guest time is inside user on Linux)."""
    idle = times.idle + getattr(times, "iowait", 0.0)
    return (
        sum(times)
        - idle
        - getattr(times, "steal", 0.0)
        - getattr(times, "guest", 0.0)
        - getattr(times, "guest_nice", 0.0)
    )


def _own_seconds(process: psutil.Process) -> float:
    """CPU seconds of ``process`` and of the children it has waited for."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class Window:
    """Other programs' use of the CPUs over ``seconds``, in cores, and the counters' error in the same unit."""

    seconds: float
    other: float
    steal: float
    uncertainty: float

    @property
    def busy(self) -> bool:
        return self.other + self.steal - self.uncertainty > BUSY_CORES


class Watch:
    """Counts, from :meth:`start` to :meth:`stop`, the CPU time not spent by this process (and its waited
    children), CPU by CPU."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start()

    def start(self) -> None:
        self.t0, self.cpus0, self.own0 = time.monotonic(), psutil.cpu_times(percpu=True), _own_seconds(self.process)

    def stop(self) -> Window:
        """The window from :meth:`start` to now (the count goes on: a later call covers more).

        Only a CPU whose counters moved can be over-counted (by a tick at each end), so the error counts those
        CPUs and this process, not every CPU of a large machine.
        """
        t1, cpus1, own1 = time.monotonic(), psutil.cpu_times(percpu=True), _own_seconds(self.process)
        seconds = max(t1 - self.t0, 1e-3)
        busy = [_busy_seconds(b) - _busy_seconds(a) for a, b in zip(self.cpus0, cpus1, strict=True)]
        stolen = [getattr(b, "steal", 0.0) - getattr(a, "steal", 0.0) for a, b in zip(self.cpus0, cpus1, strict=True)]
        moved = sum(1 for u, s in zip(busy, stolen, strict=True) if u > 0 or s > 0)
        other = sum(busy) - (own1 - self.own0)
        ticks = 2 * (moved + 1) * TICK
        return Window(seconds, max(other, 0.0) / seconds, max(sum(stolen), 0.0) / seconds, ticks / seconds)


def quiet_second(seconds: float = 1.0) -> Window:
    """The machine's use by others while qbench does nothing: before and after a run."""
    watch = Watch()
    time.sleep(seconds)
    return watch.stop()


def append(path: str | Path | None, record: dict) -> None:
    """One JSON line per record; points run one process after another, so appends do not interleave."""
    if not path:
        return
    with open(path, "a") as sink:
        sink.write(json.dumps(record) + "\n")


def record_point(suite: str, params: dict, window: Window) -> None:
    """Append a measured point's window to :data:`BUSY_FILE`, if the run asked for one; a point's later record
    from the same process (``pid``) covers its earlier ones."""
    append(os.environ.get(BUSY_FILE), {"suite": suite, "params": params, "pid": os.getpid(), **asdict(window)})


def busy_file(results_dir: Path, machine: str, commit: str) -> Path:
    """Where a run of ``commit`` keeps its points' windows: beside asv's results, as the rounds are."""
    return Path(results_dir) / machine / f"{BUSY_PREFIX}{commit[:8]}.jsonl"


class CpuTimes:
    """Every process's CPU seconds at one moment, to name afterwards what used the CPUs during a run."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[int, float], tuple[str, float]] = {}
        for p in psutil.process_iter(["name", "create_time", "cpu_times"]):
            t = p.info["cpu_times"]
            if t is not None:
                self.seconds[(p.pid, p.info["create_time"] or 0.0)] = (p.info["name"] or "?", t.user + t.system)

    def top(self, since: CpuTimes, skip: Iterable[int], count: int = 3) -> list[dict]:
        """The ``count`` processes (not in ``skip``) that used the most CPU seconds between ``since`` and now."""
        skip = set(skip)
        used = []
        for (pid, created), (name, seconds) in self.seconds.items():
            if pid in skip:
                continue
            before = since.seconds.get((pid, created), (name, 0.0))[1]
            used.append({"name": name, "pid": pid, "cpu_seconds": round(seconds - before, 1)})
        return sorted(used, key=lambda u: -u["cpu_seconds"])[:count]


def own_tree() -> list[int]:
    """This process and its descendants (asv, its fork server and the points it forks)."""
    me = psutil.Process()
    try:
        return [me.pid, *(c.pid for c in me.children(recursive=True))]
    except psutil.Error:
        return [me.pid]
