"""The block formats' conversions: float32 to and from ggml's Q8_0 / Q4_0 and ONNX int4 blocks of 32.

Sized like the elementwise kernels (``size`` values, rows of up to :data:`ROW` values), counted in the bytes
the format stores: Q8_0 34 bytes per 32 values, Q4_0 18, ONNX int4 16 bytes of values and a float32 scale.
Quantize is judged against the read ceiling (it reads 4 bytes per value and writes about one), dequantize
against the write ceiling (it writes 4 bytes per value from about one).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from qbench import ops, reference

from .grid import quick, quick_threads, sizes, sizes_override
from .registry import READ, WRITE, Buffers, Family, Operand, Shape

#: The formats, as the families' ``dtype``: ggml's, and ONNX blocked int4 (blocks of 32, symmetric, float32 scale).
FORMATS = ("Q8_0", "Q4_0", "int4")
#: Bytes stored per 32 values (scales included).
BYTES_PER_32 = {"Q8_0": 34, "Q4_0": 18, "int4": 16 + 4}
#: Values per row: a row of a weight matrix (every size of the grid is a multiple of 32, 4096 or a whole row).
ROW = 4096
BLOCK = 32
CHECK_ROWS = 2


def stored_bytes(fmt: str, size: int) -> int:
    return size // BLOCK * BYTES_PER_32[fmt]


def bits_per_weight(fmt: str) -> float:
    return 8 * BYTES_PER_32[fmt] / BLOCK


def _rows(size: int) -> tuple[int, int]:
    if size % BLOCK or (size > ROW and size % ROW):
        raise ValueError(f"block conversions take sizes that are multiples of {BLOCK} (and of {ROW} beyond it)")
    width = min(size, ROW)
    return size // width, width


def _modules() -> tuple[Any, Any]:
    try:
        from qbench.ops import blocks, ggml
    except ImportError:  # an older commit, from before qbench had block formats
        raise NotImplementedError("this qbench version has no block formats") from None
    return blocks, ggml


def _data(to_blocks: bool) -> Callable[[str, Shape, Buffers], Any]:
    def make(fmt: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
        blocks, _ = _modules()
        rows, width = _rows(shape["size"])
        d = SimpleNamespace(fmt=fmt, x=buf.random("float32", (rows, width), 0))
        if fmt == "int4":
            d.p = blocks.calibrate_blocks(d.x, "int4", axis=1, block_size=BLOCK)
            d.stored = reference.pack_int4(reference.quantize(d.x, d.p))
        else:
            d.stored = reference.ggml_quantize(d.x, fmt)
        if to_blocks:
            d.out = buf.empty(d.stored.shape, np.uint8, 1)
        else:
            d.out = buf.empty(d.x.shape, np.float32, 1)
            d.want = reference.ggml_dequantize(d.stored[:CHECK_ROWS], fmt) if fmt != "int4" else None
        return d

    return make


def _quantize(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    _, ggml = _modules()
    if d.fmt == "int4":
        return lambda: ops.quantize(d.x, d.p, out=d.out, parallel=parallel)
    return lambda: ggml.quantize(d.x, d.fmt, out=d.out, parallel=parallel)


def _quantize_numpy(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    if d.fmt == "int4":
        return lambda: reference.pack_int4(reference.quantize(d.x, d.p))
    return lambda: reference.ggml_quantize(d.x, d.fmt)


def _dequantize(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    _, ggml = _modules()
    if d.fmt == "int4":
        return lambda: ops.dequantize(d.stored, d.p, shape=d.x.shape, out=d.out, parallel=parallel)
    return lambda: ggml.dequantize(d.stored, d.fmt, out=d.out, parallel=parallel)


def _dequantize_numpy(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    if d.fmt == "int4":
        return lambda: reference.dequantize(reference.unpack_int4(d.stored, d.x.shape).astype(np.int64), d.p)
    return lambda: reference.ggml_dequantize(d.stored, d.fmt)


def _check(d: Any, impl: str, result: Any) -> None:
    """qbench's first rows bit for bit against the reference's (ggml's bytes, ONNX's values)."""
    if impl != "qbench":
        return
    got = np.asarray(result)
    rows, width = min(CHECK_ROWS, d.x.shape[0]), d.x.shape[1]
    if got.dtype == np.uint8:  # quantized: ggml (rows, bytes), ONNX int4 packed flat
        head = rows * width // 2 if d.fmt == "int4" else rows
        ok = np.array_equal(got[:head], d.stored[:head])
    else:
        if d.fmt == "int4":
            values = reference.unpack_int4(d.stored[: rows * width // 2], (rows, width))
            params = type(d.p)(d.p.scale[:rows], d.p.zero_point[:rows], d.p.dtype, 1, BLOCK)
            want = reference.dequantize(values.astype(np.int64), params)
        else:
            want = d.want
        ok = np.array_equal(got[:rows].view(np.uint32), np.asarray(want, np.float32).view(np.uint32))
    if not ok:
        raise AssertionError(f"qbench {d.fmt} conversion disagrees with the reference; not timing a wrong kernel")


def _operands(to_blocks: bool) -> Callable[[str, Shape], tuple[Operand, ...]]:
    """The float32 values and the format's bytes; ONNX int4's float32 scales are an array of their own (read)."""

    def operands(fmt: str, shape: Shape) -> tuple[Operand, ...]:
        size = shape["size"]
        values = ("float32", size)
        packed = ("uint8", size // 2) if fmt == "int4" else ("uint8", stored_bytes(fmt, size))
        src, dst = (values, packed) if to_blocks else (packed, values)
        scales = (Operand("float32", READ, size // BLOCK),) if fmt == "int4" else ()
        return Operand(src[0], READ, src[1]), *scales, Operand(dst[0], WRITE, dst[1])

    return operands


#: Sizes of the conversions in the quick grid: one in L2, one from DRAM.
QUICK_SIZES = (2**14, 2**24)


def block_sizes() -> tuple[int, ...]:
    """Sizes of the conversions: the grid's, or in the quick grid those of :data:`QUICK_SIZES` it has; sizes
    named in ``QBENCH_SIZES`` always."""
    if not quick() or sizes_override():
        return sizes()
    return tuple(s for s in sizes() if s in QUICK_SIZES) or sizes()


def _allocates(d: Any, impl: str) -> int:
    return 0 if impl == "qbench" else d.out.nbytes


def _conversion(to_blocks: bool) -> Family:
    """quantize (float32 to the formats, judged against the read ceiling) or dequantize (back, the write one)."""
    name, impls, ceiling = (
        ("block_quantize", {"qbench": _quantize, "numpy": _quantize_numpy}, "read")
        if to_blocks
        else ("block_dequantize", {"qbench": _dequantize, "numpy": _dequantize_numpy}, "write")
    )
    direction = "float32 -> block format" if to_blocks else "block format -> float32"
    return Family(
        name=name,
        summary=f"{direction} (Q8_0, Q4_0: ggml; int4: ONNX blocks of 32)",
        dtypes=FORMATS,
        quick_dtypes=FORMATS,
        operands=_operands(to_blocks),
        data=_data(to_blocks),
        impls=impls,
        check=_check,
        ceiling=ceiling,
        allocates=_allocates,
        threads=quick_threads,
        axis_values={"size": block_sizes},
    )


BLOCK_CONVERSIONS = (_conversion(True), _conversion(False))


# ---- side by side, and accuracy against bits per weight ---------------------------------------------------


def comparisons() -> tuple[str, ...]:
    """Each conversion against its bandwidth ceiling and (but in the quick grid, whose NumPy reference of ggml's
    quantize takes seconds per call from DRAM) the NumPy reference: ``qbench.cases.Comparison`` names."""
    against = ("ceiling",) if quick() else ("numpy", "ceiling")
    return tuple(
        f"{fam.name} {fmt} / {fam.ceiling if a == 'ceiling' else a}"
        for fam in BLOCK_CONVERSIONS
        for fmt in fam.grid_dtypes()
        for a in against
    )


def side_by_side_grid() -> tuple[list, list[str]]:
    return [list(block_sizes()), list(comparisons()), list(quick_threads())], ["size", "comparison", "threads"]


#: Weight formats compared for accuracy, with the bits each stores per weight (scales included; per-tensor and
#: per-channel int8's one scale per tensor or row counted as nothing).
ACCURACY_FORMATS = {
    "int8 tensor": 8.0,
    "int8 channel": 8.0,
    "Q8_0": bits_per_weight("Q8_0"),
    "Q4_0": bits_per_weight("Q4_0"),
    "int4 b32": 4 + 32 / 32,
    "int4 b64": 4 + 32 / 64,
    "int4 b128": 4 + 32 / 128,
}
#: The weight matrix whose round trip is measured: rows of a layer's output channels.
ACCURACY_WEIGHTS = (256, 4096)


def round_trip(fmt: str, w: np.ndarray) -> np.ndarray:
    """``w`` (rows, K) quantized to ``fmt`` and back to float32, with qbench's API (symmetric MinMax scales)."""
    blocks, ggml = _modules()
    from qbench.ops.calibrate import calibrate

    if fmt in ("Q8_0", "Q4_0"):
        return ggml.dequantize(ggml.quantize(w, fmt), fmt)
    if fmt.startswith("int8"):
        p = calibrate(w, "int8", axis=0 if fmt.endswith("channel") else None, symmetric=True)
        return ops.dequantize(ops.quantize(w, p), p)
    p = blocks.calibrate_blocks(w, "int4", axis=1, block_size=int(fmt.split("b")[-1]))
    return ops.dequantize(ops.quantize(w, p), p, shape=w.shape)
