"""Quantize and dequantize loops (ONNX QuantizeLinear / DequantizeLinear).

Arguments arrive already validated and typed by :mod:`qbench.api`: ``scale``,
``zero_point``, ``qmin`` and ``qmax`` are scalars (or 1-D arrays, per axis) of
the input's float type, so every step below stays in that precision.
"""

import numba
import numpy as np
from numba import prange

from qbench.kernels._jit import kernel


@numba.njit(cache=True, inline="always")
def quantize_value(x, scale, zero_point, qmin, qmax):
    """saturate(round_half_to_even(x / scale) + zero_point); NaN -> zero_point.

    Written as selects, not branches, so the loop around it vectorizes. The
    zero point is added in float: rint() is an integer below 2**24, so the sum
    is exact, and anything larger saturates either way.
    """
    r = x / scale
    q = np.rint(r) + zero_point
    q = qmin if q < qmin else q
    q = qmax if q > qmax else q
    return zero_point if r != r else q


@kernel
def quantize_tensor(x, scale, zero_point, qmin, qmax, out):
    """Per-tensor quantize of a 1-D array."""
    for i in prange(x.shape[0]):
        out[i] = quantize_value(x[i], scale, zero_point, qmin, qmax)


@kernel
def quantize_axis(x, scale, zero_point, qmin, qmax, out):
    """Per-axis quantize of an (outer, channels, inner) array; one scale per channel."""
    outer, channels, inner = x.shape
    for row in prange(outer * channels):
        o = row // channels
        c = row - o * channels
        s, z = scale[c], zero_point[c]
        for i in range(inner):
            out[o, c, i] = quantize_value(x[o, c, i], s, z, qmin, qmax)


@kernel
def dequantize_tensor(q, scale, zero_point, out):
    """Per-tensor dequantize of a 1-D array: (float32(q) - zero_point) * scale."""
    for i in prange(q.shape[0]):
        out[i] = (np.float32(q[i]) - zero_point) * scale


@kernel
def dequantize_axis(q, scale, zero_point, out):
    """Per-axis dequantize of an (outer, channels, inner) array."""
    outer, channels, inner = q.shape
    for row in prange(outer * channels):
        o = row // channels
        c = row - o * channels
        s, z = scale[c], zero_point[c]
        for i in range(inner):
            out[o, c, i] = (np.float32(q[o, c, i]) - z) * s
