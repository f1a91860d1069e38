"""Quantize and dequantize loops (ONNX QuantizeLinear / DequantizeLinear).

Arguments arrive already validated and typed by :mod:`qbench.ops`: ``scale``
is a scalar (or a 1-D array, per axis) of the input's float type, so the
division stays in that precision; quantize takes the zero point as int32,
dequantize as float32, and ``reciprocal`` as None (divide) or
``float32(1 / scale)`` (:mod:`qbench.kernels.division` chose it; bit for bit
the same result). The saturation bounds come from the output's dtype.

The 1-D loops start their vector loop on a 64-byte boundary of the stream
that sets the pace (the float32 side: quantize's reads, dequantize's writes).
NumPy places large arrays 16 bytes past a boundary, and there every 64-byte
access would straddle two cache lines.
"""

import numba
import numpy as np
from numba import prange

from qbench.kernels._jit import kernel
from qbench.kernels.division import quotient

#: ``x / scale`` is clamped to +-2**30 before its conversion to int32, which is
#: undefined for larger values; every target type saturates well inside it.
LIMIT = np.float32(2.0**30)
#: Vectors per iteration of quantize's loops: LLVM's cost model leaves the reciprocal quotient's loop at one
#: (16 values, one 16-byte store); four measured 1.1x faster in L1 and L2 on an Ice Lake Xeon.
INTERLEAVE = 4
#: Lanes and vectors per iteration of dequantize's loops: 8-lane (256-bit) vectors, four at a time, measured
#: 1.1x to 1.35x faster than LLVM's choice of 16-lane ones from L1 to L3 on an Ice Lake Xeon; they are the
#: natural width of AVX2 CPUs, and AMD's Zen 4 splits 512-bit operations into two 256-bit halves anyway.
DEQUANTIZE_WIDTH, DEQUANTIZE_INTERLEAVE = 8, 4
#: Values per block of a 1-D loop: threads take whole blocks, each starting on a 64-byte boundary. Each block is
#: a slice, so its loop counts from 0: an index that starts elsewhere may be negative for all Numba knows, and
#: the wraparound test that follows keeps the loop scalar (10x slower).
BLOCK = 4096


@numba.njit(cache=True, inline="always")
def quantize_with(x, scale, reciprocal, zero_point, qmin, qmax):
    """saturate(round_half_to_even(x / scale) + zero_point); NaN -> zero_point.

    ``zero_point``, ``qmin`` and ``qmax`` are int32. Written as selects so that
    the loop vectorizes to a short chain: rint and the int32 conversion fold
    into one vcvtps2dq (round to nearest even), NaN lanes are masked, and the
    clamp to the output type's full range becomes saturating packs.
    """
    r = quotient(x, scale, reciprocal, LIMIT)
    k = np.int32(np.rint(r))
    k = np.int32(k + zero_point) if x == x else zero_point
    k = qmin if k < qmin else k
    return qmax if k > qmax else k


@numba.njit(cache=True, inline="always")
def quantize_value(x, scale, zero_point, qmin, qmax):
    """:func:`quantize_with` by division."""
    return quantize_with(x, scale, None, zero_point, qmin, qmax)


@numba.njit(cache=True, inline="always")
def output_range(out):
    """The full range of ``out``'s integer type as int32: constants the compiler sees."""
    info = np.iinfo(out.dtype)
    return np.int32(info.min), np.int32(info.max)


@numba.njit(cache=True, inline="always")
def aligned_head(a):
    """How many leading elements of 1-D ``a`` lie before its first 64-byte boundary."""
    return min(a.shape[0], ((-a.ctypes.data) & 63) // a.itemsize)


@kernel(interleave=INTERLEAVE)
def quantize_tensor(x, scale, zero_point, out, reciprocal):
    """Per-tensor quantize of a 1-D array."""
    qmin, qmax = output_range(out)
    n, head = x.shape[0], aligned_head(x)
    for i in range(head):
        out[i] = quantize_with(x[i], scale, reciprocal, zero_point, qmin, qmax)
    for b in prange((n - head + BLOCK - 1) // BLOCK):
        start = head + b * BLOCK
        xb, ob = x[start : start + BLOCK], out[start : start + BLOCK]
        for i in range(xb.shape[0]):
            ob[i] = quantize_with(xb[i], scale, reciprocal, zero_point, qmin, qmax)


@kernel(interleave=INTERLEAVE)
def quantize_axis(x, scale, zero_point, out, reciprocal):
    """Per-axis quantize of an (outer, channels, inner) array; one scale per channel."""
    qmin, qmax = output_range(out)
    outer, channels, inner = x.shape
    for row in prange(outer * channels):
        o = row // channels
        c = row - o * channels
        s, z = scale[c], zero_point[c]
        r = None if reciprocal is None else reciprocal[c]
        for i in range(inner):
            out[o, c, i] = quantize_with(x[o, c, i], s, r, z, qmin, qmax)


@kernel(interleave=DEQUANTIZE_INTERLEAVE, width=DEQUANTIZE_WIDTH)
def dequantize_tensor(q, scale, zero_point, out):
    """Per-tensor dequantize of a 1-D array: (float32(q) - zero_point) * scale."""
    n, head = q.shape[0], aligned_head(out)
    for i in range(head):
        out[i] = (np.float32(q[i]) - zero_point) * scale
    for b in prange((n - head + BLOCK - 1) // BLOCK):
        start = head + b * BLOCK
        qb, ob = q[start : start + BLOCK], out[start : start + BLOCK]
        for i in range(qb.shape[0]):
            ob[i] = (np.float32(qb[i]) - zero_point) * scale


@kernel(interleave=DEQUANTIZE_INTERLEAVE, width=DEQUANTIZE_WIDTH)
def dequantize_axis(q, scale, zero_point, out):
    """Per-axis dequantize of an (outer, channels, inner) array."""
    outer, channels, inner = q.shape
    for row in prange(outer * channels):
        o = row // channels
        c = row - o * channels
        s, z = scale[c], zero_point[c]
        for i in range(inner):
            out[o, c, i] = (np.float32(q[o, c, i]) - z) * s
