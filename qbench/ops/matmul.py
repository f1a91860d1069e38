"""Quantized matrix multiply with ONNX semantics: MatMulInteger, QLinearMatMul, DynamicQuantizeLinear and
ONNX Runtime's DynamicQuantizeMatMul.

How the integer product is computed (:mod:`qbench.kernels.matmul`): the
activations are widened to int16 with their zero point subtracted (free: the
widening pass runs anyway), each output is a dot of that row with a weight
row widened to int16, and the weights' zero point is taken out afterwards with
the row sums, gemmlowp's identity::

    sum_k (a - za)(b - zb) = sum_k (a - za) b - zb * sum_k (a - za)

so no pass over the weights is spent on their zero point. int16 x int16
products summed in pairs into int32 (``vpmaddwd``, VNNI ``vpdpwssd``) are
exact for every 8-bit input; none of it saturates, so qbench needs no
``reduce_range`` on CPUs without VNNI (where u8 x s8 ``vpmaddubsw`` would
saturate in int16 and ONNX Runtime and fbgemm drop a bit to avoid it). Sums
wrap modulo 2**32 as int32 arithmetic does: the result equals the definition
whenever the definition fits in int32 (255 x -128 x 2**16 = -2**31 + 2**23
does), as in ONNX Runtime.

Weights packed once (:func:`qbench.pack_weights`, :mod:`qbench.ops.packed`) run on the register-blocked
micro-kernel of this CPU's path (VNNI ``vpdpbusd``, or int16 ``vpmaddwd``), as every runtime runs its
pre-packed constant weights. Unpacked weights keep working: a one-row product streams a C-ordered (K, N) ``b``
row by row as it lies (an axpy per row, no transpose) and reads rows of K (``w.T`` of a linear layer's (N, K)
``w``) in place; more rows pack ``b`` on the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.kernels import matmul as mm_k
from qbench.kernels import quantize as quant_k
from qbench.kernels.isa import choose
from qbench.ops.checks import as_array
from qbench.ops.gemv import gemv_rows
from qbench.ops.packed import PackedWeights, column_zero_points, pack_weights, packed_dynamic, packed_product
from qbench.ops.params import QUANT_DTYPES, QuantParams
from qbench.ops.tuning import use_parallel

INT8_TYPES = (np.dtype(np.uint8), np.dtype(np.int8))
_F32 = np.dtype(np.float32)
#: Bytes of weight rows per output block: a block stays in L2 while every activation row passes over it.
BLOCK_BYTES = 1 << 18

__all__ = [
    "PackedWeights",
    "dynamic_quantize_linear",
    "dynamic_quantize_matmul",
    "matmul_float32",
    "matmul_integer",
    "pack_weights",
    "qlinear_matmul",
]


def _operand(x: Any, name: str, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in INT8_TYPES:
        raise TypeError(f"{what} expects {name} of dtype uint8 or int8; got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{what} expects {name} with at least 1 dimension; got a scalar")
    return arr


def _shapes(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple]:
    """a and b as (..., M, K) and (..., K, N), the broadcast batch shape and the output's shape (NumPy rules)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.ndim == b2.ndim == 2 and a2.shape[1] == b2.shape[0]:  # a plain layer: no batch to broadcast
        return a2, b2, (), (*a.shape[:-1], *b.shape[1:])
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"{what}: inner dimensions differ: a has K = {a2.shape[-1]} (shape {a.shape}), "
            f"b has K = {b2.shape[-2]} (shape {b.shape})"
        )
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"{what}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} do not broadcast") from None
    out = (*batch, *(() if a.ndim == 1 else (a2.shape[-2],)), *(() if b.ndim == 1 else (b2.shape[-1],)))
    return a2, b2, batch, out


