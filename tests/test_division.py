"""The reciprocal quotient equals the float32 division: the enumeration that completes its proof, every float32
input for sample scales, every significand for the scales whose reciprocals round worst, and the API's choice.

The proof (``docs/division.md``): for significands a, b in [1, 2), y = RN(1/b), q = RN(a * y), the value
v = q + RN(a - b * q) * y that the last FMA rounds lies within 4 * 2**(e - 47) of t = a / b (e: t's binade).
RN(v) can differ from RN(t) only if a rounding boundary (a midpoint between floats) lies that close to t, that
is, only if a - b * mid = N * 2**(e_m - 47) with 0 < |N| < 16. :func:`boundary_pairs` lists every such (a, b)
for |N| <= 32 and checks each.
"""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from numba import prange

import qbench
from qbench.kernels import division
from qbench.kernels.division import EXACT_SCALES, quotient
from qbench.kernels.quantize import LIMIT, quantize_with

F32 = np.float32
BIG = F32(2.0**100)  # a clamp no x in [1, 2) reaches at any scale tested


@numba.njit(cache=True)
def _inverse(odd, bits):
    """The inverse of an odd integer modulo 2**bits (Newton's iteration, 3 -> 48 correct bits)."""
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    v, inv = np.uint64(odd), np.uint64(odd)
    for _ in range(5):
        inv = (inv * (np.uint64(2) - v * inv)) & mask
    return inv


