"""Hypothesis at the edges: NaN and inf in every dtype and layout, integer extremes, zero points at both ends,
empty and strided arrays, per tensor, per axis and blocked, held to exact oracles written here (Python ints and
float64 arithmetic that is exact for these operands), not to the NumPy reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qbench
from tests.conftest import QDTYPES
from tests.test_quantize import exact_quantize

FLOAT_TYPES = [np.float32, np.float64]
SCALES = st.sampled_from([np.float32(s) for s in (0.25, 0.1, 1.0, 3.0, 2.0**-12, 1e-30, 6e4)])


def _specials(ftype) -> st.SearchStrategy:
    width = 32 if ftype is np.float32 else 64
    return st.one_of(
        st.floats(width=width, allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, 127.5, -128.5, 255.5, 32767.5, 65535.5]),
    )


def _zero_points(dtype: str) -> st.SearchStrategy:
    lo, hi = qbench.quant_range(dtype)
    return st.one_of(st.sampled_from([lo, hi, lo + 1, hi - 1]), st.integers(lo, hi))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(QDTYPES), ftype=st.sampled_from(FLOAT_TYPES))
def test_quantize_any_layout_against_the_exact_oracle(data, dtype, ftype):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    x = data.draw(hnp.arrays(ftype, shape, elements=_specials(ftype)))
    step = data.draw(st.sampled_from([1, 2, -1]))
    x = x[::step]  # strided, reversed or as is
    axis = data.draw(st.sampled_from([None, *range(x.ndim)]))
    if axis is None:
        scale, zp = data.draw(SCALES), data.draw(_zero_points(dtype))
        params = qbench.QuantParams(scale, zp, dtype)
        scales, zps = np.full(x.shape, scale), np.full(x.shape, zp)
    elif x.shape[axis] == 0:  # no channel to give a scale to: refused, saying why
        with pytest.raises(ValueError, match="one scale per channel"):
            qbench.QuantParams(np.array([], np.float32), np.array([], np.int64), dtype, axis=axis)
        return
    else:
        n = x.shape[axis]
        scale = np.array(data.draw(st.lists(SCALES, min_size=n, max_size=n)), np.float32)
        zp = np.array(data.draw(st.lists(_zero_points(dtype), min_size=n, max_size=n)), np.int64)
        params = qbench.QuantParams(scale, zp, dtype, axis=axis)
        view = [1] * x.ndim
        view[axis] = n
        scales, zps = np.broadcast_to(scale.reshape(view), x.shape), np.broadcast_to(zp.reshape(view), x.shape)
    got = qbench.quantize(x, params)
    assert got.shape == x.shape and got.dtype == np.dtype(dtype)
    want = [
        exact_quantize(v, s, int(z), dtype, ftype)
        for v, s, z in zip(x.ravel(), scales.ravel(), zps.ravel(), strict=True)
    ]
    assert got.ravel().tolist() == want


def _exact_dequantize(q: int, zp: int, scale: np.float32) -> np.float32:
    """(q - zp) * scale rounded once to float32: the difference has at most 17 bits and the scale 24, so their
    float64 product is exact and the one rounding is float32's."""
    return np.float32(float(q - zp) * float(scale))


@settings(max_examples=120, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(QDTYPES))
def test_dequantize_integer_extremes_and_strides(data, dtype):
    info = np.iinfo(dtype)
    edges = st.sampled_from([info.min, info.min + 1, 0, info.max - 1, info.max])
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=9))
    q = data.draw(hnp.arrays(np.dtype(dtype), shape, elements=st.one_of(edges, st.integers(info.min, info.max))))
    q = q[..., ::-1] if data.draw(st.booleans()) else q
    scale, zp = data.draw(SCALES), data.draw(_zero_points(dtype))
    got = qbench.dequantize(q, qbench.QuantParams(scale, zp, dtype))
    want = [_exact_dequantize(int(v), zp, scale) for v in q.ravel()]
    assert got.dtype == np.float32 and got.shape == q.shape
    assert got.ravel().view(np.uint32).tolist() == np.array(want, np.float32).view(np.uint32).tolist()


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["int4", "uint4", "int8", "uint8"]), ftype=st.sampled_from(FLOAT_TYPES))
def test_blocked_quantize_with_specials_and_short_last_blocks(data, dtype, ftype):
    rows, cols, block = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 23)), data.draw(st.integers(1, 8))
    x = data.draw(hnp.arrays(ftype, (rows, cols), elements=_specials(ftype)))
    nb = -(-cols // block)
    scale = np.array(data.draw(st.lists(SCALES, min_size=rows * nb, max_size=rows * nb)), np.float32).reshape(rows, nb)
    zp = np.array(data.draw(st.lists(_zero_points(dtype), min_size=rows * nb, max_size=rows * nb)), np.int64)
    zp = zp.reshape(rows, nb)
    got = qbench.quantize(x, qbench.QuantParams(scale, zp, dtype, axis=1, block_size=block))
    if dtype in ("int4", "uint4"):
        got = qbench.unpack_int4(got, x.shape, signed=dtype == "int4")
    scales, zps = np.repeat(scale, block, axis=1)[:, :cols], np.repeat(zp, block, axis=1)[:, :cols]
    want = [
        exact_quantize(v, s, int(z), dtype, ftype)
        for v, s, z in zip(x.ravel(), scales.ravel(), zps.ravel(), strict=True)
    ]
    assert np.asarray(got).astype(np.int64).ravel().tolist() == want