def _zero_point(zp: Any, dtype: np.dtype, name: str, full: tuple[int, ...], vector_axis: int) -> int | np.ndarray:
    """A zero point checked: an int (per tensor), a vector along ``vector_axis`` (rows of a, columns of b),
    or an int64 array broadcast to ``full`` from ONNX's [D1, D2, M, 1] / [D1, D2, 1, N] shapes."""
    lo, hi = QUANT_DTYPES[dtype]
    if isinstance(zp, (int, np.integer)) and not isinstance(zp, bool):  # the common case, kept cheap
        if not lo <= zp <= hi:
            raise ValueError(f"{name} {zp} is outside the {dtype.name} range [{lo}, {hi}]")
        return int(zp)
    arr = np.asarray(zp)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer or an integer array; got {zp!r}")
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name} is outside the {dtype.name} range [{lo}, {hi}]")
    if arr.size == 1:  # ONNX writes a per-tensor zero point as a scalar or a 1-element tensor
        return int(arr.reshape(()))
    if arr.ndim == 1:
        if arr.shape[0] != full[vector_axis]:
            what = "rows (M)" if vector_axis == len(full) - 2 else "columns (N)"
            raise ValueError(
                f"{name} has {arr.shape[0]} entries; a per-{what[:-4]} zero point needs one per "
                f"{what}: {full[vector_axis]}"
            )
        return arr  # one per row or column, the same for every batch entry
    try:
        return np.broadcast_to(arr.astype(np.int64), full)
    except ValueError:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to {full}") from None


def _vectors(zp: int | np.ndarray, length: int, dtype: type) -> Any:
    """``vector(index)``: the zero points of one batch entry as a contiguous vector (rows or columns)."""
    if isinstance(zp, int) or zp.ndim == 1:
        vector = np.empty(length, dtype)
        vector[...] = zp
        return lambda index: vector
    return lambda index: np.ascontiguousarray(zp[index].reshape(-1), dtype)


