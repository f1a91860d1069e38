"""The one-row integer product on a C-ordered (K, N) ``b`` as it lies: no packing, no transpose per call.

On a VNNI path the rows stream four at a time into ``vpdpbusd`` (:mod:`qbench.kernels.gemv`); elsewhere they are
widened to int32, an axpy per row.
"""

from __future__ import annotations

import numpy as np

from qbench.kernels import gemv
from qbench.kernels.isa import choose
from qbench.ops.tuning import use_parallel


def gemv_rows(
    a: np.ndarray, a_zero: int, b: np.ndarray, b_zero: np.ndarray, out: np.ndarray, parallel: bool | None
) -> None:
    """``out[n] = sum_k (a[k] - a_zero)(b[k, n] - b_zero[n])``, int32 wrapping, for 1-D ``a`` and C-ordered 2-D
    ``b`` (uint8 or int8 each), ``b_zero`` int32 (N,)."""
    k, n = b.shape
    par = use_parallel(k * n, parallel, ("matmul_rows", b.dtype))
    isa = choose()
    if isa is None or not isa.vnni:
        gemv.gemv_rows.target(par)(a, np.int32(a_zero), b, b_zero, out)
        return
    low = -128 if a.dtype == np.int8 else 0  # a zero point at the bottom of its type lets a - a_zero reach 255
    sign = -1 if a_zero == low else 1
    two = a_zero != low + 128  # a - a_zero within int8 only for the zero point in the middle of its type
    flip = 0x80 if b.dtype == np.int8 else 0
    run = gemv.quads_kernel(isa).target(par)
    run(a, np.int32(a_zero), np.int32(sign), two, b.view(np.uint8), np.uint8(flip), np.int64(flip), b_zero, out)
