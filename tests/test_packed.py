"""Packed weights: every kernel path this host can run gives MatMulInteger's exact int32 result, bit for bit with
the unpacked weights, ONNX Runtime and the int64 definition; bad input is refused before anything is packed."""

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qbench
from qbench.kernels.isa import ENV, PATHS, allowed

INT8 = [np.uint8, np.int8]
#: The paths this host's compile target can run (all four on an AVX-512 VNNI host, avx2 alone on an AVX2 one).
RUNNABLE = [p.name for p in allowed()]


def definition(a, b, za, zb):
    """MatMulInteger in int64, wrapped to int32 as ONNX Runtime wraps."""
    exact = (a.astype(np.int64) - np.asarray(za, np.int64)) @ (b.astype(np.int64) - np.asarray(zb, np.int64))
    return ((exact + 2**31) % 2**32 - 2**31).astype(np.int32)


def ints(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("adt", INT8)
@pytest.mark.parametrize("bdt", INT8)
@pytest.mark.parametrize("mkn", [(1, 1, 1), (1, 70, 50), (3, 5, 17), (9, 130, 49), (17, 64, 97), (8, 1031, 144)])
def test_every_path_is_exact_for_every_type_pair_and_tail(path, adt, bdt, mkn):
    """K not a multiple of 4 (or 2), N not a multiple of the panel, M not a multiple of the tile."""
    m, k, n = mkn
    rng = np.random.default_rng(m * k * n)
    a, b = ints(rng, adt, (m, k)), ints(rng, bdt, (k, n))
    za, zb = ints(rng, adt, ()), ints(rng, bdt, n)
    want = definition(a, b, za, zb)
    packed = qbench.pack_weights(b, zb)
    assert packed.isa.name == path and packed.shape == (k, n)
    np.testing.assert_array_equal(qbench.matmul_integer(a, packed, za), want)
    by_rows = qbench.pack_weights(np.ascontiguousarray(b.T), zb, layout="nk")
    np.testing.assert_array_equal(by_rows.data, packed.data)  # one packing, whichever layout it came from
    np.testing.assert_array_equal(qbench.matmul_integer(a, by_rows, za, zb), want)
    np.testing.assert_array_equal(qbench.matmul_integer(a, b, za, zb), want)  # unpacked: packed on the call


def test_extremes_wrap_in_int32_as_the_definition_does(path):
    """255 x -128 over 2**16 terms is -2**31 + 2**23: it fits; twice as many wrap, as ONNX Runtime wraps."""
    for k in (1 << 16, 1 << 17):
        a, b = np.full((2, k), 255, np.uint8), np.full((k, 3), -128, np.int8)
        want = definition(a, b, 0, 0)
        np.testing.assert_array_equal(qbench.matmul_integer(a, qbench.pack_weights(b)), want)
        a8, b8 = np.full((2, k), -128, np.int8), np.full((k, 3), 255, np.uint8)
        np.testing.assert_array_equal(
            qbench.matmul_integer(a8, qbench.pack_weights(b8, 255), -128), definition(a8, b8, -128, 255)
        )


def test_per_row_zero_points_batches_and_vectors(path):
    rng = np.random.default_rng(3)
    b = ints(rng, np.uint8, (40, 33))
    packed = qbench.pack_weights(b, 7)
    a = ints(rng, np.int8, (2, 3, 5, 40))
    za = ints(rng, np.int8, (2, 3, 5, 1))
    np.testing.assert_array_equal(qbench.matmul_integer(a, packed, za), definition(a, b, za, 7))
    za_rows = ints(rng, np.int8, 5)
    np.testing.assert_array_equal(
        qbench.matmul_integer(a[0, 0], packed, za_rows), definition(a[0, 0], b, za_rows[:, None], 7)
    )
    np.testing.assert_array_equal(qbench.matmul_integer(a[0, 0, 0], packed, 3), definition(a[0, 0, 0], b, 3, 7))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    adt=st.sampled_from(INT8),
    bdt=st.sampled_from(INT8),
    m=st.integers(1, 20),
    k=st.integers(1, 70),
    n=st.integers(1, 60),
)
def test_property_packed_equals_the_definition(data, adt, bdt, m, k, n):
    a = data.draw(hnp.arrays(adt, (m, k)))
    b = data.draw(hnp.arrays(bdt, (k, n)))
    lo, hi = np.iinfo(adt).min, np.iinfo(adt).max
    za = data.draw(st.sampled_from([lo, hi, 0]) | st.integers(lo, hi))
    zb = data.draw(hnp.arrays(bdt, n))
    np.testing.assert_array_equal(qbench.matmul_integer(a, qbench.pack_weights(b, zb), za), definition(a, b, za, zb))


