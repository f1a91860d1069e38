"""Quantized matrix multiply: bit for bit against the ONNX definitions (qbench.reference), ONNX Runtime and
ONNX's own backend test cases; the overflow extremes; clear errors for bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qbench
from qbench import reference as ref
from qbench.ops.params import QuantParams

INT8 = (np.uint8, np.int8)


def ints(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@st.composite
def integer_cases(draw):
    """Operands of any 8-bit types with NumPy matmul shapes (1-D, batch broadcast) and per-row/column zero points."""
    adt, bdt = draw(st.sampled_from(INT8)), draw(st.sampled_from(INT8))
    m, k, n = draw(st.integers(1, 9)), draw(st.integers(0, 70)), draw(st.integers(1, 40))
    batch_a, batch_b = draw(st.sampled_from([((), ()), ((3,), ()), ((2, 1), (4,)), ((1,), (3,))]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a_shape = (k,) if draw(st.booleans()) and not batch_a else (*batch_a, m, k)
    b_shape = (k,) if draw(st.booleans()) and not batch_b else (*batch_b, k, n)
    za = ints(rng, adt, m) if len(a_shape) == 2 and draw(st.booleans()) else ints(rng, adt, ())
    zb = ints(rng, bdt, n) if len(b_shape) >= 2 and draw(st.booleans()) else ints(rng, bdt, ())
    return ints(rng, adt, a_shape), ints(rng, bdt, b_shape), za, zb


@settings(max_examples=150, deadline=None)
@given(integer_cases(), st.sampled_from([False, True]))
def test_matmul_integer_is_the_definition(case, parallel):
    a, b, za, zb = case
    got = qbench.matmul_integer(a, b, za, zb, parallel=parallel)
    want = ref.matmul_integer(a, b, za, zb)
    assert got.dtype == np.int32 and got.shape == np.matmul(a.astype(np.int64), b.astype(np.int64)).shape
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_reads_strided_and_transposed_operands():
    rng = np.random.default_rng(0)
    a = ints(rng, np.uint8, (12, 80))[::2, ::3]
    w = ints(rng, np.int8, (40, 27))  # (N, K) rows, as a linear layer stores them: b = w.T is used in place
    for b in (w.T, ints(rng, np.int8, (54, 40))[::2]):
        np.testing.assert_array_equal(qbench.matmul_integer(a, b, 7, 3), ref.matmul_integer(a, b, 7, 3))


@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 0, 3), (2, 5, 0)])
def test_matmul_integer_of_empty_operands(shape):
    m, k, n = shape
    a, b = np.zeros((m, k), np.uint8), np.ones((k, n), np.int8)
    got = qbench.matmul_integer(a, b, 3, 0)
    assert got.shape == (m, n) and not got.any()  # an empty sum is 0, whatever the zero points


@pytest.mark.parametrize(
    "adt, av, bdt, bv",
    [(np.uint8, 255, np.int8, -128), (np.int8, -128, np.int8, -128), (np.uint8, 255, np.uint8, 255)],
)
def test_extreme_products_over_long_k_are_exact(adt, av, bdt, bv):
    # The extreme of each type pair at the longest K whose sum still fits int32: no 16-bit saturation anywhere.
    k = 1 << 16 if av * bv < 0 else (2**31 - 1) // (av * bv)
    a, b = np.full((2, k), av, adt), np.full((k, 3), bv, bdt)
    got = qbench.matmul_integer(a, b)
    assert np.all(got == av * bv * k) and -(2**31) <= av * bv * k < 2**31
    # With zero points the raw products are larger than the result; the int32 wrap of the corrections cancels.
    za, zb = (0, 127) if adt is np.uint8 else (-128, 127)
    got = qbench.matmul_integer(a[:, :1000], b[:1000], za, zb)
    assert np.all(got == (av - za) * (bv - zb) * 1000)


def test_sums_beyond_int32_wrap_as_onnx_runtime_does():
    k = 1 << 16
    got = qbench.matmul_integer(np.full((1, k), 255, np.uint8), np.full((k, 1), 255, np.uint8))
    assert int(got[0, 0]) == (255 * 255 * k + 2**31) % 2**32 - 2**31


@pytest.mark.parametrize(
    "a, b, kwargs, error, match",
    [
        (np.ones((2, 3), np.uint8), np.ones((4, 2), np.uint8), {}, ValueError, "inner dimensions differ"),
        (np.ones((2, 2, 3), np.uint8), np.ones((3, 3, 2), np.uint8), {}, ValueError, "do not broadcast"),
        (np.ones((2, 3), np.float32), np.ones((3, 2), np.uint8), {}, TypeError, "uint8 or int8"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int16), {}, TypeError, "uint8 or int8"),
        (np.uint8(3), np.ones((3, 2), np.uint8), {}, ValueError, "scalar"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"a_zero_point": 256}, ValueError, "range"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"b_zero_point": -129}, ValueError, "range"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"a_zero_point": [1, 2, 3]}, ValueError, "one per"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"b_zero_point": [1, 2, 3]}, ValueError, "one per"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"a_zero_point": 1.5}, TypeError, "integer"),
        (np.ones((2, 3), np.uint8), np.ones((3, 2), np.int8), {"b_zero_point": np.ones((2, 2))}, TypeError, "integer"),
        (
            np.ones((2, 3), np.uint8),
            np.ones((3, 2), np.int8),
            {"b_zero_point": np.ones((3, 3), int)},
            ValueError,
            "broadcast",
        ),
    ],
)
def test_matmul_integer_bad_input(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        qbench.matmul_integer(a, b, **kwargs)


# ---- QLinearMatMul, DynamicQuantizeLinear, DynamicQuantizeMatMul against the definitions -----------------


def _qlinear_case(rng, per_column, y_scale):
    a, b = ints(rng, np.uint8, (6, 300)), ints(rng, np.int8, (300, 17))
    pa = QuantParams(np.float32(0.02), 130, np.uint8)
    if per_column:
        pb = QuantParams(rng.uniform(1e-3, 1e-2, 17).astype(np.float32), ints(rng, np.int8, 17), np.int8, axis=1)
    else:
        pb = QuantParams(np.float32(0.004), -3, np.int8)
    return a, pa, b, pb, QuantParams(np.float32(y_scale), 128, np.uint8)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("y_scale", [1.7, 0.05])  # 0.05 saturates many outputs
def test_qlinear_matmul_is_the_definition(per_column, y_scale, parallel):
    case = _qlinear_case(np.random.default_rng(1), per_column, y_scale)
    got = qbench.qlinear_matmul(*case, parallel=parallel)
    np.testing.assert_array_equal(got, ref.qlinear_matmul(*case))
    assert got.dtype == np.uint8
    if y_scale < 0.1:
        assert np.count_nonzero((got == 0) | (got == 255)) > 10  # the saturating case saturates


def test_qlinear_matmul_rounds_ties_to_even():
    # acc = 1 * (1 .. 8) times a multiplier of 0.5: halves at odd acc, rounded to the even neighbour.
    a = np.ones((1, 1), np.uint8)
    b = np.arange(1, 9, dtype=np.uint8).reshape(1, 8)
    one = QuantParams(1.0, 0, np.uint8)
    got = qbench.qlinear_matmul(a, one, b, one, QuantParams(2.0, 0, np.uint8))
    np.testing.assert_array_equal(got[0], [0, 1, 2, 2, 2, 3, 4, 4])


@pytest.mark.parametrize("parallel", [False, True])
def test_dynamic_quantize_linear_is_the_definition(parallel):
    rng = np.random.default_rng(2)
    for x in (
        rng.standard_normal((64, 33)).astype(np.float32) * 3,
        rng.uniform(0.1, 1, 100).astype(np.float32),  # all positive: min widened to 0
        -rng.uniform(0.1, 1, 100).astype(np.float32),  # all negative: max widened to 0, zero point 255
        np.array([-1.0, 0.0, 1.0, 254.0], np.float32),  # scale exactly 1: x / scale ties nowhere, exact grid
    ):
        q, p = qbench.dynamic_quantize_linear(x, parallel=parallel)
        q_ref, p_ref = ref.dynamic_quantize_linear(x)
        assert p == p_ref and p.dtype == np.uint8 and p.axis is None
        np.testing.assert_array_equal(q, q_ref)
        np.testing.assert_array_equal(q, ref.quantize(x, p))


@pytest.mark.parametrize("x", [np.zeros((4, 4), np.float32), np.zeros(0, np.float32)])
def test_dynamic_quantize_linear_of_no_range(x):
    q, p = qbench.dynamic_quantize_linear(x)
    assert p == QuantParams(1.0, 0, np.uint8) and q.shape == x.shape and not q.any()


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dynamic_quantize_linear_refuses_non_finite_input(bad, parallel):
    x = np.ones(100_000, np.float32)
    x[37_001] = bad
    with pytest.raises(ValueError, match="finite"):
        qbench.dynamic_quantize_linear(x, parallel=parallel)
    with pytest.raises(TypeError, match="float32"):
        qbench.dynamic_quantize_linear(x.astype(np.float64))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("bdt", INT8)
def test_dynamic_quantize_matmul_is_the_definition(per_column, bdt, parallel):
    rng = np.random.default_rng(3)
    x, b = rng.standard_normal((2, 5, 96)).astype(np.float32), ints(rng, bdt, (96, 21))
    if per_column:
        pb = QuantParams(rng.uniform(1e-3, 1e-2, 21).astype(np.float32), ints(rng, bdt, 21), bdt, axis=-1)
    else:
        pb = QuantParams(np.float32(0.003), int(ints(rng, bdt, ())), bdt)
    bias = rng.standard_normal(21).astype(np.float32)
    for with_bias in (None, bias):
        got = qbench.dynamic_quantize_matmul(x, b, pb, with_bias, parallel=parallel)
        np.testing.assert_array_equal(got, ref.dynamic_quantize_matmul(x, b, pb, with_bias))
        assert got.dtype == np.float32 and got.shape == (2, 5, 21)


def test_quantized_layers_bad_input():
    rng = np.random.default_rng(4)
    x, b = rng.standard_normal((3, 8)).astype(np.float32), ints(rng, np.int8, (8, 4))
    pb = QuantParams(0.01, 0, np.int8)
    with pytest.raises(ValueError, match="b has K = 8"):
        qbench.dynamic_quantize_matmul(x[:, :7], b, pb)
    with pytest.raises(ValueError, match="2-D weights"):
        qbench.dynamic_quantize_matmul(x, b[None], pb)
    with pytest.raises(TypeError, match="for uint8 but the operand is int8"):
        qbench.dynamic_quantize_matmul(x, b, QuantParams(0.01, 0, np.uint8))
    with pytest.raises(ValueError, match="per-column entries"):
        qbench.dynamic_quantize_matmul(x, b, QuantParams(np.ones(3), np.zeros(3, int), np.int8, axis=1))
    with pytest.raises(ValueError, match="per tensor"):
        qbench.dynamic_quantize_matmul(x, b, QuantParams(np.ones(8), np.zeros(8, int), np.int8, axis=0))
    with pytest.raises(ValueError, match="bias must have shape"):
        qbench.dynamic_quantize_matmul(x, b, pb, np.zeros(5, np.float32))
    qa = ints(rng, np.uint8, (3, 8))
    pa = QuantParams(0.1, 3, np.uint8)
    with pytest.raises(ValueError, match="per tensor"):
        qbench.qlinear_matmul(qa, QuantParams(np.ones(3), np.zeros(3, int), np.uint8, axis=0), b, pb, pa)
    with pytest.raises(TypeError, match="y_params"):
        qbench.qlinear_matmul(qa, pa, b, pb, QuantParams(0.1, 3, np.uint16))
    with pytest.raises(TypeError, match="QuantParams"):
        qbench.qlinear_matmul(qa, 0.1, b, pb, pa)


# ---- ONNX: the operators' own conformance cases, and ONNX Runtime -----------------------------------------


def _via_qbench(op, inputs):
    """An ONNX node's inputs mapped onto qbench's API, with its outputs in ONNX's order."""
    if op == "MatMulInteger":
        return [qbench.matmul_integer(*inputs)]
    if op == "DynamicQuantizeLinear":
        q, p = qbench.dynamic_quantize_linear(inputs[0])
        return [q, np.float32(p.scale), p.zero_point]
    a, sa, za, b, sb, zb, sy, zy = inputs

    def params(s, z):  # as the case stores them: scalars, or 1-element 1-D tensors (per tensor all the same)
        return QuantParams(np.asarray(s, np.float32), np.asarray(z), z.dtype)

    return [qbench.qlinear_matmul(a, params(sa, za), b, params(sb, zb), params(sy, zy))]


