"""Calibration against hand-computed scales and zero points."""

import numpy as np
import pytest

import qbench


def test_minmax_uint8_hand_computed():
    # rmin = -1, rmax = 3, uint8 [0, 255]: scale = 4 / 255; zero point = round(0 - (-1) / (4/255)) = round(63.75) = 64
    x = np.array([-1.0, 0.5, 3.0, 2.0], np.float32)
    p = qbench.calibrate(x, "uint8")
    assert p.scale == np.float32(4 / 255) and p.zero_point == 64 and p.dtype == np.uint8 and p.axis is None


def test_minmax_widens_range_to_include_zero():
    # [2, 10] widens to [0, 10]: scale 10 / 255, zero point 0, and 0.0 is exact.
    p = qbench.calibrate(np.array([2.0, 10.0], np.float32), "uint8")
    assert p.scale == np.float32(10 / 255) and p.zero_point == 0
    # [-10, -2] widens to [-10, 0]: zero point 255.
    p = qbench.calibrate(np.array([-10.0, -2.0], np.float32), "uint8")
    assert p.scale == np.float32(10 / 255) and p.zero_point == 255
    assert qbench.dequantize(qbench.quantize(np.zeros(3, np.float32), p), p).tolist() == [0.0, 0.0, 0.0]


def test_minmax_int8_and_half_even_zero_point():
    # rmin = -1, rmax = 1.55 -> scale = 2.55 / 255 = 0.01; zp = round(-128 + 100) = -28
    p = qbench.calibrate(np.array([-1.0, 1.55]), "int8")
    assert p.scale == np.float32(2.55 / 255) and p.zero_point == -28
    # zp = qmin - rmin/scale = 0 + 2.5 -> ties to even 2 (rmin=-2.5, rmax=252.5, scale=1)
    p = qbench.calibrate(np.array([-2.5, 252.5]), "uint8")
    assert p.scale == np.float32(1.0) and p.zero_point == 2


@pytest.mark.parametrize("dtype,zp", [("uint8", 128), ("int8", 0)])
def test_symmetric(dtype, zp):
    p = qbench.calibrate(np.array([-2.0, 0.5, 1.0], np.float32), dtype, symmetric=True)
    step = 127.5 if dtype == "uint8" else 127.0  # int8 symmetric range is [-127, 127]
    assert p.scale == np.float32(2.0 / step) and p.zero_point == zp


def test_reduce_range_uses_seven_bits():
    p = qbench.calibrate(np.array([0.0, 127.0]), "uint8", reduce_range=True)
    assert p.scale == np.float32(1.0) and p.zero_point == 0
    assert qbench.quant_range("int8", reduce_range=True) == (-64, 64)


@pytest.mark.parametrize("data", [np.zeros(10, np.float32), np.zeros(1)])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_degenerate_range_gives_unit_scale_and_exact_zero(data, dtype):
    p = qbench.calibrate(data, dtype)
    assert p.scale == np.float32(1.0)
    assert qbench.dequantize(qbench.quantize(np.zeros(2, np.float32), p), p).tolist() == [0.0, 0.0]


def test_constant_array_is_not_degenerate():
    p = qbench.calibrate(np.full(5, 3.0, np.float32), "uint8")
    assert p.scale == np.float32(3 / 255) and p.zero_point == 0


def test_per_axis_matches_each_channel(rng):
    x = rng.standard_normal((4, 50)).astype(np.float32) * np.array([[1], [2], [5], [0.1]], np.float32)
    p = qbench.calibrate(x, "int8", axis=0)
    assert p.axis == 0 and p.scale.shape == (4,)
    for c in range(4):
        one = qbench.calibrate(x[c], "int8")
        assert p.scale[c] == one.scale and p.zero_point[c] == one.zero_point
    q = qbench.quantize(x, p)
    assert np.array_equal(q, qbench.reference.quantize(x, p))


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_clipping_methods_beat_minmax_on_outliers(rng, method):
    x = rng.standard_normal(100_000).astype(np.float32)
    x[:10] = 80.0  # a few huge outliers stretch the min-max range
    base = qbench.calibrate(x, "int8")
    clipped = qbench.calibrate(x, "int8", method=method, **({"percentile": 99.9} if method == "percentile" else {}))
    assert clipped.scale < base.scale

    def sqnr(p):
        return qbench.metrics.sqnr_db(x[10:], qbench.dequantize(qbench.quantize(x[10:], p), p))

    assert sqnr(clipped) > sqnr(base) + 3.0


