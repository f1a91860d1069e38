"""Error of a quantization round trip, computed in float64."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def _pair(original: Any, roundtrip: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(roundtrip, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"original and round trip differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("error metrics need at least one element")
    return a, b


def mse(original: Any, roundtrip: Any) -> float:
    """Mean squared error."""
    a, b = _pair(original, roundtrip)
    return float(np.mean((a - b) ** 2))


def max_abs_error(original: Any, roundtrip: Any) -> float:
    """Largest absolute difference."""
    a, b = _pair(original, roundtrip)
    return float(np.max(np.abs(a - b)))


def sqnr_db(original: Any, roundtrip: Any) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum(x^2) / sum((x - x')^2)); inf if exact."""
    a, b = _pair(original, roundtrip)
    return db(float(np.sum(a**2)), float(np.sum((a - b) ** 2)))


def db(signal: float, noise: float) -> float:
    """10 log10(signal / noise): inf when there is no noise, -inf when there is no signal."""
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * math.log10(signal / noise)


@dataclass
class ErrorSums:
    """The SQNR and max error of a round trip, accumulated a block of rows at a time (one pass, no copies)."""

    signal: float = 0.0
    noise: float = 0.0
    worst: float = 0.0

    def add(self, original: np.ndarray, roundtrip: np.ndarray, *, parallel: bool = False) -> None:
        """Add two C-contiguous 2-D float32 arrays of one shape: the original rows and their round trip."""
        from qbench.kernels.metrics import error_rows

        rows = original.shape[0]
        signal, noise, worst = (np.empty(rows) for _ in range(3))
        error_rows(original, roundtrip, signal, noise, worst, parallel=parallel)
        self.signal += float(signal.sum())
        self.noise += float(noise.sum())
        self.worst = max(self.worst, float(worst.max(initial=0.0)))

    @property
    def sqnr_db(self) -> float:
        return db(self.signal, self.noise)
