"""quantize / dequantize: bit-exact against the NumPy reference and an exact-rational oracle."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qbench
from qbench import reference
from tests.conftest import QDTYPES, mid_zero_point


def assert_same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    got, want = np.ascontiguousarray(np.atleast_1d(got)), np.ascontiguousarray(np.atleast_1d(want))
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), np.flatnonzero(got != want)[:10]


def exact_quantize(x: float, scale: float, zero_point: int, dtype, ftype=np.float32) -> int:
    """ONNX QuantizeLinear on one value, rounding and saturation done in Python integers.

    The quotient is IEEE division in ``ftype`` (correctly rounded, as ONNX specifies;
    float64 input divides in float64); everything after it is exact arithmetic,
    independent of NumPy and Numba.
    """
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    with np.errstate(over="ignore"):
        quotient = float(ftype(x) / ftype(np.float32(scale)))
    if quotient != quotient:
        return zero_point
    if abs(quotient) == float("inf"):
        return hi if quotient > 0 else lo
    q = round(Fraction(quotient))  # Python rounds half to even
    return min(max(q + zero_point, lo), hi)


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("parallel", [False, True])
def test_matches_reference_on_random_data(rng, dtype, parallel):
    x = (rng.standard_normal(10_000) * 50).astype(np.float32)
    params = qbench.QuantParams(np.float32(0.37), mid_zero_point(dtype) + 3, dtype)
    assert_same_bits(qbench.quantize(x, params, parallel=parallel), reference.quantize(x, params))
    q = reference.quantize(x, params)
    assert_same_bits(qbench.dequantize(q, params, parallel=parallel), reference.dequantize(q, params))


finite_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
scales = st.floats(min_value=2.0**-20, max_value=2.0**13, width=32)


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=9), elements=finite_f32),
    scale=scales,
    dtype=st.sampled_from(QDTYPES),
    zp_frac=st.floats(0, 1),
)
def test_property_bit_exact(x, scale, dtype, zp_frac):
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    params = qbench.QuantParams(np.float32(scale), int(lo + round(zp_frac * (hi - lo))), dtype)
    got = qbench.quantize(x, params)
    assert_same_bits(got, reference.quantize(x, params))
    assert_same_bits(qbench.dequantize(got, params), reference.dequantize(got, params))


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=20),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    ),
    scale=scales,
)
def test_property_float64_input(x, scale):
    params = qbench.QuantParams(np.float32(scale), 7, "int8")
    assert_same_bits(qbench.quantize(x, params), reference.quantize(x, params))


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("zero_point_offset", [0, 1])  # even and odd zero points
def test_exact_ties_round_half_to_even(dtype, zero_point_offset):
    scale = np.float32(0.25)  # a power of two: (k + 0.5) * scale is exact
    zp = mid_zero_point(dtype) - (mid_zero_point(dtype) % 2) + zero_point_offset
    k = np.arange(-40, 40, dtype=np.float32)
    x = (k + np.float32(0.5)) * scale
    params = qbench.QuantParams(scale, zp, dtype)
    got = qbench.quantize(x, params)
    want = [exact_quantize(v, scale, zp, dtype) for v in x]
    assert got.tolist() == want
    assert reference.quantize(x, params).tolist() == want  # the oracle of the other tests holds too
    # Ties go to the even integer before the zero point is added.
    assert np.all((got.astype(np.int64) - zp) % 2 == 0)


def test_near_ties_and_specials_against_exact_oracle():
    scale = np.float32(0.1)
    base = np.array([0.05, 0.15, -0.05, -0.25, 12.75], np.float32)
    near = np.concatenate([base, np.nextafter(base, np.inf), np.nextafter(base, -np.inf)])
    specials = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, 3e38, -3e38, np.finfo(np.float32).max, 1e9, -1e9], np.float32)
    x = np.concatenate([near, specials])
    for dtype in QDTYPES:
        zp = mid_zero_point(dtype) + 1
        params = qbench.QuantParams(scale, zp, dtype)
        got = qbench.quantize(x, params)
        want = [exact_quantize(v, scale, zp, dtype) for v in x]
        assert got.tolist() == want, dtype
        assert reference.quantize(x, params).tolist() == want, dtype


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("ftype", [np.float32, np.float64])
def test_quotients_beyond_the_int32_range_saturate(dtype, ftype):
    # The kernel clamps x / scale to +-2**30 before converting to int32; the
    # conversion itself is undefined past +-2**31. Both edges, both signs.
    edges = np.array([2.0**30, 2.0**31, 2.0**32, 3e9, 2.0**63, 1e30], ftype)
    mags = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    x = np.concatenate([mags, -mags] * 3)  # longer than a vector
    params = qbench.QuantParams(np.float32(1.0), mid_zero_point(dtype), dtype)
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    for parallel in (False, True):
        got = qbench.quantize(x, params, parallel=parallel)
        assert got.tolist() == [hi if v > 0 else lo for v in x]


@pytest.mark.parametrize("dtype", QDTYPES)
def test_nan_maps_to_zero_point_and_inf_saturates(dtype):
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    zp = mid_zero_point(dtype) + 5
    params = qbench.QuantParams(np.float32(0.5), zp, dtype)
    x = np.array([np.nan, np.inf, -np.inf, -np.nan, 1.0] * 7, np.float32)  # > one vector width
    got = qbench.quantize(x, params)
    assert got[:5].tolist() == [zp, hi, lo, zp, zp + 2]
    assert_same_bits(got, reference.quantize(x, params))


def test_textbook_values():
    params = qbench.QuantParams(np.float32(0.5), 10, "uint8")
    x = np.array([0.0, 0.5, 0.75, 1.25, -5.0, -6.0, 200.0], np.float32)
    # 0.75/0.5 = 1.5 -> 2; 1.25/0.5 = 2.5 -> 2; -6/0.5 + 10 = -2 -> 0; 400 + 10 -> 255
    assert qbench.quantize(x, params).tolist() == [10, 11, 12, 12, 0, 0, 255]
    q = np.array([0, 10, 12, 255], np.uint8)
    assert qbench.dequantize(q, params).tolist() == [-5.0, 0.0, 1.0, 122.5]


def test_true_division_not_reciprocal_multiplication():
    # x * (1/s) rounds differently from x / s for some values; qbench must divide.
    rng = np.random.default_rng(7)
    scale = np.float32(0.3)
    x = (rng.integers(-300, 300, 200_000).astype(np.float32) + np.float32(0.5)) * scale
    params = qbench.QuantParams(scale, 0, "int16")
    by_division = np.rint(x / scale)
    by_reciprocal = np.rint(x * (np.float32(1) / scale))
    assert np.any(by_division != by_reciprocal)  # the data does tell the two apart
    assert np.array_equal(qbench.quantize(x, params).astype(np.float32), np.clip(by_division, -32768, 32767))


@pytest.mark.parametrize(
    "shape,axis", [((6, 5), 0), ((6, 5), 1), ((6, 5), -1), ((3, 4, 5), 1), ((3, 4, 5), 2), ((3, 4, 5), 0), ((7,), 0)]
)
@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("parallel", [False, True])
def test_per_axis_matches_reference(rng, shape, axis, dtype, parallel):
    x = (rng.standard_normal(shape) * 20).astype(np.float32)
    n = shape[axis]
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    params = qbench.QuantParams(
        rng.uniform(0.05, 2.0, n).astype(np.float32), rng.integers(lo, hi + 1, n), dtype, axis=axis
    )
    q = qbench.quantize(x, params, parallel=parallel)
    assert_same_bits(q, reference.quantize(x, params))
    assert_same_bits(qbench.dequantize(q, params, parallel=parallel), reference.dequantize(q, params))
    # Each channel on its own, per-tensor, gives the same bits.
    for c in range(n):
        single = qbench.QuantParams(params.scale[c], int(params.zero_point[c]), dtype)
        assert_same_bits(np.take(q, c, axis=axis), qbench.quantize(np.take(x, c, axis=axis), single))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::2],
        lambda a: a[:, ::-3],
        lambda a: a.T,
        lambda a: a[1:-1, 2:-2].T[::2],
        lambda a: a.reshape(4, 25, 30).transpose(2, 0, 1)[:, ::2],
    ],
)
def test_non_contiguous_equals_contiguous_copy(rng, view, parallel):
    base = (rng.standard_normal((100, 30)) * 10).astype(np.float32)
    x = view(base)
    assert not x.flags.c_contiguous
    params = qbench.QuantParams(np.float32(0.1), 3, "int8")
    got = qbench.quantize(x, params, parallel=parallel)
    assert_same_bits(got, qbench.quantize(np.ascontiguousarray(x), params))
    out = np.zeros(x.shape[::-1], np.int8).T  # a non-contiguous out too
    qbench.quantize(x, params, out=out, parallel=parallel)
    assert_same_bits(np.ascontiguousarray(out), got)
    assert_same_bits(qbench.dequantize(got.T, params).T, qbench.dequantize(got, params))


@pytest.mark.parametrize("parallel", [False, True])
def test_every_start_alignment_and_lengths_around_blocks(rng, parallel):
    # The 1-D loops run up to 15 values alone to reach a 64-byte boundary of their float32 array, then the rest
    # in blocks of BLOCK values: every start offset, and lengths at and around both.
    from qbench.kernels.quantize import BLOCK

    xs = (rng.standard_normal(2 * BLOCK + 80) * 20).astype(np.float32)
    qs = rng.integers(0, 256, xs.size).astype(np.uint8)
    floats = np.empty(xs.size, np.float32)
    params = qbench.QuantParams(np.float32(0.1), 7, "uint8")
    for offset in range(17):
        for n in (1, 15, 16, 17, 63, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 33):
            x = xs[offset : offset + n]
            out = np.full(n, 0xAA, np.uint8)
            qbench.quantize(x, params, out=out, parallel=parallel)
            assert_same_bits(out, reference.quantize(x, params))
            floats[:] = np.nan
            back = qbench.dequantize(qs[:n], params, out=floats[offset : offset + n], parallel=parallel)
            assert_same_bits(back, reference.dequantize(qs[:n], params))


def test_non_contiguous_per_axis(rng):
    x = (rng.standard_normal((8, 6, 10)) * 5).astype(np.float32).transpose(2, 0, 1)[::3]  # shape (4, 8, 6)
    params = qbench.QuantParams(np.linspace(0.05, 0.5, 8, dtype=np.float32), np.arange(8), "uint8", axis=1)
    assert_same_bits(qbench.quantize(x, params), qbench.quantize(np.ascontiguousarray(x), params))
    assert_same_bits(qbench.quantize(x, params), reference.quantize(x, params))


def test_empty_zero_d_and_out(rng):
    params = qbench.QuantParams(np.float32(0.5), 0, "int8")
    empty = qbench.quantize(np.empty((0, 3), np.float32), params)
    assert empty.shape == (0, 3) and empty.dtype == np.int8
    scalar = qbench.quantize(np.array(3.0, np.float32), params)
    assert scalar.shape == () and int(scalar) == 6
    assert float(qbench.dequantize(scalar, params)) == 3.0
    x = rng.standard_normal(100).astype(np.float32)
    out = np.empty(100, np.int8)
    assert qbench.quantize(x, params, out=out) is out
    assert_same_bits(out, reference.quantize(x, params))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_round_trip_error_within_half_scale(rng, dtype, symmetric):
    x = (rng.standard_normal(50_000) * 3 + 1).astype(np.float32)
    params = qbench.calibrate(x, dtype, symmetric=symmetric)
    back = qbench.dequantize(qbench.quantize(x, params), params)
    # Float32 rounding of x / scale and of the product may add an ulp or two of x.
    bound = float(params.scale) / 2 + 2 * np.spacing(np.abs(x))
    assert np.all(np.abs(back - x) <= bound)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
def test_exact_near_rounding_boundaries(dtype):
    """Values within a few ulps of a tie, for scales that are not powers of two, round as exact division does."""
    rng = np.random.default_rng(11)
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    for scale in rng.uniform(0.003, 3.0, 12).astype(np.float32):
        k = rng.integers(-200, 200, 4000).astype(np.float32)
        ties = (k + np.float32(0.5)) * scale  # rounded: near, not at, the tie
        steps = rng.integers(-6, 7, ties.size).astype(np.float32)
        x = (ties + steps * np.spacing(ties)).astype(np.float32)  # within 6 ulps of the rounded tie
        x = np.concatenate([x, ties, rng.standard_normal(3000).astype(np.float32) * 50])
        p = qbench.QuantParams(scale, (lo + hi) // 2 + 1, dtype)
        want = [exact_quantize(v, scale, int(p.zero_point), dtype) for v in x]
        assert qbench.quantize(x, p, parallel=False).tolist() == want
        assert qbench.quantize(x, p, parallel=True).tolist() == want


def test_float64_input_divides_in_float64_by_hand():
    """Values a float32 cast would move onto or off a tie: 2.5000000001 is 3, not the 2 of float32(2.5)."""
    x = np.array([2.5000000001, 3.0000000000000004, 0.500000001, -2.5000000001, 1.4999999999], np.float64)
    got = qbench.quantize(x, qbench.QuantParams(np.float32(1.0), 0, "int8"))
    assert got.tolist() == [3, 3, 1, -3, 1]


def near_ties_f64(scale: float) -> st.SearchStrategy:
    """float64 values within a few ulps (of float64, or of float32) of ``(k + 0.5) * scale``: where a float32
    cast of the input, or a float32 division, lands on the other side of a tie."""
    offsets = st.sampled_from([0.0, 1e-12, -1e-12, 2.0**-30, -(2.0**-30), 1e-9, -1e-9, 3e-8, -3e-8])
    return st.builds(lambda k, d: (k + 0.5) * scale * (1 + d), st.integers(-300, 300), offsets)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(QDTYPES), scale=st.sampled_from([0.25, 0.1, 0.0078125, 3.0, 1e-3]))
def test_property_float64_near_ties_against_the_exact_oracle(data, dtype, scale):
    x = np.array(data.draw(st.lists(near_ties_f64(scale), min_size=1, max_size=40)), np.float64)
    zp = data.draw(st.sampled_from([mid_zero_point(dtype), mid_zero_point(dtype) + 1, *qbench.quant_range(dtype)]))
    got = qbench.quantize(x, qbench.QuantParams(np.float32(scale), zp, dtype))
    want = [exact_quantize(v, scale, zp, dtype, np.float64) for v in x]
    assert got.tolist() == want


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["int8", "uint8", "int4", "uint4"]))
def test_property_float64_per_axis_and_blocked_near_ties(data, dtype):
    """The same float64 ties through the per-axis and the blocked paths (each element by its own scale)."""
    rows, cols, block = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 9))
    scales = np.array(
        data.draw(st.lists(st.sampled_from([0.25, 0.1, 1.0, 0.0078125]), min_size=rows * cols, max_size=rows * cols)),
        np.float32,
    )
    blocked = data.draw(st.booleans()) or dtype in ("int4", "uint4")
    lo, hi = qbench.quant_range(dtype)
    if blocked:
        nb = -(-cols // block)
        scale = scales[: rows * nb].reshape(rows, nb)
        zp = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=rows * nb, max_size=rows * nb))).reshape(
            rows, nb
        )
        params = qbench.QuantParams(scale, zp, dtype, axis=1, block_size=block)
        per_element = np.repeat(scale, block, axis=1)[:, :cols], np.repeat(zp, block, axis=1)[:, :cols]
    else:
        scale, zp = scales[:rows], np.array(data.draw(st.lists(st.integers(lo, hi), min_size=rows, max_size=rows)))
        params = qbench.QuantParams(scale, zp, dtype, axis=0)
        per_element = np.repeat(scale[:, None], cols, 1), np.repeat(zp[:, None], cols, 1)
    k = np.array(data.draw(st.lists(st.integers(-20, 20), min_size=rows * cols, max_size=rows * cols)))
    d = np.array(
        data.draw(
            st.lists(st.sampled_from([0.0, 1e-12, -1e-12, 1e-9, -1e-9]), min_size=rows * cols, max_size=rows * cols)
        )
    )
    x = ((k.reshape(rows, cols) + 0.5) * per_element[0] * (1 + d.reshape(rows, cols))).astype(np.float64)
    got = qbench.quantize(x, params)
    if dtype in ("int4", "uint4"):
        got = qbench.unpack_int4(got, x.shape, signed=dtype == "int4")
    want = [
        exact_quantize(v, s, int(z), dtype, np.float64)
        for v, s, z in zip(x.ravel(), per_element[0].ravel(), per_element[1].ravel(), strict=True)
    ]
    assert np.asarray(got).astype(np.int64).ravel().tolist() == want


@pytest.mark.parametrize("dtype", QDTYPES)
def test_values_at_both_ends_with_zero_points_at_both_ends(dtype):
    """qmin and qmax reached exactly, one step inside and one beyond, with the zero point at either end."""
    lo, hi = qbench.quant_range(dtype)
    scale = np.float32(0.5)
    for zp in (lo, hi):
        q = np.array([lo, lo + 1, hi - 1, hi], np.int64)
        x = ((q - zp) * 0.5).astype(np.float32)
        x = np.concatenate([x, x - np.float32(0.5), x + np.float32(0.5)])
        got = qbench.quantize(x, qbench.QuantParams(scale, zp, dtype))
        assert got.tolist() == [exact_quantize(v, scale, zp, dtype) for v in x]
        back = qbench.dequantize(got[:4], qbench.QuantParams(scale, zp, dtype))
        assert back.tolist() == [(int(v) - zp) * 0.5 for v in got[:4]]


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_one_element_parameters_are_per_tensor_as_onnx_runtime_takes_them(axis):
    """A 1-element 1-D scale and zero point (as exported models and ONNX's test cases store them) quantize and
    dequantize as the scalar pair does, whatever the axis."""
    x = np.random.default_rng(3).standard_normal((4, 33)).astype(np.float32)
    scalar = qbench.QuantParams(np.float32(0.013), 7, "int8")
    one = qbench.QuantParams(np.array([0.013], np.float32), np.array([7], np.int8), "int8", axis=axis)
    assert one == scalar and one.axis is None
    np.testing.assert_array_equal(qbench.quantize(x, one), qbench.quantize(x, scalar))
    q = qbench.quantize(x, scalar)
    np.testing.assert_array_equal(qbench.dequantize(q, one), qbench.dequantize(q, scalar))
