"""Regression analysis of tidy results: two commits side by side, and steps along a history.

The statistics are asv's own (through :mod:`qbench.analysis.asv_stats`): its Mann-Whitney U
test (on per-round medians, see :func:`_verdict`), its confidence-interval rule
where samples are missing, and its piecewise-constant fit for steps. What a
comparison means for a CI job (the exit code) is decided here too: :func:`verdict`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qbench import cases
from qbench.analysis import asv_stats as _asv

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
    and on a shared machine processes differ far more than samples within one. So the ratio is best round over best
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


@dataclass(frozen=True)
class Rule:
    """The factors a comparison holds each row to.

    A time ratio beyond its row's factor, and significant, is a change: the
    factor is ``memory`` for rows ``from_memory`` picks (data beyond the
    caches, where a shared machine's bandwidth moves a time most), ``counted``
    for rows whose instructions per call were counted too (the count is then
    the fine test and time the coarse one), else ``time``. An instruction
    count beyond ``instructions`` is a change by itself: it is deterministic.
    """

    time: float = 1.10
    memory: float | None = None
    counted: float | None = None
    instructions: float = 1.05
    from_memory: Callable[[Any], bool] | None = None
    #: The time rows a count of the same kernel and dtype belongs to: counts are made at the gate's cache point.
    in_cache: Callable[[Any], bool] = cases.grid.gate_in_cache

    def time_factor(self, row: Any, counted: bool) -> float:
        if self.memory and self.from_memory is not None and self.from_memory(row):
            return self.memory
        return self.counted if counted and self.counted else self.time


def counted(frame: pd.DataFrame) -> pd.DataFrame:
    """The instruction counts that succeeded (``bench_counts``), one environment per commit."""
    return one_env_per_commit(frame[(frame["unit"] == "instructions") & (frame["status"] == "ok")])


def _change(ratio: float, limit: float, significant: bool = True) -> str:
    if significant and ratio > limit:
        return "slower"
    return "faster" if significant and ratio < 1 / limit else "same"


def _decided(time_change: str, count_change: str, change: str) -> str:
    """Which measure made a row's ``change``: "time", "instructions", or both."""
    if change == "same":
        return ""
    by = [name for name, c in (("instructions", count_change), ("time", time_change)) if c == change]
    return " and ".join(by)


def compare_commits(
    frame: pd.DataFrame, base: str, head: str, factor: float = 1.10, rounds: int = 1, *, rule: Rule | None = None
) -> pd.DataFrame:
    """One row per timed benchmark and parameter set measured at both commits.

    ``ratio`` is head time over base time; where the instructions per call of
    the same kernel and dtype were counted at both commits (``rule.in_cache``
    says which time rows that count belongs to), ``instructions_ratio`` is
    head over base. ``change`` is "slower" (or "faster") when either passes
    its factor of the :class:`Rule` (``factor`` alone when none is given),
    time only when significant; ``decided`` names which did. ``regression``
    marks the slower rows of qbench's own code (baselines are reported, never
    a regression). A count with no time row of its own is a row by itself.
    """
    rule = rule or Rule(time=factor)
    rows = timed(frame[frame["commit"].isin([base, head])])
    key = ["benchmark", "params"]
    before = rows[rows["commit"] == base].set_index(key)
    after = rows[rows["commit"] == head].set_index(key)
    counts = counted(frame[frame["commit"].isin([base, head])])
    count_of = {
        (r.kernel, r.dtype, r.commit): r.value for r in counts.itertuples(index=False) if r.impl not in BASELINES
    }
    unused = {(k, d) for k, d, _ in count_of}
    out = []

    def add(idx: tuple, a: pd.Series, values: tuple, time: tuple | None, count: tuple | None) -> None:
        """One row; ``time`` is (ratio, significant) from :func:`_verdict`, ``count`` (base, head) instructions."""
        time_change = _change(time[0], rule.time_factor(a, count is not None), time[1]) if time else "same"
        count_change = _change(count[1] / count[0], rule.instructions) if count else "same"
        change = next((c for c in ("slower", "faster") if c in (time_change, count_change)), "same")
        out.append(
            {
                "benchmark": idx[0],
                "params": idx[1],
                "kernel": a["kernel"],
                "impl": a["impl"],
                "before": values[0],
                "after": values[1],
                "ratio": time[0] if time else values[1] / values[0],  # the ratio judged, not medians
                "significant": time[1] if time else True,
                "instructions_ratio": count[1] / count[0] if count else np.nan,
                "change": change,
                "decided": _decided(time_change, count_change, change),
                "regression": change == "slower" and a["impl"] not in BASELINES,
                "factor": rule.time_factor(a, count is not None) if time else np.nan,
                "unit": a["unit"],
            }
        )

    for idx in before.index.intersection(after.index):
        a, b = before.loc[idx], after.loc[idx]
        ratio, significant = _verdict(a, b, rounds)
        pair = (a["kernel"], a.get("dtype"))
        count = None
        if a["impl"] not in BASELINES and rule.in_cache(a) and (*pair, base) in count_of and (*pair, head) in count_of:
            count = (count_of[(*pair, base)], count_of[(*pair, head)])
            unused.discard(pair)
        add(idx, a, (a["value"], b["value"]), (ratio, significant), count)
    for r in counts[counts["commit"] == base].itertuples(index=False):
        if (r.kernel, r.dtype) in unused and (r.kernel, r.dtype, head) in count_of:
            count = (r.value, count_of[(r.kernel, r.dtype, head)])
            add((r.benchmark, r.params), pd.Series(r._asdict()), count, None, count)
    table = pd.DataFrame(out, columns=COMPARE_COLUMNS)
    return table.sort_values("ratio", ascending=False).reset_index(drop=True)


COMPARE_COLUMNS = [
    "benchmark",
    "params",
    "kernel",
    "impl",
    "before",
    "after",
    "ratio",
    "significant",
    "instructions_ratio",
    "change",
    "decided",
    "regression",
    "factor",
    "unit",
]


#: Chance of a false step per series of commits, shared among its boundaries (see :func:`detect_steps`).
STEP_ALPHA = 1e-3


def t_tail(t: float, df: float) -> float:
    """P(|T| > t) for Student's t with ``df`` degrees of freedom: the regularized incomplete beta
    I_x(df/2, 1/2) at x = df / (df + t**2), integrated after s = x v**(2/df), which takes away the
    integrand's singularity at 0."""
    a, x = df / 2, df / (df + t * t)
    v = (np.arange(4000) + 0.5) / 4000
    beta = math.exp(math.lgamma(a) + math.lgamma(0.5) - math.lgamma(a + 0.5))
    return float(x**a / (a * beta) * np.mean((1 - x * v ** (1 / a)) ** -0.5))


def t_critical(p: float, df: float) -> float:
    """The t with P(|T| > t) = p (bisection on :func:`t_tail`)."""
    lo, hi = 0.0, 1.0
    while t_tail(hi, df) > p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_tail(mid, df) > p else (lo, mid)
    return hi


def commit_rounds(row: pd.Series, per_round: int) -> list[float]:
    """The log of each round's median for one commit's result (its value alone when samples do not split)."""
    samples = row["samples"]
    if isinstance(samples, list | tuple) and len(samples) >= 2 * per_round and len(samples) % per_round == 0:
        medians = round_medians(samples, len(samples) // per_round)
        return [math.log(m) for m in medians if m > 0]
    return [math.log(row["value"])] if row["value"] > 0 else []


def round_noise(points: list[list[float]]) -> tuple[float, int]:
    """Run-to-run noise of one benchmark: the pooled standard deviation of log round medians within commits.

    Returns (sigma, degrees of freedom). Rounds of one commit run in
    separate processes, interleaved with the other commits' rounds, so their
    spread is exactly the process-to-process and drift noise a step must
    beat. Where no commit has two rounds, the robust spread of successive
    commit levels stands in (steps themselves move only a few of those
    differences).
    """
    groups = [p for p in points if len(p) >= 2]
    if groups:
        ss = sum(float(np.sum((np.asarray(p) - np.mean(p)) ** 2)) for p in groups)
        df = sum(len(p) - 1 for p in groups)
        return math.sqrt(ss / df), df
    levels = [float(np.mean(p)) for p in points if p]
    if len(levels) < 3:
        return 0.0, 0
    return float(1.4826 * np.median(np.abs(np.diff(levels))) / math.sqrt(2)), len(levels) - 2


def _boundary(a: list[float], b: list[float], sigma: float) -> tuple[float, float]:
    """(log ratio of the levels b over a, its size in standard errors) between two adjacent segments."""
    d = float(np.mean(b) - np.mean(a))
    se = sigma * math.sqrt(1 / len(a) + 1 / len(b))
    return d, (abs(d) / se if se > 0 else math.inf)


def segment(points: list[list[float]], sigma: float, threshold: float, z: float) -> list[list[int]]:
    """Commits grouped into levels: start with one segment per commit, merge the weakest boundary until
    every remaining one is both a change beyond ``threshold`` and ``z`` standard errors clear of noise."""
    segs = [[i] for i, p in enumerate(points) if p]

    def pts(seg: list[int]) -> list[float]:
        return [v for i in seg for v in points[i]]

    while len(segs) > 1:
        weak = []
        for j in range(len(segs) - 1):
            d, stat = _boundary(pts(segs[j]), pts(segs[j + 1]), sigma)
            if abs(d) < math.log1p(threshold) or stat < z:
                weak.append((stat, abs(d), j))
        if not weak:
            break
        _, _, j = min(weak)
        segs[j : j + 2] = [segs[j] + segs[j + 1]]
    return segs


def detect_steps(
    history: pd.DataFrame,
    order: list[str] | None = None,
    threshold: float = 0.10,
    *,
    changed: Callable[[str, str], bool] | None = None,
    per_round: int = 5,
) -> pd.DataFrame:
    """Steps in each timed series (benchmark and parameters) along commits, oldest first.

    ``order`` is the commits in history order (git's, which dates cannot give
    for commits made within one second); by commit date when not given.
    Each commit contributes its rounds (``per_round`` samples each, the fixed
    repeat of ``qbench compare``/``history``); :func:`segment` groups commits
    into levels, and a step is kept only where the new level differs by more
    than ``threshold`` and passes a t test against the benchmark's own
    run-to-run noise (:func:`round_noise`) at :data:`STEP_ALPHA` shared
    among the series' boundaries (so a history of many commits and
    benchmarks shows about one false step in a thousand series).

    ``changed(a, b)`` says whether anything measured changed from commit ``a``
    to ``b``; a step where nothing did is noise by construction and is kept
    aside as such ("no measured change"), never as a regression. Baselines
    (NumPy, peers) are context: their steps are "baseline slower/faster".

    Returns one row per step: the commit that caused it (the first commit of
    the new level), the levels before and after (geometric means of their rounds),
    their ratio, ``t`` (the difference in standard errors), ``noise`` (one round's relative
    spread) and ``change``.
    """
    rows = timed(history)
    measured = set(rows["commit"])
    if order is None:
        order = rows.drop_duplicates("commit").sort_values("date")["commit"].tolist()
    order = [c for c in order if c in measured]
    position = {c: i for i, c in enumerate(order)}
    steps = []
    for (bench, params), g in rows.groupby(["benchmark", "params"]):
        points: list[list[float]] = [[] for _ in order]
        for _, row in g.iterrows():
            points[position[row["commit"]]] = commit_rounds(row, per_round)
        if sum(bool(p) for p in points) < 2:
            continue
        sigma, df = round_noise(points)
        if df < 1:
            continue  # two lone values: no noise to judge a step by
        z = t_critical(STEP_ALPHA / (sum(bool(p) for p in points) - 1), df)
        segs = segment(points, sigma, threshold, z)
        impl = g["impl"].iloc[0]
        for prev, nxt in zip(segs, segs[1:], strict=False):
            a = [v for i in prev for v in points[i]]
            b = [v for i in nxt for v in points[i]]
            d, stat = _boundary(a, b, sigma)
            ratio = math.exp(d)
            if impl in BASELINES:
                change = "baseline slower" if ratio > 1 else "baseline faster"
            elif changed is not None and not changed(order[prev[-1]], order[nxt[0]]):
                change = "no measured change"
            else:
                change = "regression" if ratio > 1 else "improvement"
            steps.append(
                {
                    "benchmark": bench,
                    "params": params,
                    "kernel": g["kernel"].iloc[0],
                    "impl": impl,
                    "commit": order[nxt[0]],
                    "before": math.exp(float(np.mean(a))),
                    "after": math.exp(float(np.mean(b))),
                    "ratio": ratio,
                    "t": stat,
                    "noise": math.expm1(sigma),
                    "change": change,
                }
            )
    columns = ["benchmark", "params", "kernel", "impl", "commit", "before", "after", "ratio", "t", "noise", "change"]
    return pd.DataFrame(steps, columns=columns)


@dataclass
class Verdict:
    """What a comparison means for a CI job: qbench's own slower and faster results, and the exit code."""

    table: pd.DataFrame
    factor: float
    instructions: float = 1.05

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
            out.append(f"{'change':<8} {'time':>6} {'instr':>6}  {'decided by':<21} benchmark (parameters)")
            for r in changed.itertuples(index=False):
                note = "" if r.impl not in BASELINES else "  (a baseline: context, not a verdict)"
                instr = "" if math.isnan(r.instructions_ratio) else f"{r.instructions_ratio:6.3f}"
                time = "" if r.benchmark.endswith("track_instructions") else f"{r.ratio:6.2f}"
                out.append(f"{r.change:<8} {time:>6} {instr:>6}  {r.decided:<21} {r.benchmark} {r.params}{note}")
        slower, faster, mine = len(self.slower), len(self.faster), len(self.mine)
        out.append(
            f"{slower} slower, {faster} faster, {mine - slower - faster} unchanged qbench results ({self.rule()}; "
            f"{len(self.table) - mine} baseline results beside them)"
        )
        if slower:
            kernels = ", ".join(sorted(set(self.slower["kernel"])))
            by = ", ".join(sorted({d for d in self.slower["decided"] for d in d.split(" and ")}))
            out.append(f"REGRESSION: {slower} benchmark(s) slower ({kernels}), decided by {by}")
        return out

    def rule(self) -> str:
        """The factors the rows were held to, in words."""
        t = self.table
        factors = sorted(set(t["factor"].dropna())) if len(t) else [self.factor]
        words = [f"time x{'/'.join(f'{f:g}' for f in factors or [self.factor])} and significant"]
        counted = t[t["instructions_ratio"].notna()] if len(t) else t
        if len(counted):
            words.append(f"instructions x{self.instructions:g} on {len(counted)} counted")
        return ", ".join(words)
