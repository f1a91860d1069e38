"""Error of a quantization round trip, computed in float64."""

from __future__ import annotations

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
    noise = float(np.sum((a - b) ** 2))
    signal = float(np.sum(a**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))
