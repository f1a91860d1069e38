"""Small, honest timing helpers for the CLI's demo: warm once, then medians of repeats."""

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
