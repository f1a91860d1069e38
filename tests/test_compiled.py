"""What the compiler made: packed SIMD in every hot loop, safe threading, the on-disk cache."""

import os
import platform
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qbench.kernels import accumulate as ka
from qbench.kernels import quantize as kq

x86 = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="the assembly checks read x86-64 instructions; other architectures are not checked",
)

f32 = np.float32
N = 4096
X = np.linspace(-3, 3, N, dtype=f32)
U8 = np.arange(N).astype(np.uint8)
I8 = U8.view(np.int8)
ACC = np.zeros(N, f32)

HOT = {
    "quantize uint8": (kq.quantize_tensor, (X, f32(0.1), np.int32(3), np.empty(N, np.uint8))),
    "quantize int8": (kq.quantize_tensor, (X, f32(0.1), np.int32(3), np.empty(N, np.int8))),
    "dequantize uint8": (kq.dequantize_tensor, (U8, f32(0.1), f32(3), ACC)),
    "quantize per-axis": (
        kq.quantize_axis,
        (
            X.reshape(4, 8, -1),
            np.full(8, f32(0.1)),
            np.zeros(8, np.int32),
            np.empty((4, 8, N // 32), np.uint8),
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
}

# A packed (vector) instruction on a full xmm/ymm/zmm register: packed float
# ops end in "ps"/"pd", packed integer ops start with "vp".
PACKED = re.compile(r"^\s+(v\w+p[sd]|vp\w+)\s+[^\n]*%([xyz]mm)\d+", re.MULTILINE)


def widest_register() -> str:
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return "zmm" if " avx512f" in flags else "ymm" if " avx2" in flags else "xmm"


@x86
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", list(HOT))
def test_hot_kernels_use_packed_vector_instructions(name, parallel):
    kern, args = HOT[name]
    asm = kern.asm(*args, parallel=parallel)
    registers = {m.group(2) for m in PACKED.finditer(asm)}
    assert registers, f"{name}: no packed vector instruction in the compiled code"
    want = widest_register()
    # LLVM prefers 256-bit vectors even where AVX-512 exists, so ymm satisfies zmm machines too.
    assert ("ymm" in registers or "zmm" in registers) if want != "xmm" else registers, (name, registers)


@x86
def test_int8_dot_uses_multiply_add_pairs():
    asm = ka.dot_int8.asm(*HOT["dot int8"][1])
    assert re.search(r"\b(vpmaddwd|vpdpwssd|vpdpbusd|vpmaddubsw)\b", asm), "no 8/16-bit multiply-add instruction"


@x86
def test_narrowing_loops_get_vectors_sized_by_their_narrowest_type():
    # Four float32 vectors per 32 uint8 outputs: the loop was vectorized 32 wide.
    asm = kq.quantize_tensor.asm(*HOT["quantize uint8"][1])
    assert len(re.findall(r"\bvdivps\b[^\n]*%ymm", asm)) >= 4
    # Rounding folded into the conversion, saturation done by the packs.
    assert re.search(r"\bvcvtps2dq\b[^\n]*%ymm", asm) and not re.search(r"\bvroundps\b", asm)
    assert re.search(r"\bvpack(ss|us)(dw|wb)\b[^\n]*%ymm", asm)
    # 8-bit sums add in 16-bit lanes (16 per ymm register), not 32-bit ones.
    assert re.search(r"\bvpaddw\b[^\n]*%ymm", ka.sum_lanes.asm(*HOT["sum uint8"][1]))


@x86
def test_wide_vector_option_is_off_again_for_other_numba_code():
    import numba

    kq.quantize_tensor.asm(*HOT["quantize uint8"][1])  # compiles with the option on

    @numba.njit
    def user_quantize(x, out):
        for i in range(x.shape[0]):
            out[i] = np.uint8(min(max(x[i] / f32(0.1), f32(0)), f32(255)))

    user_quantize(X, np.empty(N, np.uint8))
    asm = "\n".join(user_quantize.inspect_asm().values())
    assert len(re.findall(r"\bvdivps\b[^\n]*%ymm", asm)) == 1  # LLVM's default width, untouched


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


THREADS = """
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np, numba, qbench
    x = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)
    p = qbench.calibrate(x)
    want = qbench.reference.quantize(x, p)

    def work(_):
        for _ in range(10):
            assert np.array_equal(qbench.quantize(x, p, parallel=True), want)
            assert int(qbench.sum(want, parallel=True)) == int(want.sum(dtype=np.uint64))
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(16)))
    print("layer", numba.threading_layer())
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_parallel_kernels_from_many_threads_do_not_crash(layer):
    # A separate process: under an unsafe layer a failure aborts the interpreter.
    result = _run(THREADS, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    assert result.returncode == 0, result.stderr[-2000:]
    if layer == "workqueue":
        assert "layer workqueue" in result.stdout  # the lock, not another layer, kept it alive


CACHE = """
    import numpy as np, qbench
    from qbench.kernels import quantize as kq
    x = np.ones(100, np.float32)
    qbench.quantize(x, qbench.QuantParams(0.5, 3, "uint8"), parallel=False)
    print("misses", sum(kq.quantize_tensor.serial.stats.cache_misses.values()),
          "hits", sum(kq.quantize_tensor.serial.stats.cache_hits.values()))
"""


def test_second_process_loads_kernels_from_disk_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = _run(CACHE, **env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "misses 1 hits 0" in first.stdout  # compiled, and written to the cache
    second = _run(CACHE, **env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "misses 0 hits 1" in second.stdout  # loaded, not compiled again
