"""Exact and bounded reductions: sum, ``acc += x``, dot products of float and 8-bit vectors, qdot."""

from __future__ import annotations

import builtins
from typing import Any, Literal

import numpy as np

from qbench.kernels import accumulate as acc_k
from qbench.ops.checks import (
    ACC_TYPES,
    DOT_INPUTS,
    F32,
    FLOAT_INPUTS,
    INT8_INPUTS,
    SUM_INPUTS,
    as_array,
    check_params,
    dtype_names,
)
from qbench.ops.params import QuantParams
from qbench.ops.tuning import use_parallel
from qbench.ops.views import flat_views

# Lane zeros of the float kernels, built once: making a NumPy scalar costs a fair share of a small call.
_FLOAT_ZERO = {F32: np.float32(0), np.dtype(np.float64): np.float64(0)}

# The lane type of an exact block sum (see ``sum_lanes``), by input type.
_SUM_LANE = {
    np.dtype(np.uint8): np.uint16(0),
    np.dtype(np.int8): np.int16(0),
    np.dtype(np.uint16): np.uint32(0),
    np.dtype(np.int16): np.int32(0),
}
_ZERO_U64, _ZERO_I64 = np.uint64(0), np.int64(0)
# A 32-bit lane of the int8 dot holds 2**15 8-bit products (|p| <= 65025).
_DOT_INT8_BLOCK = 1 << 15
#: Values per block of the float sum and dot: added in the input's type, each block's sum then flushed into
#: float64. 256 keeps a float32 sum within 2**-16 of sum(|a|) (the bound, below) at about the speed of longer
#: blocks.
FLOAT_BLOCK = 1 << 8


def _reduce(kern: Any, par: bool, arrays: tuple[np.ndarray, ...], *args: Any) -> Any:
    """A reduction kernel over the contiguous runs of ``arrays``; parts added as Python numbers (ints exactly)."""
    run = kern.target(par)
    if arrays[0].ndim == 1:  # the common call: one run, the arrays as they are (flat_views would say so)
        return run(*arrays, *args)
    parts = [run(*views, *args) for views in flat_views(arrays, None)]
    if len(parts) == 1:
        return parts[0]
    return builtins.sum(float(p) if isinstance(p, (float, np.floating)) else int(p) for p in parts)


def sum(a: Any, *, parallel: bool | None = None) -> np.integer | np.floating:  # noqa: A001 - mirrors numpy.sum
    """Sum with a widening accumulator: exact for integers, bounded for floats.

    Unsigned ints (up to 32 bits) sum to uint64, signed ints to int64, exact
    for any length that fits in memory. float32 and float64 sum to float64:
    blocks of :data:`FLOAT_BLOCK` values are added in the input's type in any
    order (vector lanes), each block's sum flushed into float64, so the error is at most
    ``float_error_bound(n, dtype) * sum(|a|)``, not a few ulps of the result
    (cancellation makes ``|sum|`` much smaller than ``sum(|a|)``).
    """
    a = as_array(a, "a", SUM_INPUTS, "sum")
    par = use_parallel(a.nbytes, parallel, ("sum", a.dtype))
    if a.dtype.kind == "f":
        return np.float64(_reduce(acc_k.sum_float, par, (a,), _FLOAT_ZERO[a.dtype], FLOAT_BLOCK))
    if a.dtype.itemsize == 4 and a.size >= 1 << 32:
        raise ValueError(f"sum of {a.size} 32-bit values could exceed 64 bits; sum it in chunks below 2**32")
    unsigned = a.dtype.kind == "u"
    zero = _ZERO_U64 if unsigned else _ZERO_I64
    if a.dtype.itemsize == 4:
        total = _reduce(acc_k.sum_wide, par, (a,), zero)
    else:
        total = _reduce(acc_k.sum_lanes, par, (a,), _SUM_LANE[a.dtype], zero)
    return np.uint64(total) if unsigned else np.int64(total)


def accumulate(
    acc: np.ndarray,
    x: Any,
    *,
    repeat: int = 1,
    overflow: Literal["wrap", "saturate"] = "wrap",
    parallel: bool | None = None,
) -> np.ndarray:
    """In place ``acc += x``, ``repeat`` times; returns ``acc``.

    ``acc`` may be wider than ``x`` (any safe cast: uint8 into uint16, int32,
    float32, ...). Integer ``acc``: ``overflow="wrap"`` wraps modulo 2**bits
    exactly as NumPy's in-place add; ``"saturate"`` clamps each step to the
    dtype's range (acc of up to 32 bits). Float ``acc`` follows IEEE.
    """
    if not isinstance(acc, np.ndarray):
        raise TypeError(f"acc must be a numpy.ndarray (it is updated in place), got {type(acc).__name__}")
    if acc.dtype not in ACC_TYPES:
        raise TypeError(f"accumulate expects acc of dtype {dtype_names(ACC_TYPES)}; got {acc.dtype}")
    if not acc.flags.writeable:
        raise ValueError("acc is read-only")
    x = as_array(x, "x", ACC_TYPES, "accumulate")
    if x.shape != acc.shape:
        raise ValueError(f"x and acc must have the same shape; got {x.shape} and {acc.shape}")
    if not np.can_cast(x.dtype, acc.dtype, "safe"):
        raise TypeError(f"cannot accumulate {x.dtype} into {acc.dtype} without loss; use an acc at least as wide")
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 0:
        raise ValueError(f"repeat must be a non-negative int, got {repeat!r}")
    if overflow not in ("wrap", "saturate"):
        raise ValueError(f"overflow must be 'wrap' or 'saturate', got {overflow!r}")
    if np.may_share_memory(acc, x) and not (
        x is acc or (x.ctypes.data == acc.ctypes.data and x.strides == acc.strides)
    ):
        raise ValueError("x partly overlaps acc; pass a separate array (or acc itself)")

    par = use_parallel(2 * acc.nbytes + x.nbytes, parallel, ("accumulate", acc.dtype, x.dtype))
    saturating = overflow == "saturate" and acc.dtype.kind in "iu"
    if saturating and acc.dtype.itemsize > 4:
        raise ValueError(f"overflow='saturate' supports integer acc of up to 32 bits, got {acc.dtype}")
    if saturating:
        info = np.iinfo(acc.dtype)
        run, bounds = acc_k.accumulate_saturate.target(par), (np.int64(info.min), np.int64(info.max))
    else:
        run, bounds = acc_k.accumulate_wrap.target(par), ()
    for av, xv in flat_views((acc, x), None):
        run(av, xv, int(repeat), *bounds)
    return acc