def onnx_cases():
    node = pytest.importorskip("onnx.backend.test.case.node")
    ops = ("MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear")
    with warnings.catch_warnings():  # collecting runs every operator's example code, some of which divides by 0
        warnings.simplefilter("ignore")
        found = [c for c in node.collect_testcases(None) if c.model.graph.node[0].op_type in ops]
    assert len(found) >= 10, [c.name for c in found]  # the cases exist: this test cannot pass by finding none
    return found


def test_onnx_backend_cases_pass_through_the_api():
    checked = []
    for case in onnx_cases():
        op = case.model.graph.node[0].op_type
        for inputs, outputs in case.data_sets:
            if any(np.asarray(i).dtype == np.float16 for i in inputs):
                continue  # float16 scales: qbench's parameters are float32 (the float32 twins are checked)
            got = _via_qbench(op, inputs)
            for g, want in zip(got, outputs, strict=True):
                np.testing.assert_array_equal(np.asarray(g), want, err_msg=case.name)
            checked.append(case.name)
    assert {"test_matmulinteger", "test_qlinearmatmul_3D_int8_float32", "test_dynamicquantizelinear"} <= set(checked)


def _ort(op, names, feeds, constants, out, domain=""):
    peers = pytest.importorskip("qbench.peers")
    pytest.importorskip("onnxruntime")
    session = peers.ort_node_session(op, names, feeds, constants, out, 1, domain=domain)
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("adt", INT8)
@pytest.mark.parametrize("bdt", INT8)
def test_matmul_integer_matches_onnxruntime(adt, bdt):
    rng = np.random.default_rng(5)
    a, b = ints(rng, adt, (5, 1000)), ints(rng, bdt, (1000, 67))
    za, zb = ints(rng, adt, ()), ints(rng, bdt, 67)  # ONNX Runtime: a scalar a zero point, b's per column
    got = _ort("MatMulInteger", ["a", "b", "za", "zb"], {"a": a, "b": b}, {"za": za, "zb": zb}, np.empty((5, 67), "i4"))
    np.testing.assert_array_equal(qbench.matmul_integer(a, b, za, zb), got)
    # The extreme whose sum just fits int32.
    a, b = np.full((1, 1 << 16), 255, np.uint8), np.full((1 << 16, 2), -128, np.int8)
    got = _ort("MatMulInteger", ["a", "b"], {"a": a, "b": b}, {}, np.empty((1, 2), np.int32))
    np.testing.assert_array_equal(qbench.matmul_integer(a, b), got)


