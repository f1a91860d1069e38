"""Quantize and dequantize loops (ONNX QuantizeLinear / DequantizeLinear).

Arguments arrive already validated and typed by :mod:`qbench.ops`: ``scale``
is a scalar (or a 1-D array, per axis) of the input's float type, so the
division stays in that precision; quantize takes the zero point as int32,
dequantize as float32. The saturation bounds come from the output's dtype.
"""

import numba
import numpy as np
from numba import prange

from qbench.kernels._jit import kernel

#: ``x / scale`` is clamped to +-2**30 before its conversion to int32, which is
#: undefined for larger values; every target type saturates well inside it.
LIMIT = np.float32(2.0**30)


@numba.njit(cache=True, inline="always")
def quantize_value(x, scale, zero_point, qmin, qmax):
    """saturate(round_half_to_even(x / scale) + zero_point); NaN -> zero_point.

    ``zero_point``, ``qmin`` and ``qmax`` are int32. Written as selects so that
    the loop vectorizes to a short chain: rint and the int32 conversion fold
    into one vcvtps2dq (round to nearest even), NaN lanes are masked, and the
    clamp to the output type's full range becomes saturating packs.
    """
    r = x / scale
    ok = r == r
    # min/max, not two selects: LLVM moves selects past the conversion as
    # compare-and-blend pairs, twice the instructions of vminps/vmaxps.
    r = min(max(r, -LIMIT), LIMIT)
    k = np.int32(np.rint(r))
    k = np.int32(k + zero_point) if ok else zero_point
    k = qmin if k < qmin else k
    return qmax if k > qmax else k


@numba.njit(cache=True, inline="always")
def output_range(out):
    """The full range of ``out``'s integer type as int32: constants the compiler sees."""
    info = np.iinfo(out.dtype)
    return np.int32(info.min), np.int32(info.max)


@kernel
def quantize_tensor(x, scale, zero_point, out):
    """Per-tensor quantize of a 1-D array."""
    qmin, qmax = output_range(out)
    for i in prange(x.shape[0]):
        out[i] = quantize_value(x[i], scale, zero_point, qmin, qmax)


@kernel
def quantize_axis(x, scale, zero_point, out):
    """Per-axis quantize of an (outer, channels, inner) array; one scale per channel."""
    qmin, qmax = output_range(out)
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
