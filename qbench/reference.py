"""Plain NumPy reference of every kernel: the oracle for tests and the baseline in benchmarks.

Written the obvious way, from the ONNX operator definitions, independent of
the Numba kernels' formulation (integer zero-point addition here, float there),
so that agreement between the two means something.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.params import QuantParams


def _broadcast(values: Any, params: QuantParams, ndim: int) -> Any:
    """Per-axis parameters shaped to broadcast along ``params.axis``."""
    if params.axis is None:
        return values
    shape = [1] * ndim
    shape[params.axis % ndim] = -1
    return np.reshape(values, shape)


def quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX QuantizeLinear: rint(x / scale) as an integer, plus the zero point, clipped."""
    x = np.asarray(x)
    scale = _broadcast(np.asarray(params.scale, np.float32), params, x.ndim)
    zero_point = _broadcast(np.asarray(params.zero_point, np.int64), params, x.ndim)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.rint(x / scale)
        nan = np.isnan(r)
        # Clip before the integer cast: anything beyond +-2**40 saturates anyway.
        r = np.clip(np.where(nan, 0, r), -(2.0**40), 2.0**40).astype(np.int64)
    q = np.where(nan, zero_point, np.clip(r + zero_point, params.qmin, params.qmax))
    return np.asarray(q, dtype=params.dtype)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) * scale, in float32."""
    q = np.asarray(q)
    scale = _broadcast(np.asarray(params.scale, np.float32), params, q.ndim)
    zero_point = _broadcast(np.asarray(params.zero_point, np.int64), params, q.ndim)
    return np.asarray((q.astype(np.int64) - zero_point).astype(np.float32) * scale, dtype=np.float32)


def sum(a: np.ndarray) -> Any:  # noqa: A001 - mirrors numpy.sum
    """NumPy's sum with qbench's widening rule (uint64, int64, float64)."""
    a = np.asarray(a)
    acc = {"u": np.uint64, "i": np.int64, "f": np.float64}[a.dtype.kind]
    return a.sum(dtype=acc)


def accumulate(acc: np.ndarray, x: np.ndarray, *, repeat: int = 1, overflow: str = "wrap") -> np.ndarray:
    """``acc += x`` the NumPy way (wrapping), or clamped step by step for ``overflow="saturate"``."""
    for _ in range(repeat):
        if overflow == "saturate" and acc.dtype.kind in "iu":
            info = np.iinfo(acc.dtype)
            wide = acc.astype(np.int64) + x.astype(np.int64)
            acc[...] = np.clip(wide, info.min, info.max)
        else:
            np.add(acc, x, out=acc, casting="unsafe")
    return acc


def dot(a: np.ndarray, b: np.ndarray) -> Any:
    """float64 dot for floats, exact int64 dot for 8-bit ints."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.dtype.kind == "f":
        return np.dot(a.astype(np.float64), b.astype(np.float64))
    return np.dot(a.astype(np.int64), b.astype(np.int64))


def qdot(qa: np.ndarray, pa: QuantParams, qb: np.ndarray, pb: QuantParams) -> float:
    """Float dot of the two dequantized vectors."""
    return float(np.dot(dequantize(qa, pa).astype(np.float64).ravel(), dequantize(qb, pb).astype(np.float64).ravel()))
