"""ggml's block formats Q8_0 and Q4_0, byte for byte as llama.cpp stores them, and the products they exist for.

A row of K values (K a multiple of 32) is K / 32 blocks: Q8_0 ``{float16 d; int8 qs[32]}`` (34 bytes, 8.5 bits
per weight), Q4_0 ``{float16 d; uint8 qs[16]}`` (18 bytes, 4.5 bits per weight). :func:`quantize` returns the
same bytes and shape as the ``gguf`` package's ``gguf.quants.quantize`` (a uint8 array whose last axis is the
row's bytes), :func:`dequantize` the same float32 values as ``gguf.quants.dequantize``.

:func:`matvec` is llama.cpp's CPU path for a quantized weight matrix times an activation vector: the vector
quantized to Q8_0 once, then one :func:`vec_dot` per weight row. Float order: each block's integer dot is
exact; its term ``float32(float32(sumi * d_w) * d_x)`` is rounded as ggml rounds it; the terms are summed in
float64, then rounded to float32. Against the exact float64 sum of the same terms' real values the error is at
most ``(2 u32 + nb u64) * sum |terms| + u32 |result|`` (``u32 = 2**-24``, ``u64 = 2**-53``, ``nb`` blocks):
:func:`vec_dot_error_bound`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from qbench.kernels import blockdot
from qbench.kernels import ggml as ggml_k
from qbench.kernels.isa import Isa, choose
from qbench.ops.checks import output_array
from qbench.ops.tuning import use_parallel

QK = ggml_k.QK
#: Bytes per block and bits per weight of each format.
BLOCK_BYTES = {"Q8_0": 2 + QK, "Q4_0": 2 + QK // 2}
BITS_PER_WEIGHT = {kind: 8 * nbytes / QK for kind, nbytes in BLOCK_BYTES.items()}
KINDS = tuple(BLOCK_BYTES)

__all__ = [
    "BITS_PER_WEIGHT",
    "KINDS",
    "PackedBlocks",
    "dequantize",
    "matmul",
    "matvec",
    "pack_blocks",
    "quantize",
    "vec_dot",
    "vec_dot_error_bound",
]


def _kind(kind: Any) -> str:
    name = getattr(kind, "name", kind)  # a gguf GGMLQuantizationType, or its name
    if name not in BLOCK_BYTES:
        raise ValueError(f"unknown ggml format {kind!r}; accepted: {', '.join(KINDS)}")
    return str(name)


@functools.cache
def _table() -> np.ndarray:
    """float32 value of every float16 bit pattern: the kernels' scale decoder (256 KiB, made on first use)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _parts(blocks: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(scales as float32, quants view) of a (..., nb * block bytes) uint8 array, blocks flattened to rows."""
    per = BLOCK_BYTES[kind]
    flat = blocks.reshape(-1, per)
    d = np.ascontiguousarray(flat[:, :2]).view(np.float16)[:, 0].astype(np.float32)
    qs = flat[:, 2:]
    return d, (qs.view(np.int8) if kind == "Q8_0" else qs)