@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("y_scale", [1.7, 0.05])
def test_qlinear_matmul_matches_onnxruntime(per_column, y_scale):
    a, pa, b, pb, py = _qlinear_case(np.random.default_rng(6), per_column, y_scale)
    constants = {
        "sa": np.float32(pa.scale),
        "za": np.uint8(pa.zero_point),
        "b": b,
        "sb": np.asarray(pb.scale, np.float32),
        "zb": np.asarray(pb.zero_point).astype(np.int8),
        "sy": np.float32(py.scale),
        "zy": np.uint8(py.zero_point),
    }
    names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    got = _ort("QLinearMatMul", names, {"a": a}, constants, np.empty((6, 17), np.uint8))
    np.testing.assert_array_equal(qbench.qlinear_matmul(a, pa, b, pb, py), got)


def _ort_dynamic_quantize_linear(x):
    pytest.importorskip("onnxruntime")
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in (("y", TensorProto.UINT8), ("s", 1), ("z", 2))]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, list(x.shape))], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})


def test_dynamic_quantize_linear_matches_onnxruntime():
    rng = np.random.default_rng(7)
    for x in (
        rng.standard_normal((64, 512)).astype(np.float32) * 3,
        np.zeros((4, 4), np.float32),  # no range: ONNX Runtime's scale 1, zero point 0
        -rng.uniform(0.1, 1, 100).astype(np.float32),
        rng.uniform(0.1, 1, 100).astype(np.float32),
    ):
        y, scale, zero_point = _ort_dynamic_quantize_linear(x)
        q, p = qbench.dynamic_quantize_linear(x)
        np.testing.assert_array_equal(q, y)
        assert np.float32(p.scale) == scale and p.zero_point == int(zero_point)


@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_dynamic_quantize_matmul_matches_onnxruntime_bit_for_bit(per_column, with_bias):
    rng = np.random.default_rng(8)
    x, b = rng.standard_normal((3, 512)).astype(np.float32), ints(rng, np.int8, (512, 40))
    scale = rng.uniform(1e-3, 1e-2, 40).astype(np.float32) if per_column else np.float32(0.003)
    zero = np.zeros(40, np.int8) if per_column else np.int8(0)
    pb = QuantParams(scale, zero.astype(np.int64) if per_column else 0, np.int8, axis=1 if per_column else None)
    bias = rng.standard_normal(40).astype(np.float32)
    names = ["x", "b", "sb", "zb"] + (["bias"] if with_bias else [])
    constants = {"b": b, "sb": scale, "zb": zero} | ({"bias": bias} if with_bias else {})
    got = _ort("DynamicQuantizeMatMul", names, {"x": x}, constants, np.empty((3, 40), np.float32), "com.microsoft")
    mine = qbench.dynamic_quantize_matmul(x, b, pb, bias if with_bias else None)
    np.testing.assert_array_equal(mine.view(np.int32), got.view(np.int32))
