"""Round-trip error of a quantized tensor in one pass: per row, the signal and noise energy and the worst error.

The float64 sums are reassociated (vector lanes, then across lanes): the
order changes the last bits of a sum of squares, which an SQNR in dB does
not see; the maximum is exact whatever the order.
"""

import numpy as np
from numba import njit, prange

from qbench.kernels._jit import REASSOC, kernel
from qbench.kernels.ggml import QK, roundf
from qbench.kernels.quantize import quantize_value


@kernel(fastmath=REASSOC)
def error_rows(x, y, signal, noise, worst):
    """For each row r of the 2-D float32 arrays ``x`` (original) and ``y`` (round trip), in float64:
    ``signal[r] = sum x**2``, ``noise[r] = sum (x - y)**2``, ``worst[r] = max |x - y|``."""
    for r in prange(x.shape[0]):
        a = x[r]
        b = y[r]
        s = 0.0
        e = 0.0
        w = 0.0
        for i in range(a.shape[0]):
            v = np.float64(a[i])
            d = v - np.float64(b[i])
            s += v * v
            e += d * d
            w = max(w, abs(d))
        signal[r] = s
        noise[r] = e
        worst[r] = w


#: Lanes of the fused round trips' partial sums and maxima: a max reduced in one scalar does not vectorize, an
#: elementwise max over 16 lanes does (4x the speed of the plain loop on AVX-512).
LANES = 16


@njit(cache=True, inline="always")
def _add(d, j, el, wl):
    """Lane ``j``'s squared-error sum and largest error, with the error ``d``."""
    el[j] += d * d
    ad = abs(d)
    wl[j] = ad if ad > wl[j] else wl[j]


@njit(cache=True, inline="always")
def _round_trip(v, s, z, zf, lo, hi):
    """``v - dequantize(quantize(v))`` in float64, as the quantize and dequantize kernels compute both."""
    y = (np.float32(quantize_value(v, s, z, lo, hi)) - zf) * s
    return np.float64(v) - np.float64(y)


@njit(cache=True, inline="always")
def _round_trip_span(a, start, end, s, z, lo, hi, el, wl):
    """Add the squared errors of ``a[start:end]`` into the lanes ``el`` and their maxima into ``wl``."""
    zf = np.float32(z)
    whole = start + (end - start) // LANES * LANES
    for base in range(start, whole, LANES):
        for j in range(LANES):
            d = _round_trip(a[base + j], s, z, zf, lo, hi)
            _add(d, j, el, wl)
    for i in range(whole, end):
        d = _round_trip(a[i], s, z, zf, lo, hi)
        _add(d, 0, el, wl)


@njit(cache=True, inline="always")
def to_half(v):
    """The float32 value of ``v``'s nearest float16 (ties to even; +-inf from 65520 up), as NumPy's ``astype``
    rounds: subnormal float16 in steps of 2**-24, else Veltkamp's split keeping 11 significant bits (equal to
    NumPy on every finite float32, checked exhaustively). Compiled without fast-math, which would fold it away."""
    a = abs(v)
    if a >= np.float32(65520.0):
        return np.float32(np.inf) if v > 0 else np.float32(-np.inf)
    if a < np.float32(6.103515625e-05):  # 2**-14
        return np.float32(np.rint(v * np.float32(16777216.0))) * np.float32(5.9604644775390625e-08)
    c = v * np.float32(8193.0)  # 2**13 + 1
    return c - (c - v)


@kernel
def half_error_rows(x, noise, worst):
    """The float16 round trip of the float32 rows of ``x``: ``noise[r]``, ``worst[r]`` as in
    :func:`scaled_error_rows` (float64, in :data:`LANES` lanes: no fast-math here)."""
    for r in prange(x.shape[0]):
        a = x[r]
        el = np.zeros(LANES)
        wl = np.zeros(LANES)
        whole = a.shape[0] // LANES * LANES
        for base in range(0, whole, LANES):
            for j in range(LANES):
                d = np.float64(a[base + j]) - np.float64(to_half(a[base + j]))
                _add(d, j, el, wl)
        for i in range(whole, a.shape[0]):
            d = np.float64(a[i]) - np.float64(to_half(a[i]))
            _add(d, 0, el, wl)
        noise[r] = el.sum()
        worst[r] = wl.max()