def quantize(x: Any, kind: str, *, out: np.ndarray | None = None, parallel: bool | None = None) -> np.ndarray:
    """Rows of float32 ``x`` (last axis a multiple of 32) as ggml ``kind`` blocks: uint8 (..., K / 32 * block bytes),
    into ``out`` (C-contiguous) if given.

    NaN or inf has no block scale (ggml's result is undefined there): ``ValueError``.
    """
    kind = _kind(kind)
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"ggml.quantize expects float32 values; got {x.dtype}")
    if x.ndim == 0 or x.shape[-1] % QK:
        raise ValueError(f"ggml.quantize needs rows whose length is a multiple of {QK}; got shape {x.shape}")
    blocks = np.ascontiguousarray(x).reshape(-1, QK)
    shape = (*x.shape[:-1], x.shape[-1] // QK * BLOCK_BYTES[kind])
    result = output_array(out, shape, np.dtype(np.uint8), x)
    if not result.flags.c_contiguous:
        raise ValueError("ggml.quantize needs a C-contiguous out")
    out = result.reshape(-1, BLOCK_BYTES[kind])
    d = np.empty(blocks.shape[0], np.float32)
    quants = out[:, 2:].view(np.int8) if kind == "Q8_0" else out[:, 2:]
    kern = ggml_k.q8_0_quantize if kind == "Q8_0" else ggml_k.q4_0_quantize
    kern.target(use_parallel(x.nbytes, parallel, ("ggml_quantize", kind)))(blocks, QK, d, quants)
    if not np.all(np.isfinite(d)):
        raise ValueError(f"ggml.quantize: x holds NaN or inf, which no {kind} block scale can represent")
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return result


def dequantize(blocks: Any, kind: str, *, out: np.ndarray | None = None, parallel: bool | None = None) -> np.ndarray:
    """float32 values of ggml ``kind`` blocks: uint8 (..., nb * block bytes) -> (..., nb * 32), into ``out``
    (C-contiguous) if given."""
    kind = _kind(kind)
    blocks = np.asarray(blocks)
    if blocks.dtype != np.uint8:
        raise TypeError(f"ggml.dequantize expects the blocks' bytes as uint8; got {blocks.dtype}")
    per = BLOCK_BYTES[kind]
    if blocks.ndim == 0 or blocks.shape[-1] % per:
        raise ValueError(f"ggml.dequantize: a row of {kind} is a multiple of {per} bytes; got shape {blocks.shape}")
    shape = (*blocks.shape[:-1], blocks.shape[-1] // per * QK)
    out = output_array(out, shape, np.dtype(np.float32), blocks)
    if not out.flags.c_contiguous:
        raise ValueError("ggml.dequantize needs a C-contiguous out")
    flat = np.ascontiguousarray(blocks).reshape(-1, per)
    kern = ggml_k.q8_0_dequantize if kind == "Q8_0" else ggml_k.q4_0_dequantize
    run = kern.target(use_parallel(out.nbytes, parallel, ("ggml_dequantize", kind)))
    run(flat, _table(), QK if kind == "Q8_0" else QK // 2, out.reshape(-1, QK))
    return out


def _weight_rows(weights: np.ndarray, kind: str, k: int, what: str) -> np.ndarray:
    """``weights`` (N, K / 32 * block bytes) checked and seen as (N, K / 32, block bytes)."""
    per = BLOCK_BYTES[kind]
    if weights.dtype != np.uint8 or weights.ndim != 2:
        raise TypeError(f"{what} expects weights as 2-D uint8 {kind} rows; got {weights.dtype} {weights.shape}")
    if weights.shape[1] != k // QK * per:
        raise ValueError(
            f"{what}: {kind} rows of K = {k} values are {k // QK * per} bytes; the weights' rows are {weights.shape[1]}"
        )
    return np.ascontiguousarray(weights).reshape(weights.shape[0], k // QK, per)


@dataclass(frozen=True, eq=False)
class PackedBlocks:
    """ggml weight rows repacked once for this machine's block-dot kernel (:func:`pack_blocks`); pass it to
    :func:`matvec` in place of the rows, for the same results bit for bit."""

    kind: str  # the weights' format: Q4_0, Q8_0, or nbits4 (ONNX's MatMulNBits 4-bit blocks)
    n: int
    k: int  # values per row, padded to whole blocks
    isa: Isa | None  # the VNNI path the panels are for; None: no such path here, the rows are kept as they are
    data: np.ndarray
    kernel: str = ""  # the block-dot kernel that reads the panels (:data:`qbench.kernels.blockdot.QUANT_BYTES`)
    float16_scales: bool = True  # the activations' block scales rounded to float16, as ggml stores them
    block: int = QK  # values per weight block (a scale each); K is padded to whole blocks

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def __repr__(self) -> str:
        how = f"panels for {self.isa.name}" if self.isa else "rows as given (no VNNI path on this CPU)"
        return f"PackedBlocks({self.kind}, N={self.n}, K={self.k}, {self.nbytes:,} bytes, {how})"


def pack_blocks(weights: Any, kind: str, *, parallel: bool | None = None) -> PackedBlocks:
    """Pack ggml ``kind`` weight rows (uint8 (N, K / 32 * block bytes), as :func:`quantize` and GGUF files store
    them) once, into the panels :func:`matvec`'s fast kernel reads (one row per vector lane, scales as float32).
    On a CPU without VNNI the rows are kept as they are and the portable kernel runs."""
    kind = _kind(kind)
    rows = np.asarray(weights)
    per = BLOCK_BYTES[kind]
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] % per:
        raise ValueError(
            f"pack_blocks expects 2-D uint8 {kind} rows, a multiple of {per} bytes; got {rows.dtype} {rows.shape}"
        )
    n, k = rows.shape[0], rows.shape[1] // per * QK
    isa = choose()
    if isa is None or not isa.vnni:
        return PackedBlocks(kind, n, k, None, np.ascontiguousarray(rows))
    panel = blockdot.panel_rows(isa)
    data = np.empty(-(-n // panel) * (k // QK) * blockdot.block_bytes(kind, panel), np.uint8)
    flip = np.uint8(0x80 if kind == "Q8_0" else 0)
    run = blockdot.pack.target(use_parallel(rows.nbytes, parallel, ("pack_blocks", kind)))
    run(np.ascontiguousarray(rows).reshape(n, k // QK, per), _table(), blockdot.QUANT_BYTES[kind], flip, panel, data)
    return PackedBlocks(kind, n, k, isa, data, kind)


def matvec(weights: Any, x: Any, kind: str = "Q4_0", *, parallel: bool | None = None) -> np.ndarray:
    """llama.cpp's CPU matrix-vector product: ``x`` (K float32) quantized to Q8_0 once, then for each weight row
    (Q4_0 or Q8_0, shape (N, K / 32 * block bytes), or packed by :func:`pack_blocks`) the block dot of
    :func:`vec_dot`. float32 (N,)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 1:
        raise TypeError(f"ggml.matvec expects x as a 1-D float32 vector; got {x.dtype} {x.shape}")
    return matmul(weights, x, kind, parallel=parallel)


def matmul(weights: Any, x: Any, kind: str = "Q4_0", *, parallel: bool | None = None) -> np.ndarray:
    """``x @ W.T`` as llama.cpp computes a batch: every row of ``x`` (..., K float32) quantized to Q8_0, each
    output the block dot of :func:`vec_dot` of its row with a weight row (rows, or :func:`pack_blocks` panels).
    float32 (..., N); each row's results are :func:`matvec`'s of that row."""
    kind = _kind(kind)
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim == 0:
        raise TypeError(f"ggml.matmul expects x as float32 rows (..., K); got {x.dtype} {x.shape}")
    if isinstance(weights, PackedBlocks):
        if weights.kind != kind or weights.k != x.shape[-1]:
            raise ValueError(
                f"ggml.matmul: the packed weights are {weights.kind} rows of K = {weights.k}; "
                f"asked for {kind} with x of {x.shape[-1]} values"
            )
        if weights.isa is not None:
            return _packed_product(weights, x.reshape(-1, weights.k), parallel).reshape(*x.shape[:-1], weights.n)
        weights = weights.data
    w = _weight_rows(np.asarray(weights), kind, x.shape[-1], "ggml.matmul")
    rows = quantize(x.reshape(-1, x.shape[-1]), "Q8_0", parallel=parallel)  # every row at once
    out = np.empty((rows.shape[0], w.shape[0]), np.float64)
    run = _dot_rows(kind, use_parallel(w.nbytes, parallel, ("ggml_matvec", kind)))
    for m, row in enumerate(rows):
        xd, xqs = _parts(row.reshape(-1, BLOCK_BYTES["Q8_0"]), "Q8_0")
        run(w, _table(), xd, xqs, out[m])
    return out.astype(np.float32).reshape(*x.shape[:-1], w.shape[0])


def _packed_product(w: PackedBlocks, x: np.ndarray, parallel: bool | None) -> np.ndarray:
    """The block dots of rows ``x`` (M, K) with packed panels: the rows quantized to int8 per block of 32 as ggml's
    Q8_0 quantizes them (the scales rounded to float16 where ``w.float16_scales``, as ggml stores them), each
    block's fix for the weights' unsigned form, then one pass over the panels per tile of rows."""
    m, blocks, panel = x.shape[0], w.k // QK, blockdot.panel_rows(w.isa)
    out = np.empty((m, -(-w.n // panel) * panel), np.float32)
    if m == 0:
        return out[:, : w.n]
    xd, xq = np.empty(m * blocks, np.float32), np.empty((m * blocks, QK), np.int8)
    par = use_parallel(x.nbytes, parallel, ("ggml_quantize", "Q8_0"))
    ggml_k.q8_0_quantize.target(par)(np.ascontiguousarray(x).reshape(-1, QK), QK, xd, xq)
    if not np.all(np.isfinite(xd)):
        raise ValueError("the activations hold NaN or inf, which no int8 block scale can represent")
    if w.float16_scales:
        xd = xd.astype(np.float16).astype(np.float32)
    fix = np.empty((m, blocks), np.int32)
    blockdot.activation_fix.serial(xq.reshape(m, blocks, QK), np.int32(blockdot.OFFSET[w.kernel]), fix)
    run = blockdot.matmul_kernel(w.isa, w.kernel).target(use_parallel(w.nbytes, parallel, ("ggml_matvec", w.kind)))
    run(w.data, blocks, xq.reshape(m, w.k), xd.reshape(m, blocks), fix, out)
    return out[:, : w.n]


def _dot_rows(kind: str, parallel: bool) -> Any:
    """The row kernel of ``kind`` against Q8_0, with its block length bound."""
    kern = ggml_k.q4_0_q8_0_dot_rows if kind == "Q4_0" else ggml_k.q8_0_q8_0_dot_rows
    run = kern.target(parallel)
    count = QK // 2 if kind == "Q4_0" else QK
    return lambda w, table, xd, xqs, out: run(w, table, xd, xqs, count, out)


def vec_dot(w_row: Any, x_row: Any, kind: str = "Q4_0") -> np.float32:
    """ggml's ``vec_dot_q4_0_q8_0`` (or ``q8_0_q8_0``): one ``kind`` row against one Q8_0 row, as float32."""
    kind = _kind(kind)
    x_row = np.asarray(x_row)
    if x_row.dtype != np.uint8 or x_row.ndim != 1 or x_row.shape[0] % BLOCK_BYTES["Q8_0"]:
        raise ValueError(f"ggml.vec_dot expects x_row as 1-D uint8 Q8_0 blocks; got {x_row.dtype} {x_row.shape}")
    k = x_row.shape[0] // BLOCK_BYTES["Q8_0"] * QK
    w = _weight_rows(np.asarray(w_row).reshape(1, -1), kind, k, "ggml.vec_dot")
    xd, xqs = _parts(x_row, "Q8_0")
    out = np.empty(1, np.float64)
    _dot_rows(kind, False)(w, _table(), xd, xqs, out)
    return np.float32(out[0])


def vec_dot_error_bound(terms_abs_sum: float, blocks: int, result: float) -> float:
    """The bound of the module docstring on ``|vec_dot - exact|``, from ``sum |terms|``, the block count and the
    result (its final float32 rounding)."""
    u32, u64 = 2.0**-24, 2.0**-53
    return (2 * u32 + blocks * u64) * terms_abs_sum + u32 * abs(result)
