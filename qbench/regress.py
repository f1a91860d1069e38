"""Regression analysis of tidy results: two commits side by side, and steps along a history.

The statistics are asv's own (through :mod:`qbench._asv`): its Mann-Whitney U
test (on per-round medians, see :func:`_verdict`), its confidence-interval rule
where samples are missing, and its piecewise-constant fit for steps. What a
comparison means for a CI job (the exit code) is decided here too: :func:`verdict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qbench import _asv, cases

TIMED_KINDS = ("time", "timeraw")


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """The time rows that succeeded, one environment per commit: what comparisons and steps are made of."""
    return one_env_per_commit(frame[frame["kind"].isin(TIMED_KINDS) & (frame["status"] == "ok")])


def one_env_per_commit(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one environment's results per commit (the one with most rows), so no point is counted twice."""
    if frame.empty:
        return frame
    counts = frame.groupby(["commit", "env"]).size().reset_index(name="n")
    best = counts.sort_values("n").groupby("commit").tail(1)
    keep = set(zip(best["commit"], best["env"], strict=True))
    return frame[[(c, e) in keep for c, e in zip(frame["commit"], frame["env"], strict=True)]]


#: Measured for context; a qbench change cannot regress them.
BASELINES = ("numpy", *cases.PEER_IMPLS)


def round_medians(samples: Any, rounds: int) -> list[float] | None:
    """Median of each round's samples, when ``samples`` holds ``rounds`` equal runs (asv's repeat fixed)."""
    if not isinstance(samples, list | tuple) or rounds < 2 or len(samples) % rounds:
        return None
    k = len(samples) // rounds
    return [float(np.median(samples[i * k : (i + 1) * k])) for i in range(rounds)]


def _verdict(a: pd.Series, b: pd.Series, rounds: int) -> tuple[float, bool]:
    """(time ratio head/base, significant) for one benchmark and parameter set.

    The unit of replication is the round: each round runs in its own process,
    and on a shared machine processes differ far more (up to 1.7x measured
    here) than samples within one. So the ratio is best round over best
    round (interference only ever slows a run down), and significance is a
    Mann-Whitney U test on the per-round medians (p < 0.05): with 4 rounds a
    side, only a complete separation of the two sides passes.
    """
    ra, rb = round_medians(a["samples"], rounds), round_medians(b["samples"], rounds)
    if ra is None or rb is None:  # no usable samples: asv's own test on what there is
        stats_a = {"ci_99_a": a["ci_low"], "ci_99_b": a["ci_high"]}
        stats_b = {"ci_99_a": b["ci_low"], "ci_99_b": b["ci_high"]}
        if any(math.isnan(v) for v in (*stats_a.values(), *stats_b.values())):
            return b["value"] / a["value"], False
        return b["value"] / a["value"], _asv.is_different(stats_a, stats_b)
    return min(rb) / min(ra), _asv.mann_whitney_u(ra, rb) < 0.05


