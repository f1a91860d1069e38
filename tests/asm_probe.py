"""Compile qbench's hot kernels and print their assembly as JSON, without running any of it.

Run as a script in a fresh process. With ``NUMBA_CPU_NAME`` and
``NUMBA_CPU_FEATURES`` set, Numba compiles for that CPU instead of this one,
so one host can read what an AVX2-only and an AVX-512+VNNI CPU would get.
``--parallel`` adds the parallel form of every kernel.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from llvmlite import binding as llvm
from numba import config

from qbench.kernels import accumulate as ka
from qbench.kernels import blockdot, gemm, gemv, isa
from qbench.kernels import blocks as kb
from qbench.kernels import ggml as kg
from qbench.kernels import matmul as km
from qbench.kernels import quantize as kq

f32 = np.float32
N = 4096
X = np.linspace(-3, 3, N, dtype=f32)
U8 = np.arange(N).astype(np.uint8)
I8 = U8.view(np.int8)
ACC = np.zeros(N, f32)
TENS = np.full(8, f32(10))  # the reciprocals of eight scales of 0.1
W16 = U8[: N // 16].astype(np.int16).reshape(1, -1)  # one activation row of K = N / 16, widened
ZB, SUMS, OUT = np.zeros(16, np.int32), np.zeros(1, np.int32), np.zeros((1, 16), np.int32)
# Block formats: 4 rows of 8 blocks (ggml's bytes, or MatMulNBits' packed nibbles), a float16 table, Q8_0 x.
TABLE = np.zeros(1 << 16, f32)
Q4_0_ROWS, Q8_0_ROWS = U8[: 4 * 8 * 18].reshape(4, 8, 18), U8[: 4 * 8 * 34].reshape(4, 8, 34)
XD, XQS, ROWS_OUT = np.ones(8, f32), I8[: 8 * 32].reshape(8, 32), np.zeros(4)
NBITS, NBITS_SCALE = U8[: 4 * 8 * 16].reshape(4, 8, 16), np.ones((4, 8), f32)

HOT = {
    "quantize uint8": (kq.quantize_tensor, (X, f32(0.1), np.int32(3), np.empty(N, np.uint8), None)),
    "quantize int8": (kq.quantize_tensor, (X, f32(0.1), np.int32(3), np.empty(N, np.int8), None)),
    "quantize uint8 by reciprocal": (kq.quantize_tensor, (X, f32(0.1), np.int32(3), np.empty(N, np.uint8), f32(10))),
    "dequantize uint8": (kq.dequantize_tensor, (U8, f32(0.1), f32(3), ACC)),
    "quantize per-axis": (
        kq.quantize_axis,
        (X.reshape(4, 8, -1), np.full(8, f32(0.1)), np.zeros(8, np.int32), np.empty((4, 8, N // 32), np.uint8), None),
    ),
    "quantize per-axis by reciprocal": (
        kq.quantize_axis,
        (
            X.reshape(4, 8, -1),
            np.full(8, f32(0.1)),
            np.zeros(8, np.int32),
            np.empty((4, 8, N // 32), np.uint8),
            f32(10) + X[:8],
        ),
    ),
    "dequantize per-axis": (
        kq.dequantize_axis,
        (U8.reshape(4, 8, -1), np.full(8, f32(0.1)), np.zeros(8, f32), ACC.reshape(4, 8, -1)),
    ),
    "sum uint8": (ka.sum_lanes, (U8, np.uint16(0), np.uint64(0))),
    "sum int8": (ka.sum_lanes, (I8, np.int16(0), np.int64(0))),
    "sum uint16": (ka.sum_lanes, (U8.astype(np.uint16), np.uint32(0), np.uint64(0))),
    "sum float32": (ka.sum_float, (X, f32(0), 4096)),
    "accumulate float32 += uint8": (ka.accumulate_wrap, (ACC, U8, 1)),
    "accumulate uint8 += uint8": (ka.accumulate_wrap, (U8.copy(), U8, 1)),
    "accumulate float32 += float32": (ka.accumulate_wrap, (ACC, X, 1)),
    "dot float32": (ka.dot_float, (X, X, f32(0), 4096)),
    "dot int8": (ka.dot_int8, (I8, I8, 1 << 15)),
    # Weights as rows of K against activations widened to int16, and the float32 twin of the same blocking.
    "matmul int8": (km.dot_rows, (W16, I8.reshape(16, -1), np.int16(0), np.int32(0), ZB, SUMS, OUT, 4)),
    "matmul uint8": (km.dot_rows, (W16, U8.reshape(16, -1), np.int16(0), np.int32(0), ZB, SUMS, OUT, 4)),
    "matmul float32": (
        km.dot_rows,
        (W16.astype(f32), X.reshape(16, -1), f32(0), f32(0), ZB.astype(f32), SUMS.astype(f32), OUT.astype(f32), 4),
    ),
    "matmul int8 peak": (km.dot_peak, (W16[0], I8[: N // 16], np.int16(0), np.int32(0), 2)),
    "widen rows": (
        km.widen_rows,
        (U8.reshape(4, -1), np.zeros(4, np.int16), np.zeros((4, N // 4), np.int16), np.zeros(4, np.int32)),
    ),
    "min max": (km.min_max, (X, f32(0))),
    "ggml q4_0 dot": (kg.q4_0_q8_0_dot_rows, (Q4_0_ROWS, TABLE, XD, XQS, 16, ROWS_OUT)),
    "ggml q8_0 dot": (kg.q8_0_q8_0_dot_rows, (Q8_0_ROWS, TABLE, XD, XQS, 32, ROWS_OUT)),
    "ggml q4_0 dequantize": (
        kg.q4_0_dequantize,
        (Q4_0_ROWS.reshape(-1, 18), TABLE, 16, ACC[: 32 * 32].reshape(32, 32)),
    ),
    "ggml q8_0 dequantize": (
        kg.q8_0_dequantize,
        (Q8_0_ROWS.reshape(-1, 34), TABLE, 32, ACC[: 32 * 32].reshape(32, 32)),
    ),
    "ggml q8_0 quantize": (kg.q8_0_quantize, (X.reshape(-1, 32), 32, ACC[: N // 32], np.empty((N // 32, 32), np.int8))),
    "nbits4 dot": (kb.nbits4_dot_rows, (X[:128], X[128:256], NBITS, NBITS_SCALE, NBITS_SCALE, 16, ROWS_OUT)),
    "blocked quantize int4": (
        kb.quantize_rows,
        (
            X.reshape(4, -1),
            np.ones((4, 32), f32),
            np.zeros((4, 32), np.int32),
            32,
            np.int32(-8),
            np.int32(7),
            I8.copy().reshape(4, -1),
        ),
    ),
    "blocked dequantize int4": (
        kb.dequantize_rows,
        (I8.reshape(4, -1), np.ones((4, 32), f32), np.zeros((4, 32), f32), 32, ACC.reshape(4, -1)),
    ),
    "packed dequantize int4": (
        kb.dequantize_packed_rows,
        (U8.reshape(4, -1), True, np.ones((4, 64), f32), np.zeros((4, 64), f32), 8, np.zeros((4, N // 2), f32)),
    ),
    "pack int4": (kb.pack_int4, (I8, np.empty(N // 2, np.uint8))),
    "unpack int4": (kb.unpack_int4, (U8[: N // 2], True, I8.copy())),
}


def user_quantize_asm() -> str:
    """A user's own ``@njit`` loop, freshly compiled: compiled, never run, since it may target another CPU."""
    import numba

    @numba.njit
    def user_quantize(x, out):
        for i in range(x.shape[0]):
            out[i] = np.uint8(min(max(x[i] / f32(0.1), f32(0)), f32(255)))

    user_quantize.compile("(float32[::1], uint8[::1])")
    return "\n".join(user_quantize.inspect_asm().values())


