"""ONNX blocked quantize / dequantize (opset 21) and the packing of 4-bit values, two per byte.

Arrays arrive as (rows, D) when the blocks run along the last axis, or as (outer, D, inner) otherwise;
the scale and zero point as (rows, nb) / (outer, nb, inner) with nb = ceil(D / block), possibly with
zero strides (per-tensor and per-axis parameters of the 4-bit types are blocks that cover an axis).
4-bit values are computed one per int8 or uint8 byte, ``qmin`` and ``qmax`` passed in, then packed.
"""

import numpy as np
from numba import njit, prange

from qbench.kernels._jit import REASSOC, kernel
from qbench.kernels.quantize import quantize_value


@kernel(wide=False)
def quantize_rows(x, scale, zero_point, block, qmin, qmax, out):
    """Blocks along the last axis: ``out[r, i] = q(x[r, i])`` with the scale of block ``i // block``."""
    rows, width = x.shape
    for r in prange(rows):
        for b in range(scale.shape[1]):
            s, z = scale[r, b], zero_point[r, b]
            base = b * block
            # A whole block loops over range(block): written as range(base, end), over a count computed
            # here, or under a bound computed with //, the loop does not vectorize.
            if base + block <= width:
                for j in range(block):
                    out[r, base + j] = quantize_value(x[r, base + j], s, z, qmin, qmax)
            else:
                for i in range(base, width):
                    out[r, i] = quantize_value(x[r, i], s, z, qmin, qmax)


@kernel
def quantize_inner(x, scale, zero_point, block, qmin, qmax, out):
    """Blocks along a middle axis of (outer, D, inner): each line of ``inner`` values shares a row of scales."""
    outer, width, inner = x.shape
    for line in prange(outer * width):
        o = line // width
        i = line - o * width
        b = i // block
        for k in range(inner):
            out[o, i, k] = quantize_value(x[o, i, k], scale[o, b, k], zero_point[o, b, k], qmin, qmax)


@kernel(wide=False)
def dequantize_rows(q, scale, zero_point, block, out):
    """Blocks along the last axis: ``(float32(q) - zero_point) * scale`` per block (loops as quantize_rows)."""
    rows, width = q.shape
    for r in prange(rows):
        for b in range(scale.shape[1]):
            s, z = scale[r, b], zero_point[r, b]
            base = b * block
            if base + block <= width:
                for j in range(block):
                    out[r, base + j] = (np.float32(q[r, base + j]) - z) * s
            else:
                for i in range(base, width):
                    out[r, i] = (np.float32(q[r, i]) - z) * s


@njit(cache=True, inline="always")
def dequantize_pair(packed, r, i, flip, z, s, out):
    """Byte ``i`` of row ``r``: its low nibble to ``out[r, 2 i]``, its high one to ``out[r, 2 i + 1]``."""
    v = np.int32(packed[r, i])
    out[r, 2 * i] = (np.float32(np.int32(((v & 15) ^ flip) - flip)) - z) * s
    out[r, 2 * i + 1] = (np.float32(np.int32(((v >> 4) ^ flip) - flip)) - z) * s


@kernel(wide=False)
def dequantize_packed_rows(packed, signed, scale, zero_point, half, out):
    """Packed 4-bit blocks along the last axis straight to float32: ``packed`` (rows, width / 2) bytes, each
    block ``half`` bytes (an even block), sign-extended when ``signed``; one pass, no unpacked copy."""
    rows, pairs = packed.shape
    flip = np.int32(8) if signed else np.int32(0)
    for r in prange(rows):
        for b in range(scale.shape[1]):
            s, z = scale[r, b], zero_point[r, b]
            base = b * half
            if base + half <= pairs:  # loops as quantize_rows: a whole block, or the short last one
                for j in range(half):
                    dequantize_pair(packed, r, base + j, flip, z, s, out)
            else:
                for i in range(base, pairs):
                    dequantize_pair(packed, r, i, flip, z, s, out)


@kernel
def dequantize_inner(q, scale, zero_point, block, out):
    """Blocks along a middle axis of (outer, D, inner)."""
    outer, width, inner = q.shape
    for line in prange(outer * width):
        o = line // width
        i = line - o * width
        b = i // block
        for k in range(inner):
            out[o, i, k] = (np.float32(q[o, i, k]) - zero_point[o, b, k]) * scale[o, b, k]


@kernel
def pack_int4(values, out):
    """Two 4-bit values per byte, the first in the low nibble; an odd count leaves the last high nibble 0."""
    pairs = values.shape[0] // 2
    for i in prange(pairs):
        out[i] = np.uint8((values[2 * i] & 15) | ((values[2 * i + 1] & 15) << 4))
    if values.shape[0] % 2:
        out[pairs] = np.uint8(values[values.shape[0] - 1] & 15)


@kernel
def unpack_int4(packed, signed, out):
    """The 4-bit values of ``packed`` into ``out`` (one byte each), sign-extended when ``signed``."""
    n = out.shape[0]
    flip = np.int32(8) if signed else np.int32(0)
    for i in prange(n // 2):
        v = np.int32(packed[i])
        # (v ^ 8) - 8 sign-extends a nibble; with flip 0 it leaves it as it is.
        out[2 * i] = ((v & 15) ^ flip) - flip
        out[2 * i + 1] = ((v >> 4) ^ flip) - flip
    if n % 2:
        v = np.int32(packed[n // 2])
        out[n - 1] = ((v & 15) ^ flip) - flip


# ---- ONNX Runtime's MatMulNBits: y = a @ dequant(b)^T with b in blocks along K --------------------------------


@kernel(fastmath=REASSOC, wide=False)
def nbits4_dot_rows(a_even, a_odd, b, scale, zero_point, half, out):
    """``out[n] = sum_blocks float32(scale * sum_j a_j (q_j - zero_point))``, 4-bit ``b`` (N, blocks, half) packed
    in pairs along K; ``a_even`` / ``a_odd``: the activations at even / odd positions, zero-padded to the blocks.

    Each block's sum is float32 in any order (vector lanes), the block terms are summed in float64. ``half``
    arrives at run time: a constant 16 would be unrolled, where a loop of 16 becomes one vector iteration.
    """
    for n in prange(b.shape[0]):
        total = 0.0
        for blk in range(b.shape[1]):
            z = zero_point[n, blk]
            base = blk * half
            s = np.float32(0)
            for j in range(half):
                v = b[n, blk, j]
                # The int32 casts keep the nibbles 32-bit wide: Numba's int64 would halve the vector's lanes.
                s += a_even[base + j] * (np.float32(np.int32(v & 15)) - z)
                s += a_odd[base + j] * (np.float32(np.int32(v >> 4)) - z)
            total += np.float32(s * scale[n, blk])
        out[n] = total


@kernel(fastmath=REASSOC, wide=False)
def nbits8_dot_rows(a, b, scale, zero_point, block, out):
    """The 8-bit form: ``b`` (N, blocks, block) one value per byte."""
    for n in prange(b.shape[0]):
        total = 0.0
        for blk in range(b.shape[1]):
            z = zero_point[n, blk]
            base = blk * block
            s = np.float32(0)
            for j in range(block):
                s += a[base + j] * (np.float32(np.int32(b[n, blk, j])) - z)
            total += np.float32(s * scale[n, blk])
        out[n] = total
