"""The linear layer's block formats: their data, qbench's calls and the checks that gate their timing.

ggml's Q8_0 and Q4_0 (weights packed once by ``ggml.pack_blocks``, any M), ONNX Runtime's MatMulNBits with float
activations (``nbits4``, ``nbits8``: a GEMV) and with int8 activations (``int4_b32``, ``int4_b128``, ``int8_b32``:
accuracy level 4, weights packed once by ``nbits.pack_nbits``, any M). The family itself is :mod:`qbench.cases.matmul`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from qbench import reference
from qbench.ops.params import QuantParams

#: The block formats: weight bits per value, scales included (blocks of 32: a float16 scale adds 0.5 bit,
#: a float32 one 1 bit).
BLOCK_BITS = {
    "Q8_0": 8.5,
    "Q4_0": 4.5,
    "nbits4": 5.0,
    "nbits8": 9.0,
    "int4_b32": 5.0,
    "int4_b128": 4.25,
    "int8_b32": 9.0,
}
NBITS_BLOCK = 32
#: MatMulNBits' blocks with int8 activations (ONNX Runtime's accuracy level 4), by block size: qbench's
#: ``nbits.matmul_nbits_int8`` on weights packed once, any M (the full grid only: the quick one keeps CI short).
INT8_NBITS = {"int4_b32": 32, "int4_b128": 128, "int8_b32": 32}
#: The MatMulNBits variants of 8-bit weights (the rest are 4-bit).
EIGHT_BITS = {"nbits8", "int8_b32"}
#: Rows checked against the reference: dynamic quantization takes its range from every row, the rest row by row.
CHECK_ROWS = 4


def block_data(d: SimpleNamespace) -> SimpleNamespace:
    """A block-format layer: the weights in ggml's bytes (made by the NumPy reference), or as MatMulNBits takes
    them (symmetric, the default zero point; ``x`` one row, a GEMV)."""
    d.out = np.empty((d.m, d.n), np.float32)
    if d.variant in ("Q8_0", "Q4_0"):
        d.blocks = reference.ggml_quantize(d.w, d.variant)
        return d
    if d.m != 1 and d.variant not in INT8_NBITS:
        raise NotImplementedError("MatMulNBits with float activations is timed as a matrix-vector product (M = 1)")
    try:
        from qbench.ops import blocks
    except ImportError:  # an older commit, from before qbench had blocked formats
        raise NotImplementedError("this qbench version has no MatMulNBits") from None
    d.bits = 8 if d.variant in EIGHT_BITS else 4
    d.block = INT8_NBITS.get(d.variant, NBITS_BLOCK)
    d.packed, d.scales, _ = blocks.quantize_nbits(d.w, bits=d.bits, block_size=d.block)
    return d


def qbench_block(d: Any, parallel: bool | None) -> Callable[[], Any]:
    if d.variant in ("Q8_0", "Q4_0"):
        try:
            from qbench.ops import ggml
        except ImportError:  # an older commit, from before qbench had ggml's formats
            raise NotImplementedError("this qbench version has no ggml formats") from None
        if not hasattr(ggml, "pack_blocks"):  # an older commit: matrix-vector products only, on the rows
            if d.m != 1:
                raise NotImplementedError("this qbench version has no batched ggml product")
            return lambda: ggml.matvec(d.blocks, d.x[0], d.variant, parallel=parallel)
        # Packed once, outside the timed call, as the integer layers' weights are.
        w = ggml.pack_blocks(d.blocks, d.variant)
        return lambda: ggml.matmul(w, d.x, d.variant, parallel=parallel)
    if d.variant in INT8_NBITS:
        try:
            from qbench.ops import nbits
        except ImportError:  # an older commit, from before qbench had int8 activations for MatMulNBits
            raise NotImplementedError("this qbench version has no int8-activation MatMulNBits") from None
        try:
            packed = nbits.pack_nbits(d.packed, d.scales, bits=d.bits, block_size=d.block)  # once, outside the call
        except RuntimeError as exc:  # no VNNI on this CPU
            raise NotImplementedError(str(exc)) from None
        return lambda: nbits.matmul_nbits_int8(d.x, packed, parallel=parallel)
    from qbench.ops import blocks

    return lambda: blocks.matmul_nbits(d.x, d.packed, d.scales, bits=d.bits, block_size=NBITS_BLOCK, parallel=parallel)


def check_block(d: Any, impl: str, got: np.ndarray) -> None:
    """A block-format GEMV against float64 within its derived bound: ggml's against the exact sum of its block
    terms (``qbench.ops.ggml.vec_dot_error_bound``); MatMulNBits' against the float64 product with the dequantized
    weights, within qbench's bound plus a float32 sum of K terms (ONNX Runtime sums in its own order)."""
    got = np.asarray(got, np.float64).reshape(-1)[:CHECK_ROWS]
    if d.variant in ("Q8_0", "Q4_0"):
        from qbench.ops import ggml

        x_row = reference.ggml_quantize(d.x[0], "Q8_0")
        for row in range(CHECK_ROWS):
            terms = reference.ggml_block_terms(d.blocks[row], x_row, d.variant)
            exact = float(terms.sum())
            bound = ggml.vec_dot_error_bound(float(np.abs(terms).sum()), terms.size, exact)
            if abs(got[row] - exact) > bound * 1.0001:
                raise AssertionError(f"{impl} {d.variant} matvec is off the exact block sum by more than its bound")
        return
    if d.variant in INT8_NBITS:
        _check_int8_nbits(d, impl, got)
        return
    from qbench.ops import blocks

    weights = reference.dequantize(
        reference.unpack_int4(d.packed[:CHECK_ROWS], (CHECK_ROWS, d.k), signed=False).astype(np.int64)
        if d.bits == 4
        else d.packed[:CHECK_ROWS].reshape(CHECK_ROWS, -1)[:, : d.k].astype(np.int64),
        QuantParams(d.scales[:CHECK_ROWS], 8 if d.bits == 4 else 128, "uint4" if d.bits == 4 else "uint8", 1, 32),
    ).astype(np.float64)
    exact = weights @ d.x[0].astype(np.float64)
    abs_products = np.abs(weights) @ np.abs(d.x[0]).astype(np.float64)
    u = 2.0**-24
    bound = blocks.matmul_nbits_error_bound(abs_products, d.k // NBITS_BLOCK, NBITS_BLOCK, got)
    bound += (d.k + 2) * u / (1 - (d.k + 2) * u) * abs_products
    if not np.all(np.abs(got - exact) <= bound * 1.0001):
        raise AssertionError(f"{impl} {d.variant} matvec is off the float64 product by more than its bound")


def _check_int8_nbits(d: Any, impl: str, got: np.ndarray) -> None:
    """MatMulNBits with int8 activations: qbench's bit for bit against its NumPy definition; ONNX Runtime's (which
    quantizes the activations its own way) within twice the activations' rounding of the float64 product."""
    from qbench.ops import nbits

    padded = d.packed.shape[1] * d.block  # K up to whole blocks, the padding's values the zero point
    rows = d.packed[:CHECK_ROWS]
    values = (
        reference.unpack_int4(rows, (CHECK_ROWS, padded), signed=False)
        if d.bits == 4
        else rows.reshape(CHECK_ROWS, padded).astype(np.int64)
    )
    zero = 8 if d.bits == 4 else 128
    scales = np.repeat(d.scales[:CHECK_ROWS], d.block, axis=1)
    if impl == "qbench":
        x = np.zeros((1, padded), np.float32)
        x[0, : d.k] = d.x[0]
        want = reference.matmul_nbits_int8(x, values, scales, np.full(values.shape, zero))[0]
        if not np.array_equal(got, want.astype(np.float64)):
            raise AssertionError(f"qbench {d.variant} disagrees with its definition; not timing it")
        return
    weights = ((values[:, : d.k].astype(np.float32) - zero) * scales[:, : d.k]).astype(np.float32)
    exact = weights.astype(np.float64) @ d.x[0].astype(np.float64)
    bound = 2 * nbits.int8_error_bound(d.x[:1], weights, exact)[0]
    if not np.all(np.abs(got - exact) <= bound * 1.0001):
        raise AssertionError(f"{impl} {d.variant} is off the float64 product by more than its activations' rounding")
