"""The formats a weight scan stores a tensor in: their names as ``--formats`` takes them and their byte rules.

Bytes count the values and every scale and zero point a file must store
(:func:`nbytes`), for one tensor of (rows, cols) values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qbench.ops.calibrate import METHODS

GGML_BLOCK = 32


@dataclass(frozen=True)
class Format:
    """One way to store a tensor: ``kind`` says how (float, tensor, channel, blocks, ggml)."""

    name: str
    kind: str
    dtype: str
    method: str = "minmax"
    block: int = 0
    #: The matmul suite's variant its matrix products are timed with (None: no kernel to time).
    timed_as: str | None = None


def _catalogue(methods: Sequence[str]) -> dict[str, list[Format]]:
    """``--formats`` names -> the formats each stands for."""
    return {
        "float16": [Format("float16", "float", "float16")],
        "int8": [Format(f"int8 {m}", "tensor", "int8", m, timed_as="dynamic") for m in methods],
        "uint8": [Format(f"uint8 {m}", "tensor", "uint8", m, timed_as="dynamic") for m in methods],
        "int8-channel": [Format("int8 channel", "channel", "int8", timed_as="dynamic")],
        "int4-b32": [Format("int4 b32", "blocks", "int4", block=32, timed_as="int4_b32")],
        "int4-b128": [Format("int4 b128", "blocks", "int4", block=128, timed_as="int4_b128")],
        "Q8_0": [Format("Q8_0", "ggml", "Q8_0", block=GGML_BLOCK, timed_as="Q8_0")],
        "Q4_0": [Format("Q4_0", "ggml", "Q4_0", block=GGML_BLOCK, timed_as="Q4_0")],
    }


FORMATS = tuple(_catalogue(["minmax"]))


def formats(names: Sequence[str] | None = None, methods: Sequence[str] | None = None) -> list[Format]:
    """The formats of ``names`` (default: all of :data:`FORMATS`), per-tensor ones once per calibration method."""
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown calibration method(s) {', '.join(unknown)}; accepted: {', '.join(METHODS)}")
    catalogue = _catalogue(methods)
    names = list(names or FORMATS)
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; accepted: {', '.join(catalogue)}")
    return [f for n in dict.fromkeys(names) for f in catalogue[n]]


def nbytes(fmt: Format, rows: int, cols: int) -> int:
    """Bytes of a (rows, cols) tensor in ``fmt``: values, scales (float32; ggml's float16) and zero points."""
    size = rows * cols
    if fmt.kind == "float":
        return size * np.dtype(fmt.dtype).itemsize
    if fmt.kind == "tensor":
        return size + 4 + 1
    if fmt.kind == "channel":
        return size + rows * (4 + 1)
    if fmt.kind == "blocks":
        return -(-size // 2) + 4 * rows * -(-cols // fmt.block)
    from qbench.ops.ggml import BLOCK_BYTES

    return rows * (cols // GGML_BLOCK) * BLOCK_BYTES[fmt.dtype]


def why_not(fmt: Format, rows: int, cols: int) -> str | None:
    """Why ``fmt`` cannot store a (rows, cols) tensor, or None."""
    if fmt.kind == "ggml" and cols % GGML_BLOCK:
        return f"rows of {cols} values are not a multiple of {fmt.dtype}'s {GGML_BLOCK}-value blocks"
    return None