def target_features() -> set[str]:
    """The features Numba compiles for: ``NUMBA_CPU_FEATURES`` if set, else this CPU's."""
    spec = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
    return {f[1:] for f in spec.split(",") if f.startswith("+")}


def main(parallel: bool) -> None:
    forms = (False, True) if parallel else (False,)
    # The user's loop before any qbench kernel compiles, and after: qbench's LLVM option must not leak.
    asm = {"user quantize before": user_quantize_asm()}
    asm |= {
        f"{name}{' parallel' if p else ''}": k.asm(*args, parallel=p) for name, (k, args) in HOT.items() for p in forms
    }
    asm["user quantize"] = user_quantize_asm()
    path = isa.choose()  # the packed micro-kernel of the path this target gets, as qbench would choose it
    if path is not None:
        rows, groups = 8, 16
        nr = gemm.panel_columns(path)
        asm["matmul packed"] = gemm.micro_kernel(path).asm(
            np.zeros((rows, groups * 4), np.uint8 if path.vnni else np.int16),
            groups * 4,
            rows,
            np.zeros(groups * nr * 4, np.uint8 if path.vnni else np.int16),
            1,
            groups,
            np.zeros((rows, nr), np.int32),
            groups,
        )
        if path.vnni:  # the one-row product streaming a (K, N) matrix's rows in quads
            asm["matmul rows quads"] = gemv.quads_kernel(path).asm(
                U8[:64], np.int32(3), np.int32(1), True, U8.reshape(64, -1), np.uint8(0), np.int64(0), ZB, ZB
            )
        if path.vnni:  # ggml's formats on panels of one row per lane
            for kind in ("Q4_0", "Q8_0"):
                asm[f"ggml {kind.lower()} packed dot"] = blockdot.matmul_kernel(path, kind).asm(
                    U8,
                    8,
                    I8[:512].reshape(2, 256),
                    np.ones((2, 8), f32),
                    np.zeros((2, 8), np.int32),
                    ACC.reshape(2, -1),
                )
    cpu = config.CPU_NAME or llvm.get_host_cpu_name()
    json.dump({"cpu": cpu, "features": sorted(target_features()), "path": path and path.name, "asm": asm}, sys.stdout)


if __name__ == "__main__":
    main("--parallel" in sys.argv[1:])
