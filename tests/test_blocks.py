"""ONNX blocked quantization and the 4-bit types: the reference, ONNX's own cases, onnx.reference and ONNX Runtime."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qbench
from qbench import QuantParams, reference
from qbench.ops.params import INT4, UINT4

DTYPES = ["uint8", "int8", "uint16", "int16", "int4", "uint4"]


def values_of(q, params, shape):
    """qbench's quantized output as one value per element (the 4-bit types unpacked)."""
    if params.packed:
        assert q.dtype == np.uint8 and q.shape == ((int(np.prod(shape)) + 1) // 2,)
        return reference.unpack_int4(q, shape, signed=params.dtype == INT4)
    return q


@st.composite
def blocked_case(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["tensor", "axis", "blocked"] if "4" in dtype else ["blocked"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = qbench.QUANT_DTYPES[qbench.params.quant_dtype(dtype)]
    if kind == "tensor":
        pshape, axis, block = (), None, None
    elif kind == "axis":
        pshape, block = (shape[axis],), None
    else:
        block = draw(st.integers(1, 5))
        pshape = list(shape)
        pshape[axis] = -(-shape[axis] // block)
        pshape = tuple(pshape)
    if kind != "tensor" and 0 in pshape:
        pshape, shape = tuple(max(p, 1) for p in pshape), tuple(max(s, 1) for s in shape)
        if block is not None:
            pshape = list(shape)
            pshape[axis] = -(-shape[axis] // block)
            pshape = tuple(pshape)
    scale = rng.choice(np.float32([0.5, 1.0, 2.0, 0.1, 3.7]), size=pshape)
    zero_point = rng.integers(lo, hi + 1, size=pshape)
    # Half-integer multiples of the scale hit ties; NaN and inf the special cases.
    x = (rng.integers(-3 * (hi - lo), 3 * (hi - lo), size=shape) / 2).astype(np.float32)
    x *= rng.choice(np.float32([0.5, 1.0, 2.0, 0.1, 3.7]), size=shape)
    if x.size:
        x.flat[rng.integers(0, x.size, size=2)] = rng.choice(np.float32([np.nan, np.inf, -np.inf]), size=2)
    return x, QuantParams(scale, zero_point, dtype, axis=axis, block_size=block)


@settings(max_examples=200, deadline=None)
@given(blocked_case(), st.booleans())
def test_blocked_and_4bit_match_the_reference(case, parallel):
    x, params = case
    q = qbench.quantize(x, params, parallel=parallel)
    want = reference.quantize(x, params)
    np.testing.assert_array_equal(values_of(q, params, x.shape), want.astype(np.int64))
    got = qbench.dequantize(q, params, shape=x.shape if params.packed else None, parallel=parallel)
    np.testing.assert_array_equal(got, reference.dequantize(want.astype(np.int64), params))


def test_strided_input_and_out():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 40)).astype(np.float32)[:, ::2]  # 20 columns, not contiguous
    params = qbench.blocks.calibrate_blocks(x, "int8", axis=1, block_size=8)
    out = np.empty((20, 6), np.int8).T  # a transposed (non C-contiguous) out
    assert qbench.quantize(x, params, out=out) is out
    np.testing.assert_array_equal(out, reference.quantize(x, params))
    x4 = rng.normal(size=(3, 7, 5)).astype(np.float32)
    p4 = qbench.blocks.calibrate_blocks(x4, "uint4", axis=1, block_size=3, symmetric=False)
    packed = np.empty(53, np.uint8)
    assert qbench.quantize(x4, p4, out=packed) is packed
    np.testing.assert_array_equal(qbench.unpack_int4(packed, x4.shape, signed=False), reference.quantize(x4, p4))


@pytest.mark.parametrize("count", [0, 1, 2, 7, 64, 1001])
@pytest.mark.parametrize("signed", [True, False])
def test_pack_unpack_match_the_reference(count, signed):
    rng = np.random.default_rng(count)
    values = rng.integers(-8, 8, count).astype(np.int8) if signed else rng.integers(0, 16, count).astype(np.uint8)
    packed = qbench.pack_int4(values)
    np.testing.assert_array_equal(packed, reference.pack_int4(values))
    assert packed.shape == ((count + 1) // 2,)
    np.testing.assert_array_equal(qbench.unpack_int4(packed, count, signed=signed), values)
    np.testing.assert_array_equal(reference.unpack_int4(packed, (count,), signed=signed), values)
    if count:  # first element in the low nibble, by the ONNX note's rule written out
        lo, hi = int(values[0]), int(values[1]) if count > 1 else 0
        assert int(packed[0]) == (lo & 15) | ((hi & 15) << 4)


def test_pack_takes_ml_dtypes_arrays_and_2d():
    values = np.array([[-8, 7, -1], [0, 3, -4]], INT4)
    packed = qbench.pack_int4(values)
    np.testing.assert_array_equal(packed, [0x78, 0x0F, 0xC3])
    np.testing.assert_array_equal(qbench.unpack_int4(packed, (2, 3)), values.astype(np.int8))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: QuantParams(1.0, 0, "int4", block_size=2), ValueError, "need the axis"),
        (lambda: QuantParams(np.ones((2, 2)), 0, "int4", axis=1, block_size=0), ValueError, "positive"),
        (lambda: QuantParams(np.ones((2, 2)), 0, "int4", axis=1, block_size=2.0), TypeError, "positive int"),
        (lambda: QuantParams(1.0, 9, "int4"), ValueError, r"int4 range \[-8, 7\]"),
        (lambda: QuantParams(1.0, 16, "uint4"), ValueError, r"uint4 range \[0, 15\]"),
        (
            lambda: qbench.quantize(np.ones((2, 8), np.float32), QuantParams(np.ones((2, 3)), 0, "int4", 1, 4)),
            ValueError,
            r"need a scale of shape \(2, 2\)",
        ),
        (lambda: qbench.dequantize(np.zeros(4, np.uint8), QuantParams(1.0, 0, "int4")), ValueError, "needs shape="),
        (
            lambda: qbench.dequantize(np.zeros(4, np.uint8), QuantParams(1.0, 0, "int4"), shape=(3, 3)),
            ValueError,
            "take 5 bytes",
        ),
        (lambda: qbench.dequantize(np.zeros(4, np.int8), QuantParams(1.0, 0, "int4"), shape=8), TypeError, "packed"),
        (lambda: qbench.dequantize(np.zeros(4, np.uint8), QuantParams(1.0, 0), shape=(5,)), ValueError, "differs"),
        (lambda: qbench.pack_int4(np.array([16])), ValueError, "fit 4 bits"),
        (lambda: qbench.pack_int4(np.array([0.5])), TypeError, "integer values"),
        (lambda: qbench.unpack_int4(np.zeros(2, np.int8), 4), TypeError, "uint8"),
        (lambda: qbench.unpack_int4(np.zeros(2, np.uint8), (2, -2)), ValueError, "negative"),
        (
            lambda: qbench.quantize(np.ones(5, np.float32), QuantParams(1.0, 0, "int4"), out=np.empty(2, np.uint8)),
            ValueError,
            r"shape \(3,\)",
        ),
    ],
)
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_int4_names_are_not_numpys_int32():
    assert QuantParams(1.0, 0, "int4").dtype == INT4 and QuantParams(1.0, 0, "uint4").dtype == UINT4
    assert qbench.quant_range("int4", symmetric=True) == (-7, 7)
    assert qbench.quant_range("uint4", reduce_range=True) == (0, 7)


def test_calibrate_blocks_is_minmax_per_block():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 70)).astype(np.float32)
    x[1, 32:64] = 0  # a block of zeros gets scale 1
    p = qbench.blocks.calibrate_blocks(x, "int4", block_size=32)
    assert p.scale.shape == (4, 3) and p.block_size == 32 and p.axis == 1
    want = np.abs(x[0, :32]).max() / 7
    assert p.scale[0, 0] == np.float32(want) and p.scale[1, 1] == 1 and np.all(p.zero_point == 0)
    assert p.scale[2, 2] == np.float32(np.abs(x[2, 64:]).max() / 7)  # the short last block
    q = reference.quantize(x, p)
    assert q.astype(np.int64).min() >= -7 and q.astype(np.int64).max() <= 7


