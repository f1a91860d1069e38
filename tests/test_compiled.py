"""What the compiler made, for this CPU and for the other kinds of x86 CPU qbench runs on.

Numba compiles for a named CPU when ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``
are set, and reading assembly runs none of it: each target below is compiled
in its own process (``tests/asm_probe.py``) and held to what its features
allow, so an AVX2-only host also checks the AVX-512 code and the reverse.
"""

import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

X86 = platform.machine().lower() in ("x86_64", "amd64")

PROBE = Path(__file__).with_name("asm_probe.py")

#: Compile targets: this CPU (serial and parallel forms), and named CPUs of each ISA level.
TARGETS = {
    "this CPU": {},
    "AVX2 (haswell)": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma,-avx512f,-avx512vnni"},
    "AVX-512 (skylake-avx512)": {
        "NUMBA_CPU_NAME": "skylake-avx512",
        "NUMBA_CPU_FEATURES": "+avx2,+fma,+avx512f,+avx512bw,+avx512vl,-avx512vnni",
    },
    "AVX-512 + VNNI (icelake-server)": {
        "NUMBA_CPU_NAME": "icelake-server",
        "NUMBA_CPU_FEATURES": "+avx2,+fma,+avx512f,+avx512bw,+avx512vl,+avx512vnni",
    },
    "AVX-VNNI without AVX-512 (alderlake)": {
        "NUMBA_CPU_NAME": "alderlake",
        "NUMBA_CPU_FEATURES": "+avx2,+fma,+avxvnni,-avx512f,-avx512bw,-avx512vl,-avx512vnni",
    },
    "AVX-512 + VNNI (znver4)": {
        "NUMBA_CPU_NAME": "znver4",
        "NUMBA_CPU_FEATURES": "+avx2,+fma,+avx512f,+avx512bw,+avx512vl,+avx512vnni",
    },
}

_PROBED: dict[str, dict] = {}