def test_mse_lowers_round_trip_error_on_heavy_tails(rng):
    x = rng.laplace(size=60_000).astype(np.float32)

    def error(p):
        return qbench.metrics.mse(x, qbench.dequantize(qbench.quantize(x, p), p))

    base, best = qbench.calibrate(x, "int8"), qbench.calibrate(x, "int8", method="mse")
    assert best.scale < base.scale
    assert error(best) < 0.95 * error(base)
    # No clipping on a coarse grid of shrink factors does better.
    lo, hi = float(x.min()), float(x.max())
    grid = [qbench.calibrate(np.array([lo * f, hi * f]), "int8") for f in np.arange(0.3, 1.0, 0.1)]
    assert error(best) <= 1.001 * min(error(p) for p in grid)


def test_percentile_default_and_per_axis(rng):
    x = rng.standard_normal((3, 1000)).astype(np.float32)
    p = qbench.calibrate(x, method="percentile", axis=0)
    assert p.scale.shape == (3,)
    lo, hi = np.percentile(x[1].astype(np.float64), [100 - 99.999, 99.999])
    want = qbench.calibrate(np.array([lo, hi]), "uint8")
    assert p.scale[1] == want.scale and p.zero_point[1] == want.zero_point


def test_entropy_on_relu_data_is_one_sided(rng):
    x = np.maximum(rng.standard_normal(50_000), 0).astype(np.float32)
    p = qbench.calibrate(x, "uint8", method="entropy")
    assert p.zero_point == 0 and p.scale <= np.float32(x.max() / 255)


@pytest.mark.parametrize(
    "bad,msg", [(np.array([1.0, np.nan]), "NaN"), (np.array([np.inf, 1.0]), "inf"), (np.array([]), "empty")]
)
def test_bad_data(bad, msg):
    with pytest.raises(ValueError, match=msg):
        qbench.calibrate(bad)


def test_bad_arguments():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="unknown calibration method 'kl'.*minmax"):
        qbench.calibrate(x, method="kl")
    with pytest.raises(TypeError, match="unsupported quantized dtype.*uint8"):
        qbench.calibrate(x, "float16")
    with pytest.raises(TypeError, match="no option"):
        qbench.calibrate(x, method="minmax", percentile=99)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        qbench.calibrate(x, axis=3)
    with pytest.raises(ValueError, match="percentile must be in"):
        qbench.calibrate(x, method="percentile", percentile=20)


@pytest.mark.parametrize(
    "kwargs,error,msg",
    [
        ({"method": "entropy", "bins": 0}, ValueError, r"bins must be above the number of quantized levels \(256\)"),
        ({"method": "entropy", "bins": 256}, ValueError, "got 256"),  # no threshold left to search
        ({"method": "entropy", "bins": "x"}, TypeError, "bins must be an int, got 'x'"),
        ({"method": "entropy", "bins": 2048.0}, TypeError, "bins must be an int"),
        ({"method": "mse", "steps": -5}, ValueError, r"steps must be >= 2"),
        ({"method": "mse", "steps": 0}, ValueError, r"steps must be >= 2"),
        ({"method": "mse", "steps": 1}, ValueError, r"steps must be >= 2"),
        ({"method": "percentile", "percentile": "99"}, TypeError, "percentile must be a number"),
        ({"method": "percentile", "percentile": True}, TypeError, "percentile must be a number"),
        ({"symmetric": "yes"}, TypeError, "symmetric must be True or False, got 'yes'"),
        ({"reduce_range": 1}, TypeError, "reduce_range must be True or False"),
        ({"dtype": "uint16", "method": "entropy"}, ValueError, r"levels \(65536\).*got 2048 \(the default\)"),
    ],
)
def test_option_values_get_qbench_messages(kwargs, error, msg):
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    with pytest.raises(error, match=msg):
        qbench.calibrate(x, **kwargs)


def test_fewest_bins_accepted_still_search():
    # 257 bins for 256 levels leave one candidate below the maximum: on outliers it clips, unlike minmax.
    x = np.random.default_rng(1).standard_normal(100_000).astype(np.float32)
    x[:5] = 60.0
    assert qbench.calibrate(x, "uint8", method="entropy", bins=257).scale < qbench.calibrate(x, "uint8").scale


