"""Small, honest timing helpers for the CLI: warm once, then medians of repeats; side by side when compared."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def first_call_seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Wall time of one call: for a cold kernel, its compile (or cache load) time."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def median_seconds(fn: Callable[..., Any], *args: Any, repeat: int = 15, **kwargs: Any) -> float:
    """Median wall time of ``repeat`` calls after one warm-up call (so no compilation is timed)."""
    fn(*args, **kwargs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def interleaved_rounds(
    calls: dict[str, Callable[[], Any]], rounds: int = 5, budget_s: float = 0.004
) -> dict[str, list[float]]:
    """Seconds per call of each of ``calls`` in every round, timed in alternating order round after round.

    Each round times every call (the order reversed every other round, so a
    drift of the machine favours none) as the median of at least 3 calls
    within ``budget_s``, after as long a warm-up: the call just before may
    have left threads spinning or other data in cache. All are called once
    first, so no compilation is timed. A ratio of two calls is best taken per
    round (:func:`round_ratios`): both sides of a round saw the same machine.
    """
    for fn in calls.values():
        fn()
    per_round: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = calls[name]
            for _warm_then_time in range(2):
                times: list[float] = []
                deadline = time.perf_counter() + budget_s
                while len(times) < 3 or time.perf_counter() < deadline:
                    start = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - start)
            per_round[name].append(sorted(times)[len(times) // 2])
    return per_round


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2)


def round_ratios(per_round: dict[str, list[float]], slow: str, fast: str) -> list[float]:
    """``slow``'s time over ``fast``'s in each round: how many times faster ``fast`` ran."""
    return [s / f for s, f in zip(per_round[slow], per_round[fast], strict=True)]


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int = 5, budget_s: float = 0.004) -> dict[str, float]:
    """Median over rounds of each call's seconds (:func:`interleaved_rounds`)."""
    return {name: float(sorted(v)[len(v) // 2]) for name, v in interleaved_rounds(calls, rounds, budget_s).items()}


def clock(seconds: float) -> str:
    """mm:ss (or h:mm:ss) of a duration."""
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Ticker:
    """A progress line on stderr: share done, items done of total, elapsed, time left, the current item.

    Redrawn in place on a terminal; elsewhere (a CI log) the first item and one line per 10% of the work.
    """

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self.what, self.total, self.count = what, total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.shown = -1.0

    def step(self, share: float, label: str = "") -> None:
        """One item done; ``share`` of the work done in all (by size, not count, for the estimate)."""
        self.count += 1
        elapsed = time.perf_counter() - self.start
        left = f"~{clock(elapsed / share * (1 - share))} left" if 0 < share < 1 else "done"
        text = f"[{100 * share:5.1f}%] {self.count}/{self.total} {self.what}, {clock(elapsed)} elapsed, {left}"
        if self.tty:
            self.stream.write(f"\r{text}  {label[:40]:<40}")
        elif int(10 * share) > int(10 * self.shown) or self.shown < 0:
            self.stream.write(f"{text}  {label}\n")
            self.shown = share
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
