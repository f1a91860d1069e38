"""Public kernels: validate input, pick the kernel and target, allocate the output.

Every function here checks what it is given and raises ``TypeError`` or
``ValueError`` that says what was wrong and what is accepted; the Numba
kernels behind them trust their arguments.
"""

from __future__ import annotations

import builtins
from typing import Any, Literal

import numba
import numpy as np

from qbench import tuning
from qbench._views import flat_views
from qbench.kernels import accumulate as acc_k
from qbench.kernels import quantize as quant_k
from qbench.params import QuantParams

#: Without a stored tuning (``qbench tune``), ``parallel=None`` takes the
#: parallel form from this many bytes touched (read + written) on.
PARALLEL_MIN_BYTES = tuning.DEFAULT_MIN_BYTES

# Accepted input types as frozensets: a membership test per call costs a
# quarter of a tuple scan, and a small call's overhead is counted in microseconds.
FLOAT_INPUTS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
INT8_INPUTS = frozenset({np.dtype(np.int8), np.dtype(np.uint8)})
DOT_INPUTS = FLOAT_INPUTS | INT8_INPUTS
SUM_INPUTS = frozenset(
    np.dtype(t) for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")
)
_F32 = np.dtype(np.float32)
# Lane zeros of the float kernels, built once (a NumPy scalar costs ~0.6 us to make).
_FLOAT_ZERO = {_F32: np.float32(0), np.dtype(np.float64): np.float64(0)}

# The lane type of an exact block sum (see ``sum_lanes``), by input type.
_SUM_LANE = {
    np.dtype(np.uint8): np.uint16(0),
    np.dtype(np.int8): np.int16(0),
    np.dtype(np.uint16): np.uint32(0),
    np.dtype(np.int16): np.int32(0),
}
# Built once: constructing a NumPy scalar costs ~0.6 us, a tenth of a small sum.
_ZERO_U64, _ZERO_I64 = np.uint64(0), np.int64(0)
# A 32-bit lane of the int8 dot holds 2**15 8-bit products (|p| <= 65025).
_DOT_INT8_BLOCK = 1 << 15
#: Values per block of the float sum and dot: added in the input's type, each block's sum then flushed into
#: float64. 256 keeps a float32 sum within 2**-16 of sum(|a|) (the bound, below) and cost 0 to 6% over blocks
#: of 4096 when measured side by side.
FLOAT_BLOCK = 1 << 8


def _names(dtypes: frozenset[np.dtype] | tuple[np.dtype, ...]) -> str:
    return ", ".join(sorted(d.name for d in dtypes))


def _array(x: Any, name: str, accepted: frozenset[np.dtype] | tuple[np.dtype, ...], what: str) -> np.ndarray:
    arr = x if type(x) is np.ndarray else np.asarray(x)
    if arr.dtype not in accepted:
        raise TypeError(f"{what} expects {name} of dtype {_names(accepted)}; got {arr.dtype}")
    return arr


_SWITCHES = tuning.TABLE  # refilled in place by tuning.reload()
_DEFAULT_SWITCH = tuning.DEFAULT.min_bytes_by_bits


def _num_threads() -> int:
    """``numba.get_num_threads()``, which takes two locks per call (about 1.2 us): read directly once started."""
    global _num_threads
    count = numba.get_num_threads()  # starts the thread pool
    try:
        from numba.np.ufunc.parallel import _get_num_threads as fast

        if fast() == count:
            _num_threads = fast
    except (ImportError, AttributeError, TypeError):
        pass
    return count


def use_parallel(nbytes: int, parallel: bool | None, key: tuple = ()) -> bool:
    """Resolve ``parallel=None`` for the kernel ``key`` (see :func:`tuning.case_key`) touching ``nbytes``.

    Parallel where this machine's tuning (``qbench tune``) measured that it
    wins for that kernel and size, or from :data:`PARALLEL_MIN_BYTES` without
    one; always serial when Numba has one thread.
    """
    if parallel is None:
        if nbytes < tuning.SERIAL_BELOW:
            return False
        return nbytes >= _SWITCHES.get(key, _DEFAULT_SWITCH)[nbytes.bit_length()] and _num_threads() > 1
    if parallel is True or parallel is False:
        return parallel
    if not isinstance(parallel, np.bool_):
        raise TypeError(f"parallel must be True, False or None, got {parallel!r}")
    return bool(parallel)


def _check_params(params: Any) -> QuantParams:
    if not isinstance(params, QuantParams):
        raise TypeError(f"params must be a qbench.QuantParams (see qbench.calibrate), got {type(params).__name__}")
    return params


def _channel_axis(params: QuantParams, shape: tuple[int, ...]) -> int | None:
    """``params.axis`` normalized against ``shape``, checked against the parameter length."""
    if params.axis is None:
        return None
    ndim = len(shape)
    if not -ndim <= params.axis < ndim:
        raise ValueError(f"axis {params.axis} is out of range for an array of {ndim} dimensions (shape {shape})")
    axis = params.axis % ndim
    if len(params.scale) != shape[axis]:
        raise ValueError(
            f"per-axis parameters have {len(params.scale)} entries but axis {axis} of shape {shape} "
            f"has length {shape[axis]}"
        )
    return axis