def _vectors(what: str, a: np.ndarray, b: np.ndarray) -> None:
    """Two 1-D arrays of one length, or a ValueError that says why not."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(
            f"{what} takes two 1-D arrays (vectors); got shapes {a.shape} and {b.shape} "
            "(for a matrix, pass a row or a raveled view)"
        )
    if a.shape != b.shape:
        raise ValueError(f"{what} needs arrays of one shape; got {a.shape} and {b.shape}")


def dot(a: Any, b: Any, *, parallel: bool | None = None) -> np.int64 | np.float64:
    """Dot product of two 1-D arrays of one length.

    Float32/float64 (both the same): reassociated float lanes, float64 result,
    within ``float_error_bound(n, dtype, products=True) * sum(|a * b|)``.
    int8/uint8 (any mix): exact, int32 lanes flushed to int64 per block.
    """
    a = as_array(a, "a", DOT_INPUTS, "dot")
    b = as_array(b, "b", DOT_INPUTS, "dot")
    _vectors("dot", a, b)
    floats = a.dtype in FLOAT_INPUTS
    if floats != (b.dtype in FLOAT_INPUTS) or (floats and a.dtype != b.dtype):
        raise TypeError(f"dot takes two float arrays of one dtype or two 8-bit int arrays; got {a.dtype} and {b.dtype}")
    par = use_parallel(a.nbytes + b.nbytes, parallel, ("dot", a.dtype))
    if floats:
        return np.float64(_reduce(acc_k.dot_float, par, (a, b), _FLOAT_ZERO[a.dtype], FLOAT_BLOCK))
    return np.int64(_reduce(acc_k.dot_int8, par, (a, b), _DOT_INT8_BLOCK))


def float_error_bound(n: int, dtype: Any, *, products: bool = False, parts: int = 1) -> float:
    """The factor ``c`` with ``|sum(a) - exact| <= c * sum(|a|)`` for :func:`sum` (``dot``: ``sum(|a * b|)``).

    Standard error analysis (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 4.2 and 3.1): a sum of k terms in any order, unit roundoff u,
    errs by at most ``gamma(k - 1, u) * sum(|terms|)``, ``gamma(k, u) = k u / (1 - k u)``;
    a dot adds one rounding per product. Within a block of up to
    :data:`FLOAT_BLOCK` values the terms add in ``dtype``; the block sums
    (``ceil(n / FLOAT_BLOCK)`` per contiguous run, ``parts`` runs) add in float64.
    """
    if n <= 1 and not products:
        return 0.0
    u = float(np.finfo(dtype).eps) / 2
    per_block = min(n, FLOAT_BLOCK) - 1 + (1 if products else 0)
    blocks = -(-n // FLOAT_BLOCK) + parts - 1

    def gamma(k: int, unit: float) -> float:
        return k * unit / (1 - k * unit)

    inner = gamma(per_block, u)
    return inner + gamma(max(blocks - 1, 0), 2.0**-53) * (1 + inner)


def qdot(qa: Any, pa: QuantParams, qb: Any, pb: QuantParams, *, parallel: bool | None = None) -> float:
    """Dot of two per-tensor quantized 8-bit vectors, as the float dot of their dequantized values.

    ``(sum(qa*qb) - zb*sum(qa) - za*sum(qb) + n*za*zb) * sa * sb``, with the
    integer part exact (Python ints) and one rounding to float at the end.
    """
    pa, pb = check_params(pa), check_params(pb)
    for p in (pa, pb):
        if p.axis is not None:
            raise ValueError("qdot takes per-tensor parameters (axis=None)")
        if p.dtype not in INT8_INPUTS:
            raise TypeError(f"qdot takes uint8/int8 quantized data, got params for {p.dtype.name}")
    qa = as_array(qa, "qa", (pa.dtype,), "qdot")
    qb = as_array(qb, "qb", (pb.dtype,), "qdot")
    _vectors("qdot", qa, qb)
    za, zb = pa.zero_point, pb.zero_point
    integer = (
        int(dot(qa, qb, parallel=parallel))
        - zb * int(sum(qa, parallel=parallel))
        - za * int(sum(qb, parallel=parallel))
        + qa.size * za * zb
    )
    return float(integer) * float(pa.scale) * float(pb.scale)
