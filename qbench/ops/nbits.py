"""ONNX Runtime's MatMulNBits with int8 activations (its ``accuracy_level`` 4): 4- or 8-bit weight blocks packed
once, activations quantized per block of 32 at run time, integer block dots on ``vpdpbusd``.

:func:`pack_nbits` takes the weights as :func:`qbench.ops.blocks.quantize_nbits` makes them (and as a
MatMulNBits node stores them): 4- or 8-bit values in blocks of ``block_size`` along K (any power of two from 32),
a float32 scale per block, zero points or MatMulNBits' default (8, 128). It repacks them into the panels of the
block-dot kernel (:mod:`qbench.kernels.blockdot`): one weight row per vector lane, per 32 values the block's scale
and the values, and each lane's zero point where they differ from the default.

:func:`matmul_nbits_int8` quantizes each row of ``a`` per 32 values as ggml's Q8_0 does (``d = max|a| / 127``,
``q = roundf(a / d)``, the scale kept in float32), then per weight row and 32 values ``sumi = sum (w - z) q``
exactly, ``term = float32(float32(sumi * scale) * d)``, the terms summed in float64 and rounded to float32. Against
:func:`qbench.ops.blocks.matmul_nbits` (float activations) it differs by the activations' rounding, at most
``d / 2`` a value: :func:`int8_error_bound`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.kernels import blockdot
from qbench.kernels.isa import choose
from qbench.ops.blocks import NBITS_ZERO_POINT, _nbits, _nbits_zero_points
from qbench.ops.checks import as_array
from qbench.ops.ggml import QK, PackedBlocks, _packed_product
from qbench.ops.tuning import use_parallel

__all__ = ["int8_error_bound", "matmul_nbits_int8", "pack_nbits"]


def pack_nbits(
    b: Any,
    scales: Any,
    zero_points: Any = None,
    *,
    bits: int = 4,
    block_size: int = 32,
    parallel: bool | None = None,
) -> PackedBlocks:
    """MatMulNBits weights (``b`` uint8 (N, blocks, block_size * bits / 8), ``scales`` float32 (N, blocks),
    ``zero_points`` None or MatMulNBits' packed uint8) packed once for :func:`matmul_nbits_int8`."""
    _nbits(bits, block_size)
    if block_size < QK:
        raise ValueError(f"int8 activations are quantized per {QK} values: block_size must be at least {QK}")
    b = np.asarray(b)
    per_block = block_size * bits // 8
    if b.dtype != np.uint8 or b.ndim != 3 or b.shape[2] != per_block:
        raise ValueError(
            f"b for {bits}-bit blocks of {block_size} is uint8 (N, blocks, {per_block}); got {b.dtype} {b.shape}"
        )
    n, nb, _ = b.shape
    s = np.asarray(scales)
    if s.dtype != np.float32 or s.size != n * nb:
        raise ValueError(f"scales are float32, one per row and block ({n * nb}); got {s.dtype} {s.shape}")
    zp = _nbits_zero_points(zero_points, bits, n, nb)
    isa = choose()
    if isa is None or not isa.vnni:
        raise RuntimeError("matmul_nbits_int8 needs a CPU with VNNI (AVX-512 VNNI or AVX-VNNI); use matmul_nbits")
    symmetric, lanes = ("Q4_0", "Q4z") if bits == 4 else ("Q8_0", "Q8z")
    kernel = symmetric if np.all(zp == NBITS_ZERO_POINT[bits]) else lanes
    panel, k = blockdot.panel_rows(isa), nb * block_size
    data = np.empty(-(-n // panel) * (k // QK) * blockdot.block_bytes(kernel, panel), np.uint8)
    run = blockdot.pack_nbits.target(use_parallel(b.nbytes, parallel, ("pack_blocks", f"nbits{bits}")))
    b, s = np.ascontiguousarray(b), np.ascontiguousarray(s.reshape(n, nb))
    run(b, s, zp, bits, block_size, panel, kernel == lanes, data)
    return PackedBlocks(f"nbits{bits}", n, k, isa, data, kernel, float16_scales=False, block=block_size)


def matmul_nbits_int8(a: Any, packed: PackedBlocks, *, parallel: bool | None = None) -> np.ndarray:
    """``a @ dequant(b)^T`` with ``a`` (..., K float32) quantized to int8 per block of 32 (MatMulNBits at accuracy
    level 4, the order of the module docstring), on weights packed by :func:`pack_nbits`; float32 (..., N)."""
    a = as_array(a, "a", (np.dtype(np.float32),), "matmul_nbits_int8")
    if not isinstance(packed, PackedBlocks) or packed.kind not in ("nbits4", "nbits8"):
        raise TypeError(f"matmul_nbits_int8 takes weights packed by pack_nbits; got {type(packed).__name__}")
    if a.ndim == 0 or -(-a.shape[-1] // packed.block) * packed.block != packed.k:
        raise ValueError(
            f"a's last axis (K) must fill the packed weights' {packed.k // packed.block} blocks of {packed.block}; "
            f"got a of shape {a.shape}"
        )
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[1] != packed.k:  # K short of the last whole block: zeros, which add nothing
        rows = np.pad(rows, ((0, 0), (0, packed.k - rows.shape[1])))
    return _packed_product(packed, rows, parallel).reshape(*a.shape[:-1], packed.n)


def int8_error_bound(a: Any, weights: Any, result: Any) -> np.ndarray:
    """The bound on ``|matmul_nbits_int8 - a @ weights.T|`` (``weights`` the float dequantized (N, K), the product
    exact): each value of ``a`` moved by at most half its block's int8 step ``d / 2``, plus the float roundings
    (each term's two and its float64 sum, the result's one) on ``sum |a w|`` and the moved values. ``a``
    (M, K) float32 as given, ``weights`` (N, K)."""
    a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])
    w = np.asarray(weights, np.float64)
    k = a.shape[1]
    padded = np.zeros((a.shape[0], -(-k // QK) * QK))
    padded[:, :k] = np.abs(a)
    step = np.repeat(padded.reshape(a.shape[0], -1, QK).max(axis=2) / 127, QK, axis=1)[:, :k]
    moved = (step / 2) @ np.abs(w).T
    u32, u64 = 2.0**-24, 2.0**-53
    size = (np.abs(a) + step) @ np.abs(w).T
    blocks = -(-k // QK)
    # 6 u32: the quotient's rounding before roundf, the weights' float32 dequantization, each term's two roundings,
    # with room; the float64 sum of the terms; the result's last rounding.
    return moved + (6 * u32 + blocks * u64) * size + u32 * np.abs(np.asarray(result, np.float64).reshape(moved.shape))
