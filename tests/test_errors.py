"""Bad input raises TypeError / ValueError that names the problem; never a crash or a wrong answer."""

import numpy as np
import pytest

import qbench

X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
P = qbench.QuantParams(np.float32(0.01), 128, "uint8")
Q = qbench.quantize(X, P)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda: qbench.quantize(X.astype(np.complex64), P), TypeError, "float32, float64; got complex64"),
        (lambda: qbench.quantize(X.astype(object), P), TypeError, "got object"),
        (lambda: qbench.quantize(np.arange(4), P), TypeError, "got int64"),
        (lambda: qbench.quantize(X.astype(np.float16), P), TypeError, "got float16"),
        (lambda: qbench.quantize(X, "not params"), TypeError, "QuantParams"),
        (lambda: qbench.quantize(X, P, out=np.empty((4, 3), np.uint8)), ValueError, r"shape \(3, 4\)"),
        (lambda: qbench.quantize(X, P, out=np.empty((3, 4), np.int8)), ValueError, "dtype uint8"),
        (lambda: qbench.quantize(X, P, out=[0] * 12), TypeError, "numpy.ndarray"),
        (lambda: qbench.quantize(X, P, parallel="yes"), TypeError, "parallel must be"),
        (lambda: qbench.quantize(X, P, parallel=1), TypeError, "parallel must be"),
        (lambda: qbench.dot(X[0], X[0], parallel=0), TypeError, "parallel must be"),
        (lambda: qbench.dequantize(Q.astype(np.int8), P), TypeError, "dtype uint8; got int8"),
        (lambda: qbench.dequantize(Q, P, out=np.empty((3, 4), np.float64)), ValueError, "dtype float32"),
        (lambda: qbench.QuantParams(0.0, 0, "uint8"), ValueError, "scale must be finite and > 0"),
        (lambda: qbench.QuantParams(-1.0, 0, "uint8"), ValueError, "scale must be finite and > 0"),
        (lambda: qbench.QuantParams(np.nan, 0, "uint8"), ValueError, "scale must be finite and > 0"),
        (lambda: qbench.QuantParams(np.inf, 0, "uint8"), ValueError, "scale must be finite and > 0"),
        (lambda: qbench.QuantParams(1e-50, 0, "uint8"), ValueError, "as float32"),
        (lambda: qbench.QuantParams(0.1, 256, "uint8"), ValueError, r"outside the uint8 range \[0, 255\]"),
        (lambda: qbench.QuantParams(0.1, -129, "int8"), ValueError, r"outside the int8 range \[-128, 127\]"),
        (lambda: qbench.QuantParams(0.1, 1.5, "int8"), TypeError, "zero_point must be an integer"),
        (lambda: qbench.QuantParams(0.1, 0, "float32"), TypeError, "accepted: uint8, int8, uint16, int16"),
        (lambda: qbench.QuantParams(0.1, 0, "int32"), TypeError, "unsupported quantized dtype"),
        (lambda: qbench.QuantParams([0.1, 0.2], 0, "uint8"), ValueError, "scalar for per-tensor"),
        (lambda: qbench.QuantParams([0.1, 0.2], [0, 0, 0], "uint8", axis=0), ValueError, "lengths differ"),
        (lambda: qbench.QuantParams([[0.1, 0.2]], [[0, 0]], "uint8", axis=0), ValueError, "1-D array for per-axis"),
        (lambda: qbench.QuantParams(0.1, 0, "uint8", axis=1.0), TypeError, "axis must be None"),
        (
            lambda: qbench.quantize(X, qbench.QuantParams([0.1] * 5, [0] * 5, "uint8", axis=1)),
            ValueError,
            "5 entries but axis 1",
        ),
        (
            lambda: qbench.quantize(X, qbench.QuantParams([0.1] * 4, [0] * 4, "uint8", axis=2)),
            ValueError,
            "axis 2 is out of range",
        ),
        (
            lambda: qbench.dequantize(Q, qbench.QuantParams([0.1] * 2, [0] * 2, "uint8", axis=0)),
            ValueError,
            "2 entries but axis 0",
        ),
        (lambda: qbench.sum(np.ones(3, np.complex128)), TypeError, "sum expects a of dtype"),
        (lambda: qbench.sum(np.ones(3, np.int64)), TypeError, "got int64"),
        (lambda: qbench.sum(np.ones(3, bool)), TypeError, "got bool"),
        (lambda: qbench.accumulate([1, 2], np.ones(2, np.uint8)), TypeError, "acc must be a numpy.ndarray"),
        (lambda: qbench.accumulate(np.zeros(3, np.uint8), np.ones(3, np.int8)), TypeError, "without loss"),
        (lambda: qbench.accumulate(np.zeros(3, np.uint8), np.ones(3, np.uint16)), TypeError, "without loss"),
        (lambda: qbench.accumulate(np.zeros(3, np.int32), np.ones(4, np.int32)), ValueError, "same shape"),
        (
            lambda: qbench.accumulate(np.zeros(3, np.int32), np.ones(3, np.int32), overflow="clip"),
            ValueError,
            "'wrap' or 'saturate'",
        ),
        (lambda: qbench.accumulate(np.zeros(3, np.int32), np.ones(3, np.int32), repeat=-1), ValueError, "non-negative"),
        (
            lambda: qbench.accumulate(np.zeros(3, np.int64), np.ones(3, np.int64), overflow="saturate"),
            ValueError,
            "up to 32 bits",
        ),
        (lambda: qbench.dot(np.ones(3, np.float32), np.ones(3, np.float64)), TypeError, "one dtype"),
        (lambda: qbench.dot(np.ones(3, np.float32), np.ones(3, np.int8)), TypeError, "8-bit int"),
        (lambda: qbench.dot(np.ones(3, np.int16), np.ones(3, np.int16)), TypeError, "got int16"),
        (lambda: qbench.dot(np.ones(3, np.int8), np.ones(4, np.int8)), ValueError, "one shape"),
        (lambda: qbench.qdot(Q, P, Q, qbench.QuantParams(0.1, 0, "int16")), TypeError, "uint8/int8"),
        (lambda: qbench.qdot(Q, P, Q.astype(np.int8), P), TypeError, "dtype uint8; got int8"),
    ],
)
def test_bad_input_raises_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_parallel_takes_numpy_booleans_too():
    for parallel in (np.True_, np.False_, True, False, None):
        assert np.array_equal(qbench.quantize(X, P, parallel=parallel), Q)


def test_read_only_and_overlapping_outputs():
    out = np.empty((3, 4), np.uint8)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        qbench.quantize(X, P, out=out)
    acc = np.zeros(8, np.int32)
    with pytest.raises(ValueError, match="overlaps"):
        qbench.accumulate(acc[1:], acc[:-1])
    buf = np.zeros(16, np.float32)
    qbench.dequantize(np.zeros(16, np.uint8), P, out=buf)  # fine: separate arrays
    with pytest.raises(ValueError, match="overlap"):
        qbench.quantize(buf, P, out=buf.view(np.uint8)[:16])


def test_params_are_frozen_and_comparable():
    p = qbench.QuantParams([0.5, 0.25], [1, 2], "int8", axis=0)
    with pytest.raises(AttributeError):
        p.scale = 1.0
    with pytest.raises(ValueError):
        p.scale[0] = 2.0  # read-only array
    assert p == qbench.QuantParams(np.array([0.5, 0.25], np.float32), np.array([1, 2]), np.int8, axis=0)
    assert p != qbench.QuantParams([0.5, 0.25], [1, 3], "int8", axis=0)
    assert "axis=0" in repr(p)
