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
