"""Weights packed once for this machine's integer matrix kernel, as every runtime packs its constant weights.

:func:`pack_weights` reads ``b`` once, in the layout a caller has it (``"kn"``: ONNX MatMulInteger's (K, N);
``"nk"``: a linear layer's (N, K) ``W``), and lays it out in the panels the micro-kernel of this CPU's path reads
(:mod:`qbench.kernels.gemm`). :func:`packed_product` is the exact int32 ``sum_k (a - za)(b - zb)`` on them.

How the zero points and signedness are mapped (VNNI multiplies u8 by s8): activations ``a' = a + oa`` (u8, oa =
128 for int8), weights ``b' = b - ob`` (s8, ob = 128 for uint8), so ``(a - za)(b - zb) = (a' - za')(b' - zb')``
with ``za' = za + oa``, ``zb' = zb - ob``; gemmlowp's identity takes both out afterwards with the row and column
sums. The int16 paths (no VNNI) take the zero points out of both operands before multiplying.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from qbench.kernels import division, gemm
from qbench.kernels.isa import Isa, choose
from qbench.ops.params import QUANT_DTYPES
from qbench.ops.tuning import use_parallel

INT8_TYPES = (np.dtype(np.uint8), np.dtype(np.int8))
LAYOUTS = ("kn", "nk")


@dataclass(frozen=True, eq=False)
class PackedWeights:
    """A (K, N) weight matrix packed for one kernel path; pass it wherever the matrix products take ``b``."""

    isa: Isa
    k: int
    n: int
    dtype: np.dtype  # the weights' own type (uint8 or int8)
    zero_point: np.ndarray  # int32, one per column (a per-tensor one repeated)
    data: np.ndarray  # the panels
    col_sums: np.ndarray | None  # int32 sums of the s8 columns (VNNI paths), else None
    layout: str  # how the caller handed them in

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N), as ONNX's MatMulInteger takes ``b``."""
        return (self.k, self.n)

    @property
    def nbytes(self) -> int:
        """Bytes of the packed form (panels padded to whole groups and panels, and the column sums)."""
        return self.data.nbytes + (0 if self.col_sums is None else self.col_sums.nbytes)

    @functools.cached_property
    def offset_zero_points(self) -> np.ndarray:
        """The zero points in the s8 form the VNNI panels hold (``zb - 128`` for uint8 weights), as int64."""
        return self.zero_point.astype(np.int64) - (128 if self.dtype == np.uint8 else 0)

    @functools.cached_property
    def stand_in(self) -> np.ndarray:
        """A zero-cost array of the weights' shape and dtype, for checks that read only those."""
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)

    @functools.cached_property
    def scalar_zero_point(self) -> int | None:
        """The one zero point of every column, or None where they differ."""
        first = int(self.zero_point[0]) if self.n else 0
        return first if np.all(self.zero_point == first) else None

    @property
    def groups(self) -> int:
        return -(-self.k // self.isa.k_step)

    @property
    def panels(self) -> int:
        return -(-self.n // gemm.panel_columns(self.isa))

    def __repr__(self) -> str:
        return (
            f"PackedWeights(K={self.k}, N={self.n}, {self.dtype.name}, path {self.isa.name}, "
            f"{self.nbytes:,} bytes, from layout {self.layout!r})"
        )


def _path() -> Isa:
    isa = choose()
    if isa is None:
        raise RuntimeError("pack_weights needs an x86-64 CPU with AVX2 or later; this one has no packed-kernel path")
    return isa


def pack_weights(b: Any, b_zero_point: Any = 0, *, layout: str = "kn", parallel: bool | None = None) -> PackedWeights:
    """Pack 8-bit weights once for this machine's kernel: (K, N) ``b`` (``layout="kn"``) or (N, K) ``W``
    (``"nk"``), uint8 or int8; ``b_zero_point`` a scalar or one per output column (N). The products give the
    same int32 results from it, bit for bit, as from ``b`` itself."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'kn' ((K, N), as MatMulInteger takes b) or 'nk' ((N, K)); got {layout!r}")
    arr = np.asarray(b)
    if arr.dtype not in INT8_TYPES:
        raise TypeError(f"pack_weights expects uint8 or int8 weights; got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"pack_weights takes one 2-D weight matrix; got shape {arr.shape}")
    k, n = arr.shape if layout == "kn" else arr.shape[::-1]
    zero_point = column_zero_points(b_zero_point, arr.dtype, n)
    isa = _path()
    nr = gemm.panel_columns(isa)
    groups, panels = -(-k // isa.k_step), -(-n // nr)
    par = use_parallel(arr.nbytes, parallel, ("pack_weights",))
    if isa.vnni:
        data = np.empty(panels * groups * nr * 4, np.uint8)
        col_sums = np.zeros(n, np.int32)
        flip = np.uint8(0x80 if arr.dtype == np.uint8 else 0)
        if layout == "kn":
            gemm.pack_vnni.target(par)(arr, flip, nr, groups, data.view(np.uint32), col_sums)
        else:
            gemm.pack_vnni_rows.target(par)(arr, flip, nr, groups, data, col_sums)
    else:
        data, col_sums = np.empty(panels * groups * nr * 2, np.int16), None
        pack = gemm.pack_int16 if layout == "kn" else gemm.pack_int16_rows
        pack.target(par)(arr, zero_point, nr, groups, data)
    return PackedWeights(isa, k, n, arr.dtype, zero_point, data, col_sums, layout)


def column_zero_points(zp: Any, dtype: np.dtype, n: int) -> np.ndarray:
    """A weight zero point as int32, one per column: a scalar (or 1-element array) repeated, or N of them."""
    lo, hi = QUANT_DTYPES[np.dtype(dtype)]
    if isinstance(zp, (int, np.integer)) and not isinstance(zp, bool) and lo <= zp <= hi:  # the common case, cheap
        return np.full(n, zp, np.int32)
    arr = np.asarray(zp)
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise TypeError(f"b_zero_point must be an integer or integer array; got {zp!r}")
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"b_zero_point is outside the {np.dtype(dtype).name} range [{lo}, {hi}]")
    if arr.size == 1:
        return np.full(n, int(arr.reshape(())), np.int32)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"b_zero_point of shape {arr.shape}: packed weights take one zero point, or one per column ({n})"
        )
    return arr.astype(np.int32)


def _tiled_rows(m: int, w: PackedWeights) -> np.ndarray:
    """Room for ``m`` activation rows in the micro-kernel's layout (:func:`qbench.kernels.gemm.place`): one uint32
    word per row and group, rows padded to whole tiles."""
    tile_rows = gemm.TILES[w.isa.name][0]
    return np.empty(-(-m // tile_rows) * tile_rows * w.groups, np.uint32)


def _raw_sums(rows: np.ndarray, m: int, w: PackedWeights, par: bool) -> np.ndarray:
    """The micro-kernel's int32 sums of the prepared activation ``rows`` with the panels, whole panels wide."""
    isa = w.isa
    scratch = np.empty((m, w.panels * gemm.panel_columns(isa)), np.int32)
    k_block = w.groups if m == 1 else gemm.K_BLOCK_GROUPS
    gemm.micro_kernel(isa).target(par)(rows, w.groups * 4, m, w.data, w.panels, w.groups, scratch, k_block)
    return scratch


def packed_product(a: np.ndarray, a_zero: np.ndarray, w: PackedWeights, parallel: bool | None) -> np.ndarray:
    """int32 (M, N) ``sum_k (a - a_zero[m])(b - zb[n])`` for 2-D uint8/int8 ``a`` (M, K), ``a_zero`` int (M,)."""
    m, k = a.shape
    isa = w.isa
    out = np.empty((m, w.n), np.int32)
    if m == 0 or w.n == 0:
        return out
    if k == 0:
        out[...] = 0
        return out
    par = use_parallel(m * k * w.n, parallel, ("matmul_packed", w.dtype))
    rows, tile_rows = _tiled_rows(m, w), gemm.TILES[isa.name][0]
    if isa.vnni:
        sums = np.empty(m, np.int32)
        gemm.rows_vnni.target(par)(a, np.uint8(0x80 if a.dtype == np.int8 else 0), tile_rows, rows, sums)
        za = a_zero.astype(np.int64) + (128 if a.dtype == np.int8 else 0)
        gemm.finish_vnni.target(par)(_raw_sums(rows, m, w, par), sums, za, w.col_sums, w.offset_zero_points, k, out)
    else:
        gemm.rows_int16.target(par)(a, a_zero.astype(np.int16), tile_rows, rows)
        gemm.finish_int16.target(par)(_raw_sums(rows, m, w, par), out)
    return out


def packed_dynamic(
    x: np.ndarray, w: PackedWeights, b_scale: np.ndarray, bias: np.ndarray, parallel: bool | None
) -> np.ndarray:
    """DynamicQuantizeMatMul of float32 rows ``x`` (M, K) on packed weights of a VNNI path, in three calls: ``x``
    quantized straight into the kernel's rows (:func:`qbench.kernels.gemm.dynamic_rows`), the micro-kernel, and
    the pass that corrects its sums and scales them. The same result as quantize, product and scale one by one."""
    m, k = x.shape
    out = np.empty((m, w.n), np.float32)
    if out.size == 0:
        return out
    par = use_parallel(m * k * w.n, parallel, ("matmul_packed", w.dtype))
    rows, sums = _tiled_rows(m, w), np.empty(m, np.int32)
    dynamic = gemm.dynamic_rows.target(par)
    scale, zero_point = dynamic(x, division.METHOD == "divide", gemm.TILES[w.isa.name][0], rows, sums)
    if np.isnan(scale):
        raise ValueError("dynamic_quantize_matmul needs finite input: x holds NaN or inf, which have no range")
    scales = np.float32(scale) * b_scale
    raw = _raw_sums(rows, m, w, par)
    gemm.finish_scaled_vnni.target(par)(raw, sums, zero_point, w.col_sums, w.offset_zero_points, k, scales, bias, out)
    return out
