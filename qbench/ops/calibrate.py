"""Calibration: scale and zero point from data.

Each method picks a real range [rmin, rmax] to represent; one formula
(:func:`params_from_range`, ONNX Runtime's MinMax rule) turns ranges into
parameters. Per-axis calibration applies the method to each channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qbench.ops.params import QuantParams, quant_dtype, quant_range

_TINY = float(np.finfo(np.float32).tiny)
#: What calibrate (like quantize) takes as data.
FLOAT_DATA = (np.dtype(np.float32), np.dtype(np.float64))


def params_from_range(
    rmin: np.ndarray, rmax: np.ndarray, qmin: int, qmax: int, *, symmetric: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(scale float32, zero_point int64) for ranges ``rmin``/``rmax`` (arrays, one per channel).

    The range is widened to include 0 so that 0.0 is exactly representable;
    the scale is computed in float64 and stored as float32; the zero point is
    round_half_to_even(qmin - rmin / scale), clamped. A range too small for a
    float32 scale gives scale 1.0.
    """
    rmin = np.minimum(np.asarray(rmin, np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, np.float64), 0.0)
    if symmetric:
        absmax = np.maximum(-rmin, rmax)
        rmin, rmax = -absmax, absmax
    scale = (rmax - rmin) / (qmax - qmin)
    degenerate = scale < _TINY
    scale = np.where(degenerate, 1.0, scale)
    if symmetric:
        zero_point = np.full(scale.shape, np.rint((qmin + qmax) / 2.0))
    else:
        zero_point = np.rint(qmin - rmin / scale)
    zero_point = np.clip(zero_point, qmin, qmax).astype(np.int64)
    with np.errstate(over="ignore"):  # a scale beyond float32 becomes inf; calibrate says so
        return scale.astype(np.float32), zero_point