def _block(k: int, itemsize: int, n: int) -> int:
    """Weight rows per output block: :data:`BLOCK_BYTES` of them, and at least 16 blocks to share among threads."""
    return max(1, min(BLOCK_BYTES // max(1, k * itemsize), -(-n // 16)))


def _integer_product(shapes: tuple, za: Any, zb: Any, parallel: bool | None) -> np.ndarray:
    """int32 ``sum_k (a - za)(b - zb)`` for the operands as :func:`_shapes` returns them (see :func:`_zero_point`),
    in the output's shape."""
    a2, b2, batch, out_shape = shapes
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    out = np.empty((*batch, m, n), np.int32)
    if out.size == 0 or k == 0:
        out[...] = 0  # an empty sum
        return out.reshape(out_shape)
    if not batch and _flat(za) and _flat(zb):
        zb_columns = column_zero_points(zb, b2.dtype, n)
        if m == 1 and b2.flags.c_contiguous:  # a GEMV on (K, N) as it lies: stream its rows, no transpose
            gemv_rows(a2[0], int(np.reshape(za, -1)[0]), b2, zb_columns, out[0], parallel)
            return out.reshape(out_shape)
        if m > 1 and choose() is not None:  # pack on the call: the micro-kernel pays that back from two rows
            za_rows = np.broadcast_to(np.asarray(za, np.int64), (m,))
            return packed_product(a2, za_rows, pack_weights(b2, zb_columns, parallel=parallel), parallel).reshape(
                out_shape
            )
    par = use_parallel(m * n * k, parallel, ("matmul", b2.dtype))
    widen, dot = mm_k.widen_rows.target(par), mm_k.dot_rows.target(par)
    a_wide = np.empty((m, k), np.int16)
    a_sums = np.empty(m, np.int32)
    block = _block(k, 1, n)
    za_of, zb_of = _vectors(za, m, np.int16), _vectors(zb, n, np.int32)
    for index in np.ndindex(*batch) if batch else ((),):
        a_i = np.ascontiguousarray(a2[_batch_index(index, a2)])
        bt = np.ascontiguousarray(b2[_batch_index(index, b2)].T)
        widen(a_i, za_of(index), a_wide, a_sums)
        dot(a_wide, bt, np.int16(0), np.int32(0), zb_of(index), a_sums, out[index], block)
    return out.reshape(out_shape)


def _flat(zp: Any) -> bool:
    """A zero point that is one value, or one per row or column (not shaped per batch entry)."""
    return isinstance(zp, int) or zp.ndim == 1


def _packed_integer(a: np.ndarray, a_zero_point: Any, w: PackedWeights, what: str, parallel: bool | None) -> np.ndarray:
    """``sum_k (a - za)(b - zb)`` for (..., M, K) ``a`` and packed (K, N) weights: the batch folded into rows."""
    if a.shape[-1] != w.k:
        raise ValueError(f"{what}: inner dimensions differ: a has K = {a.shape[-1]} (shape {a.shape}), b has K = {w.k}")
    a2 = a[None, :] if a.ndim == 1 else a
    za = _zero_point(a_zero_point, a.dtype, "a_zero_point", (*a2.shape[:-1], 1), a2.ndim - 2)
    flat = np.reshape(a2, (-1, w.k))
    if isinstance(za, int):
        rows = np.full(flat.shape[0], za, np.int64)
    else:
        rows = np.broadcast_to(za.reshape(-1, 1) if za.ndim == 1 else za, (*a2.shape[:-1], 1))
        rows = np.ascontiguousarray(rows.reshape(-1), np.int64)
    out = packed_product(flat, rows, w, parallel)
    return out.reshape(*a.shape[:-1], w.n)


def _same_zero_points(w: PackedWeights, zp: Any, name: str) -> None:
    """The zero point given with packed weights must be the one they were packed with."""
    if zp is None or (isinstance(zp, int) and zp == w.scalar_zero_point):
        return
    if isinstance(zp, np.ndarray) and zp.dtype.kind in "iu" and zp.shape == (w.n,) and np.array_equal(zp, w.zero_point):
        return  # the common case, the very zero points packed (in range, as they were checked then): one compare
    if not np.array_equal(column_zero_points(zp, w.dtype, w.n), w.zero_point):
        raise ValueError(f"{name} differs from the zero point the weights were packed with; pack them again with it")


def _batch_index(index: tuple[int, ...], x: np.ndarray) -> tuple:
    """The part of a broadcast batch ``index`` that applies to ``x`` (its own batch dims, size-1 ones at 0)."""
    if not index:
        return index
    dims = x.shape[:-2]
    own = index[len(index) - len(dims) :] if dims else ()
    return tuple(0 if d == 1 else i for i, d in zip(own, dims, strict=True))


def matmul_integer(
    a: Any, b: Any, a_zero_point: Any = 0, b_zero_point: Any = None, *, parallel: bool | None = None
) -> np.ndarray:
    """ONNX MatMulInteger: exact int32 ``sum_k (a - a_zero_point)(b - b_zero_point)``.

    ``a`` (..., M, K) and ``b`` (..., K, N), uint8 or int8 each, with NumPy
    ``matmul``'s shape rules (1-D operands, broadcast batch dimensions), or ``b``
    packed once by :func:`pack_weights` (its zero point then comes with it).
    ``a_zero_point``: a scalar, one per row of ``a`` (M) or shaped (..., M, 1);
    ``b_zero_point``: a scalar, one per column of ``b`` (N) or shaped (..., 1, N);
    each of its operand's dtype (None: 0, or the packed one). Sums wrap modulo
    2**32 like ONNX Runtime's.
    """
    a = _operand(a, "a", "matmul_integer")
    if isinstance(b, PackedWeights):
        _same_zero_points(b, b_zero_point, "b_zero_point")
        return _packed_integer(a, a_zero_point, b, "matmul_integer", parallel)
    b_zero_point = 0 if b_zero_point is None else b_zero_point
    b = _operand(b, "b", "matmul_integer")
    shapes = _shapes(a, b, "matmul_integer")
    a2, b2, batch, _ = shapes
    full = (*batch, a2.shape[-2], b2.shape[-1])
    za = _zero_point(a_zero_point, a.dtype, "a_zero_point", (*full[:-1], 1), len(full) - 2)
    zb = _zero_point(b_zero_point, b.dtype, "b_zero_point", (*full[:-2], 1, full[-1]), len(full) - 1)
    return _integer_product(shapes, za, zb, parallel)


def matmul_float32(a: Any, b: Any, *, parallel: bool | None = None) -> np.ndarray:
    """float32 ``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N) by the integer product's own loop and blocking.

    The baseline that keeps BLAS quality out of what int8 buys: the same
    kernel, one dot per output, with float32 operands and reassociated
    fused multiply-adds (its error is at most about ``K * 2**-24 * sum|a b|``
    per output, a float32 dot's bound).
    """
    a = as_array(a, "a", (_F32,), "matmul_float32")
    b = as_array(b, "b", (_F32,), "matmul_float32")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_float32 takes a (M, K) and b (K, N); got shapes {a.shape} and {b.shape}")
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    out = np.zeros((m, n), np.float32)
    if out.size == 0 or k == 0:
        return out
    run = mm_k.dot_rows.target(use_parallel(max(1, m) * n * k, parallel, ("matmul", _F32)))
    zeros_n, zeros_m = np.zeros(n, np.float32), np.zeros(m, np.float32)
    bt = np.ascontiguousarray(b.T)
    run(np.ascontiguousarray(a), bt, np.float32(0), np.float32(0), zeros_n, zeros_m, out, _block(k, 4, n))
    return out


def _params(p: Any, name: str, dtype: np.dtype, what: str, columns_of: np.ndarray | None = None) -> QuantParams:
    """``p`` checked: a QuantParams of ``dtype``, per tensor, or per column of ``columns_of`` (its last axis)."""
    if not isinstance(p, QuantParams):
        raise TypeError(f"{what} expects {name} as a qbench.QuantParams; got {type(p).__name__}")
    if p.dtype != dtype:
        raise TypeError(f"{name} are for {p.dtype.name} but the operand is {dtype.name}")
    if p.axis is None:
        return p
    last = None if columns_of is None else columns_of.ndim - 1
    if last is None or last == 0 or p.axis not in (-1, last):
        accepted = "per tensor (axis=None)" + ("" if not last else f" or per column (axis=-1 or {last})")
        raise ValueError(f"{what}: {name} must be {accepted}; got axis={p.axis}")
    if len(p.scale) != columns_of.shape[-1]:
        raise ValueError(f"{name} has {len(p.scale)} per-column entries; b has {columns_of.shape[-1]} columns")
    return p


def _packed_view(b: Any, what: str) -> np.ndarray:
    """``b``, or for packed weights a zero-cost stand-in of their shape and dtype that the checks can read."""
    if isinstance(b, PackedWeights):
        return b.stand_in
    return _operand(b, "b", what)


def _product(a: np.ndarray, b: Any, za: Any, zb: Any, what: str, parallel: bool | None) -> np.ndarray:
    """The int32 product of ``a`` with ``b`` (an array, or packed weights whose zero point must be ``zb``)."""
    if isinstance(b, PackedWeights):
        _same_zero_points(b, zb, "b_params' zero point")
        return _packed_integer(a, za, b, what, parallel)
    return _integer_product(_shapes(a, b, what), za, zb, parallel)


def _weights(b: Any, what: str) -> np.ndarray:
    b = _packed_view(b, what)
    if b.ndim != 2:
        raise ValueError(f"{what} expects 2-D weights b of shape (K, N); got shape {b.shape}")
    return b


def qlinear_matmul(
    a: Any, a_params: QuantParams, b: Any, b_params: QuantParams, y_params: QuantParams, *, parallel: bool | None = None
) -> np.ndarray:
    """ONNX QLinearMatMul, rounded and saturated as ONNX Runtime does.

    ``acc = matmul_integer(a, b, za, zb)``; ``y = saturate(round_half_even(
    float32(acc) * m) + y_zero_point)`` with ``m = float32(float32(a_scale *
    b_scale) / y_scale)``, per column where ``b_params`` is. ``a`` and ``b`` as
    in :func:`matmul_integer`; ``a_params`` per tensor, ``y_params`` per tensor of the
    output dtype (uint8 or int8).
    """
    a = _operand(a, "a", "qlinear_matmul")
    checked = _packed_view(b, "qlinear_matmul")
    n = checked.shape[-1] if checked.ndim > 1 else 1
    a_params = _params(a_params, "a_params", a.dtype, "qlinear_matmul")
    b_params = _params(b_params, "b_params", checked.dtype, "qlinear_matmul", columns_of=checked)
    if not isinstance(y_params, QuantParams) or y_params.axis is not None or y_params.dtype not in INT8_TYPES:
        raise TypeError(f"qlinear_matmul expects y_params as a per-tensor uint8 or int8 QuantParams; got {y_params!r}")
    # Zero points a QuantParams has checked already: an int, or one per column.
    acc = _product(a, b, a_params.zero_point, b_params.zero_point, "qlinear_matmul", parallel)
    multiplier = np.broadcast_to((a_params.scale * b_params.scale).astype(np.float32) / y_params.scale, (n,))
    zp = y_params.zero_point
    lo, hi = np.float32(y_params.qmin - zp), np.float32(y_params.qmax - zp)
    acc2 = acc.reshape(-1, n)
    out = np.empty(acc2.shape, y_params.dtype)
    par = use_parallel(acc.nbytes, parallel, ("requantize",))
    mm_k.requantize.target(par)(acc2, np.ascontiguousarray(multiplier, np.float32), lo, hi, np.int32(zp), out)
    return out.reshape(acc.shape)


def dynamic_quantize_linear(x: Any, *, parallel: bool | None = None) -> tuple[np.ndarray, QuantParams]:
    """ONNX DynamicQuantizeLinear: uint8 ``x`` with its own per-tensor scale and zero point.

    The range [min(x), max(x)] is widened to include 0; ``scale = (max - min)
    / 255`` and ``zero_point = saturate(round_half_even(0 - min / scale))``, all
    in float32, then ``quantize(x)``. For an all-zero (or empty) ``x`` the
    definition divides by a zero scale; qbench returns scale 1.0 and zero point
    0, as ONNX Runtime does (every value quantizes to 0 and dequantizes to 0.0
    exactly; ``onnx.reference`` returns scale 1/255 instead). NaN or inf in ``x`` has
    no range to quantize over: ``ValueError``.
    """
    x = as_array(x, "x", (_F32,), "dynamic_quantize_linear")
    flat = np.ascontiguousarray(x).reshape(-1)
    lo, hi, nans = mm_k.min_max.target(use_parallel(flat.nbytes, parallel, ("min_max",)))(flat, np.float32(0))
    lo, hi = np.float32(lo), np.float32(hi)
    if nans or not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("dynamic_quantize_linear needs finite input: x holds NaN or inf, which have no range")
    scale, zero_point = mm_k.dynamic_params(lo, hi)
    params = QuantParams.per_tensor(scale, zero_point, np.uint8)
    q = np.empty(x.shape, np.uint8)
    s, zp, reciprocal = params.quantize_args(_F32)
    quant_k.quantize_tensor.target(use_parallel(flat.nbytes, parallel, ("quantize", np.dtype(np.uint8))))(
        flat, s, zp, q.reshape(-1), reciprocal
    )
    return q, params


def dynamic_quantize_matmul(
    x: Any, b: Any, b_params: QuantParams, bias: Any = None, *, parallel: bool | None = None
) -> np.ndarray:
    """ONNX Runtime's DynamicQuantizeMatMul (com.microsoft): float32 ``x @ dequantize(b) + bias``, the int8 way.

    ``x`` (..., M, K) float32 is quantized with :func:`dynamic_quantize_linear`,
    multiplied with ``b`` (K, N, uint8 or int8, ``b_params`` per tensor or per
    column) by :func:`matmul_integer`, then ``y = float32(acc) * (a_scale *
    b_scale) + bias``: float32, a multiply then an add (no fused multiply-add),
    as ONNX Runtime's output processor does.
    """
    x = as_array(x, "x", (_F32,), "dynamic_quantize_matmul")
    checked = _weights(b, "dynamic_quantize_matmul")
    b_params = _params(b_params, "b_params", checked.dtype, "dynamic_quantize_matmul", columns_of=checked)
    n = checked.shape[1]
    if bias is None:
        bias = np.zeros(n, np.float32)
    bias = as_array(bias, "bias", (_F32,), "dynamic_quantize_matmul")
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), one per column of b; got {bias.shape}")
    if x.ndim == 0 or x.shape[-1] != checked.shape[0]:
        raise ValueError(
            f"dynamic_quantize_matmul: x has shape {x.shape}, b has K = {checked.shape[0]} (shape {checked.shape})"
        )
    if isinstance(b, PackedWeights) and b.isa.vnni and b.k:  # one pass from x to the kernel's rows
        _same_zero_points(b, b_params.zero_point, "b_params' zero point")
        b_scale = np.full(n, b_params.scale, np.float32) if b_params.axis is None else b_params.scale
        out = packed_dynamic(x.reshape(-1, b.k), b, np.ascontiguousarray(b_scale, np.float32), bias, parallel)
        return out.reshape(*x.shape[:-1], n)
    q, a_params = dynamic_quantize_linear(x, parallel=parallel)
    acc = _product(q, b, a_params.zero_point, b_params.zero_point, "dynamic_quantize_matmul", parallel)
    scale = np.ascontiguousarray(np.broadcast_to(np.float32(a_params.scale) * b_params.scale, (n,)), np.float32)
    acc2 = acc.reshape(-1, n)
    out = np.empty(acc2.shape, np.float32)
    mm_k.scale_rows.target(use_parallel(acc.nbytes, parallel, ("scale_rows",)))(acc2, scale, bias, out)
    return out.reshape(acc.shape)
