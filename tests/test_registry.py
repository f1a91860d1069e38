"""The case registry: every grid point builds at a small size and passes its check, and a wrong answer fails it."""

import numpy as np
import pytest

from benchmarks.benchmarks import _common
from qbench import cases, ops, peers
from qbench.cases import Buffers

N = 4096  # 64 whole rows for the per-channel cases
POINTS = [(k, d, impl) for k, fam in cases.KERNELS.items() for d in fam.dtypes for impl in fam.impls]


@pytest.mark.parametrize("kernel,dtype,impl", POINTS)
def test_every_grid_point_builds_and_agrees_with_its_reference(kernel, dtype, impl):
    fam = cases.family(kernel)
    try:
        run, data = fam.build(dtype, N, impl, 1, Buffers(seed=N))
        result = run()
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    fam.check(data, impl, result)  # raises on a wrong answer
    # Nothing, or its output (when it does not write into the preallocated one).
    output = sum(o.nbytes for o in cases.operands(kernel, dtype, N) if o.mode == cases.WRITE)
    assert fam.allocates(data, impl) in (0, output)


def _corrupt(result, data):
    """The same answer, one bit off."""
    if isinstance(result, np.ndarray):
        wrong = result.copy()
        wrong.reshape(-1)[:1].view(np.uint8)[0] ^= 1
        return wrong
    return type(result)(result + 1)


@pytest.mark.parametrize(
    "kernel,dtype",
    [
        ("quantize", "uint8"),
        ("quantize_axis", "int8"),
        ("dequantize", "int16"),
        ("dequantize_axis", "uint8"),
        ("sum", "uint8"),
        ("sum", "int32"),
        ("dot", "int8"),
    ],
)
def test_a_wrong_answer_fails_the_check(kernel, dtype):
    fam = cases.family(kernel)
    run, data = fam.build(dtype, N, "qbench", 1, Buffers(seed=N))
    result = run()
    fam.check(data, "qbench", result)
    with pytest.raises(AssertionError):
        fam.check(data, "qbench", _corrupt(result, data))


def test_a_wrong_accumulate_fails_the_check():
    fam = cases.family("accumulate")
    run, data = fam.build("uint8+=uint8", N, "qbench", 1, Buffers(seed=N))
    fam.check(data, "qbench", run())
    data.acc[-1] ^= 1
    with pytest.raises(AssertionError):
        fam.check(data, "qbench", data.acc)
    run, data = fam.build("float32+=uint8", N, "qbench", 1, Buffers(seed=N))
    run()
    run()  # two calls where the check replays one
    with pytest.raises(AssertionError):
        fam.check(data, "qbench", data.acc)


def test_a_wrong_qdot_fails_the_check(monkeypatch):
    fam = cases.family("qdot")
    run, data = fam.build("uint8", N, "qbench", 1, Buffers(seed=N))
    fam.check(data, "qbench", run())
    real = ops.qdot
    monkeypatch.setattr(ops, "qdot", lambda *a, **k: real(*a, **k) * (1 + 2.0**-10))
    with pytest.raises(AssertionError, match="qdot"):
        fam.check(data, "qbench", run())


@pytest.mark.parametrize("comparison", [c.name for c in cases.comparisons()] + list(cases.blocks.comparisons()))
def test_every_comparison_builds_its_pair(comparison):
    c = cases.Comparison.parse(comparison)
    threads = 2 if c.kind == "threads" else 1
    if threads > cases.all_cores():
        pytest.skip("needs two Numba threads")
    try:
        mine, base = _common.prepared_pair(comparison, N, threads)
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    assert mine.nbytes == cases.bytes_moved(c.kernel, c.dtype, N) and mine.threads == threads
    if c.kind == "ceiling":
        assert base.nbytes == cases.bytes_moved(c.kernel, c.dtype, N) or c.against in ("read", "write")
        if c.against in ("read", "write"):  # the probe touches the kernel's working-set bytes
            assert base.nbytes == pytest.approx(cases.footprint(c.kernel, c.dtype, N), abs=4)
    assert _common.side_by_side(mine, base, per_byte=c.kind == "ceiling", rounds=1, timer=lambda p: 1.0) > 0


@pytest.mark.parametrize("op", list(cases.BANDWIDTH_OPS))
def test_bandwidth_probes(op):
    probe = _common.prepare(op, "float32", N, 1, "qbench")
    assert probe.nbytes == N * 4 * len(cases.BANDWIDTH_OPS[op])
    probe.run()


def test_buffers_are_page_placed_and_seeded():
    a = Buffers(seed=1).random("int8", 100_000, 1)
    b = Buffers(seed=1).random("int8", 100_000, 1)
    assert np.array_equal(a, b) and a.ctypes.data % Buffers.PAGE == Buffers.SLOT_OFFSET
    assert a.min() == -128 and a.max() == 127  # the whole range of the type
    # Past the first tile the values repeat it: the array is filled without a temporary of its size.
    assert np.array_equal(a[Buffers.TILE :], a[: a.size - Buffers.TILE])
    with pytest.raises(ValueError, match="no implementation 'cuda'"):
        cases.family("sum").build("uint8", 10, "cuda", 1, Buffers())
    with pytest.raises(ValueError, match="unknown kernel 'fft'"):
        cases.family("fft")