@pytest.mark.parametrize("data", [np.array([1, 2, 3]), np.ones(3, np.float16), [1, 2], np.ones(3, np.int8)])
def test_calibrate_takes_what_quantize_takes(data):
    with pytest.raises(TypeError, match="float32 or float64 data, as quantize does"):
        qbench.calibrate(data)
    with pytest.raises(TypeError, match="quantize expects x of dtype float32, float64"):
        qbench.quantize(data, qbench.QuantParams(1.0, 0, "uint8"))


def test_a_range_beyond_float32_says_so():
    with pytest.raises(ValueError, match=r"range \[-1e\+300, 1e\+300\] needs a scale beyond float32"):
        qbench.calibrate(np.array([1e300, -1e300]))
    assert qbench.calibrate(np.array([1e30, -1e30])).scale == np.float32(2e30 / 255)


def test_empty_per_axis_parameters_are_refused():
    with pytest.raises(ValueError, match="one scale per channel; got none"):
        qbench.QuantParams([], [], "uint8", axis=0)


def test_error_metrics_by_hand():
    """x = [1, 2, 3], x' = [1, 2, 4]: signal 1 + 4 + 9 = 14, noise 1: SQNR 10 log10(14) dB, MSE 1/3, max |e| 1."""
    x, back = np.array([1.0, 2.0, 3.0], np.float32), np.array([1.0, 2.0, 4.0], np.float32)
    assert qbench.metrics.sqnr_db(x, back) == pytest.approx(10 * np.log10(14.0), rel=1e-12)
    assert qbench.metrics.mse(x, back) == pytest.approx(1 / 3, rel=1e-12)
    assert qbench.metrics.max_abs_error(x, back) == 1.0
    assert qbench.metrics.sqnr_db(x, x) == float("inf")


@pytest.mark.parametrize("seed", range(6))
def test_entropy_search_matches_its_numpy_formulation(seed):
    """The Numba search's divergence for every candidate equals NumPy's (to the last bits a reordered sum moves),
    on histograms with empty bins, heavy tails and a single spike."""
    from qbench.kernels.calibrate import kl_divergences

    rng = np.random.default_rng(seed)
    bins, levels = 512, [128, 256, 127, 255, 100, 300][seed]
    data = np.abs(rng.standard_t(2 + seed, 20000))
    hist = np.histogram(data, bins=bins, range=(0, data.max()))[0].astype(np.float64)
    if seed == 5:
        hist[:] = 0
        hist[3] = 10.0
    want = qbench.reference.entropy_divergences(hist, levels)
    got = np.full(bins + 1, np.inf)
    kl_divergences(hist, levels, got)
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all()
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-15)
    assert np.argmin(got) == np.argmin(want) or want[np.argmin(got)] == pytest.approx(want.min(), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_entropy_histogram_is_numpys_bin_for_bin(seed):
    """Values on the edges, the maximum itself and zeros land in NumPy's bins."""
    from qbench.kernels.calibrate import abs_histogram

    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, 50000)
    edges = np.linspace(0.0, np.abs(x).max(), 2048 + 1)
    x[:2000] = rng.choice(edges, 2000) * rng.choice([-1.0, 1.0], 2000)  # exactly on an edge, either sign
    x[2000:2100] = 0.0
    got = np.zeros(2048, np.int64)
    abs_histogram(x, edges, got)
    np.testing.assert_array_equal(got, np.histogram(np.abs(x), bins=2048, range=(0.0, edges[-1]))[0])


def test_calibrate_each_is_calibrate_for_every_request(rng):
    x = (rng.standard_t(4, 30000) * 0.3).astype(np.float32)
    requests = [(d, m, d == "int8") for m in ("minmax", "percentile", "entropy", "mse") for d in ("int8", "uint8")]
    requests.append(("uint8", "minmax", True))
    got = qbench.ops.calibrate.calibrate_each(x, requests)
    assert got == [qbench.calibrate(x, d, method=m, symmetric=s) for d, m, s in requests]
    with pytest.raises(ValueError, match="non-finite"):
        qbench.ops.calibrate.calibrate_each(np.array([1.0, np.nan], np.float32), requests)
