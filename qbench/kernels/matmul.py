"""Matrix products: ``out[m, n] = sum_k a[m, k] * bt[n, k]``, and the steps around the integer one.

The weights come transposed (``bt``, one row per output column, as a linear
layer stores them), so every output is one contiguous dot product over K: the
loop shape LLVM vectorizes into multiply-adds. For 8-bit operands the
activations are first widened to int16 (:func:`widen_rows`) and the weights
widened inside the loop: a product of two int16 values summed in pairs into
int32 is what LLVM turns into ``vpmaddwd``, or ``vpdpwssd`` where VNNI exists.
int16 lanes hold every 8-bit product exactly and never saturate, unlike the
u8 x s8 ``vpmaddubsw`` (see :mod:`qbench.ops.matmul`).

Blocking: the output columns are taken ``block`` at a time (the api sizes a
block of weight rows to stay in L2) and every activation row is run against
a block before the next, so a weight row is read from memory once per call.
With M = 1 (GEMV) this is a plain stream over the weights.
"""

import numba
import numpy as np
from numba import prange

from qbench.kernels._jit import REASSOC, kernel


@kernel
def widen_rows(a, zero_point, out, sums):
    """out[m] = int16(a[m]) - zero_point[m], and sums[m] = the row's sum of out (int32, wrapping)."""
    for m in prange(a.shape[0]):
        row, dst = a[m], out[m]
        zp = zero_point[m]
        s = np.int32(0)
        for k in range(row.shape[0]):
            v = np.int16(np.int16(row[k]) - zp)
            dst[k] = v
            s = np.int32(s + v)
        sums[m] = s


@kernel(fastmath=REASSOC)
def dot_rows(a, bt, lane_zero, acc_zero, b_zero_point, a_sums, out, block):
    """out[m, n] = sum_k acc(a[m, k]) * acc(lane(bt[n, k])) - b_zero_point[n] * a_sums[m].

    ``lane``/``acc`` are the types of ``lane_zero``/``acc_zero``: int16/int32
    for 8-bit weights (products exact, sums wrap modulo 2**32 as int32 does),
    float32/float32 for the float twin of the same blocking (reassociated).
    """
    lane, acc = type(lane_zero), type(acc_zero)
    rows, n_total = a.shape[0], bt.shape[0]
    for j in prange((n_total + block - 1) // block):
        for m in range(rows):
            am, dst = a[m], out[m]
            correction = a_sums[m]
            for n in range(j * block, min(j * block + block, n_total)):
                b = bt[n]
                s = acc_zero
                for k in range(am.shape[0]):
                    s = acc(s + acc(am[k]) * acc(lane(b[k])))
                dst[n] = acc(s - b_zero_point[n] * correction)


@numba.njit(cache=True, inline="always")
def scaled(acc, scale, bias):
    """DynamicQuantizeMatMul's output ``float32(acc) * scale + bias``: two roundings (a multiply, then an add), no
    FMA, as ONNX Runtime's output processor does."""
    return np.float32(np.float32(acc) * scale) + bias


@kernel
def scale_rows(acc, scale, bias, out):
    """out[m, n] = :func:`scaled` (acc[m, n], scale[n], bias[n])."""
    for m in prange(acc.shape[0]):
        src, dst = acc[m], out[m]
        for n in range(src.shape[0]):
            dst[n] = scaled(src[n], scale[n], bias[n])


@kernel
def requantize(acc, multiplier, lo, hi, zero_point, out):
    """out = round_half_even(clamp(float32(acc) * multiplier[n], lo, hi)) + zero_point, stored in out's type.

    ``lo``/``hi`` are the output range less the zero point, so clamping
    before rounding equals saturating after it, and the sum always fits.
    """
    for m in prange(acc.shape[0]):
        src, dst = acc[m], out[m]
        for n in range(src.shape[0]):
            v = min(max(np.float32(src[n]) * multiplier[n], lo), hi)
            dst[n] = np.int32(np.rint(v)) + zero_point


@kernel
def min_max(x, zero):
    """(min, max, NaN count) of a contiguous 1-D float array, the range widened to include ``zero``."""
    lo = hi = zero
    nans = 0
    for i in prange(x.shape[0]):
        v = x[i]
        lo = min(lo, v)
        hi = max(hi, v)
        nans += v != v
    return lo, hi, nans


@numba.njit(cache=True)
def dynamic_params(lo, hi):
    """DynamicQuantizeLinear's (scale, zero point) for the float32 range [lo, hi] (0 inside it): ``scale = (hi - lo)
    / 255``, ``zero_point = round_half_even(clamp(0 - lo / scale, 0, 255))``, float32 throughout; scale 1 and
    zero point 0 for an empty range, as ONNX Runtime gives."""
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        return np.float32(1), np.int32(0)
    return scale, np.int32(np.rint(min(max(np.float32(0) - lo / scale, np.float32(0)), np.float32(255))))


@kernel(fastmath=REASSOC)
def dot_peak(a, b, lane_zero, acc_zero, reps):
    """:func:`dot_rows`'s inner loop ``reps`` times over one L1-resident pair: the rate its arithmetic allows.

    Each repeat's sum feeds the total, so no repeat can be skipped.
    """
    lane, acc = type(lane_zero), type(acc_zero)
    total = acc_zero
    for _ in range(reps):
        s = acc_zero
        for k in range(a.shape[0]):
            s = acc(s + acc(a[k]) * acc(lane(b[k])))
        total = acc(total + s)
    return total
