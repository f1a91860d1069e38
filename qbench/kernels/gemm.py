"""Register-blocked integer matrix products on packed weights: one micro-kernel per ISA path (:mod:`isa`).

The packed weights (:func:`pack_vnni`, :func:`pack_int16`) are panels of ``NR = V x lanes`` columns. Within a
panel each group of K (4 bytes of u8 x s8 for VNNI, 2 int16 values otherwise) is 4 bytes per column, so a group
of a panel is ``NR x 4`` bytes: V vectors, one load each. The activations are rows of the same groups. A tile of
``MR`` rows x ``V`` vectors of int32 accumulators stays in registers for a whole block of K; each group step loads
V vectors of weights once, broadcasts 4 bytes of each activation row and issues ``MR x V`` multiply-adds::

    acc[r][v] += a[m0 + r, group q] . b[panel p, group q, vector v]

Tiles are generated from one template per (path, MR): separate locals, not an array, keep the accumulators in
registers. The driver runs panels in parallel and blocks K so a panel's block of weights stays in cache while
every row tile passes over it; results (int32, wrapping) land in a scratch of whole panels, and
:func:`finish_vnni` applies the zero points and signedness corrections (sums of rows and columns) outside the
inner loop.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from qbench.kernels._jit import kernel
from qbench.kernels.isa import Isa
from qbench.kernels.simd import OPS

#: Tile shape per path: (rows MR, vectors V). AVX-512 has 32 registers: 8 x 3 accumulators, 3 weight vectors and
#: a broadcast (fbgemm's 8 x 48); AVX2 has 16: 4 x 2 (MLAS's 4 x 16), and AVX-VNNI 6 x 2 (MLAS's 6 x 16).
TILES = {"avx512-vnni": (8, 3), "avx512": (8, 3), "avx-vnni": (6, 2), "avx2": (4, 2)}
#: How far ahead of the loads the weights are prefetched, in bytes (0: no prefetch).
PREFETCH_BYTES = 1024
#: Groups of K per block: 128 (512 bytes of each activation row, 24 KiB of an AVX-512 panel: both in L1).
K_BLOCK_GROUPS = 128

_TILE = """
def tile(a, row_bytes, m0, b, base, q0, q1, c, c_row_bytes, col_bytes):
{init}
    for q in range(q0, q1):
        at = base + q * {group_bytes}
{body}
{store}
"""


def _tile_source(rows: int, vectors: int, vector_bytes: int, group_bytes: int, vnni: bool) -> str:
    """The source of one tile: ``rows`` x ``vectors`` accumulators, unrolled."""
    accs = [(r, v) for r in range(rows) for v in range(vectors)]
    out = "c, (m0 + {r}) * c_row_bytes + col_bytes + {v} * " + str(vector_bytes)
    init = ["    if q0 == 0:"]
    init += [f"        acc_{r}_{v} = zeros()" for r, v in accs]
    init += ["    else:"]
    init += [f"        acc_{r}_{v} = load({out.format(r=r, v=v)})" for r, v in accs]
    body = [f"        w_{v} = load(b, at + {v * vector_bytes})" for v in range(vectors)]
    body += [f"        prefetch(b, at + PREFETCH + {v * 64})" for v in range(group_bytes // 64)]
    step = "dpbusd" if vnni else "madd16"
    for r in range(rows):
        body.append(f"        x_{r} = broadcast4(a, (m0 + {r}) * row_bytes + 4 * q)")
        body += [f"        acc_{r}_{v} = {step}(acc_{r}_{v}, x_{r}, w_{v})" for v in range(vectors)]
    store = [f"    store({out.format(r=r, v=v)}, acc_{r}_{v})" for r, v in accs]
    return _TILE.format(init="\n".join(init), body="\n".join(body), store="\n".join(store), group_bytes=group_bytes)


_OPS = ("zeros", "load", "store", "broadcast4", "prefetch", "dpbusd", "madd16")

_DRIVER = """
def gemm(a, row_bytes, m, b, panels, groups, c, k_block):
    c_row_bytes = c.shape[1] * 4
    for p in prange(panels):
        base = p * groups * {group_bytes}
        col_bytes = p * {group_bytes}
        for q0 in range(0, groups, k_block):
            q1 = min(q0 + k_block, groups)
            m0 = 0
            while m0 + {rows} <= m:
                tile_{rows}(a, row_bytes, m0, b, base, q0, q1, c, c_row_bytes, col_bytes)
                m0 += {rows}
{tails}
"""


_SCOPES: dict[str, dict] = {}


@functools.cache
def micro_kernel(isa: Isa):
    """``gemm(a, row_bytes, m, b, panels, groups, c, k_block)`` of one path, compiled serial and parallel.

    ``a``: the activation rows (bytes; ``row_bytes`` apart, whole groups), ``b``: the packed panels, ``c``: an
    int32 scratch of ``m`` rows and ``panels x NR`` columns, filled with the raw sums.
    """
    rows, vectors = TILES[isa.name]
    ops = OPS[isa.bits]
    vector_bytes = isa.bits // 8
    group_bytes = vectors * vector_bytes
    scope = {
        "prange": prange,
        "min": min,
        "__name__": __name__,
        "PREFETCH": PREFETCH_BYTES,
        **{name: getattr(ops, name) for name in _OPS},
    }
    for r in range(1, rows + 1):
        exec(_tile_source(r, vectors, vector_bytes, group_bytes, isa.vnni), scope)  # noqa: S102 - generated tile
        scope[f"tile_{r}"] = numba.njit(inline="always")(scope.pop("tile"))
    tails = "\n".join(
        f"            {'if' if r == 1 else 'elif'} m - m0 == {r}:\n"
        f"                tile_{r}(a, row_bytes, m0, b, base, q0, q1, c, c_row_bytes, col_bytes)"
        for r in range(1, rows)
    )
    exec(_DRIVER.format(group_bytes=group_bytes, rows=rows, tails=tails or "            pass"), scope)  # noqa: S102
    _SCOPES[isa.name] = scope
    driver = scope["gemm"]
    driver.__name__ = driver.__qualname__ = f"gemm_{isa.name.replace('-', '_')}"
    return kernel(driver, cache=False)


_PEAK = """
def peak(a, row_bytes, b, groups, c, reps):
    for _ in range(reps):
        tile_{rows}(a, row_bytes, 0, b, 0, 0, groups, c, c.shape[1] * 4, 0)