def compare_commits(frame: pd.DataFrame, base: str, head: str, factor: float = 1.10, rounds: int = 1) -> pd.DataFrame:
    """One row per timed benchmark and parameter set measured at both commits.

    ``ratio`` is head time over base time; ``change`` is "slower" or "faster"
    when the ratio passes ``factor`` (or 1/factor) and the difference is
    significant, else "same". ``regression`` marks the slower rows of qbench's
    own code (baselines are reported, never a regression).
    """
    rows = timed(frame[frame["commit"].isin([base, head])])
    key = ["benchmark", "params"]
    before = rows[rows["commit"] == base].set_index(key)
    after = rows[rows["commit"] == head].set_index(key)
    rows = []
    for idx in before.index.intersection(after.index):
        a, b = before.loc[idx], after.loc[idx]
        ratio, significant = _verdict(a, b, rounds)
        change = "same"
        if significant and ratio > factor:
            change = "slower"
        elif significant and ratio < 1 / factor:
            change = "faster"
        rows.append(
            {
                "benchmark": idx[0],
                "params": idx[1],
                "kernel": a["kernel"],
                "impl": a["impl"],
                "before": a["value"],
                "after": b["value"],
                "ratio": ratio,
                "significant": significant,
                "change": change,
                "regression": change == "slower" and a["impl"] not in BASELINES,
                "unit": a["unit"],
            }
        )
    columns = [
        "benchmark",
        "params",
        "kernel",
        "impl",
        "before",
        "after",
        "ratio",
        "significant",
        "change",
        "regression",
        "unit",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("ratio", ascending=False).reset_index(drop=True)


def detect_steps(history: pd.DataFrame, order: list[str] | None = None, threshold: float = 0.10) -> pd.DataFrame:
    """Steps in each timed series (benchmark and parameters) along commits, oldest first.

    ``order`` is the commits in history order (git's, which dates cannot give
    for commits made within one second); by commit date when not given.

    Returns one row per step: the commit that caused it (the first commit of
    the new level), the levels before and after, their ratio, and whether it
    is a regression (slower) or an improvement.
    """
    rows = timed(history)
    measured = set(rows["commit"])
    if order is None:
        order = rows.drop_duplicates("commit").sort_values("date")["commit"].tolist()
    order = [c for c in order if c in measured]
    position = {c: i for i, c in enumerate(order)}
    steps = []
    for (bench, params), g in rows.groupby(["benchmark", "params"]):
        y = [np.nan] * len(order)
        for c, v in zip(g["commit"], g["value"], strict=True):
            y[position[c]] = v
        if sum(v == v for v in y) < 2:
            continue
        segments = _asv.detect_steps(y)
        for prev, nxt in zip(segments, segments[1:], strict=False):
            ratio = nxt[2] / prev[2]
            if abs(ratio - 1) < threshold:
                continue
            steps.append(
                {
                    "benchmark": bench,
                    "params": params,
                    "kernel": g["kernel"].iloc[0],
                    "commit": order[nxt[0]],
                    "before": prev[2],
                    "after": nxt[2],
                    "ratio": ratio,
                    "change": "regression" if ratio > 1 else "improvement",
                }
            )
    columns = ["benchmark", "params", "kernel", "commit", "before", "after", "ratio", "change"]
    return pd.DataFrame(steps, columns=columns)


@dataclass
class Verdict:
    """What a comparison means for a CI job: qbench's own slower and faster results, and the exit code."""

    table: pd.DataFrame
    factor: float

    @property
    def mine(self) -> pd.DataFrame:
        return self.table[~self.table["impl"].isin(BASELINES)]

    @property
    def slower(self) -> pd.DataFrame:
        return self.mine[self.mine["change"] == "slower"]

    @property
    def faster(self) -> pd.DataFrame:
        return self.mine[self.mine["change"] == "faster"]

    @property
    def exit_code(self) -> int:
        """1 when any of qbench's own results is significantly slower beyond the factor, else 0."""
        return 1 if len(self.slower) else 0

    def lines(self) -> list[str]:
        """The changed rows (baselines marked as context), the counts, and the regression line if any."""
        out = []
        changed = self.table[self.table["change"] != "same"]
        if len(changed):
            out.append(f"{'change':<8} {'ratio':>7} {'before':>11} {'after':>11}  benchmark (parameters)")
            for r in changed.itertuples(index=False):
                note = "" if r.impl not in BASELINES else "  (a baseline: context, not a verdict)"
                out.append(
                    f"{r.change:<8} {r.ratio:7.2f} {r.before:11.4g} {r.after:11.4g}  {r.benchmark} {r.params}{note}"
                )
        slower, faster, mine = len(self.slower), len(self.faster), len(self.mine)
        out.append(
            f"{slower} slower, {faster} faster, {mine - slower - faster} unchanged qbench results (factor "
            f"{self.factor:g}, significant only; {len(self.table) - mine} baseline results beside them)"
        )
        if slower:
            kernels = ", ".join(sorted(set(self.slower["kernel"])))
            out.append(f"REGRESSION: {slower} benchmark(s) slower by more than x{self.factor:g} ({kernels})")
        return out
