"""Regression analysis of tidy results: two commits side by side, and steps along a history.

The statistics are asv's own: a Mann-Whitney U test on the raw samples where
there are enough of them, else non-overlapping 99% confidence intervals
(``asv._stats.is_different``); steps are asv's piecewise-constant fit
(``asv.step_detect.detect_steps``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TIMED_KINDS = ("time", "timeraw")


def one_env_per_commit(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one environment's results per commit (the one with most rows), so no point is counted twice."""
    if frame.empty:
        return frame
    counts = frame.groupby(["commit", "env"]).size().reset_index(name="n")
    best = counts.sort_values("n").groupby("commit").tail(1)
    keep = set(zip(best["commit"], best["env"], strict=True))
    return frame[[(c, e) in keep for c, e in zip(frame["commit"], frame["env"], strict=True)]]


def _is_different(a: pd.Series, b: pd.Series) -> bool:
    from asv import _stats

    def samples(row: pd.Series) -> list | None:
        s = row["samples"]
        return list(s) if isinstance(s, list | tuple) and len(s) else None

    stats_a = {"ci_99_a": a["ci_low"], "ci_99_b": a["ci_high"]}
    stats_b = {"ci_99_a": b["ci_low"], "ci_99_b": b["ci_high"]}
    if samples(a) is None and any(math.isnan(v) for v in (*stats_a.values(), *stats_b.values())):
        return False  # no samples and no intervals: nothing supports a claim of difference
    return bool(_stats.is_different(samples(a), samples(b), stats_a, stats_b))


def compare_commits(frame: pd.DataFrame, base: str, head: str, factor: float = 1.10) -> pd.DataFrame:
    """One row per timed benchmark and parameter set measured at both commits.

    ``ratio`` is head time over base time; ``change`` is "slower" or "faster"
    when the ratio passes ``factor`` (or 1/factor) and the difference is
    statistically significant, else "same".
    """
    timed = frame[frame["kind"].isin(TIMED_KINDS) & (frame["status"] == "ok")]
    timed = one_env_per_commit(timed[timed["commit"].isin([base, head])])
    key = ["benchmark", "params"]
    before = timed[timed["commit"] == base].set_index(key)
    after = timed[timed["commit"] == head].set_index(key)
    rows = []
    for idx in before.index.intersection(after.index):
        a, b = before.loc[idx], after.loc[idx]
        ratio = b["value"] / a["value"]
        significant = _is_different(a, b)
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
                "before": a["value"],
                "after": b["value"],
                "ratio": ratio,
                "significant": significant,
                "change": change,
                "unit": a["unit"],
            }
        )
    columns = ["benchmark", "params", "kernel", "before", "after", "ratio", "significant", "change", "unit"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("ratio", ascending=False).reset_index(drop=True)


def detect_steps(history: pd.DataFrame, threshold: float = 0.05) -> pd.DataFrame:
    """Steps in each timed series (benchmark and parameters) along commits ordered by date.

    Returns one row per step: the commit that caused it (the first commit of
    the new level), the levels before and after, their ratio, and whether it
    is a regression (slower) or an improvement.
    """
    from asv.step_detect import detect_steps as asv_steps

    timed = one_env_per_commit(history[history["kind"].isin(TIMED_KINDS) & (history["status"] == "ok")])
    order = timed.drop_duplicates("commit").sort_values("date")["commit"].tolist()
    position = {c: i for i, c in enumerate(order)}
    rows = []
    for (bench, params), g in timed.groupby(["benchmark", "params"]):
        y = [np.nan] * len(order)
        for c, v in zip(g["commit"], g["value"], strict=True):
            y[position[c]] = v
        if sum(v == v for v in y) < 2:
            continue
        segments = asv_steps(y)
        for prev, nxt in zip(segments, segments[1:], strict=False):
            ratio = nxt[2] / prev[2]
            if abs(ratio - 1) < threshold:
                continue
            rows.append(
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
    return pd.DataFrame(rows, columns=columns)