"""


@functools.cache
def peak_kernel(isa: Isa):
    """``peak(a, row_bytes, b, groups, c, reps)``: one full tile over one L1-resident panel, ``reps`` times: the
    operations per second the micro-kernel's inner step reaches when nothing waits on memory."""
    micro_kernel(isa)
    rows = TILES[isa.name][0]
    scope = {**_SCOPES[isa.name]}
    exec(_PEAK.format(rows=rows), scope)  # noqa: S102 - generated from the template above
    return numba.njit(scope["peak"])


def panel_columns(isa: Isa) -> int:
    """NR: the columns of one packed panel on this path."""
    return TILES[isa.name][1] * isa.lanes


@kernel
def pack_vnni(b, flip, nr, groups, out, col_sums):
    """Panels of s8 ``b ^ flip`` from a (K, N) ``b`` (``flip`` 0x80 turns uint8 into its s8 offset form), in
    groups of 4 along K, zero-padded; ``col_sums[n]`` the column sums of the s8 values. ``out`` is viewed as
    uint32 words, one per column and group: 4 rows of ``b`` interleaved a word at a time."""
    k_total, n_total = b.shape
    for p in prange((n_total + nr - 1) // nr):
        n0 = p * nr
        cols = min(nr, n_total - n0)
        sums = np.zeros(nr, np.int32)
        for q in range(groups):
            at = (p * groups + q) * nr
            if q * 4 + 4 <= k_total:  # a whole group: four rows, one word per column
                r0, r1, r2, r3 = b[q * 4, n0:], b[q * 4 + 1, n0:], b[q * 4 + 2, n0:], b[q * 4 + 3, n0:]
                for col in range(cols):
                    v0, v1 = np.uint8(r0[col]) ^ flip, np.uint8(r1[col]) ^ flip
                    v2, v3 = np.uint8(r2[col]) ^ flip, np.uint8(r3[col]) ^ flip
                    out[at + col] = np.uint32(v0) | np.uint32(v1) << 8 | np.uint32(v2) << 16 | np.uint32(v3) << 24
                    sums[col] += np.int32(np.int8(v0)) + np.int32(np.int8(v1)) + np.int32(np.int8(v2))
                    sums[col] += np.int32(np.int8(v3))
                out[at + cols : at + nr] = 0
                continue
            word = np.zeros(nr, np.uint32)
            for j in range(k_total - q * 4):
                row = b[q * 4 + j, n0:]
                for col in range(cols):
                    v = np.uint8(np.uint8(row[col]) ^ flip)
                    word[col] |= np.uint32(v) << np.uint32(8 * j)
                    sums[col] += np.int32(np.int8(v))
            out[at : at + nr] = word
        col_sums[n0 : n0 + cols] = sums[:cols]


@kernel
def pack_vnni_rows(w, flip, nr, groups, out, col_sums):
    """:func:`pack_vnni` from the (N, K) ``w`` of a linear layer (``b = w.T``): reads rows of ``w``."""
    n_total, k_total = w.shape
    out[:] = 0
    for p in prange((n_total + nr - 1) // nr):
        for col in range(min(nr, n_total - p * nr)):
            row = w[p * nr + col]
            s = np.int32(0)
            for k in range(k_total):
                v = np.uint8(np.uint8(row[k]) ^ flip)
                out[(p * groups + k // 4) * nr * 4 + col * 4 + k % 4] = v
                s += np.int32(np.int8(v))
            col_sums[p * nr + col] = s


@kernel
def pack_int16(b, zero_point, nr, groups, out):
    """Panels of int16 ``b - zero_point[n]`` from a (K, N) ``b``, in pairs along K, zero-padded."""
    k_total, n_total = b.shape
    out[:] = 0
    for p in prange((n_total + nr - 1) // nr):
        n0 = p * nr
        for k in range(k_total):
            row = b[k]
            at = (p * groups + k // 2) * nr * 2 + k % 2
            for col in range(min(nr, n_total - n0)):
                out[at + col * 2] = np.int16(np.int16(row[n0 + col]) - zero_point[n0 + col])


@kernel
def pack_int16_rows(w, zero_point, nr, groups, out):
    """:func:`pack_int16` from the (N, K) ``w`` of a linear layer: reads rows of ``w``."""
    n_total, k_total = w.shape
    out[:] = 0
    for p in prange((n_total + nr - 1) // nr):
        for col in range(min(nr, n_total - p * nr)):
            n = p * nr + col
            row = w[n]
            for k in range(k_total):
                out[(p * groups + k // 2) * nr * 2 + col * 2 + k % 2] = np.int16(np.int16(row[k]) - zero_point[n])


@kernel
def rows_vnni(a, flip, out, sums):
    """Activation rows as u8 ``a ^ flip`` (``flip`` 0x80 turns int8 into its u8 offset form), zero-padded to
    ``out``'s width; ``sums[m]`` the row sums of the u8 values."""
    for m in prange(a.shape[0]):
        row, dst = a[m], out[m]
        s = np.int32(0)
        for k in range(row.shape[0]):
            v = np.uint8(np.uint8(row[k]) ^ flip)
            dst[k] = v
            s += np.int32(v)
        for k in range(row.shape[0], dst.shape[0]):
            dst[k] = 0
        sums[m] = s


@kernel
def rows_int16(a, zero_point, out):
    """Activation rows as int16 ``a - zero_point[m]``, zero-padded to ``out``'s width."""
    for m in prange(a.shape[0]):
        row, dst = a[m], out[m]
        zp = zero_point[m]
        for k in range(row.shape[0]):
            dst[k] = np.int16(np.int16(row[k]) - zp)
        for k in range(row.shape[0], dst.shape[0]):
            dst[k] = 0


@kernel
def finish_vnni(c, row_sums, a_zero, col_sums, b_zero, k, out):
    """``out = c - b_zero[n] row_sums[m] - a_zero[m] col_sums[n] + k a_zero[m] b_zero[n]``, wrapped to int32:
    gemmlowp's identity for ``sum (a' - a_zero)(b' - b_zero)`` from the raw sums ``c`` of the offset operands."""
    for m in prange(out.shape[0]):
        src, dst = c[m], out[m]
        rs, za = np.int64(row_sums[m]), np.int64(a_zero[m])
        for n in range(dst.shape[0]):
            zb = np.int64(b_zero[n])
            dst[n] = np.int32(np.int64(src[n]) - zb * rs - za * np.int64(col_sums[n]) + k * za * zb)


@kernel
def finish_int16(c, out):
    """The int16 path's raw sums are the result: the zero points were taken out of both operands."""
    for m in prange(out.shape[0]):
        src, dst = c[m], out[m]
        for n in range(dst.shape[0]):
            dst[n] = src[n]


#: Columns per chunk of the unpacked GEMV: a chunk's int32 sums (8 KiB) stay in L1 while the rows pass.
GEMV_CHUNK = 2048


@kernel
def gemv_rows(a, a_zero, b, b_zero, out):
    """``out[n] = sum_k (a[k] - a_zero)(b[k, n] - b_zero[n])`` for a (K, N) ``b`` as it lies: the rows of ``b``
    stream once (an axpy per row, on a chunk of columns at a time), no transpose."""
    k_total, n_total = b.shape
    a_sum = np.int32(0)
    for k in range(k_total):
        a_sum += np.int32(np.int32(a[k]) - a_zero)
    for j in prange((n_total + GEMV_CHUNK - 1) // GEMV_CHUNK):
        n0 = j * GEMV_CHUNK
        width = min(GEMV_CHUNK, n_total - n0)
        acc = np.zeros(GEMV_CHUNK, np.int32)
        whole = k_total - k_total % 4
        for k in range(0, whole, 4):  # four rows a pass: a quarter of the passes over the sums
            a0, a1 = np.int32(np.int32(a[k]) - a_zero), np.int32(np.int32(a[k + 1]) - a_zero)
            a2, a3 = np.int32(np.int32(a[k + 2]) - a_zero), np.int32(np.int32(a[k + 3]) - a_zero)
            r0, r1, r2, r3 = b[k, n0:], b[k + 1, n0:], b[k + 2, n0:], b[k + 3, n0:]
            for i in range(width):
                acc[i] += a0 * np.int32(r0[i]) + a1 * np.int32(r1[i]) + a2 * np.int32(r2[i]) + a3 * np.int32(r3[i])
        for k in range(whole, k_total):
            ak = np.int32(np.int32(a[k]) - a_zero)
            row = b[k, n0:]
            for i in range(width):
                acc[i] += ak * np.int32(row[i])
        for i in range(width):
            out[n0 + i] = acc[i] - np.int32(b_zero[n0 + i]) * a_sum
