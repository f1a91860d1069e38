"""``x / scale`` correctly rounded at the speed of multiplications: the quotient quantize needs.

ONNX QuantizeLinear divides by the scale. A vector division is slow on some CPUs (one ``vdivps`` of 16 lanes
every 10 cycles on an Ice Lake Xeon) and fast on others, while an FMA issues every cycle or faster wherever
there is one. With ``r = float32(1 / scale)`` rounded once, :func:`quotient` computes

    q = x * r;  q = fma(fma(-q, scale, x), r, q)

which equals the float32 division ``x / scale`` bit for bit for every float32 ``x`` whose quotient matters, as
long as ``scale`` lies in :data:`EXACT_SCALES` (proof: ``docs/division.md``; the enumeration that completes it
runs in the tests). The first product is within 2 units in the last place of ``x / scale``; the corrected value
then lies within 4 units of 2**-47 (relative to the quotient's binade), and the enumeration lists every pair of
significands whose quotient lies that close to a rounding boundary and checks them all.

Whether to multiply is decided in Python before anything is compiled, like every ISA choice: where the compile
target has a fused multiply-add (x86 ``fma``, every 64-bit ARM), the reciprocal; elsewhere LLVM would call a
software ``fmaf``, so the division stays. ``QBENCH_DIVISION=divide`` or ``reciprocal`` overrides the choice (to
compare the two on one host).
"""

from __future__ import annotations

import os
import platform

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

ENV = "QBENCH_DIVISION"
METHODS = ("reciprocal", "divide")
#: Scales for which the reciprocal quotient is exact: ``1 / scale``, the remainder and ``LIMIT * scale`` stay
#: normal float32 numbers for every ``x`` whose quantized value the quotient decides.
EXACT_SCALES = (np.float32(2.0**-96), np.float32(2.0**96))


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``: ``vfmadd`` where the target has it)."""

    def codegen(context, builder, signature, args):
        t = args[0].type
        name = "llvm.fma.f32" if t == ir.FloatType() else "llvm.fma.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t, t]), name)
        return builder.call(fn, args)

    return a(a, a, a), codegen


@numba.njit(cache=True, inline="always")
def quotient(x, scale, reciprocal, limit):
    """``x / scale`` clamped to about +-``limit``: divided, or from ``reciprocal`` (``float32(1 / scale)``) if given.

    The reciprocal path clamps ``x`` to +-``limit * scale`` first, so that no product overflows and an infinite
    ``x`` saturates instead of turning into NaN; a clamped ``x`` saturates any output type either way.
    """
    if reciprocal is None:
        return min(max(x / scale, -limit), limit)
    bound = limit * scale
    x = min(max(x, -bound), bound)
    q = x * reciprocal
    return fma(fma(-q, scale, x), reciprocal, q)


def _has_fma() -> bool:
    from qbench.kernels.isa import compile_features

    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return True
    return machine in ("x86_64", "amd64") and "fma" in compile_features()


def choose() -> str:
    """The method quantize uses for float32 input: ``QBENCH_DIVISION`` if set, else by the compile target."""
    wanted = os.environ.get(ENV, "").strip()
    if wanted and wanted not in METHODS:
        raise ValueError(f"{ENV}={wanted!r} names no division method; accepted: {', '.join(METHODS)}")
    return wanted or ("reciprocal" if _has_fma() else "divide")


METHOD = choose()


def reciprocal(scale: np.ndarray | np.floating, dtype: np.dtype) -> np.ndarray | np.floating | None:
    """``float32(1 / scale)`` when the reciprocal path serves these scales and this input dtype, else None.

    float64 input keeps the division (the proof covers float32); so does any scale outside :data:`EXACT_SCALES`.
    """
    if METHOD != "reciprocal" or dtype != np.float32:
        return None
    if np.ndim(scale) == 0:
        if not EXACT_SCALES[0] <= scale <= EXACT_SCALES[1]:
            return None
    elif scale.size and not (EXACT_SCALES[0] <= scale.min() and scale.max() <= EXACT_SCALES[1]):
        return None
    return np.float32(1) / scale
