"""Accumulate loops: whole-array sums, ``acc += x``, and dot products.

Exactness comes from blocking: a block is summed in narrow lanes that cannot
overflow within it (the block length is chosen by :mod:`qbench.ops` from the
input's range), then added to a 64-bit total. Narrow lanes are what lets one
vector register hold many elements; the block bound is what keeps them exact.

Each block is taken as a slice and looped from 0 to its length: LLVM
vectorizes that loop, but not ``range(start, min(start + block, n))``, which
measured about 10x slower.
"""

import numpy as np
from numba import prange

from qbench.kernels._jit import REASSOC, kernel

#: Values per block of :func:`sum_lanes`. A compile-time constant, so LLVM
#: unrolls each block's loop into straight vector code; 256 8-bit values fit a
#: 16-bit lane (255 * 256 < 2**16, -128 * 256 = -2**15).
SUM_BLOCK = 256


@kernel
def sum_lanes(a, lane_zero, total_zero):
    """Exact sum of 8- or 16-bit ints: blocks summed in ``lane_zero``'s type, added to ``total_zero``.

    The lane is the narrowest integer type that holds a block's sum (16 bits
    for 8-bit input, 32 for 16-bit), so one vector register holds as many
    partial sums as possible. It comes as a zero of that type rather than the
    type itself because Numba dispatches a class argument in ~14 us.
    """
    lane = type(lane_zero)
    n = a.shape[0]
    total = total_zero
    for b in prange(n // SUM_BLOCK):
        chunk = a[b * SUM_BLOCK : b * SUM_BLOCK + SUM_BLOCK]
        s = lane_zero
        for i in range(SUM_BLOCK):
            # The explicit narrowing keeps the lane narrow: Numba would
            # otherwise widen every integer sum to 64 bits.
            s = lane(s + lane(chunk[i]))
        total += s
    for i in range(n - n % SUM_BLOCK, n):
        total += a[i]
    return total


@kernel
def sum_wide(a, total_zero):
    """Exact sum of 32-bit ints straight into a 64-bit total of ``total_zero``'s type."""
    total = total_zero
    for i in prange(a.shape[0]):
        total += a[i]
    return total


@kernel(fastmath=REASSOC)
def sum_float(a, lane_zero, block):
    """Float sum: reassociated lanes of the input's type within a block, float64 across blocks."""
    n = a.shape[0]
    total = 0.0
    for b in prange((n + block - 1) // block):
        chunk = a[b * block : b * block + block]
        s = lane_zero
        for i in range(chunk.shape[0]):
            s += chunk[i]
        total += s
    return total


@kernel
def accumulate_wrap(acc, x, repeat):
    """acc += x, ``repeat`` times; integers wrap modulo 2**bits like NumPy."""
    for _ in range(repeat):
        for i in prange(acc.shape[0]):
            acc[i] += x[i]


@kernel
def accumulate_saturate(acc, x, repeat, lo, hi):
    """acc = clamp(acc + x, lo, hi), ``repeat`` times, computed in int64 (acc of up to 32 bits)."""
    for _ in range(repeat):
        for i in prange(acc.shape[0]):
            v = np.int64(acc[i]) + np.int64(x[i])
            acc[i] = lo if v < lo else (hi if v > hi else v)


@kernel(fastmath=REASSOC)
def dot_float(a, b, lane_zero, block):
    """Float dot: reassociated fused multiply-adds within a block, float64 across blocks."""
    n = a.shape[0]
    total = 0.0
    for k in prange((n + block - 1) // block):
        ca, cb = a[k * block : k * block + block], b[k * block : k * block + block]
        s = lane_zero
        for i in range(ca.shape[0]):
            s += ca[i] * cb[i]
        total += s
    return total


@kernel
def dot_int8(a, b, block):
    """Exact dot of 8-bit ints: int16 products summed into int32 lanes per block, int64 total.

    Both operands widen to int16 and the products add into int32: the shape
    LLVM turns into ``vpmaddwd`` (multiply int16 pairs, add adjacent products).
    """
    n = a.shape[0]
    total = np.int64(0)
    for k in prange((n + block - 1) // block):
        ca, cb = a[k * block : k * block + block], b[k * block : k * block + block]
        s = np.int32(0)
        for i in range(ca.shape[0]):
            s = np.int32(s + np.int32(np.int16(ca[i])) * np.int32(np.int16(cb[i])))
        total += np.int64(s)
    return total