@kernel(fastmath=REASSOC)
def scaled_error_rows(x, scale, zero_point, qmin, qmax, noise, worst):
    """Round trips of the float32 rows of ``x`` through several scale-and-zero-point formats at once, each row
    read once: format ``f`` quantizes row ``r`` with ``scale[f, r]`` (float32) and ``zero_point[f, r]`` (int32),
    saturating to ``[qmin[f], qmax[f]]``, and dequantizes as :func:`qbench.kernels.quantize.dequantize_tensor`
    does; ``noise[f, r]`` and ``worst[f, r]`` are the float64 sum of squared and largest absolute errors."""
    for r in prange(x.shape[0]):
        a = x[r]
        el = np.empty(LANES)
        wl = np.empty(LANES)
        for f in range(scale.shape[0]):
            el[:] = 0.0
            wl[:] = 0.0
            _round_trip_span(a, 0, a.shape[0], scale[f, r], zero_point[f, r], qmin[f], qmax[f], el, wl)
            noise[f, r] = el.sum()
            worst[f, r] = wl.max()


@kernel(fastmath=REASSOC)
def symmetric_block_error_rows(x, block, divisor, qmin, qmax, noise, worst):
    """Symmetric blocked round trips of the float32 rows of ``x``, calibrated here as
    :func:`qbench.ops.blocks.calibrate_blocks` does (``scale = float32(max(-min, max, 0) / divisor)`` in float64,
    1 for a block of zeros; zero point 0), quantized and dequantized as the blocked kernels do, without storing
    either: ``noise[r]`` and ``worst[r]`` as in :func:`scaled_error_rows`."""
    width = x.shape[1]
    for r in prange(x.shape[0]):
        a = x[r]
        el = np.zeros(LANES)
        wl = np.zeros(LANES)
        ml = np.empty(LANES)
        for base in range(0, width, block):
            end = min(base + block, width)
            ml[:] = 0.0
            whole = base + (end - base) // LANES * LANES
            for b in range(base, whole, LANES):
                for j in range(LANES):
                    v = abs(np.float64(a[b + j]))
                    ml[j] = v if v > ml[j] else ml[j]
            for i in range(whole, end):
                v = abs(np.float64(a[i]))
                ml[0] = v if v > ml[0] else ml[0]
            amax = ml.max()
            s = np.float32(amax / divisor) if amax > 0.0 else np.float32(1.0)
            _round_trip_span(a, base, end, s, np.int32(0), qmin, qmax, el, wl)
        noise[r] = el.sum()
        worst[r] = wl.max()


@kernel(fastmath=REASSOC)
def energy_rows(x, signal):
    """``signal[r] = sum x[r]**2`` in float64."""
    for r in prange(x.shape[0]):
        a = x[r]
        s = 0.0
        for i in range(a.shape[0]):
            v = np.float64(a[i])
            s += v * v
        signal[r] = s


@kernel
def q8_0_error_rows(x, noise, worst):
    """ggml's Q8_0 round trip of the float32 rows of ``x`` (a multiple of 32 values, finite), as
    :func:`qbench.kernels.ggml.q8_0_quantize` then its dequantize compute it, the scale stored as float16
    (:func:`to_half`); ``noise[r]``, ``worst[r]`` as in :func:`scaled_error_rows`. No fast-math: ggml rounds
    each step."""
    for r in prange(x.shape[0]):
        a = x[r]
        el = np.zeros(LANES)
        wl = np.zeros(LANES)
        for base in range(0, a.shape[0], QK):
            amax = np.float32(0)
            for j in range(QK):
                amax = max(amax, abs(a[base + j]))
            scale = amax / np.float32(127)
            inv = np.float32(1) / scale if scale != 0 else np.float32(0)
            d16 = to_half(scale)
            for h in range(0, QK, LANES):
                for j in range(LANES):
                    v = a[base + h + j]
                    d = np.float64(v) - np.float64(np.float32(np.int8(roundf(v * inv))) * d16)
                    _add(d, j, el, wl)
        noise[r] = el.sum()
        worst[r] = wl.max()


@kernel
def q4_0_error_rows(x, noise, worst):
    """ggml's Q4_0 round trip of the float32 rows of ``x``, as :func:`qbench.kernels.ggml.q4_0_quantize` and
    its dequantize compute it (the scale the first largest-magnitude value over -8, stored as float16);
    ``noise[r]``, ``worst[r]`` as in :func:`scaled_error_rows`."""
    for r in prange(x.shape[0]):
        a = x[r]
        el = np.zeros(LANES)
        wl = np.zeros(LANES)
        for base in range(0, a.shape[0], QK):
            amax = np.float32(0)
            peak = np.float32(0)
            for j in range(QK):
                m = abs(a[base + j])
                if m > amax:
                    amax = m
                    peak = a[base + j]
            scale = peak / np.float32(-8)
            inv = np.float32(1) / scale if scale != 0 else np.float32(0)
            d16 = to_half(scale)
            for h in range(0, QK, LANES):
                for j in range(LANES):
                    v = a[base + h + j]
                    q = min(np.int32(v * inv + np.float32(8.5)), 15)
                    d = np.float64(v) - np.float64(np.float32(np.int32(q - 8)) * d16)
                    _add(d, j, el, wl)
        noise[r] = el.sum()
        worst[r] = wl.max()
