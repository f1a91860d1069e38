"""ONNX blocked quantization (opset 21) and the 4-bit types INT4 / UINT4, stored two per byte.

:func:`qbench.quantize` and :func:`qbench.dequantize` come here for parameters with a ``block_size`` or a
4-bit dtype. Blocked: along ``axis`` element ``i`` uses ``scale[..., i // block_size, ...]`` (a short last
block is allowed); the arithmetic is QuantizeLinear's and DequantizeLinear's. 4-bit values are packed as the
ONNX int4 note says: the first element in the low nibble, ``byte = hi << 4 | lo & 0x0F``, an odd count padded
with a zero nibble; the packed form is a 1-D uint8 array of ``ceil(size / 2)`` bytes in C order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qbench.kernels import blocks as blocks_k
from qbench.ops.checks import FLOAT_INPUTS, as_array, output_array
from qbench.ops.params import INT4, PACKED_DTYPES, UINT4, QuantParams, quant_dtype, quant_range
from qbench.ops.tuning import use_parallel

__all__ = [
    "calibrate_blocks",
    "matmul_nbits",
    "matmul_nbits_error_bound",
    "pack_int4",
    "packed_size",
    "quantize_nbits",
    "unpack_int4",
]

_U8, _I8, _F32 = np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)


def packed_size(count: int) -> int:
    """Bytes that ``count`` 4-bit values take."""
    return (count + 1) // 2


def _storage(dtype: np.dtype) -> np.dtype:
    """The one-byte type that holds a value of ``dtype`` while it is unpacked."""
    return {INT4: _I8, UINT4: _U8}.get(dtype, dtype)


def _layout(params: QuantParams, shape: tuple[int, ...], ftype: np.dtype, zero_as_int: bool) -> tuple:
    """``shape`` as (outer, D, inner) with its scale and zero point as (outer, nb, inner) views, and the block.

    Per-tensor and per-axis parameters of the 4-bit types are one block per tensor / one per channel.
    """
    scale, zf, zi = params.typed(ftype)
    zero_point = zi if zero_as_int else zf
    if params.axis is None:
        size = math.prod(shape)
        return (1, size, 1), np.reshape(scale, (1, 1, 1)), np.reshape(zero_point, (1, 1, 1)), max(size, 1)
    ndim = len(shape)
    if not -ndim <= params.axis < ndim:
        raise ValueError(f"axis {params.axis} is out of range for an array of {ndim} dimensions (shape {shape})")
    axis = params.axis % ndim
    dims = (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :]))
    if params.block_size is None:
        if scale.shape != (shape[axis],):
            raise ValueError(
                f"per-axis parameters have {scale.shape[0]} entries but axis {axis} of shape {shape} "
                f"has length {shape[axis]}"
            )
        view = (1, shape[axis], 1)
        return dims, np.broadcast_to(scale.reshape(view), dims), np.broadcast_to(zero_point.reshape(view), dims), 1
    nb = -(-shape[axis] // params.block_size)
    wanted = shape[:axis] + (nb,) + shape[axis + 1 :]
    if scale.shape != wanted:
        raise ValueError(
            f"blocked parameters for shape {shape} with block_size {params.block_size} along axis {axis} need "
            f"a scale of shape {wanted} (that axis ceil({shape[axis]} / {params.block_size}) = {nb} long); "
            f"got {scale.shape}"
        )
    scales = (dims[0], nb, dims[2])
    return dims, scale.reshape(scales), zero_point.reshape(scales), params.block_size


def _run(
    kernels: tuple,
    dims: tuple,
    src: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray,
    *rest: Any,
    parallel: bool | None,
    key: tuple,
) -> None:
    """The rows kernel when blocks run along the last axis (inner == 1), else the (outer, D, inner) one."""
    rows_kernel, inner_kernel = kernels
    out = rest[-1]
    par = use_parallel(src.nbytes + out.nbytes, parallel, key)
    if dims[2] == 1:
        rows_kernel.target(par)(
            src.reshape(dims[:2]), scale[:, :, 0], zero_point[:, :, 0], *rest[:-1], out.reshape(dims[:2])
        )
    else:
        inner_kernel.target(par)(src, scale, zero_point, *rest)


def quantize(x: np.ndarray, params: QuantParams, out: np.ndarray | None, parallel: bool | None) -> np.ndarray:
    """:func:`qbench.quantize` for blocked or 4-bit parameters (``x`` already checked as float32/float64)."""
    dims, scale, zero_point, block = _layout(params, x.shape, x.dtype, zero_as_int=True)
    storage = _storage(params.dtype)
    if params.packed:
        result = output_array(out, (packed_size(x.size),), _U8, x)
        values = np.empty(dims, storage)
    else:
        result = output_array(out, x.shape, params.dtype, x)
        values = result.reshape(dims) if result.flags.c_contiguous else np.empty(dims, storage)
    if x.size:
        qmin, qmax = np.int32(params.qmin), np.int32(params.qmax)
        _run(
            (blocks_k.quantize_rows, blocks_k.quantize_inner),
            dims,
            np.reshape(x, dims),
            scale,
            zero_point,
            block,
            qmin,
            qmax,
            values,
            parallel=parallel,
            key=("quantize_blocks", params.dtype),
        )
    if params.packed:
        blocks_k.pack_int4.target(use_parallel(values.nbytes, parallel, ("pack_int4",)))(values.ravel(), result)
    elif not np.shares_memory(values, result):
        result[...] = values.reshape(x.shape)
    return result


def dequantize(q: Any, params: QuantParams, shape: Any, out: np.ndarray | None, parallel: bool | None) -> np.ndarray:
    """:func:`qbench.dequantize` for blocked or 4-bit parameters."""
    if params.packed and type(q) is np.ndarray and q.dtype == _U8 and shape is not None:
        fused = _dequantize_packed(q, params, _shape(shape), out, parallel)
        if fused is not None:
            return fused
    values = _unpacked(q, params, shape, parallel) if params.packed else q
    dims, scale, zero_point, block = _layout(params, values.shape, _F32, zero_as_int=False)
    result = output_array(out, values.shape, _F32, q)
    target = result.reshape(dims) if result.flags.c_contiguous else np.empty(dims, _F32)
    if values.size:
        _run(
            (blocks_k.dequantize_rows, blocks_k.dequantize_inner),
            dims,
            np.reshape(values, dims),
            scale,
            zero_point,
            block,
            target,
            parallel=parallel,
            key=("dequantize_blocks", params.dtype),
        )
    if not np.shares_memory(target, result):
        result[...] = target.reshape(result.shape)
    return result


def _dequantize_packed(
    q: np.ndarray, params: QuantParams, shape: tuple[int, ...], out: np.ndarray | None, parallel: bool | None
) -> np.ndarray | None:
    """Packed 4-bit rows dequantized in one pass, where every row and block starts on a byte (even row length
    and block, blocks along the last axis); None where they do not, for the unpacking path."""
    if q.size != packed_size(math.prod(shape)) or not shape:
        return None  # _unpacked says what is wrong
    dims, scale, zero_point, block = _layout(params, shape, _F32, zero_as_int=False)
    if dims[2] != 1 or dims[1] % 2 or block % 2 or not q.size:
        return None
    result = output_array(out, shape, _F32, q)
    target = result.reshape(dims[:2]) if result.flags.c_contiguous else np.empty(dims[:2], _F32)
    kern = blocks_k.dequantize_packed_rows.target(
        use_parallel(q.nbytes + result.nbytes, parallel, ("dequantize_blocks", params.dtype))
    )
    kern(
        np.ascontiguousarray(q).reshape(dims[0], -1),
        params.dtype == INT4,
        scale[:, :, 0],
        zero_point[:, :, 0],
        block // 2,
        target,
    )
    if not np.shares_memory(target, result):
        result[...] = target.reshape(shape)
    return result


def _unpacked(q: Any, params: QuantParams, shape: Any, parallel: bool | None) -> np.ndarray:
    """4-bit input as one value per byte: packed uint8 bytes with ``shape``, or an ``ml_dtypes`` int4/uint4 array."""
    q = q if type(q) is np.ndarray else np.asarray(q)
    if q.dtype == params.dtype:  # unpacked values, as onnx.reference hands them over
        if shape is not None and tuple(shape) != q.shape:
            raise ValueError(f"shape {tuple(shape)} differs from the {q.dtype.name} array's shape {q.shape}")
        return q.astype(_storage(params.dtype))
    if q.dtype != _U8:
        raise TypeError(
            f"dequantize of {params.dtype.name} takes the packed bytes (uint8, with shape=) or an ml_dtypes "
            f"{params.dtype.name} array; got {q.dtype}"
        )
    if shape is None:
        raise ValueError(f"dequantize of packed {params.dtype.name} bytes needs shape= (the values' shape)")
    return unpack_int4(q, shape, signed=params.dtype == INT4, parallel=parallel)


def _shape(shape: Any) -> tuple[int, ...]:
    try:
        dims = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must not have negative lengths, got {dims}")
    return dims


def pack_int4(values: Any, *, parallel: bool | None = None) -> np.ndarray:
    """4-bit values (any integer array within [-8, 15], or an ml_dtypes int4/uint4 array) packed two per byte,
    in C order: a 1-D uint8 array of ``ceil(size / 2)`` bytes, the first value of each pair in the low nibble."""
    v = np.asarray(values)
    if v.dtype in PACKED_DTYPES:
        v = v.astype(_storage(v.dtype))
    elif v.dtype.kind not in "iu":
        raise TypeError(f"pack_int4 takes integer values (or ml_dtypes int4/uint4); got {v.dtype}")
    if v.size and (v.min() < -8 or v.max() > 15):
        raise ValueError(
            f"pack_int4: values must fit 4 bits (int4 [-8, 7] or uint4 [0, 15]); got [{v.min()}, {v.max()}]"
        )
    flat = np.ascontiguousarray(v.ravel(), dtype=_I8 if v.dtype.kind == "i" else _U8)
    out = np.empty(packed_size(flat.size), _U8)
    blocks_k.pack_int4.target(use_parallel(flat.nbytes, parallel, ("pack_int4",)))(flat, out)
    return out


def unpack_int4(packed: Any, shape: Any, *, signed: bool = True, parallel: bool | None = None) -> np.ndarray:
    """The inverse of :func:`pack_int4`: int8 values in [-8, 7] (``signed``, ONNX INT4) or uint8 in [0, 15]
    (UINT4), of ``shape``."""
    p = np.asarray(packed)
    if p.dtype != _U8:
        raise TypeError(f"unpack_int4 takes the packed bytes as uint8; got {p.dtype}")
    dims = _shape(shape)
    count = math.prod(dims)
    if p.size != packed_size(count):
        raise ValueError(f"{count} 4-bit values (shape {dims}) take {packed_size(count)} bytes; got {p.size}")
    out = np.empty(count, _I8 if signed else _U8)
    kern = blocks_k.unpack_int4.target(use_parallel(out.nbytes, parallel, ("unpack_int4",)))
    kern(np.ascontiguousarray(p).ravel(), bool(signed), out)
    return out.reshape(dims)


def calibrate_blocks(
    x: Any, dtype: Any = "int4", *, axis: int = -1, block_size: int = 32, symmetric: bool = True
) -> QuantParams:
    """MinMax parameters per block of ``block_size`` along ``axis`` (as ONNX Runtime's blocked weight
    quantizer): symmetric ``scale = amax / qmax`` with zero point 0 (int) or the middle (uint); asymmetric
    the range widened to 0, ``scale = (max - min) / (qmax - qmin)``. A block of zeros gets scale 1."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim == 0:
        raise TypeError(f"calibrate_blocks takes a float array of at least one dimension; got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("calibrate_blocks: x holds NaN or inf, which no block scale can represent")
    dt = quant_dtype(dtype)
    ax = axis % x.ndim
    length = x.shape[ax]
    nb = -(-length // block_size)
    pad = [(0, 0)] * x.ndim
    pad[ax] = (0, nb * block_size - length)
    # Padding with an edge value changes no block's min or max.
    padded = np.pad(np.moveaxis(x, ax, -1), pad[:ax] + pad[ax + 1 :] + [pad[ax]], mode="edge") if length else x
    grouped = padded.reshape(*padded.shape[:-1], nb, block_size).astype(np.float64)
    lo = np.minimum(grouped.min(axis=-1), 0)
    hi = np.maximum(grouped.max(axis=-1), 0)
    qmin, qmax = quant_range(dt, symmetric=symmetric)
    if symmetric:
        scale = np.maximum(-lo, hi) / ((qmax - qmin) / 2)
        scale = np.where(scale == 0, 1.0, scale)
        zero_point = np.full(scale.shape, 0 if qmin < 0 else (qmin + qmax + 1) // 2)
    else:
        scale = (hi - lo) / (qmax - qmin)
        scale = np.where(scale == 0, 1.0, scale)
        zero_point = np.clip(np.rint(qmin - lo / scale), qmin, qmax)
    scale = scale.astype(np.float32)
    return QuantParams(
        np.moveaxis(scale, -1, ax), np.moveaxis(zero_point.astype(np.int64), -1, ax), dt, axis=ax, block_size=block_size
    )


# ---- ONNX Runtime's MatMulNBits ------------------------------------------------------------------------------

#: Bits per weight value MatMulNBits takes here, and its default zero point for each.
NBITS_ZERO_POINT = {4: 8, 8: 128}


def quantize_nbits(
    w: Any, *, bits: int = 4, block_size: int = 32, symmetric: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Weights ``w`` (N, K) as MatMulNBits takes them: ``(b, scales, zero_points)``.

    ``b``: uint8 (N, ceil(K / block_size), block_size * bits / 8), each block's values packed along K (4 bits:
    two per byte, the first in the low nibble; a short last block padded with the zero point); ``scales``:
    float32 (N, blocks); ``zero_points``: None when ``symmetric`` (MatMulNBits' default, 8 or 128), else uint8
    (4 bits: two blocks' per byte, (N, ceil(blocks / 2)); 8 bits: (N, blocks)). Parameters are
    :func:`calibrate_blocks`'s MinMax per block on the unsigned type.
    """
    w = np.asarray(w)
    _nbits(bits, block_size)
    if w.ndim != 2 or w.dtype not in FLOAT_INPUTS:
        raise TypeError(f"quantize_nbits takes float weights of shape (N, K); got {w.dtype} {w.shape}")
    dtype = UINT4 if bits == 4 else _U8
    params = calibrate_blocks(w, dtype, axis=1, block_size=block_size, symmetric=symmetric)
    n, k = w.shape
    nb = params.scale.shape[1]
    values = np.empty((n, nb * block_size), _U8)
    values[:, k:] = params.zero_point[:, -1:] if k % block_size else 0
    q = quantize(w, params, None, None)
    values[:, :k] = unpack_int4(q, w.shape, signed=False) if bits == 4 else q
    b = pack_int4(values).reshape(n, nb, block_size // 2) if bits == 4 else values.reshape(n, nb, block_size)
    if symmetric:
        return b, params.scale.copy(), None
    zp = params.zero_point.astype(_U8)
    if bits == 4:
        zp = np.concatenate([zp, np.zeros((n, nb % 2), _U8)], axis=1)
        zp = (zp[:, 0::2] | (zp[:, 1::2] << 4)).astype(_U8)
    return b, params.scale.copy(), zp


def _nbits(bits: Any, block_size: Any) -> None:
    if bits not in NBITS_ZERO_POINT:
        raise ValueError(f"bits must be one of {sorted(NBITS_ZERO_POINT)}; got {bits!r}")
    if not isinstance(block_size, (int, np.integer)) or block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two of at least 16 (as MatMulNBits); got {block_size!r}")


def _nbits_zero_points(zero_points: Any, bits: int, n: int, nb: int) -> np.ndarray:
    """MatMulNBits' zero points as float32 (N, blocks): the default, or unpacked from uint8."""
    if zero_points is None:
        return np.full((n, nb), NBITS_ZERO_POINT[bits], np.float32)
    zp = np.asarray(zero_points)
    per_row = (nb + 1) // 2 if bits == 4 else nb
    if zp.dtype != _U8 or zp.size != n * per_row:
        raise ValueError(
            f"zero_points for {bits}-bit MatMulNBits are uint8, {per_row} bytes per row of {n} ({n * per_row} in "
            f"all); got {zp.dtype} {zp.shape}"
        )
    zp = zp.reshape(n, per_row)
    if bits == 4:
        zp = np.stack([zp & 15, zp >> 4], axis=-1).reshape(n, -1)[:, :nb]
    return zp.astype(np.float32)


def matmul_nbits(
    a: Any,
    b: Any,
    scales: Any,
    zero_points: Any = None,
    *,
    bits: int = 4,
    block_size: int = 32,
    parallel: bool | None = None,
) -> np.ndarray:
    """ONNX Runtime's ``MatMulNBits``: ``y = a @ dequant(b)^T``, float32 ``a`` (..., K), ``b`` as
    :func:`quantize_nbits` makes it, ``dequant`` ONNX DequantizeLinear per block; float32 (..., N).

    Float order: per weight row and block, ``s = sum_j a_j (q_j - zero_point)`` in float32 in any order, then
    ``float32(s * scale)``, these summed in float64 and rounded to float32. :func:`matmul_nbits_error_bound`
    bounds the difference from the float64 product of ``a`` and the float32 dequantized weights.
    """
    _nbits(bits, block_size)
    a = as_array(a, "a", (_F32,), "matmul_nbits")
    b = np.asarray(b)
    per = block_size * bits // 8
    if b.dtype != _U8 or b.ndim != 3 or b.shape[2] != per:
        raise ValueError(
            f"b for {bits}-bit blocks of {block_size} is uint8 (N, blocks, {per}); got {b.dtype} {b.shape}"
        )
    n, nb, _ = b.shape
    if a.ndim == 0 or -(-a.shape[-1] // block_size) != nb:
        raise ValueError(f"a's last axis (K) must fill the {nb} blocks of {block_size} of b; got a of shape {a.shape}")
    s = np.asarray(scales)
    if s.dtype != _F32 or s.size != n * nb:
        raise ValueError(f"scales are float32, one per row and block ({n * nb}); got {s.dtype} {s.shape}")
    s = np.ascontiguousarray(s.reshape(n, nb))
    zp = _nbits_zero_points(zero_points, bits, n, nb)
    b = np.ascontiguousarray(b)
    rows = a.reshape(-1, a.shape[-1])
    out = np.empty((rows.shape[0], n), np.float64)
    padded = np.zeros(nb * block_size, _F32)
    par = use_parallel(b.nbytes, parallel, ("matmul_nbits", bits))
    kern = (blocks_k.nbits4_dot_rows if bits == 4 else blocks_k.nbits8_dot_rows).target(par)
    for m, row in enumerate(rows):
        padded[: row.shape[0]] = row
        if bits == 4:
            pairs = padded.reshape(-1, 2)
            kern(np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1]), b, s, zp, per, out[m])
        else:
            kern(padded, b, s, zp, block_size, out[m])
    return out.astype(_F32).reshape(*a.shape[:-1], n)


def matmul_nbits_error_bound(abs_products: Any, blocks: int, block_size: int, result: Any) -> Any:
    """The bound on ``|matmul_nbits - a @ w|`` (``w`` the float32 dequantized weights, the product exact) from
    ``sum_j |a_j w_j|``: each term meets at most ``block_size + 2`` float32 roundings (the product, the block's
    sum, the scale, the weight's own rounding), the block terms a float64 sum, the result one last rounding."""
    u32, u64 = 2.0**-24, 2.0**-53

    def gamma(k: int, u: float) -> float:
        return k * u / (1 - k * u)

    return (gamma(block_size + 2, u32) + gamma(blocks, u64)) * np.asarray(abs_products) + u32 * np.abs(result)
