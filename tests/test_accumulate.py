"""sum / accumulate / dot / qdot: exact against Python integers and float64 references."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qbench
from qbench import reference

INT_TYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32"]


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("parallel", [False, True])
def test_integer_sum_is_exact(rng, dtype, parallel):
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, 300_001, endpoint=True).astype(dtype)
    got = qbench.sum(a, parallel=parallel)
    assert int(got) == sum(int(v) for v in a.tolist())
    assert got.dtype == (np.uint64 if info.min == 0 else np.int64)


@pytest.mark.parametrize("parallel", [False, True])
def test_sum_all_255_uint8_of_2_pow_26(parallel):
    a = np.full(2**26, 255, np.uint8)
    assert int(qbench.sum(a, parallel=parallel)) == 255 * 2**26  # wraps in any 32-bit accumulator
    assert int(qbench.sum(np.full(2**26, -128, np.int8), parallel=parallel)) == -128 * 2**26


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(st.sampled_from(INT_TYPES), hnp.array_shapes(min_dims=0, max_dims=3, max_side=40)))
def test_property_integer_sum(a):
    assert int(qbench.sum(a)) == sum(int(v) for v in a.ravel().tolist())


def _abs_sum(*arrays: np.ndarray) -> float:
    return math.fsum(np.abs(np.prod([a.astype(np.float64) for a in arrays], axis=0)).tolist())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("parallel", [False, True])
def test_float_sum_within_its_error_bound_of_fsum(rng, dtype, parallel):
    n = 1_000_000
    for a in (rng.random(n).astype(dtype), (rng.standard_normal(n) * 1e3).astype(dtype)):
        err = abs(float(qbench.sum(a, parallel=parallel)) - math.fsum(a.tolist()))
        assert err <= qbench.float_error_bound(n, dtype) * _abs_sum(a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("parallel", [False, True])
def test_float_sum_bound_is_near_the_worst_case(dtype, parallel):
    # One large value and a block of ones: a lane holding the large value loses every one added to it.
    # The error reaches a sizeable part of the bound, so the bound is no empty promise, and still holds.
    big = 2.0 ** (np.finfo(dtype).nmant + 1)
    a = np.ones(qbench.ops.FLOAT_BLOCK, dtype)
    a[0] = big
    exact = big + a.size - 1
    err = abs(float(qbench.sum(a, parallel=parallel)) - exact)
    bound = qbench.float_error_bound(a.size, dtype) * exact
    assert 0 < err <= bound and err > bound / 1000


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("parallel", [False, True])
def test_float_sum_and_dot_of_small_integers_are_exact(rng, dtype, parallel):
    # Every partial sum is an integer below 2**24: no rounding at all, so a lost or repeated element shows.
    a = rng.integers(-3, 4, 1_000_003).astype(dtype)
    b = rng.integers(-3, 4, a.size).astype(dtype)
    assert float(qbench.sum(a, parallel=parallel)) == int(a.astype(np.int64).sum())
    assert float(qbench.dot(a, b, parallel=parallel)) == int(a.astype(np.int64) @ b.astype(np.int64))


def test_float_sum_specials():
    assert np.isnan(qbench.sum(np.array([1, np.nan, 2] * 10, np.float32)))
    assert qbench.sum(np.array([1, np.inf] * 10, np.float32)) == np.inf
    assert qbench.sum(np.empty(0, np.float32)) == 0.0
    assert qbench.sum(np.empty(0, np.uint8)) == 0


def test_sum_non_contiguous(rng):
    a = rng.integers(0, 256, (300, 70)).astype(np.uint8)
    for view in (a.T, a[::3, ::-2], a[:, 5]):
        assert int(qbench.sum(view)) == int(view.astype(np.int64).sum())
    f = rng.random((300, 70)).astype(np.float32).T[::2]
    assert float(qbench.sum(f)) == pytest.approx(float(f.astype(np.float64).sum()), rel=1e-6)


@pytest.mark.parametrize(
    "acc_t,x_t",
    [
        ("uint8", "uint8"),
        ("int8", "int8"),
        ("uint16", "uint8"),
        ("int32", "int8"),
        ("int32", "uint16"),
        ("float32", "uint8"),
        ("float32", "float32"),
        ("float64", "int8"),
        ("int64", "int32"),
        ("uint64", "uint8"),
    ],
)
@pytest.mark.parametrize("parallel", [False, True])
def test_accumulate_wrap_equals_numpy(rng, acc_t, x_t, parallel):
    def draw(t, n):
        if np.dtype(t).kind == "f":
            return (rng.standard_normal(n) * 100).astype(t)
        info = np.iinfo(t)
        return rng.integers(info.min, info.max, n, endpoint=True, dtype=t)

    acc, x = draw(acc_t, 100_003), draw(x_t, 100_003)
    want = reference.accumulate(acc.copy(), x, repeat=3)
    got = qbench.accumulate(acc, x, repeat=3, parallel=parallel)
    assert got is acc
    assert np.array_equal(acc.view(np.uint8), want.view(np.uint8))


def test_wrap_really_wraps_and_saturate_clamps():
    acc = np.array([250, 5, 0], np.uint8)
    x = np.array([10, 10, 0], np.uint8)
    assert qbench.accumulate(acc.copy(), x).tolist() == [4, 15, 0]
    assert qbench.accumulate(acc.copy(), x, overflow="saturate").tolist() == [255, 15, 0]
    acc8 = np.array([120, -120, 3], np.int8)
    x8 = np.array([10, -10, -5], np.int8)
    assert qbench.accumulate(acc8.copy(), x8, repeat=2, overflow="saturate").tolist() == [127, -128, -7]
    assert qbench.accumulate(acc8.copy(), x8, repeat=2).tolist() == [-116, 116, -7]


@pytest.mark.parametrize(
    "acc_t,x_t", [("uint8", "uint8"), ("int8", "int8"), ("int16", "uint8"), ("uint32", "uint16"), ("int32", "int32")]
)
@pytest.mark.parametrize("parallel", [False, True])
def test_accumulate_saturate_equals_reference(rng, acc_t, x_t, parallel):
    ia, ix = np.iinfo(acc_t), np.iinfo(x_t)
    acc = rng.integers(ia.min, ia.max, 70_001, endpoint=True).astype(acc_t)
    x = rng.integers(ix.min, ix.max, 70_001, endpoint=True).astype(x_t)
    want = reference.accumulate(acc.copy(), x, repeat=4, overflow="saturate")
    got = qbench.accumulate(acc, x, repeat=4, overflow="saturate", parallel=parallel)
    assert np.array_equal(got, want)
    assert np.any(got == ia.max) or np.any(got == ia.min)  # the data did saturate


def test_accumulate_repeat_zero_and_self():
    acc = np.arange(10, dtype=np.int32)
    assert qbench.accumulate(acc, np.ones(10, np.int32), repeat=0).tolist() == list(range(10))
    assert qbench.accumulate(acc, acc).tolist() == [2 * i for i in range(10)]


@pytest.mark.parametrize("a_t,b_t", [("int8", "int8"), ("uint8", "uint8"), ("uint8", "int8"), ("int8", "uint8")])
@pytest.mark.parametrize("parallel", [False, True])
def test_integer_dot_is_exact(rng, a_t, b_t, parallel):
    ia, ib = np.iinfo(a_t), np.iinfo(b_t)
    a = rng.integers(ia.min, ia.max, 200_003, endpoint=True).astype(a_t)
    b = rng.integers(ib.min, ib.max, 200_003, endpoint=True).astype(b_t)
    assert int(qbench.dot(a, b, parallel=parallel)) == int(np.dot(a.astype(np.int64), b.astype(np.int64)))


@pytest.mark.parametrize("value,dtype", [(255, "uint8"), (-128, "int8")])
def test_integer_dot_never_overflows(value, dtype):
    a = np.full(2**22, value, dtype)  # 2**22 * 65025 needs 38 bits
    assert int(qbench.dot(a, a)) == value * value * 2**22


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("parallel", [False, True])
def test_float_dot_within_its_error_bound(rng, dtype, parallel):
    a, b = rng.standard_normal((2, 100_001)).astype(dtype)
    # float32 products are exact in float64; float64 ones round once more in the reference itself.
    exact = math.fsum((a.astype(np.float64) * b.astype(np.float64)).tolist())
    reference_error = 0.0 if dtype == "float32" else 2.0**-53
    err = abs(float(qbench.dot(a, b, parallel=parallel)) - exact)
    assert err <= (qbench.float_error_bound(a.size, dtype, products=True) + reference_error) * _abs_sum(a, b)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 3000), st.sampled_from(["uint8", "int8"]), st.sampled_from(["uint8", "int8"]), st.integers(0, 2**32)
)
def test_qdot_equals_dot_of_dequantized(n, ta, tb, seed):
    rng = np.random.default_rng(seed)
    xa, xb = rng.standard_normal((2, n)).astype(np.float32)
    pa, pb = qbench.calibrate(xa, ta), qbench.calibrate(xb, tb)
    qa, qb = qbench.quantize(xa, pa), qbench.quantize(xb, pb)
    want = reference.qdot(qa, pa, qb, pb)
    scale = float(np.abs(qbench.dequantize(qa, pa)).astype(np.float64) @ np.abs(qbench.dequantize(qb, pb)))
    # The reference dequantizes to float32 first (ONNX); qdot is exact until the
    # final scaling, so they differ by float32 rounding of each product at most.
    assert abs(qbench.qdot(qa, pa, qb, pb) - want) <= 4 * float(np.finfo(np.float32).eps) * max(scale, 1e-30)


def test_float32_sum_is_flushed_into_float64_per_block():
    # Ten million copies of float32(0.1): float32 lanes over 4096 values were off by 0.6 here.
    x = np.full(10_000_000, np.float32(0.1))
    exact = math.fsum([float(np.float32(0.1))] * 1000) * 10_000
    bound = qbench.float_error_bound(x.size, "float32") * exact
    assert bound < 2.0**-16 * exact  # what blocks of 256 values promise
    for parallel in (False, True):
        assert abs(float(qbench.sum(x, parallel=parallel)) - exact) <= bound


@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 2), ()])
def test_dot_takes_vectors_only(shape):
    a = np.ones(shape, np.int8)
    with pytest.raises(ValueError, match="takes two 1-D arrays"):
        qbench.dot(a, a)
    p = qbench.QuantParams(0.5, 0, "int8")
    with pytest.raises(ValueError, match="qdot takes two 1-D arrays"):
        qbench.qdot(a, p, a, p)