@pytest.mark.parametrize("per_column", [False, True])
def test_qlinear_and_dynamic_products_take_packed_weights(path, per_column):
    rng = np.random.default_rng(4)
    a, b = ints(rng, np.uint8, (6, 70)), ints(rng, np.int8, (70, 19))
    pa = qbench.QuantParams(np.float32(0.02), 130, "uint8")
    scale = np.linspace(0.01, 0.03, 19).astype(np.float32) if per_column else np.float32(0.02)
    zb = ints(rng, np.int8, 19) if per_column else 3
    pb = qbench.QuantParams(scale, zb, "int8", axis=-1 if per_column else None)
    py = qbench.QuantParams(np.float32(1.7), 128, "uint8")
    packed = qbench.pack_weights(b, pb.zero_point)
    np.testing.assert_array_equal(qbench.qlinear_matmul(a, pa, packed, pb, py), qbench.qlinear_matmul(a, pa, b, pb, py))
    x = rng.standard_normal((6, 70)).astype(np.float32)
    bias = rng.standard_normal(19).astype(np.float32)
    np.testing.assert_array_equal(
        qbench.dynamic_quantize_matmul(x, packed, pb, bias), qbench.dynamic_quantize_matmul(x, b, pb, bias)
    )


@pytest.mark.parametrize("adt", INT8)
@pytest.mark.parametrize("bdt", INT8)
def test_a_gemv_on_an_unpacked_kn_matrix_streams_its_rows(path, adt, bdt, monkeypatch):
    """No packing and no transpose per call: the one-row product of a C-ordered (K, N) b streams its rows, exactly,
    for activation zero points at both ends and the middle of their type (a - a_zero negated, split in two int8
    halves, or int8 as it is), K not a multiple of 4 and N not a multiple of the vector."""
    from qbench.kernels import matmul as mm_k
    from qbench.ops import matmul as ops_mm

    def refuse(*args, **kwargs):
        raise AssertionError("the GEMV packed or transposed the weights")

    monkeypatch.setattr(ops_mm, "pack_weights", refuse)
    monkeypatch.setattr(mm_k, "dot_rows", refuse)
    lo = np.iinfo(adt).min
    rng = np.random.default_rng(5)
    for k, n in [(1, 1), (3, 70), (8, 64), (301, 2048 + 64 + 33), (1030, 129)]:
        a, b, zb = ints(rng, adt, (1, k)), ints(rng, bdt, (k, n)), ints(rng, bdt, n)
        for za in (lo, lo + 1, lo + 128, lo + 255):
            want = definition(a, b, za, zb)
            np.testing.assert_array_equal(qbench.matmul_integer(a, b, adt(za), zb), want, err_msg=f"{k}x{n} za={za}")
    a, b = np.full((1, 1 << 17), lo + 255, adt), np.full(((1 << 17), 70), np.iinfo(bdt).min, bdt)
    np.testing.assert_array_equal(qbench.matmul_integer(a, b, lo), definition(a, b, lo, 0))  # wraps as ONNX's


def test_the_dynamic_product_on_packed_weights_is_the_definition(path):
    """Quantized straight into the kernel's rows (VNNI paths) or step by step: ONNX Runtime's DynamicQuantizeMatMul,
    bit for bit, for ranges that reach the ends of uint8, an all-zero input and a batch."""
    from qbench import reference as ref

    rng = np.random.default_rng(8)
    b = ints(rng, np.int8, (70, 19))
    pb = qbench.QuantParams(np.linspace(0.01, 0.03, 19).astype(np.float32), 0, "int8", axis=-1)
    packed = qbench.pack_weights(b, 0)
    bias = rng.standard_normal(19).astype(np.float32)
    normal = rng.standard_normal((3, 5, 70)).astype(np.float32)
    for x in (normal, np.abs(normal), -np.abs(normal), np.zeros((2, 70), np.float32), normal[0, 0]):
        want = ref.dynamic_quantize_matmul(x, b, pb, bias)
        np.testing.assert_array_equal(qbench.dynamic_quantize_matmul(x, packed, pb, bias), want)
    with pytest.raises(ValueError, match="NaN or inf"):
        qbench.dynamic_quantize_matmul(np.full((2, 70), np.inf, np.float32), packed, pb)


