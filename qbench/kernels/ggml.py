"""ggml's Q8_0 and Q4_0 block formats: 32 values per block, one scale each.

The kernels see a block array as its parts: the scales as float32 (the
float16 storage is converted by the api, 1 value in 32) and the quants as a
(blocks, 32) int8 or (blocks, 16) uint8 view. Float arithmetic is float32 and
never fused (no fastmath): ggml's reference rounds each step.
"""

import numpy as np
from numba import njit, prange

from qbench.kernels._jit import kernel

QK = 32  # values per block
FLT_MAX = np.float32(np.finfo(np.float32).max)


@njit(cache=True, inline="always")
def roundf(v):
    """C's roundf: to nearest, ties away from zero (exact: ``v - trunc(v)`` has no rounding error)."""
    t = np.trunc(v)
    if v - t >= np.float32(0.5):
        return t + np.float32(1)
    if v - t <= np.float32(-0.5):
        return t - np.float32(1)
    return t


@kernel
def q8_0_quantize(x, d, qs):
    """Per block of 32: d = amax / 127, qs = roundf(x * (1 / d)) (0 where d is 0).

    A block holding NaN or inf gets d = NaN and no quants: the api refuses it.
    """
    for b in prange(x.shape[0]):
        row = x[b]
        amax = np.float32(0)
        finite = True
        for j in range(QK):
            a = abs(row[j])
            finite &= a <= FLT_MAX
            amax = max(amax, a)
        if not finite:
            d[b] = np.nan
            continue
        scale = amax / np.float32(127)
        inv = np.float32(1) / scale if scale != 0 else np.float32(0)
        d[b] = scale
        for j in range(QK):
            qs[b, j] = np.int8(roundf(row[j] * inv))


@kernel
def q4_0_quantize(x, d, qs):
    """Per block: d = max / -8 (max: the first value of largest magnitude, signed), q = min(15, trunc(x / d + 8.5)),
    packed ``qs[j] = q[j] | q[j + 16] << 4``."""
    for b in prange(x.shape[0]):
        row = x[b]
        amax = np.float32(0)
        peak = np.float32(0)
        finite = True
        for j in range(QK):
            a = abs(row[j])
            finite &= a <= FLT_MAX
            if a > amax:
                amax = a
                peak = row[j]
        if not finite:
            d[b] = np.nan
            continue
        scale = peak / np.float32(-8)
        inv = np.float32(1) / scale if scale != 0 else np.float32(0)
        d[b] = scale
        for j in range(QK // 2):
            lo = min(np.int32(row[j] * inv + np.float32(8.5)), 15)
            hi = min(np.int32(row[j + QK // 2] * inv + np.float32(8.5)), 15)
            qs[b, j] = np.uint8(lo | (hi << 4))


@kernel
def q8_0_dequantize(d, qs, out):
    """out = float32(qs) * d, per block."""
    for b in prange(qs.shape[0]):
        for j in range(QK):
            out[b, j] = np.float32(qs[b, j]) * d[b]


@kernel
def q4_0_dequantize(d, qs, out):
    """out[j] = (low nibble - 8) * d, out[j + 16] = (high nibble - 8) * d, per block."""
    for b in prange(qs.shape[0]):
        for j in range(QK // 2):
            v = qs[b, j]
            out[b, j] = np.float32(np.int32(v & 15) - 8) * d[b]
            out[b, j + QK // 2] = np.float32(np.int32(v >> 4) - 8) * d[b]


@kernel
def q4_0_q8_0_dot_rows(wd, wqs, xd, xqs, out):
    """out[n] = sum_b float32(float32(sumi_b * wd[n, b]) * xd[b]), the sum in float64.

    sumi_b = sum_j (lo_j - 8) x_j + (hi_j - 8) x_{j+16}: exact integers, as ggml's vec_dot_q4_0_q8_0.
    """
    for n in prange(wqs.shape[0]):
        total = 0.0
        for b in range(wqs.shape[1]):
            s = np.int32(0)
            for j in range(QK // 2):
                v = wqs[n, b, j]
                s += (np.int32(v & 15) - 8) * np.int32(xqs[b, j]) + (np.int32(v >> 4) - 8) * np.int32(xqs[b, j + 16])
            total += np.float32(np.float32(s) * wd[n, b]) * xd[b]
        out[n] = total


@kernel
def q8_0_q8_0_dot_rows(wd, wqs, xd, xqs, out):
    """out[n] = sum_b float32(float32(sumi_b * wd[n, b]) * xd[b]) with sumi_b = sum_j w_j x_j, the sum in float64."""
    for n in prange(wqs.shape[0]):
        total = 0.0
        for b in range(wqs.shape[1]):
            s = np.int32(0)
            for j in range(QK):
                s += np.int32(wqs[n, b, j]) * np.int32(xqs[b, j])
            total += np.float32(np.float32(s) * wd[n, b]) * xd[b]
        out[n] = total
