"""How far an asv run is: benchmarks and parameter sets done, and the time left, from asv's own log lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from qbench.measure.timing import clock

#: asv's progress prefix and its message: "[ 12.5%] ··· name  ok".
PROGRESS = re.compile(r"^\[\s*(\d+(?:\.\d+)?)%\]\s+·+\s+(.*)$")
# A finished benchmark: its dotted name, then "ok"/"failed" (parameterized) or its value ("174±6ms").
FINISHED = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+)+)\s+(\S.*)$")
TOTAL = re.compile(
    r"Running (\d+) total benchmarks(?: \((\d+) commits? \* (\d+) environments? \* (\d+) benchmarks?\))?"
)


@dataclass
class Progress:
    """What a run has done and has left, in benchmarks and in parameter sets.

    asv starts one process per parameter set, and a set costs about as much as
    another (build the case, time it), so sets, not benchmarks, say how far a
    run is: the side-by-side benchmark alone holds a fifth of a quick run's.
    With several rounds (``compare`` and ``history``), asv logs a benchmark's
    result only in its last round, after every earlier round of every
    benchmark: there the share done is asv's own count of steps, rounds
    included, and the benchmarks done are those with their last round run.
    """

    weights: dict[str, int]  # parameter sets of each benchmark that runs
    repeats: int = 1  # commits x environments
    rounds: int = 1  # rounds asv runs of each benchmark, the last one logged
    done: int = 0
    done_sets: int = 0
    steps_share: float = 0.0  # asv's own share of steps done, every round counted

    @property
    def total(self) -> int:
        return len(self.weights) * self.repeats

    @property
    def total_sets(self) -> int:
        return sum(self.weights.values()) * self.repeats

    def finish(self, name: str) -> None:
        self.done += 1
        # asv may shorten a long name in its log; such a benchmark counts as an average one.
        average = self.total_sets / max(self.total, 1)
        self.done_sets += self.weights.get(name, average)

    @property
    def share(self) -> float:
        if self.rounds > 1:
            return min(self.steps_share, 1.0)
        return min(self.done_sets / self.total_sets, 1.0) if self.total_sets else 0.0

    def line(self, elapsed: float, what: str) -> str:
        share = self.share
        left = f"~{clock(elapsed * (1 - share) / share)} left" if share >= 0.02 else "estimating time left"
        rounds = f" x {self.rounds} rounds" if self.rounds > 1 else ""
        return (
            f"[{100 * share:5.1f}%] {self.done}/{self.total} benchmarks done "
            f"({self.done_sets:.0f}/{self.total_sets} parameter sets{rounds}), {clock(elapsed)} elapsed, {left}  "
            f"{what}"
        )


def selected(root: Path, patterns: list[str]) -> dict[str, dict]:
    """What asv knows of each benchmark it will run (``--bench`` patterns select, as asv does), from the
    ``benchmarks.json`` it writes when it discovers the suite; empty when there is none to read."""
    try:
        meta = json.loads((root / ".asv" / "results" / "benchmarks.json").read_text())
    except (OSError, ValueError):
        return {}
    # asv matches a parameterized benchmark's name and its "name(params)": the "(" stands for the latter.
    return {
        name: info
        for name, info in meta.items()
        if isinstance(info, dict) and (not patterns or any(re.search(p, f"{name}(") for p in patterns))
    }


def parameter_sets(found: dict[str, dict]) -> dict[str, int]:
    """Parameter sets of each benchmark of ``found`` (:func:`selected`)."""
    sets = {}
    for name, info in found.items():
        count = 1
        for values in info.get("params") or []:
            count *= max(len(values), 1)
        sets[name] = count
    return sets


def progress_for(total_line: re.Match, root: Path, args: list[str]) -> Progress:
    """The run's :class:`Progress` from asv's "Running N total benchmarks (C commits * E environments * B ...)"
    and the suite asv discovered: parameter sets, and the rounds of the benchmarks that hold most of them (a
    quick run's few two-round benchmarks leave its work in the logged round; a gate's five rounds do not)."""
    total = int(total_line.group(1))
    patterns = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--bench", "-b")]
    found = selected(root, patterns)
    weights = parameter_sets(found)
    by_rounds = sorted((int(found[name].get("rounds", 1)), sets) for name, sets in weights.items())
    half, seen, rounds = sum(weights.values()) / 2, 0, 1
    for count, sets in by_rounds:  # the rounds of the median parameter set
        seen += sets
        rounds = count
        if seen >= half:
            break
    per_run = int(total_line.group(4)) if total_line.group(4) else total
    if len(weights) != per_run:  # not the suite asv discovered (an older tree?): count benchmarks alone
        weights = {f"#{i}": 1 for i in range(per_run)}
    return Progress(weights, repeats=max(total // max(per_run, 1), 1), rounds=rounds)
