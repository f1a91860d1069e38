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

from qbench import api
from qbench.kernels import blocks as blocks_k
from qbench.params import INT4, PACKED_DTYPES, UINT4, QuantParams

__all__ = ["calibrate_blocks", "pack_int4", "packed_size", "unpack_int4"]

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
    par = api.use_parallel(src.nbytes + out.nbytes, parallel, key)
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
        result = api._output(out, (packed_size(x.size),), _U8, x)
        values = np.empty(dims, storage)
    else:
        result = api._output(out, x.shape, params.dtype, x)
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
        blocks_k.pack_int4.target(api.use_parallel(values.nbytes, parallel, ("pack_int4",)))(values.ravel(), result)
    elif not np.shares_memory(values, result):
        result[...] = values.reshape(x.shape)
    return result


def dequantize(q: Any, params: QuantParams, shape: Any, out: np.ndarray | None, parallel: bool | None) -> np.ndarray:
    """:func:`qbench.dequantize` for blocked or 4-bit parameters."""
    values = _unpacked(q, params, shape, parallel) if params.packed else q
    dims, scale, zero_point, block = _layout(params, values.shape, _F32, zero_as_int=False)
    result = api._output(out, values.shape, _F32, q)
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
    blocks_k.pack_int4.target(api.use_parallel(flat.nbytes, parallel, ("pack_int4",)))(flat, out)
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
    kern = blocks_k.unpack_int4.target(api.use_parallel(out.nbytes, parallel, ("unpack_int4",)))
    kern(np.ascontiguousarray(p).ravel(), bool(signed), out)
    return out.reshape(dims)


def calibrate_blocks(
    x: Any, dtype: Any = "int4", *, axis: int = -1, block_size: int = 32, symmetric: bool = True
) -> QuantParams:
    """MinMax parameters per block of ``block_size`` along ``axis`` (as ONNX Runtime's blocked weight
    quantizer): symmetric ``scale = amax / qmax`` with zero point 0 (int) or the middle (uint); asymmetric
    the range widened to 0, ``scale = (max - min) / (qmax - qmin)``. A block of zeros gets scale 1."""
    from qbench.params import quant_dtype, quant_range

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