def _minmax(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    return float(x.min()), float(x.max())


def _percentile(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    p = options["percentile"]
    lo, hi = np.percentile(x, [100.0 - p, p])
    return float(lo), float(hi)


def _entropy(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    """Clip threshold minimizing the KL divergence between the histogram of |x| and its quantized form.

    The search of TensorRT-style static calibration: a 2048-bin histogram of
    |x|, candidate thresholds at every bin edge from the number of quantized
    levels up, outliers folded into the last kept bin; the divergences are
    computed in Numba (:func:`qbench.reference.entropy_divergences` in NumPy).
    """
    bins = options["bins"]
    lo, hi = float(x.min()), float(x.max())
    absmax = max(-lo, hi)
    if absmax == 0.0:
        return 0.0, 0.0
    from qbench.kernels.calibrate import abs_histogram, kl_divergences

    edges = np.linspace(0.0, absmax, bins + 1)
    counts = np.zeros(bins, np.int64)
    abs_histogram(x, edges, counts)  # np.histogram(np.abs(x), bins, (0, absmax)), without the copy
    hist = counts.astype(np.float64)
    signed = lo < 0.0
    levels = (qmax - qmin + 1) // 2 if signed else qmax - qmin + 1
    levels = min(levels, bins)
    divergences = np.full(bins + 1, np.inf)
    kl_divergences(hist, levels, divergences)
    best_i = bins
    if np.isfinite(divergences[levels:]).any():
        best_i = levels + int(np.argmin(divergences[levels:]))  # the first of equal minima, as a strict < keeps
    threshold = float(edges[best_i])
    return max(lo, -threshold), min(hi, threshold)


def _mse(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    """Clipping range (a shrunk [min, max]) with the lowest quantize/dequantize MSE."""
    steps = options["steps"]
    sample = x if x.size <= 1 << 16 else np.random.default_rng(0).choice(x, 1 << 16, replace=False)
    lo, hi = float(sample.min()), float(sample.max())
    best = (np.inf, lo, hi)
    d = np.empty_like(sample)
    for frac in np.linspace(1.0, 0.05, steps):
        rmin, rmax = lo * frac, hi * frac
        scale, zp = params_from_range(np.array(rmin), np.array(rmax), qmin, qmax, symmetric=False)
        # mean((clip(rint(sample / scale) + zp) - zp) * scale - sample) ** 2), in place
        np.divide(sample, float(scale), out=d)
        np.rint(d, out=d)
        d += int(zp)
        np.clip(d, qmin, qmax, out=d)
        d -= int(zp)
        d *= float(scale)
        d -= sample
        np.square(d, out=d)
        err = float(np.mean(d))
        if err < best[0]:
            best = (err, rmin, rmax)
    return best[1], best[2]


METHODS: dict[str, Callable[[np.ndarray, int, int, dict], tuple[float, float]]] = {
    "minmax": _minmax,
    "percentile": _percentile,
    "entropy": _entropy,
    "mse": _mse,
}


#: Each method's options: name -> (default, type, range check given (qmin, qmax), what is accepted).
OPTIONS: dict[str, dict[str, tuple[Any, str, Callable[[Any, int, int], bool], str]]] = {
    "percentile": {"percentile": (99.999, "number", lambda v, lo, hi: 50.0 < v <= 100.0, "in (50, 100]")},
    "entropy": {
        "bins": (
            2048,
            "int",
            lambda v, lo, hi: v > hi - lo + 1,
            "above the number of quantized levels ({levels}): the threshold search starts there",
        )
    },
    "mse": {"steps": (100, "int", lambda v, lo, hi: v >= 2, ">= 2 (candidate ranges to try)")},
}


def _is(kind: str, v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    return isinstance(v, (int, np.integer) if kind == "int" else (int, float, np.integer, np.floating))


def _options(method: str, given: dict[str, Any], qmin: int, qmax: int) -> dict[str, Any]:
    """``given`` checked against the method's options, defaults filled in; a clear error otherwise."""
    allowed = OPTIONS.get(method, {})
    unknown = set(given) - set(allowed)
    if unknown:
        raise TypeError(
            f"method {method!r} takes no option(s) {sorted(unknown)}; it accepts {sorted(allowed) or 'none'}"
        )
    out = {}
    for name, (default, kind, in_range, accepted) in allowed.items():
        value = given.get(name, default)
        if not _is(kind, value):
            raise TypeError(f"{name} must be {'an int' if kind == 'int' else 'a number'}, got {value!r}")
        if not in_range(value, qmin, qmax):
            source = "" if name in given else " (the default)"
            raise ValueError(f"{name} must be {accepted.format(levels=qmax - qmin + 1)}; got {value!r}{source}")
        out[name] = value
    return out


def calibrate(
    x: Any,
    dtype: Any = "uint8",
    *,
    symmetric: bool = False,
    axis: int | None = None,
    method: str = "minmax",
    reduce_range: bool = False,
    **options: Any,
) -> QuantParams:
    """Scale and zero point for quantizing ``x`` to ``dtype``.

    ``method``: ``minmax`` (the data's range), ``percentile`` (option
    ``percentile``, default 99.999), ``entropy`` (KL-divergence threshold over
    a 2048-bin histogram) or ``mse`` (clipping with least round-trip error).
    ``axis`` calibrates each index along that axis on its own (per-axis).
    """
    dt = quant_dtype(dtype)
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; accepted: {', '.join(METHODS)}")
    for name, flag in (("symmetric", symmetric), ("reduce_range", reduce_range)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    qmin, qmax = quant_range(dt, symmetric=symmetric, reduce_range=reduce_range)
    options = _options(method, options, qmin, qmax)
    arr = _data(x)

    find_range = METHODS[method]
    if axis is None:
        rows = [arr.ravel()]
    else:
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"axis {axis} is out of range for an array of {arr.ndim} dimensions")
        moved = np.moveaxis(arr, axis, 0)
        rows = list(moved.reshape(moved.shape[0], -1))
    ranges = np.array([find_range(row.astype(np.float64, copy=False), qmin, qmax, options) for row in rows])
    return _params(ranges, qmin, qmax, symmetric, dt, axis)


def _data(x: Any) -> np.ndarray:
    """``x`` as an array calibration takes: float32 or float64, not empty, finite."""
    arr = np.asarray(x)
    if arr.dtype not in FLOAT_DATA:
        raise TypeError(
            f"calibrate expects float32 or float64 data, as quantize does; got {arr.dtype} "
            "(convert with .astype(np.float32))"
        )
    if arr.size == 0:
        raise ValueError("calibrate needs data: got an empty array")
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"calibrate got non-finite data ({bad}); remove or replace it before calibrating")
    return arr


def _params(ranges: np.ndarray, qmin: int, qmax: int, symmetric: bool, dt: np.dtype, axis: int | None) -> QuantParams:
    """The parameters of (rows of) ``[rmin, rmax]`` ranges; a scale beyond float32 is a clear error."""
    scale, zero_point = params_from_range(ranges[:, 0], ranges[:, 1], qmin, qmax, symmetric=symmetric)
    if not np.all(np.isfinite(scale)):
        i = int(np.argmin(np.isfinite(scale)))
        raise ValueError(
            f"the data's range [{ranges[i, 0]:.6g}, {ranges[i, 1]:.6g}] needs a scale beyond float32's largest "
            f"value ({float(np.finfo(np.float32).max):.3g}) to fit {dt.name}; scale the data down before quantizing"
        )
    if axis is None:
        return QuantParams(scale[0], int(zero_point[0]), dt)
    return QuantParams(scale, zero_point, dt, axis=axis)


#: Methods whose range does not depend on the quantized range: :func:`calibrate_each` finds it once for all dtypes.
RANGE_ONLY = ("minmax", "percentile")


def calibrate_each(x: Any, requests: list[tuple[Any, str, bool]], threads: int = 1) -> list[QuantParams]:
    """``calibrate(x, dtype, method=method, symmetric=symmetric)`` (per tensor, default options) for each
    ``(dtype, method, symmetric)`` of ``requests``, with the same results: the data checked and converted to
    float64 once, each range found once per method and quantized range (once per method for those of
    :data:`RANGE_ONLY`), up to ``threads`` searches at a time (they release the GIL: NumPy's partition and
    ufuncs, the Numba kernels). What a scan of many formats over one tensor needs."""
    from concurrent.futures import ThreadPoolExecutor

    x64 = _data(x).ravel().astype(np.float64, copy=False)
    searches: dict[tuple, tuple[str, int, int]] = {}
    keys = []
    for dtype, method, symmetric in requests:
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; accepted: {', '.join(METHODS)}")
        qmin, qmax = quant_range(quant_dtype(dtype), symmetric=symmetric)
        key = (method,) if method in RANGE_ONLY else (method, qmin, qmax)
        searches.setdefault(key, (method, qmin, qmax))
        keys.append((key, qmin, qmax))

    def search(job: tuple[str, int, int]) -> tuple[float, float]:
        method, qmin, qmax = job
        return METHODS[method](x64, qmin, qmax, _options(method, {}, qmin, qmax))

    with ThreadPoolExecutor(max(1, min(threads, len(searches)))) as pool:
        ranges = dict(zip(searches, pool.map(search, searches.values()), strict=True))
    return [
        _params(np.array([ranges[key]]), qmin, qmax, symmetric, quant_dtype(dtype), None)
        for (key, qmin, qmax), (dtype, _, symmetric) in zip(keys, requests, strict=True)
    ]
