"""Small, honest timing helpers for the CLI: warm once, then medians of repeats; side by side when compared."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int = 5, budget_s: float = 0.004) -> dict[str, float]:
    """Median seconds per call of each of ``calls``, timed in alternating order round after round.

    Each round times every call (the order reversed every other round, so a
    drift of the machine favours none) as the median of at least 3 calls
    within ``budget_s``, after as long a warm-up: the call just before may
    have left threads spinning or other data in cache. The result is the
    median over rounds. All are called once first, so no compilation is timed.
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
    return {name: float(sorted(v)[len(v) // 2]) for name, v in per_round.items()}
