"""Plain NumPy reference of every kernel: the oracle for tests and the baseline in benchmarks.

Written the obvious way, from the ONNX operator definitions, independent of
the Numba kernels' formulation (integer zero-point addition here, float there),
so that agreement between the two means something.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.ops.params import QuantParams


def _broadcast(values: Any, params: QuantParams, ndim: int, length: int = 0) -> Any:
    """Per-axis parameters shaped to broadcast along ``params.axis``; blocked ones repeated to ``length``."""
    if params.axis is None:
        return values
    if params.block_size is not None:
        axis = params.axis % ndim
        return np.take(np.repeat(values, params.block_size, axis=axis), np.arange(length), axis=axis)
    shape = [1] * ndim
    shape[params.axis % ndim] = -1
    return np.reshape(values, shape)


def quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX QuantizeLinear: rint(x / scale) as an integer, plus the zero point, clipped."""
    x = np.asarray(x)
    length = x.shape[params.axis] if params.block_size is not None else 0
    scale = _broadcast(np.asarray(params.scale, np.float32), params, x.ndim, length)
    zero_point = _broadcast(np.asarray(params.zero_point, np.int64), params, x.ndim, length)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.rint(x / scale)
        nan = np.isnan(r)
        # Clip before the integer cast: anything beyond +-2**40 saturates anyway.
        r = np.clip(np.where(nan, 0, r), -(2.0**40), 2.0**40).astype(np.int64)
    q = np.where(nan, zero_point, np.clip(r + zero_point, params.qmin, params.qmax))
    return np.asarray(q, dtype=params.dtype)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) * scale, in float32 (``q`` unpacked, for the 4-bit types)."""
    q = np.asarray(q)
    length = q.shape[params.axis] if params.block_size is not None else 0
    scale = _broadcast(np.asarray(params.scale, np.float32), params, q.ndim, length)
    zero_point = _broadcast(np.asarray(params.zero_point, np.int64), params, q.ndim, length)
    return np.asarray((q.astype(np.int64) - zero_point).astype(np.float32) * scale, dtype=np.float32)


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pairs of 4-bit values as bytes ``hi << 4 | lo & 0x0F`` (C order), an odd count padded with 0."""
    v = np.asarray(values).astype(np.int64).ravel()
    v = np.append(v, 0) if v.size % 2 else v
    return ((v[0::2] & 15) | ((v[1::2] & 15) << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, shape: tuple[int, ...], signed: bool = True) -> np.ndarray:
    """The values of :func:`pack_int4`'s bytes: nibbles low then high, sign-extended when ``signed``."""
    p = np.asarray(packed, np.uint8).astype(np.int64)
    v = np.stack([p & 15, p >> 4], axis=-1).ravel()[: int(np.prod(shape))]
    if signed:
        v = np.where(v >= 8, v - 16, v)
    return v.astype(np.int8 if signed else np.uint8).reshape(shape)


def sum(a: np.ndarray) -> Any:  # noqa: A001 - mirrors numpy.sum
    """NumPy's sum with qbench's widening rule (uint64, int64, float64)."""
    a = np.asarray(a)
    acc = {"u": np.uint64, "i": np.int64, "f": np.float64}[a.dtype.kind]
    return a.sum(dtype=acc)


def accumulate(acc: np.ndarray, x: np.ndarray, *, repeat: int = 1, overflow: str = "wrap") -> np.ndarray:
    """``acc += x`` the NumPy way (wrapping), or clamped step by step for ``overflow="saturate"``."""
    for _ in range(repeat):
        if overflow == "saturate" and acc.dtype.kind in "iu":
            info = np.iinfo(acc.dtype)
            wide = acc.astype(np.int64) + x.astype(np.int64)
            acc[...] = np.clip(wide, info.min, info.max)
        else:
            np.add(acc, x, out=acc, casting="unsafe")
    return acc


def dot(a: np.ndarray, b: np.ndarray) -> Any:
    """float64 dot for floats, exact int64 dot for 8-bit ints."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.dtype.kind == "f":
        return np.dot(a.astype(np.float64), b.astype(np.float64))
    return np.dot(a.astype(np.int64), b.astype(np.int64))


def qdot(qa: np.ndarray, pa: QuantParams, qb: np.ndarray, pb: QuantParams) -> float:
    """Float dot of the two dequantized vectors."""
    return float(np.dot(dequantize(qa, pa).astype(np.float64).ravel(), dequantize(qb, pb).astype(np.float64).ravel()))


def matmul_integer(a: np.ndarray, b: np.ndarray, a_zero_point: Any = 0, b_zero_point: Any = 0) -> np.ndarray:
    """ONNX MatMulInteger by its definition: (a - za) @ (b - zb) in int64, wrapped to int32.

    Zero points as ONNX shapes them: scalar, per row of ``a`` ((M,) or (..., M, 1)),
    per column of ``b`` ((N,) or (..., 1, N)).
    """
    a, b = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    za, zb = np.asarray(a_zero_point, np.int64), np.asarray(b_zero_point, np.int64)
    if za.ndim == 1 and a.ndim >= 2:
        za = za[:, None]
    return np.matmul(a - za, b - zb).astype(np.int32)


def qlinear_matmul(a: np.ndarray, pa: QuantParams, b: np.ndarray, pb: QuantParams, py: QuantParams) -> np.ndarray:
    """QLinearMatMul as ONNX Runtime rounds it: float32(acc) * float32(sa * sb / sy), half to even, saturated."""
    acc = matmul_integer(a, b, pa.zero_point, pb.zero_point)
    multiplier = np.asarray(pa.scale * np.asarray(pb.scale), np.float32) / np.float32(py.scale)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.rint(acc.astype(np.float32) * multiplier).astype(np.float64)
    return np.clip(v + py.zero_point, py.qmin, py.qmax).astype(py.dtype)


def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, QuantParams]:
    """ONNX DynamicQuantizeLinear, float32 throughout; an all-zero range gets scale 1 (see qbench.ops.matmul)."""
    x = np.asarray(x, np.float32)
    lo = np.minimum(np.float32(0), x.min(initial=np.float32(0)))
    hi = np.maximum(np.float32(0), x.max(initial=np.float32(0)))
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        params = QuantParams(1.0, 0, np.uint8)
    else:
        params = QuantParams(scale, int(np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))), np.uint8)
    return quantize(x, params), params


def dynamic_quantize_matmul(x: np.ndarray, b: np.ndarray, pb: QuantParams, bias: Any = None) -> np.ndarray:
    """DynamicQuantizeMatMul: x quantized dynamically, the exact integer product, then * (sa * sb) + bias in float32."""
    q, pa = dynamic_quantize_linear(x)
    acc = matmul_integer(q, b, pa.zero_point, pb.zero_point)
    y = acc.astype(np.float32) * (np.float32(pa.scale) * np.asarray(pb.scale, np.float32))
    return y + (np.zeros(b.shape[1], np.float32) if bias is None else np.asarray(bias, np.float32))


# ---- ggml block formats (Q8_0, Q4_0): blocks of 32 with a float16 scale ---------------------------------------


def entropy_divergences(hist: np.ndarray, levels: int) -> np.ndarray:
    """Entropy calibration's divergence per candidate threshold ``i`` (index ``i``; inf below ``levels`` and where
    the quantized histogram is empty): the first ``i`` bins, the rest folded into the last, against their merge
    into ``levels`` groups spread evenly over each group's non-empty bins (TensorRT's search)."""
    bins = len(hist)
    out = np.full(bins + 1, np.inf)
    for i in range(levels, bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        kept = hist[:i]
        group = (np.arange(i) * levels) // i
        mass = np.bincount(group, weights=kept, minlength=levels)
        nonzero = np.bincount(group, weights=(kept > 0).astype(np.float64), minlength=levels)
        q = np.where(kept > 0, mass[group] / np.maximum(nonzero[group], 1.0), 0.0)
        if q.sum() == 0.0:
            continue
        p, q = p / p.sum(), q / q.sum()
        support = p > 0
        q = np.where(support & (q == 0.0), 1e-12, q)
        out[i] = float(np.sum(p[support] * np.log(p[support] / q[support])))
    return out


def _roundf(v: np.ndarray) -> np.ndarray:
    """C's roundf, ties away from zero, exactly (``v - trunc(v)`` is exact)."""
    t = np.trunc(v)
    return t + np.where(v - t >= 0.5, 1, 0) - np.where(v - t <= -0.5, 1, 0)