def test_results_name_each_family_by_its_benchmark_class():
    import benchmarks.benchmarks.bench_accumulate as acc
    import benchmarks.benchmarks.bench_blocks as blocks
    import benchmarks.benchmarks.bench_matmul as matmul
    import benchmarks.benchmarks.bench_quantize as quant

    modules = (acc, blocks, matmul, quant)
    classes = {name: getattr(m, name) for m in modules for name in dir(m) if hasattr(getattr(m, name), "kernel")}
    named = {cls.kernel: name for name, cls in classes.items() if cls.kernel}
    assert named == {k: fam.benchmark for k, fam in cases.FAMILIES.items()}
    assert cases.BENCHMARK_KERNELS == {v: k for k, v in named.items()}
    with pytest.raises(TypeError, match="must be named QuantizeAxis"):
        type("PerChannel", (_common._KernelBench,), {"kernel": "quantize_axis"})


# ---- the matmul family, swept by shape ---------------------------------------------------------------------

LAYER = "5x96x40"
#: The block formats run as GEMVs only (M = 1): their points are built at one row.
BLOCK_LAYER = "1x96x40"
LAYER_POINTS = [(v, impl) for v in cases.MATMUL.dtypes for impl in cases.MATMUL.impls]


def _layer(variant: str) -> str:
    return BLOCK_LAYER if variant in cases.matmul.BLOCK_BITS else LAYER


@pytest.mark.parametrize("variant,impl", LAYER_POINTS)
def test_every_layer_point_builds_and_agrees_with_its_reference(variant, impl):
    try:
        run, data = cases.MATMUL.build(variant, _layer(variant), impl, 1, Buffers(seed=1))
        result = run()
    except NotImplementedError as exc:  # NumPy has no int8 matmul; a peer without the variant; peers absent
        pytest.skip(str(exc))
    cases.MATMUL.check(data, impl, result)


@pytest.mark.parametrize("variant", ["float32", "static", "dynamic", "integer", *cases.matmul.BLOCK_BITS])
def test_a_wrong_layer_answer_fails_the_check(variant):
    run, data = cases.MATMUL.build(variant, _layer(variant), "qbench", 1, Buffers(seed=1))
    result = run()
    wrong = np.array(result, copy=True).reshape(-1, 40)
    # One output off by a step (integers) or by 2**-10 of itself (floats: far beyond any float32 bound here).
    row = min(1, wrong.shape[0] - 1)
    wrong[row, 2] += 1 if wrong.dtype.kind in "iu" else wrong[row, 2] * 2.0**-10 + 2.0**-20
    wrong = wrong.reshape(np.shape(result))
    with pytest.raises(AssertionError):
        cases.MATMUL.check(data, "qbench", wrong)


def test_layer_rules_count_operations_and_weight_bytes():
    m, k, n = 5, 96, 40
    assert cases.matmul.dims(LAYER) == (m, k, n) and cases.matmul.ops(LAYER) == 2 * m * k * n
    assert cases.matmul.weight_bytes("static", LAYER) == k * n
    assert cases.matmul.weight_bytes("float32", LAYER) == 4 * k * n
    assert cases.bytes_moved("matmul", "dynamic", LAYER) == 4 * m * k + k * n + 4 * m * n
    # Block formats count their scales: 34 and 18 bytes per 32 weights (ggml), 4 bits + a float32 per 32 (nbits4).
    assert cases.matmul.weight_bytes("Q8_0", LAYER) == k * n // 32 * 34
    assert cases.matmul.weight_bytes("Q4_0", LAYER) == k * n // 32 * 18
    assert cases.matmul.weight_bytes("nbits4", LAYER) == k * n // 2 + k * n // 32 * 4
    with pytest.raises(ValueError, match="MxKxN"):
        cases.matmul.dims("5x96")


@pytest.mark.parametrize("comparison", cases.matmul.COMPARISONS)
@pytest.mark.parametrize("shape", ["1x256x64", "8x256x64"])
def test_every_layer_comparison_builds_or_says_why_not(comparison, shape):
    pair = cases.Comparison.parse(comparison)
    against = pair.against
    gemv = cases.matmul.dims(shape)[0] == 1
    float_nbits = {"nbits4", "nbits8"}  # MatMulNBits with float activations: a GEMV only
    if (pair.dtype in float_nbits or against.split(" ")[-1] in float_nbits) and not gemv:
        with pytest.raises(NotImplementedError, match=r"\(M = 1\)"):
            _common.prepared_layer_pair(comparison, shape, 1)
        return
    if (against == "read" and not gemv) or (against == "peak" and gemv):
        with pytest.raises(NotImplementedError, match="GEMV"):
            _common.prepared_layer_pair(comparison, shape, 1)
        return
    try:
        mine, base, per_work = _common.prepared_layer_pair(comparison, shape, 1)
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    ratio = _common.side_by_side(mine, base, per_byte=per_work, rounds=1, timer=lambda case: 1.0)
    # With equal times the ratio is that of the work each side counts: 1, or weight bytes (operations) over
    # the probe's bytes (the in-cache shape's operations).
    assert ratio == pytest.approx(mine.nbytes / base.nbytes if per_work else 1.0)
    if against == "read":
        assert mine.nbytes == cases.matmul.weight_bytes(cases.Comparison.parse(comparison).dtype, shape) == base.nbytes


def test_numpy_blas_is_held_to_the_thread_budget():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _common.set_threads(1, "numpy")
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("threadpoolctl finds no BLAS behind this NumPy")
    assert all(i["num_threads"] == 1 for i in blas)  # OpenBLAS would otherwise take every core