# np.may_share_memory without NumPy's __array_function__ dispatch, which costs as much as the test itself.
_may_share_memory = getattr(np.may_share_memory, "_implementation", np.may_share_memory)


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype, source: np.ndarray) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype or out.shape != shape:
        raise ValueError(f"out must have dtype {dtype.name} and shape {shape}; got {out.dtype.name} {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if _may_share_memory(out, source):
        raise ValueError("out must not overlap the input array")
    return out


def quantize(x: Any, params: QuantParams, *, out: np.ndarray | None = None, parallel: bool | None = None) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round_half_to_even(x / scale) + zero_point)``.

    ``x`` is float32 or float64 of any shape and strides; the division runs in
    ``x``'s precision. NaN maps to the zero point, +-inf saturate. Parameters
    may be per tensor, per axis or blocked (``block_size``); int4/uint4 results
    come packed two per byte (see :mod:`qbench.blocks`).
    """
    params = _check_params(params)
    x = _array(x, "x", FLOAT_INPUTS, "quantize")
    if params.block_size is not None or params.packed:
        return blocks.quantize(x, params, out, parallel)
    axis = None if params.axis is None else _channel_axis(params, x.shape)
    scale, _, zero_point = params.typed(x.dtype)
    return _convert(_QUANTIZE, axis, x, params, scale, zero_point, _output(out, x.shape, params.dtype, x), parallel)


def dequantize(
    q: Any,
    params: QuantParams,
    *,
    shape: Any = None,
    out: np.ndarray | None = None,
    parallel: bool | None = None,
) -> np.ndarray:
    """ONNX DequantizeLinear: ``(float32(q) - zero_point) * scale`` in float32.

    int4/uint4 ``q`` is the packed bytes :func:`quantize` returns, with the values' ``shape``
    (or an unpacked ``ml_dtypes`` int4/uint4 array).
    """
    params = _check_params(params)
    if params.block_size is not None or params.packed:
        return blocks.dequantize(q, params, shape, out, parallel)
    q = _array(q, "q", (params.dtype,), "dequantize")
    if shape is not None and tuple(shape) != q.shape:
        raise ValueError(f"shape {tuple(shape)} differs from q's shape {q.shape} (shape= is for packed 4-bit data)")
    axis = None if params.axis is None else _channel_axis(params, q.shape)
    scale, zero_point, _ = params.typed(_F32)
    return _convert(_DEQUANTIZE, axis, q, params, scale, zero_point, _output(out, q.shape, _F32, q), parallel)


# (per-tensor, per-channel) kernel of each conversion, with the tuning key each is switched by.
_QUANTIZE = ((quant_k.quantize_tensor, "quantize"), (quant_k.quantize_axis, "quantize_axis"))
_DEQUANTIZE = ((quant_k.dequantize_tensor, "dequantize"), (quant_k.dequantize_axis, "dequantize_axis"))


def _convert(
    kernels: tuple,
    axis: int | None,
    src: np.ndarray,
    params: QuantParams,
    scale: Any,
    zero_point: Any,
    out: np.ndarray,
    parallel: bool | None,
) -> np.ndarray:
    """quantize's and dequantize's shared path: pick the kernel and its form, run it over contiguous views."""
    kern, key = kernels[axis is not None]
    run = kern.target(use_parallel(src.nbytes + out.nbytes, parallel, (key, params.dtype)))
    if axis is None and src.ndim == 1:  # the common call: flat_views would return (src, out) as they are
        run(src, scale, zero_point, out)
        return out
    for sv, ov in flat_views((src, out), axis):
        run(sv, scale, zero_point, ov)
    return out


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
    a = _array(a, "a", SUM_INPUTS, "sum")
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


ACC_TYPES = frozenset(
    np.dtype(t)
    for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")
)


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
        raise TypeError(f"accumulate expects acc of dtype {_names(ACC_TYPES)}; got {acc.dtype}")
    if not acc.flags.writeable:
        raise ValueError("acc is read-only")
    x = _array(x, "x", ACC_TYPES, "accumulate")
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
    a = _array(a, "a", DOT_INPUTS, "dot")
    b = _array(b, "b", DOT_INPUTS, "dot")
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
    pa, pb = _check_params(pa), _check_params(pb)
    for p in (pa, pb):
        if p.axis is not None:
            raise ValueError("qdot takes per-tensor parameters (axis=None)")
        if p.dtype not in INT8_INPUTS:
            raise TypeError(f"qdot takes uint8/int8 quantized data, got params for {p.dtype.name}")
    qa = _array(qa, "qa", (pa.dtype,), "qdot")
    qb = _array(qb, "qb", (pb.dtype,), "qdot")
    _vectors("qdot", qa, qb)
    za, zb = pa.zero_point, pb.zero_point
    integer = (
        int(dot(qa, qb, parallel=parallel))
        - zb * int(sum(qa, parallel=parallel))
        - za * int(sum(qb, parallel=parallel))
        + qa.size * za * zb
    )
    return float(integer) * float(pa.scale) * float(pb.scale)


from qbench import blocks  # noqa: E402 - blocks builds on the helpers above