@pytest.mark.parametrize("adt", INT8)
@pytest.mark.parametrize("bdt", INT8)
def test_packed_matches_onnxruntime(path, adt, bdt):
    peers = pytest.importorskip("qbench.peers")
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(6)
    a, b = ints(rng, adt, (5, 1000)), ints(rng, bdt, (1000, 67))
    za, zb = ints(rng, adt, ()), ints(rng, bdt, 67)
    session = peers.ort_node_session(
        "MatMulInteger", ["a", "b", "za", "zb"], {"a": a}, {"b": b, "za": za, "zb": zb}, np.empty((5, 67), "i4"), 1
    )
    np.testing.assert_array_equal(
        qbench.matmul_integer(a, qbench.pack_weights(b, zb), za), session.run(None, {"a": a})[0]
    )


def test_bad_input_is_refused_with_what_is_accepted(monkeypatch):
    b = np.zeros((8, 4), np.int8)
    with pytest.raises(ValueError, match="layout must be 'kn'"):
        qbench.pack_weights(b, layout="KN")
    with pytest.raises(TypeError, match="uint8 or int8 weights"):
        qbench.pack_weights(b.astype(np.float32))
    with pytest.raises(ValueError, match="one 2-D weight matrix"):
        qbench.pack_weights(b[None])
    with pytest.raises(ValueError, match="one zero point, or one per column"):
        qbench.pack_weights(b, np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="outside the int8 range"):
        qbench.pack_weights(b, 200)
    if not RUNNABLE:
        return
    packed = qbench.pack_weights(b, 1)
    with pytest.raises(ValueError, match="differs from the zero point the weights were packed with"):
        qbench.matmul_integer(np.zeros((2, 8), np.uint8), packed, 0, 2)
    per_column = np.ones(b.shape[1], np.int64)
    qbench.matmul_integer(np.zeros((2, 8), np.uint8), packed, 0, per_column)  # the same, one per column
    per_column[-1] = 2
    with pytest.raises(ValueError, match="differs from the zero point the weights were packed with"):
        qbench.matmul_integer(np.zeros((2, 8), np.uint8), packed, 0, per_column)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        qbench.matmul_integer(np.zeros((2, 9), np.uint8), packed)
    monkeypatch.setenv(ENV, "avx9000")
    with pytest.raises(ValueError, match="names no kernel path; accepted: avx512-vnni"):
        qbench.pack_weights(b)


def test_a_path_the_target_lacks_is_a_python_error_not_an_llvm_abort(monkeypatch):
    from qbench.kernels import isa

    monkeypatch.setenv(ENV, "avx512-vnni")
    with pytest.raises(ValueError, match="lacks"):
        isa.choose(frozenset({"avx2", "fma"}))
    assert [p.name for p in isa.allowed(frozenset({"avx2"}))] == ["avx2"]
    assert [p.name for p in isa.allowed(frozenset({"avx2", "avxvnni"}))] == ["avx-vnni", "avx2"]
    assert [p.name for p in isa.allowed(frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni"}))] == [
        p.name for p in PATHS
    ]


@functools.cache
def _onnx_matmulinteger_cases() -> list:
    node = pytest.importorskip("onnx.backend.test.case.node")
    with warnings.catch_warnings():  # collecting runs every operator's example code, some of which divides by 0
        warnings.simplefilter("ignore")
        return [c for c in node.collect_testcases(None) if c.model.graph.node[0].op_type == "MatMulInteger"]


def test_onnx_backend_matmulinteger_cases_through_packed_weights(path):
    """ONNX's own MatMulInteger cases (files we did not make), their 2-D weights packed."""
    checked = 0
    for case in _onnx_matmulinteger_cases():
        for inputs, outputs in case.data_sets:
            a, b, *zero_points = inputs
            if b.ndim != 2:
                continue
            za = zero_points[0] if zero_points else 0
            zb = zero_points[1] if len(zero_points) > 1 else 0
            got = qbench.matmul_integer(a, qbench.pack_weights(b, zb), za)
            np.testing.assert_array_equal(got, outputs[0], err_msg=case.name)
            checked += 1
    assert checked >= 1