@pytest.fixture(scope="module", params=list(TARGETS))
def target(request) -> dict:
    """The probe's output for one target: ``cpu``, ``features`` and ``asm`` per kernel."""
    if not X86:
        pytest.skip("the assembly checks read x86-64 instructions; other architectures are not checked")
    name = request.param
    if name not in _PROBED:
        args = ["--parallel"] if not TARGETS[name] else []
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
        result = subprocess.run(
            [sys.executable, str(PROBE), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**env, **TARGETS[name]},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        _PROBED[name] = {"name": name, **json.loads(result.stdout)}
    return _PROBED[name]


def isa(target: dict) -> dict[str, bool]:
    """What the target's features allow: 256-bit integer vectors, 512-bit byte/word vectors, VNNI."""
    f = set(target["features"])
    return {
        "avx2": "avx2" in f,
        "avx512": {"avx512f", "avx512bw"} <= f,
        "vnni": "avx512vnni" in f or "avxvnni" in f,
    }


# A packed (vector) instruction on a full xmm/ymm/zmm register: packed float
# ops end in "ps"/"pd", packed integer ops start with "vp".
PACKED = re.compile(r"^\s+(?:\{vex\}\s+)?(v\w+p[sd]|vp\w+)\s+[^\n]*%([xyz]mm)\d+", re.MULTILINE)
LANES32 = {"xmm": 4, "ymm": 8, "zmm": 16}


def widest_vectors(asm: str) -> set[str]:
    return {m.group(2) for m in PACKED.finditer(asm)}


def lanes_per_block(asm: str, op: str) -> int:
    """Most 32-bit lanes that ``op`` covers in one basic block: the vector factor of the main loop."""
    blocks = re.split(r"^\S+:[^\n]*$", asm, flags=re.MULTILINE)
    return max(sum(LANES32[r] for r in re.findall(rf"\b{op}\b[^\n]*%([xyz]mm)", b)) for b in blocks)


def test_probe_compiled_for_the_named_cpu(target):
    want = TARGETS[target["name"]].get("NUMBA_CPU_NAME")
    assert want is None or target["cpu"] == want
    assert "quantize uint8" in target["asm"] and "dot int8" in target["asm"]


def test_hot_kernels_use_the_widest_vectors_the_target_has(target):
    can = isa(target)
    for name, asm in target["asm"].items():
        if name.startswith("user quantize"):
            continue
        registers = widest_vectors(asm)
        assert registers, f"{name}: no packed vector instruction in the compiled code"
        if can["avx2"]:
            # LLVM may prefer 256-bit vectors where AVX-512 exists, so ymm satisfies an AVX-512 target.
            assert registers & {"ymm", "zmm"}, (name, registers)
        if not can["avx512"]:
            assert "zmm" not in registers, f"{name}: zmm code for a target without AVX-512"


def test_int8_dot_uses_the_targets_multiply_add(target):
    int8_products = ("dot int8", "matmul int8", "matmul uint8")
    for name, asm in target["asm"].items():
        if not name.startswith(int8_products):
            continue
        if isa(target)["vnni"]:
            assert re.search(r"\b(vpdpwssd|vpdpbusd)\b", asm), f"{name}: no VNNI multiply-add on a VNNI target"
        else:
            assert re.search(r"\bvpmaddwd\b", asm), f"{name}: no vpmaddwd"
            assert not re.search(r"\bvpdp(wssd|busd)\b", asm), f"{name}: VNNI code for a target without it"


VECTOR = r"[^\n]*%[xyz]mm"


def test_block_dots_unpack_nibbles_and_multiply_add_bytes(target):
    """ggml's and MatMulNBits' products: nibbles split by a vector mask and shift, ggml's integer block dots by
    the target's 8-bit multiply-add (VNNI's only where the target has it), MatMulNBits' by packed FMAs."""
    asm = target["asm"]
    for name in ("ggml q4_0 dot", "nbits4 dot", "ggml q4_0 dequantize", "packed dequantize int4"):
        assert re.search(r"\bvpand[dq]?\b" + VECTOR, asm[name]), f"{name}: no vector mask of the low nibbles"
        # A vector shift of the high nibbles (GFNI targets may use a bit-matrix multiply for it).
        assert re.search(r"\b(vpsrl[wdq]|vpsrlv[dq]|vgf2p8affineqb)\b" + VECTOR, asm[name]), f"{name}: no shift"
    for name in ("ggml q4_0 dot", "ggml q8_0 dot"):
        assert re.search(r"\b(vpmaddwd|vpmaddubsw|vpdpwssd|vpdpbusd)\b" + VECTOR, asm[name]), name
        if not isa(target)["vnni"]:
            assert not re.search(r"\bvpdp(wssd|busd)\b", asm[name]), f"{name}: VNNI code for a target without it"
    assert re.search(r"\bvfmadd\d+ps\b" + VECTOR, asm["nbits4 dot"])


def test_float_matmul_twin_uses_vector_fused_multiply_adds(target):
    # The float32 baseline of the same blocking must be a fair one: packed FMAs, not a serial chain.
    assert re.search(r"\bvfmadd\d+ps\b[^\n]*%[yz]mm", target["asm"]["matmul float32"])


def test_narrowing_loops_get_vectors_sized_by_their_narrowest_type(target):
    if not isa(target)["avx2"]:
        pytest.skip("the lane counts below are those of 256-bit (or wider) vectors")
    for name in ("quantize uint8", "quantize int8", "quantize per-axis"):
        asm = target["asm"][name]
        # At least 32 float32 lanes per loop iteration: a full 32-byte vector of 8-bit output per store,
        # not one store per float vector (LLVM's default sizes the loop by the float32 input).
        assert lanes_per_block(asm, "vdivps") >= 32, (name, lanes_per_block(asm, "vdivps"))
        # Rounding folded into the conversion (round half to even), saturation by packs or saturating moves.
        assert re.search(r"\bvcvtps2dq\b[^\n]*%[yz]mm", asm), name
        assert not re.search(r"\bv(roundps|rndscaleps)\b", asm), name
        assert re.search(r"\b(vpack(ss|us)(dw|wb)|vpmovu?s(db|dw|wb))\b", asm), name
    # 8-bit sums add in 16-bit lanes (vpaddw), not 32-bit ones.
    assert re.search(r"\bvpaddw\b[^\n]*%[yz]mm", target["asm"]["sum uint8"])


def test_quantize_by_reciprocal_multiplies_instead_of_dividing(target):
    # The reciprocal form (chosen where the target has FMA, as every target here does): two fused multiply-adds
    # per vector in place of the division, in the same wide loop that packs its bytes.
    for name in ("quantize uint8 by reciprocal", "quantize per-axis by reciprocal"):
        asm = target["asm"][name]
        assert not re.search(r"\bvdivps\b[^\n]*%[yz]mm", asm), name
        assert re.search(r"\bvfnmadd\d+ps\b[^\n]*%[yz]mm", asm), name
        if isa(target)["avx2"]:
            assert lanes_per_block(asm, r"vfmadd\d+ps") >= 32, (name, lanes_per_block(asm, r"vfmadd\d+ps"))
            assert re.search(r"\b(vpack(ss|us)(dw|wb)|vpmovu?s(db|dw|wb))\b", asm), name


def test_wide_vector_option_is_off_again_for_other_numba_code(target):
    # The same user loop, compiled before and after qbench's kernels in one process, gets the same vectors.
    before, after = target["asm"]["user quantize before"], target["asm"]["user quantize"]
    assert lanes_per_block(after, "vdivps") == lanes_per_block(before, "vdivps") > 0
    if isa(target)["avx2"]:
        # Where LLVM's default width differs from qbench's, the user's loop keeps the default.
        mine = lanes_per_block(target["asm"]["quantize uint8"], "vdivps")
        assert lanes_per_block(after, "vdivps") <= mine


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


def test_kernels_compiled_with_other_llvm_options_are_cached_apart():
    # Numba's disk cache notices a change to a kernel's source, not to the LLVM options qbench compiles it with,
    # nor to the helpers it inlines from other files: the options and a hash of every kernel module's source are
    # part of each compiled form's name, so changing either cannot load code compiled before.
    from qbench.kernels import _jit, blocks, quantize

    wide, block = _jit._options_tag(_jit._WIDE), _jit._options_tag(_jit._ONE_VECTOR)
    assert wide != block
    src = _jit.SOURCES_TAG
    assert blocks.quantize_inner.serial.py_func.__qualname__.endswith(f"serial_{wide}_{src}")
    interleaved = _jit._options_tag(_jit._options(True, quantize.INTERLEAVE))
    assert interleaved not in (wide, block)
    assert quantize.quantize_tensor.serial.py_func.__qualname__.endswith(f"serial_{interleaved}_{src}")
    assert blocks.quantize_rows.parallel.py_func.__qualname__.endswith(f"parallel_{block}_{src}")
    changed = {**_jit._ONE_VECTOR, "-force-vector-width": ("16", "0")}
    assert _jit._options_tag(changed) != block


def test_a_change_to_any_kernel_module_renames_every_kernel(tmp_path, monkeypatch):
    from qbench.kernels import _jit

    copy = tmp_path / "kernels"
    copy.mkdir()
    for source in Path(_jit.__file__).parent.glob("*.py"):
        (copy / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(_jit, "__file__", str(copy / "_jit.py"))
    assert _jit._sources_tag() == _jit.SOURCES_TAG
    division = copy / "division.py"
    division.write_text(division.read_text() + "\n# an edit to an inlined helper's file\n")
    assert _jit._sources_tag() != _jit.SOURCES_TAG


#: The packed micro-kernel's instruction and register per path.
PACKED_PATHS = {
    "avx512-vnni": (r"vpdpbusd", "zmm"),
    "avx-vnni": (r"(\{vex\}\s+)?vpdpbusd", "ymm"),
    "avx512": (r"vpmaddwd", "zmm"),
    "avx2": (r"vpmaddwd", "ymm"),
}


def test_packed_micro_kernel_holds_its_paths_instruction_and_no_spills(target):
    """Each target gets the path its features allow; the tile's loop is its multiply-add on full registers, with
    every accumulator in a register (no stack operand in the loop)."""
    from qbench.kernels.gemm import TILES
    from qbench.kernels.isa import choose

    assert target["path"] == choose(frozenset(target["features"])).name
    op, register = PACKED_PATHS[target["path"]]
    asm = target["asm"]["matmul packed"]
    if target["path"] == "avx-vnni" and "avx512f" not in target["features"]:
        assert re.search(r"\{vex\}\s+vpdpbusd", asm), "AVX-VNNI without AVX-512 needs the VEX form"
    blocks = re.split(r"^\S+:[^\n]*$", asm, flags=re.MULTILINE)
    loop = max(blocks, key=lambda b: len(re.findall(rf"\b{op}\b", b)))
    loop = re.split(r"^\s+j\w+\s", loop, flags=re.MULTILINE)[0]  # up to the branch that closes the loop
    rows, vectors = TILES[target["path"]]
    found = len(re.findall(rf"\b{op}\b[^\n]*%{register}", loop))
    assert found and found % (rows * vectors) == 0, loop  # one per accumulator (LLVM may unroll the loop)
    assert "(%rsp)" not in loop, f"accumulators spilled to the stack:\n{loop}"
    if target["path"] in ("avx512", "avx2"):
        assert not re.search(r"\bvpdp(bu|ws)sd\b", asm), "VNNI code on a path without VNNI"


def test_the_row_streaming_gemv_interleaves_quads_into_vnni(target):
    """On a VNNI path the one-row product over (K, N) rows interleaves bytes and words into quads and multiplies
    them with the path's vpdpbusd on full registers, the sums loaded and stored around it, nothing else spilled."""
    if target["path"] not in ("avx512-vnni", "avx-vnni"):
        assert "matmul rows quads" not in target["asm"]
        return
    op, register = PACKED_PATHS[target["path"]]
    asm = target["asm"]["matmul rows quads"]
    blocks = re.split(r"^\S+:[^\n]*$", asm, flags=re.MULTILINE)
    loop = max(blocks, key=lambda b: len(re.findall(rf"\b{op}\b", b)))
    loop = re.split(r"^\s+j\w+\s", loop, flags=re.MULTILINE)[0]
    assert len(re.findall(rf"\b{op}\b[^\n]*%{register}", loop)) >= 4, loop
    for shuffle in ("vpunpcklbw", "vpunpckhbw", "vpunpcklwd", "vpunpckhwd"):
        assert re.search(rf"\b{shuffle}\b[^\n]*%{register}", loop), f"no {shuffle} in the loop:\n{loop}"
    assert "(%rsp)" not in loop, f"spilled to the stack:\n{loop}"


def test_the_packed_block_dot_multiplies_quads_and_sums_blocks_in_float64(target):
    """On a VNNI path ggml's formats run one weight row per lane: the path's vpdpbusd on full registers (Q4_0's
    nibbles split by a shift and a mask), each block's term converted and added in float64, nothing spilled."""
    if target["path"] not in ("avx512-vnni", "avx-vnni"):
        assert not any("packed dot" in name for name in target["asm"])
        return
    op, register = PACKED_PATHS[target["path"]]
    for kind, quads in (("q4_0", 8), ("q8_0", 8)):
        asm = target["asm"][f"ggml {kind} packed dot"]
        blocks = re.split(r"^\S+:[^\n]*$", asm, flags=re.MULTILINE)
        loop = max(blocks, key=lambda b: len(re.findall(rf"\b{op}\b", b)))
        loop = re.split(r"^\s+j\w+\s", loop, flags=re.MULTILINE)[0]
        assert len(re.findall(rf"\b{op}\b[^\n]*%{register}", loop)) >= quads, loop
        if kind == "q4_0":
            assert re.search(rf"\bvpsrld\b[^\n]*%{register}", loop) and re.search(r"\bvpand", loop), loop
        assert re.search(r"\bvcvtdq2ps\b", loop) and re.search(r"\bvcvtps2pd\b", loop), loop
        assert re.search(r"\bvaddpd\b", loop), loop
        assert "(%rsp)" not in loop, f"spilled to the stack:\n{loop}"