def test_calibrate_blocks_by_hand():
    """Asymmetric uint4 on [-1, 3]: scale 4/15, zero point rint(0 + 1 / (4/15)) = rint(3.75) = 4; symmetric int4:
    scale 3/7, zero point 0; a block of zeros: scale 1."""
    x = np.array([[-1.0, 3.0, 0.5, 2.0, 0.0, 0.0]], np.float32)
    p = qbench.blocks.calibrate_blocks(x, "uint4", block_size=4, symmetric=False)
    assert p.scale.tolist() == [[np.float32(4 / 15), 1.0]] and p.zero_point.tolist() == [[4, 0]]
    p = qbench.blocks.calibrate_blocks(x, "int4", block_size=4, symmetric=True)
    assert p.scale.tolist() == [[np.float32(3 / 7), 1.0]] and p.zero_point.tolist() == [[0, 0]]
    p = qbench.blocks.calibrate_blocks(np.array([[2.0, 5.0]], np.float32), "uint8", block_size=2, symmetric=False)
    assert p.scale.tolist() == [[np.float32(5 / 255)]] and p.zero_point.tolist() == [[0]]  # widened to include 0


@pytest.mark.parametrize("dtype", ["int4", "uint4", "int8", "uint8"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_calibrate_blocks_equals_per_tensor_calibration_of_each_block(dtype, symmetric):
    """A second implementation: :func:`qbench.calibrate` (MinMax, per tensor) on each block alone."""
    rng = np.random.default_rng(11)
    x = (rng.normal(size=(3, 45)) * rng.uniform(0.1, 10, size=(3, 1)) + rng.normal(size=(3, 1))).astype(np.float32)
    x[0, :16] = np.abs(x[0, :16])  # a block of one sign: the range widened to 0
    x[2, 16:32] = 0
    p = qbench.blocks.calibrate_blocks(x, dtype, axis=1, block_size=16, symmetric=symmetric)
    for row in range(3):
        for b in range(3):
            one = qbench.calibrate(x[row, 16 * b : 16 * (b + 1)], dtype, symmetric=symmetric)
            assert (p.scale[row, b], p.zero_point[row, b]) == (np.float32(one.scale), int(one.zero_point)), (row, b)


# ---- outside oracles ---------------------------------------------------------------------------------------


def _onnx_params(node, inputs):
    """QuantParams from a QuantizeLinear/DequantizeLinear node's attributes and inputs (int4 as ml_dtypes)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    scale = np.asarray(inputs[1])
    if len(inputs) > 2:
        zero_point = np.asarray(inputs[2])
        dtype = zero_point.dtype
    else:
        zero_point = np.zeros(scale.shape, np.int64)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(attrs.get("output_dtype", 2)))
    axis = None if scale.ndim == 0 or scale.size == 1 else attrs.get("axis", 1)
    if axis is None:
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
    return QuantParams(scale, zero_point, dtype, axis=axis, block_size=attrs.get("block_size") or None)


def _tensor(value):
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)


def test_onnx_backend_cases_pass_through_the_api():
    node_cases = pytest.importorskip("onnx.backend.test.case.node")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [
            c
            for c in node_cases.collect_testcases(None)
            if c.model.graph.node[0].op_type in ("QuantizeLinear", "DequantizeLinear")
        ]
    checked = []
    for case in cases:
        node = case.model.graph.node[0]
        for inputs, outputs in case.data_sets:
            inputs = [_tensor(i) for i in inputs]
            want = _tensor(outputs[0])
            kinds = {np.asarray(i).dtype for i in inputs} | {want.dtype}
            if not kinds <= {np.dtype(t) for t in ("float32", *DTYPES)} | {INT4, UINT4}:
                continue  # float8, float16 scales, 2-bit and float4 types: not qbench's
            params = _onnx_params(node, inputs)
            if node.op_type == "QuantizeLinear":
                got = values_of(qbench.quantize(inputs[0], params), params, inputs[0].shape)
                np.testing.assert_array_equal(got, want.astype(np.int64), err_msg=case.name)
            else:
                got = qbench.dequantize(inputs[0], params)
                np.testing.assert_array_equal(got, want, err_msg=case.name)
            checked.append(case.name)
    assert {
        "test_quantizelinear_int4",
        "test_quantizelinear_uint4",
        "test_quantizelinear_blocked_asymmetric",
        "test_quantizelinear_blocked_symmetric",
        "test_dequantizelinear_int4",
        "test_dequantizelinear_uint4",
        "test_dequantizelinear_blocked",
        "test_quantizelinear_axis",
    } <= set(checked), checked


def _random_blocked(rng, dtype, shape=(6, 50), axis=1, block=16):
    x = (rng.normal(size=shape) * 3).astype(np.float32)
    x[0, :4] = [0.5, 1.5, -2.5, 2.5]  # ties, with scale 1 below
    params = qbench.blocks.calibrate_blocks(x, dtype, axis=axis, block_size=block, symmetric=dtype == "int4")
    scale = params.scale.copy()
    scale[0, 0] = 1.0
    return x, QuantParams(scale, params.zero_point, dtype, axis=axis, block_size=block)


def _onnx_model(op, params, x_type, shape, cast_to_int8):
    from onnx import TensorProto, helper, numpy_helper

    elem = {"int4": TensorProto.INT4, "uint4": TensorProto.UINT4, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8}
    qtype = elem[params.dtype.name]
    zp = helper.make_tensor("zp", qtype, params.zero_point.shape, params.zero_point.ravel().tolist())
    outs = ["q"] if cast_to_int8 else ["y"]
    nodes = [helper.make_node(op, ["x", "scale", "zp"], outs, axis=params.axis, block_size=params.block_size)]
    y_type = TensorProto.FLOAT
    if cast_to_int8:  # ONNX Runtime cannot hand an int4 tensor to NumPy: widen it inside the model
        nodes.append(helper.make_node("Cast", ["q"], ["y"], to=TensorProto.INT8))
        y_type = TensorProto.INT8
    graph = helper.make_graph(
        nodes,
        op,
        [helper.make_tensor_value_info("x", x_type if x_type is not None else qtype, list(shape))],
        [helper.make_tensor_value_info("y", y_type, list(shape))],
        initializer=[numpy_helper.from_array(params.scale, "scale"), zp],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("dtype", ["int4", "uint4", "int8"])
def test_blocked_matches_onnx_reference_evaluator(dtype):
    pytest.importorskip("onnx")
    from onnx import TensorProto
    from onnx.reference import ReferenceEvaluator

    x, params = _random_blocked(np.random.default_rng(7), dtype)
    q = qbench.quantize(x, params)
    ours = values_of(q, params, x.shape)
    (theirs,) = ReferenceEvaluator(_onnx_model("QuantizeLinear", params, TensorProto.FLOAT, x.shape, False)).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(ours, theirs.astype(np.int64))
    model = _onnx_model("DequantizeLinear", params, None, x.shape, False)
    (back,) = ReferenceEvaluator(model).run(None, {"x": theirs})
    np.testing.assert_array_equal(qbench.dequantize(q, params, shape=x.shape if params.packed else None), back)


@pytest.mark.parametrize("dtype", ["int4", "uint4"])
def test_blocked_4bit_quantize_matches_onnxruntime(dtype):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto

    x, params = _random_blocked(np.random.default_rng(8), dtype, shape=(5, 64), block=32)
    model = _onnx_model("QuantizeLinear", params, TensorProto.FLOAT, x.shape, True)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # an older runtime without blocked 4-bit QuantizeLinear
        pytest.skip(f"onnxruntime {ort.__version__} cannot run blocked {dtype} QuantizeLinear: {exc}")
    (theirs,) = session.run(None, {"x": x})
    np.testing.assert_array_equal(values_of(qbench.quantize(x, params), params, x.shape), theirs)


# ---- MatMulNBits ---------------------------------------------------------------------------------------------


def _nbits_case(rng, bits, symmetric, n=70, k=200, m=3, block=32):
    w = rng.normal(size=(n, k)).astype(np.float32)
    w[0, :32] *= 1000  # one block far larger than the rest: the scales must stay per block
    a = rng.normal(size=(m, k)).astype(np.float32)
    b, scales, zero_points = qbench.blocks.quantize_nbits(w, bits=bits, block_size=block, symmetric=symmetric)
    params = qbench.blocks.calibrate_blocks(w, "uint4" if bits == 4 else "uint8", block_size=block, symmetric=symmetric)
    dequantized = reference.dequantize(reference.quantize(w, params).astype(np.int64), params).astype(np.float64)
    return a, b, scales, zero_points, dequantized


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("parallel", [False, True])
def test_matmul_nbits_within_its_bound_of_the_float64_product(bits, symmetric, parallel):
    a, b, scales, zero_points, w = _nbits_case(np.random.default_rng(bits), bits, symmetric)
    y = qbench.blocks.matmul_nbits(a, b, scales, zero_points, bits=bits, block_size=32, parallel=parallel)
    exact = a.astype(np.float64) @ w.T
    bound = qbench.blocks.matmul_nbits_error_bound(np.abs(a).astype(np.float64) @ np.abs(w).T, b.shape[1], 32, y)
    assert y.dtype == np.float32 and y.shape == exact.shape
    assert np.all(np.abs(y - exact) <= bound)
    # The bound is not vacuous: a weight off by one step breaks it.
    assert np.any(np.abs(y - a.astype(np.float64) @ (w + (np.arange(w.shape[1]) == 5) * 0.1).T) > bound)
    # 1-D activations give the vector of the first row.
    np.testing.assert_array_equal(
        qbench.blocks.matmul_nbits(a[0], b, scales, zero_points, bits=bits, parallel=parallel), y[0]
    )


def test_quantize_nbits_layout():
    w = np.arange(-20, 20, dtype=np.float32).reshape(1, 40)  # K = 40: a short second block of 8
    b, scales, zero_points = qbench.blocks.quantize_nbits(w, bits=4, block_size=32, symmetric=False)
    assert b.shape == (1, 2, 16) and scales.shape == (1, 2) and zero_points.shape == (1, 1)
    params = qbench.blocks.calibrate_blocks(w, "uint4", block_size=32, symmetric=False)
    values = reference.quantize(w, params).astype(np.int64)[0]
    assert b[0, 0, 0] == values[0] | values[1] << 4  # pairs along K, first in the low nibble
    assert zero_points[0, 0] == params.zero_point[0, 0] | params.zero_point[0, 1] << 4
    assert np.all(b[0, 1, 4:] == params.zero_point[0, 1] * 17)  # the padding is the zero point in both nibbles


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_matmul_nbits_matches_onnxruntime_within_the_bounds(bits, symmetric):
    peers = pytest.importorskip("qbench.peers")
    pytest.importorskip("onnxruntime")
    a, b, scales, zero_points, w = _nbits_case(np.random.default_rng(10 + bits), bits, symmetric, k=256)
    out = np.empty((a.shape[0], b.shape[0]), np.float32)
    try:
        theirs = peers.onnxruntime_matmul_nbits(a, b, scales, zero_points, bits, 32, out, 1)()
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    ours = qbench.blocks.matmul_nbits(a, b, scales, zero_points, bits=bits)
    abs_products = np.abs(a).astype(np.float64) @ np.abs(w).T
    # Ours within our bound; ONNX Runtime's sum of K terms in any order within gamma(K + 2) plus its last rounding.
    k, u = a.shape[1], 2.0**-24
    theirs_bound = (k + 2) * u / (1 - (k + 2) * u) * abs_products + u * np.abs(theirs)
    ours_bound = qbench.blocks.matmul_nbits_error_bound(abs_products, b.shape[1], 32, ours)
    assert np.all(np.abs(ours - theirs) <= ours_bound + theirs_bound)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"bits": 3}, ValueError, "bits must be one of"),
        ({"block_size": 24}, ValueError, "power of two"),
        ({"a": np.ones(64, np.float64)}, TypeError, "float32"),
        ({"a": np.ones(100, np.float32)}, ValueError, "fill the 2 blocks"),
        ({"b": np.zeros((4, 2, 8), np.uint8)}, ValueError, r"uint8 \(N, blocks, 16\)"),
        ({"scales": np.ones(7, np.float32)}, ValueError, "one per row and block"),
        ({"zero_points": np.zeros(3, np.uint8)}, ValueError, "1 bytes per row"),
    ],
)
def test_matmul_nbits_refuses_bad_input(kwargs, error, message):
    args = {
        "a": np.ones(64, np.float32),
        "b": np.zeros((4, 2, 16), np.uint8),
        "scales": np.ones((4, 2), np.float32),
        "zero_points": None,
    }
    args.update({k: v for k, v in kwargs.items() if k in args})
    options = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(error, match=message):
        qbench.blocks.matmul_nbits(args["a"], args["b"], args["scales"], args["zero_points"], **options)


@pytest.mark.parametrize("dtype", ["int4", "uint4"])
@pytest.mark.parametrize("shape, block", [((6, 64), 32), ((3, 10), 4), ((2, 3, 12), 6), ((5, 7), 4), ((4, 6), 3)])
@pytest.mark.parametrize("parallel", [False, True])
def test_packed_rows_dequantize_in_one_pass_as_the_reference(dtype, shape, block, parallel):
    # Even rows and blocks take the one-pass kernel (a short last block included); odd ones the unpacking path.
    rng = np.random.default_rng(block)
    x = rng.normal(size=shape).astype(np.float32)
    params = qbench.blocks.calibrate_blocks(x, dtype, axis=-1, block_size=block, symmetric=dtype == "int4")
    packed = qbench.quantize(x, params)
    values = reference.unpack_int4(packed, shape, signed=dtype == "int4").astype(np.int64)
    want = reference.dequantize(values, params)
    np.testing.assert_array_equal(qbench.dequantize(packed, params, shape=shape, parallel=parallel), want)
    out = np.empty(shape[::-1], np.float32).T  # not C-contiguous
    assert qbench.dequantize(packed, params, shape=shape, out=out) is out
    np.testing.assert_array_equal(out, want)
