"""ggml's Q8_0 and Q4_0 block formats: 32 values per block, one scale each.

Quantize writes the scales as float32 and the quants into a view of the blocks (the api stores the
scales as float16, 1 value in 32). Dequantize and the dot products read the blocks' bytes as they lie,
each float16 scale looked up in a table of all 65536 (as ggml does on CPUs without a conversion
instruction). Float arithmetic is float32 and never fused (no fastmath): ggml's reference rounds each step.

The values per block (``qk`` = 32) and bytes per Q4_0 block (``half`` = 16) arrive as run-time
arguments: with a constant trip count LLVM unrolls a block's loop into scalar code, where a loop of
run-time length becomes one or two vector iterations.
"""

import numpy as np
from numba import njit, prange

from qbench.kernels._jit import kernel

QK = 32  # values per block
FLT_MAX = np.float32(np.finfo(np.float32).max)


@njit(cache=True, inline="always")
def roundf(v):
    """C's roundf: to nearest, ties away from zero (exact: ``v - trunc(v)`` has no rounding error).

    Written without branches, so that a block's loop vectorizes."""
    t = np.trunc(v)
    r = v - t
    return t + np.float32(r >= np.float32(0.5)) - np.float32(r <= np.float32(-0.5))


@kernel(wide=False)
def q8_0_quantize(x, qk, d, qs):
    """Per block of 32: d = amax / 127, qs = roundf(x * (1 / d)) (0 where d is 0).

    A block holding NaN or inf gets d = NaN and no quants: the api refuses it.
    """
    for b in prange(x.shape[0]):
        row = x[b]
        amax = np.float32(0)
        finite = True
        for j in range(qk):
            a = abs(row[j])
            finite &= a <= FLT_MAX
            amax = max(amax, a)
        if not finite:
            d[b] = np.nan
            continue
        scale = amax / np.float32(127)
        inv = np.float32(1) / scale if scale != 0 else np.float32(0)
        d[b] = scale
        for j in range(qk):
            qs[b, j] = np.int8(roundf(row[j] * inv))


@kernel(wide=False)
def q4_0_quantize(x, qk, d, qs):
    """Per block: d = max / -8 (max: the first value of largest magnitude, signed), q = min(15, trunc(x / d + 8.5)),
    packed ``qs[j] = q[j] | q[j + 16] << 4``."""
    for b in prange(x.shape[0]):
        row = x[b]
        amax = np.float32(0)
        peak = np.float32(0)
        finite = True
        for j in range(qk):
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
        half = qk // 2
        for j in range(half):
            lo = min(np.int32(row[j] * inv + np.float32(8.5)), 15)
            hi = min(np.int32(row[j + half] * inv + np.float32(8.5)), 15)
            qs[b, j] = np.uint8(lo | (hi << 4))


@njit(cache=True, inline="always")
def scale_of(blocks, b, table):
    """Block ``b``'s float16 scale (its first two bytes, little-endian) as float32, looked up in ``table``."""
    return table[np.int32(blocks[b, 0]) | (np.int32(blocks[b, 1]) << 8)]


@kernel(wide=False)
def q8_0_dequantize(blocks, table, qk, out):
    """out = float32(qs) * d, per block of (blocks, 34) bytes."""
    for b in prange(blocks.shape[0]):
        d = scale_of(blocks, b, table)
        for j in range(qk):
            out[b, j] = np.float32(np.int8(blocks[b, 2 + j])) * d


@kernel(wide=False)
def q4_0_dequantize(blocks, table, half, out):
    """out[j] = (low nibble - 8) * d, out[j + 16] = (high nibble - 8) * d, per block of (blocks, 18) bytes."""
    for b in prange(blocks.shape[0]):
        d = scale_of(blocks, b, table)
        for j in range(half):
            v = np.int32(blocks[b, 2 + j])
            # Truncating to int32 keeps the lanes 32-bit: Numba computes small ints as int64.
            out[b, j] = np.float32(np.int32((v & 15) - 8)) * d
            out[b, j + half] = np.float32(np.int32((v >> 4) - 8)) * d


@kernel(wide=False)
def q4_0_q8_0_dot_rows(w, table, xd, xqs, half, out):
    """out[n] = sum_b float32(float32(sumi_b * d_w) * xd[b]), the sum in float64, for weight rows ``w``
    (N, blocks, 18) bytes.

    sumi_b = sum_j (lo_j - 8) x_j + (hi_j - 8) x_{j+16}: exact integers, as ggml's vec_dot_q4_0_q8_0.
    """
    for n in prange(w.shape[0]):
        row = w[n]
        total = 0.0
        for b in range(row.shape[0]):
            s = np.int32(0)
            for j in range(half):
                v = np.int32(row[b, 2 + j])
                lo = np.int32((v & 15) - 8) * np.int32(xqs[b, j])
                s = np.int32(s + lo + np.int32((v >> 4) - 8) * np.int32(xqs[b, j + half]))
            total += np.float32(np.float32(s) * scale_of(row, b, table)) * xd[b]
        out[n] = total


@kernel(wide=False)
def q8_0_q8_0_dot_rows(w, table, xd, xqs, qk, out):
    """out[n] = sum_b float32(float32(sumi_b * d_w) * xd[b]) with sumi_b = sum_j w_j x_j, the sum in float64."""
    for n in prange(w.shape[0]):
        row = w[n]
        total = 0.0
        for b in range(row.shape[0]):
            s = np.int32(0)
            for j in range(qk):
                s = np.int32(s + np.int32(np.int8(row[b, 2 + j])) * np.int32(xqs[b, j]))
            total += np.float32(np.float32(s) * scale_of(row, b, table)) * xd[b]
        out[n] = total
