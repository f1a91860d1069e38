"""Whether the machine was busy while a run measured: the records of :mod:`qbench.measure.busy`, read back,
attached to the results point by point, and said in a few lines a page opens with."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench.measure.busy import BUSY_CORES, BUSY_PREFIX

#: A process is named as the one that took the CPUs when it used this share of the run's time, or more.
NAMED_SHARE = 0.02


def point_key(suite: str, params: dict) -> tuple[str, str]:
    """How a point is named in both the busy record and the results: its class and parameters."""
    return str(suite), json.dumps(params, default=str, sort_keys=True)


def _used(record: dict) -> tuple[float, float]:
    """(other programs and steal, the counters' error) of a record, in cores."""
    return float(record["other"]) + float(record["steal"]), float(record.get("uncertainty", 0.0))


def read(path: Path) -> tuple[dict[tuple[str, str], dict], list[dict]]:
    """(windows by point, runs) of one record file.

    A run starts at its ``before`` line; a point measured again in a later run (a partial rerun) takes the later
    run's window. Within a run, a process's later record of a point covers its earlier ones (it counts from the
    point's start); one point holds several processes (``time_run`` and ``track_gbps``, or the rounds of a
    comparison): the busiest beyond the counters' error counts.
    """
    latest: dict[tuple[str, str, object], tuple[int, dict, float]] = {}
    runs: list[dict] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
            if "phase" in record:
                if record["phase"] == "before" or not runs:
                    runs.append({})
                runs[-1][str(record["phase"])] = record
                continue
            key = point_key(record["suite"], record["params"])
            used, error = _used(record)
        except (ValueError, KeyError, TypeError):
            warnings.warn(f"skipping line {number} of {path}: not a busy record", stacklevel=3)
            continue
        latest[(*key, record.get("pid"))] = (len(runs), record, used - error)
    points: dict[tuple[str, str], tuple[int, dict, float]] = {}
    for (suite, params, _), (run, record, beyond) in latest.items():
        seen = points.get((suite, params))
        if seen is None or seen[0] < run or (seen[0] == run and seen[2] < beyond):
            points[(suite, params)] = (run, record, beyond)
    return {k: r for k, (_, r, _) in points.items()}, runs


def machine_records(machine_dir: Path) -> tuple[dict[tuple[str, str, str], dict], dict[str, list[dict]]]:
    """Every record file of a machine: windows by (commit prefix, suite, params) and runs by commit prefix."""
    points, runs = {}, {}
    for path in sorted(Path(machine_dir).glob(f"{BUSY_PREFIX}*.jsonl")):
        prefix = path.stem.removeprefix(BUSY_PREFIX)
        found, runs[prefix] = read(path)
        points.update({(prefix, *k): v for k, v in found.items()})
    return points, runs


def attach(rows: list[dict], points: dict[tuple[str, str, str], dict]) -> None:
    """Each result row's ``busy`` (other programs and steal, cores) and ``busy_error`` (the counters' error)."""
    for row in rows:
        record = points.get((str(row["commit"])[:8], str(row["suite"]), str(row["params"])))
        if record:
            row["busy"], row["busy_error"] = _used(record)


def figure_name(row: Any) -> str:
    """A measured point as the page names it."""
    params = json.loads(row.params) if isinstance(row.params, str) else {}
    what = params.get("comparison") or " ".join(
        str(v) for v in (row.kernel, row.dtype, row.impl if row.impl != "qbench" else "") if v and v == v
    )
    where = params.get("shape") or (f"2**{int(np.log2(row.size))}" if row.size == row.size and row.size else "")
    return f"{what} at {where}, {int(row.threads)} thr".replace(" at , ", ", ")


@dataclass
class BusySummary:
    """What a page says first about the run's machine: busy or quiet, and what that touches."""

    recorded: int = 0  # points with a record
    busy: pd.DataFrame = field(default_factory=pd.DataFrame)  # the busy points, multi-thread first
    quiet_peak: float = 0.0  # the most any point saw beyond the counters' error, in cores
    runs: list[dict] = field(default_factory=list)

    @property
    def is_busy(self) -> bool:
        return not self.busy.empty

    def rerun(self) -> str:
        """The command that measures the busy points' benchmarks again (asv selects whole benchmarks)."""
        classes: dict[str, list[str]] = {}
        for suite in sorted(set(self.busy["suite"])):
            module, _, cls = suite.rpartition(".")
            classes.setdefault(module, []).append(cls)
        pattern = "|".join(f"{re.escape(m)}\\.({'|'.join(c)})" for m, c in classes.items())
        return f'qbench run -b "^({pattern})\\."'

    def lines(self, shown: int = 8) -> list[str]:
        if not self.recorded:
            return ["Whether other programs used the CPUs was not recorded for this run (an older qbench measured it)."]
        where = self._phases()
        if not self.is_busy:
            return [
                f"Quiet machine: other programs used at most {self.quiet_peak:.2f} of a core (beyond the counters' "
                f"error) during any of the {self.recorded} measured points{where}."
            ]
        b = self.busy
        multi = int((b["threads"] > 1).sum())
        lines = [
            f"Busy machine: other programs used the CPUs during {len(b)} of the {self.recorded} measured points "
            f"({b['busy'].mean():.2f} of a core on average while they did, up to {b['busy'].max():.2f}; the "
            f"hypervisor's steal included){where}. Its figures are slower than this machine is"
            + (f", most of all the {multi} measured with several threads." if multi else ".")
        ]
        lines.append(self._culprits())
        names = list(b["figure"])
        more = f" and {len(names) - shown} more (the busy column of results.csv)" if len(names) > shown else ""
        lines.append("The figures it touches, several threads first: " + "; ".join(names[:shown]) + more + ".")
        lines.append(f"Measure them again on a quiet machine: {self.rerun()}")
        return lines

    def _culprits(self) -> str:
        """The processes still running at the end of the run that used a share of it worth naming."""
        top = [
            t
            for run in self.runs
            for t in run.get("run", {}).get("top", [])
            if t.get("cpu_seconds", 0) >= max(1.0, NAMED_SHARE * run["run"].get("seconds", 0))
        ]
        if not top:
            return (
                f"No process still running when the run ended had used {NAMED_SHARE:.0%} of its time: what "
                "took the CPUs had ended before it."
            )
        named = ", ".join(f"{t['name']} (pid {t['pid']}, {t['cpu_seconds']:.0f} s)" for t in top[:3])
        return f"Using the most CPU time during the run: {named}."

    def _phases(self) -> str:
        runs = [r for r in self.runs if "before" in r and "after" in r]
        if not runs:
            return ""
        last = runs[-1]
        used = [float(last[p]["other"]) + float(last[p]["steal"]) for p in ("before", "after")]
        return f"; {used[0]:.2f} of a core in the second before the run, {used[1]:.2f} in the second after"


def summarize(frame: pd.DataFrame, runs: list[dict] | None = None) -> BusySummary:
    """The busy points of ``frame`` (one commit's results), one row per point, several threads first."""
    if "busy" not in frame or frame["busy"].isna().all():
        return BusySummary(runs=runs or [])
    points = frame.dropna(subset=["busy"]).drop_duplicates(["suite", "params"])
    over = points["busy"] - points["busy_error"].fillna(0.0)
    busy = points[over > BUSY_CORES]
    busy = busy.assign(figure=[figure_name(r) for r in busy.itertuples(index=False)])
    busy = busy.sort_values(["threads", "busy"], ascending=[False, False], ignore_index=True)
    return BusySummary(len(points), busy, float(over.clip(lower=0).max()), runs or [])


def from_file(frame: pd.DataFrame, path: Path | None) -> BusySummary:
    """The busy summary of ``frame`` by one record file of ``compare`` or ``history``: every commit of that run
    in one file, so a point counts as busy when it was at any of them."""
    if path is None or not Path(path).exists():
        return BusySummary()
    points, runs = read(Path(path))
    # A result row's params are the point key's second half already (both sorted JSON), as attach relies on.
    found = [points.get((str(s), str(p))) for s, p in zip(frame["suite"], frame["params"], strict=True)]
    used = [_used(r) if r else (np.nan, np.nan) for r in found]
    return summarize(frame.assign(busy=[u for u, _ in used], busy_error=[e for _, e in used]), runs)