@numba.njit(parallel=True, cache=True)
def boundary_pairs(reach):
    """Check every pair of significands A, B (24-bit integers) whose quotient lies within ``reach`` units of
    2**(e_m - 47) of a midpoint M * 2**(e_m - 24) (M odd), for midpoints in the binades e_m = -2, -1, 0.

    Returns (pairs checked, pairs where the reciprocal quotient differs from the division, first such A, B).
    """
    lo, hi = 1 << 23, 1 << 24
    checked = np.zeros(hi - lo, np.int64)
    wrong = np.zeros(hi - lo, np.int64)
    for i in prange(hi - lo):
        B = lo + i
        b = F32(B) * F32(2.0**-23)
        y = F32(1) / b
        j = 0
        while (B >> j) & 1 == 0:
            j += 1
        odd = B >> j
        for e_m in range(-2, 1):
            k = 24 - e_m
            bits = k - j
            inv = _inverse(odd, bits)
            step = np.int64(1) << bits
            for N in range(-reach, reach + 1):
                if N == 0 or N % (1 << j) != 0 or (N >> j) % 2 == 0:
                    continue  # no odd M solves B * M = -N (mod 2**k)
                rest = np.int64((np.uint64(-(N >> j) % step) * inv) & np.uint64(step - 1))
                M = rest + ((np.int64(1 << 24) - rest + step - 1) // step) * step
                while M < (1 << 25):
                    A = (np.int64(B) * M + N) >> k
                    if lo <= A < hi and (np.int64(B) * M + N) == A << k:
                        a = F32(A) * F32(2.0**-23)
                        checked[i] += 1
                        if quotient(a, b, y, LIMIT) != a / b:
                            wrong[i] += 1
                    M += step
    first = np.flatnonzero(wrong)
    bad = (first[0] + lo) if first.size else -1
    return checked.sum(), wrong.sum(), bad


def test_no_pair_of_significands_near_a_rounding_boundary_is_rounded_differently():
    checked, wrong, first_b = boundary_pairs(32)
    # Each of the 2**23 divisors has a few dozen such dividends (odd N near 0, one M each per binade).
    assert checked > 2**23 * 10, checked
    assert wrong == 0, f"{wrong} pairs differ, the first with divisor significand {first_b}"


def test_the_enumeration_finds_the_pairs_a_wrong_quotient_would_break():
    # Holds the enumeration to what it claims: one plain product without the correction, RN(a * y), differs
    # from the division for many of these pairs.
    @numba.njit(parallel=True)
    def product_differs(count):
        wrong = 0
        for i in prange(count):
            b = F32(1.5) + F32(i) * F32(2.0**-23)
            y = F32(1) / b
            for ia in range(0, 1 << 23, 4099):
                a = F32(1) + F32(ia) * F32(2.0**-23)
                wrong += (a * y) != (a / b)
        return wrong

    assert product_differs(64) > 0


@numba.njit(parallel=True, cache=True)
def _every_input_differs(scale, zero_point, qmin, qmax):
    """How many of the 2**32 float32 bit patterns quantize differently by reciprocal than by division."""
    r = F32(1) / scale
    total = 0
    for hi in prange(1 << 16):
        bits = np.empty(1 << 16, np.uint32)
        for lo in range(1 << 16):
            bits[lo] = np.uint32(hi) << np.uint32(16) | np.uint32(lo)
        xs = bits.view(np.float32)
        for x in xs:
            total += quantize_with(x, scale, r, zero_point, qmin, qmax) != quantize_with(
                x, scale, None, zero_point, qmin, qmax
            )
    return total


@pytest.mark.parametrize("scale", [F32(0.1), np.nextafter(F32(2), F32(0))])
def test_every_float32_input_quantizes_as_by_division(scale):
    # All 2**32 bit patterns (NaN, +-inf, subnormals, both zeros, huge values) with bounds of +-2**24, past
    # which no float32 quotient has a fraction: the widest range where rounding decides.
    assert _every_input_differs(scale, np.int32(3), np.int32(-(2**24)), np.int32(2**24)) == 0


@numba.njit(parallel=True, cache=True)
def _significands_differ(scales):
    wrong = np.zeros(scales.size, np.int64)
    for k in prange(scales.size):
        s = scales[k]
        r = F32(1) / s
        for i in range(1 << 23):
            x = F32(1) + F32(i) * F32(2.0**-23)
            wrong[k] += quotient(x, s, r, BIG) != x / s
    return wrong


def test_every_significand_for_the_scales_whose_reciprocals_round_worst():
    b = (1 + np.arange(1 << 23) * 2.0**-23).astype(F32)
    error = np.abs((F32(1) / b).astype(np.float64) * b - 1)  # relative error of y = RN(1/b)
    worst = b[np.argsort(-error)[:64]]
    scales = np.concatenate([worst, worst * F32(2.0**-90), worst * F32(2.0**90), [EXACT_SCALES[0], EXACT_SCALES[1]]])
    assert not _significands_differ(scales.astype(F32)).any()


def test_scales_outside_the_proven_range_divide():
    if division.METHOD != "reciprocal":
        pytest.skip("this compile target divides")
    assert division.reciprocal(F32(0.1), np.dtype(F32)) == F32(1) / F32(0.1)
    assert division.reciprocal(F32(1e-30), np.dtype(F32)) is None
    assert division.reciprocal(F32(1e30), np.dtype(F32)) is None
    assert division.reciprocal(np.array([0.1, 1e30], F32), np.dtype(F32)) is None
    assert division.reciprocal(F32(0.1), np.dtype(np.float64)) is None
    x = np.array([3e-30, -7e-29, np.inf, np.nan, 1.5e-30], F32)
    for scale in (F32(1e-30), F32(1e30)):
        p = qbench.QuantParams(scale, 3, np.int8)
        assert np.array_equal(qbench.quantize(x, p), qbench.reference.quantize(x, p))


def _method_in_child(**env: str) -> str:
    code = "from qbench.kernels import division; print(division.METHOD)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def test_the_method_follows_the_compile_target_and_the_override():
    assert _method_in_child(QBENCH_DIVISION="divide") == "divide"
    assert "names no division method" in _method_in_child(QBENCH_DIVISION="fast")
    if division.platform.machine().lower() in ("x86_64", "amd64"):
        no_fma = {"NUMBA_CPU_NAME": "nehalem", "NUMBA_CPU_FEATURES": "+sse4.2,-avx,-avx2,-fma"}
        assert _method_in_child(**no_fma) == "divide"
        with_fma = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma"}
        assert _method_in_child(**with_fma) == "reciprocal"