def ggml_quantize(x: np.ndarray, kind: str) -> np.ndarray:
    """ggml's ``quantize_row_q8_0_ref`` / ``quantize_row_q4_0_ref``: rows of ``x`` as bytes (..., K / 32 * block)."""
    x = np.asarray(x, np.float32)
    blocks = x.reshape(-1, 32)
    if kind == "Q8_0":
        d = np.abs(blocks).max(axis=1) / np.float32(127)
    else:
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)[:, 0]
        d = peak / np.float32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)[:, None]
    if kind == "Q8_0":
        qs = _roundf(blocks * inv).astype(np.int8).view(np.uint8)
    else:
        q = np.minimum(np.trunc(blocks * inv + np.float32(8.5)), 15).astype(np.uint8)
        qs = q[:, :16] | (q[:, 16:] << 4)
    out = np.concatenate([d.astype(np.float16).view(np.uint8).reshape(-1, 2), qs], axis=1)
    return out.reshape(*x.shape[:-1], -1)


def ggml_dequantize(blocks: np.ndarray, kind: str) -> np.ndarray:
    """float32 values of Q8_0 / Q4_0 blocks: ``q * d`` (Q4_0: ``(nibble - 8) * d``, low nibbles first)."""
    per = 34 if kind == "Q8_0" else 18
    flat = np.asarray(blocks, np.uint8).reshape(-1, per)
    d = flat[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "Q8_0":
        q = flat[:, 2:].view(np.int8).astype(np.float32)
    else:
        q = np.concatenate([flat[:, 2:] & 15, flat[:, 2:] >> 4], axis=1).astype(np.float32) - 8
    return (q * d).reshape(*np.shape(blocks)[:-1], -1)


def ggml_block_terms(w_row: np.ndarray, x_row: np.ndarray, kind: str) -> np.ndarray:
    """Per block, ``sumi * d_w * d_x`` exactly (float64): the terms ggml's ``vec_dot`` adds."""
    w = ggml_dequantize(w_row, kind).astype(np.float64).reshape(-1, 32)
    x = ggml_dequantize(x_row, "Q8_0").astype(np.float64).reshape(-1, 32)
    return (w * x).sum(axis=1)


def matmul_nbits_int8(a: np.ndarray, values: np.ndarray, scales: np.ndarray, zero_points: np.ndarray) -> np.ndarray:
    """MatMulNBits with int8 activations (qbench's ``matmul_nbits_int8``): ``a`` (M, K) to int8 per 32 values as
    Q8_0 (the scale kept in float32), 4-bit ``values`` (N, K) with ``scales`` and ``zero_points`` per value's
    block (N, K); per 32 values ``float32(float32(sum (v - z) q * s) * d)``, summed in float64 in order."""
    m, k = a.shape
    blocks = np.asarray(a, np.float32).reshape(m, -1, 32)
    d = np.abs(blocks).max(axis=2) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)[..., None]
    q = _roundf(blocks * inv).astype(np.int64)
    ints = (values.astype(np.int64) - zero_points.astype(np.int64)).reshape(values.shape[0], -1, 32)
    sums = np.einsum("mbj,nbj->mnb", q, ints)  # exact integers
    s = np.asarray(scales, np.float32).reshape(values.shape[0], -1, 32)[:, :, 0]
    terms = (sums.astype(np.float32) * s[None]).astype(np.float32) * d[:, None, :]
    out = np.zeros((m, values.shape[0]), np.float64)
    for b in range(terms.shape[2]):
        out += terms[:, :, b].astype(np.float32).astype(np.float64)
    return out.astype(np.float32)
