"""Calibration: scale and zero point from data.

Each method picks a real range [rmin, rmax] to represent; one formula
(:func:`params_from_range`, ONNX Runtime's MinMax rule) turns ranges into
parameters. Per-axis calibration applies the method to each channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qbench.params import QuantParams, quant_dtype, quant_range

_TINY = float(np.finfo(np.float32).tiny)


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
    return scale.astype(np.float32), zero_point


def _minmax(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    return float(x.min()), float(x.max())


def _percentile(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    p = float(options.get("percentile", 99.999))
    if not 50.0 < p <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {p}")
    lo, hi = np.percentile(x, [100.0 - p, p])
    return float(lo), float(hi)


def _entropy(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    """Clip threshold minimizing the KL divergence between the histogram of |x| and its quantized form.

    The search of TensorRT-style static calibration: a 2048-bin histogram of
    |x|, candidate thresholds at every bin edge from the number of quantized
    levels up, outliers folded into the last kept bin.
    """
    bins = int(options.get("bins", 2048))
    absx = np.abs(x)
    absmax = float(absx.max())
    if absmax == 0.0:
        return 0.0, 0.0
    hist, edges = np.histogram(absx, bins=bins, range=(0.0, absmax))
    hist = hist.astype(np.float64)
    signed = float(x.min()) < 0.0
    levels = (qmax - qmin + 1) // 2 if signed else qmax - qmin + 1
    levels = min(levels, bins)
    best_kl, best_i = np.inf, bins
    for i in range(levels, bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        kept = hist[:i]
        # Merge the i bins into `levels` groups, then spread each group's mass
        # evenly over its non-empty bins.
        group = (np.arange(i) * levels) // i
        mass = np.bincount(group, weights=kept, minlength=levels)
        nonzero = np.bincount(group, weights=(kept > 0).astype(np.float64), minlength=levels)
        q = np.where(kept > 0, mass[group] / np.maximum(nonzero[group], 1.0), 0.0)
        ps, qs = p.sum(), q.sum()
        if qs == 0.0:
            continue
        p, q = p / ps, q / qs
        support = p > 0
        if np.any(q[support] == 0.0):
            # A bin with data maps to an empty quantized bin: smooth it as the
            # reference tools do, rather than declaring an infinite divergence.
            q = np.where(support & (q == 0.0), 1e-12, q)
        kl = float(np.sum(p[support] * np.log(p[support] / q[support])))
        if kl < best_kl:
            best_kl, best_i = kl, i
    threshold = float(edges[best_i])
    return max(float(x.min()), -threshold), min(float(x.max()), threshold)


def _mse(x: np.ndarray, qmin: int, qmax: int, options: dict) -> tuple[float, float]:
    """Clipping range (a shrunk [min, max]) with the lowest quantize/dequantize MSE."""
    steps = int(options.get("steps", 100))
    sample = x if x.size <= 1 << 16 else np.random.default_rng(0).choice(x, 1 << 16, replace=False)
    lo, hi = float(sample.min()), float(sample.max())
    best = (np.inf, lo, hi)
    for frac in np.linspace(1.0, 0.05, steps):
        rmin, rmax = lo * frac, hi * frac
        scale, zp = params_from_range(np.array(rmin), np.array(rmax), qmin, qmax, symmetric=False)
        q = np.clip(np.rint(sample / float(scale)) + int(zp), qmin, qmax)
        err = float(np.mean(((q - int(zp)) * float(scale) - sample) ** 2))
        if err < best[0]:
            best = (err, rmin, rmax)
    return best[1], best[2]


METHODS: dict[str, Callable[[np.ndarray, int, int, dict], tuple[float, float]]] = {
    "minmax": _minmax,
    "percentile": _percentile,
    "entropy": _entropy,
    "mse": _mse,
}


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
    allowed = {"percentile": {"percentile"}, "entropy": {"bins"}, "mse": {"steps"}}.get(method, set())
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(
            f"method {method!r} takes no option(s) {sorted(unknown)}; it accepts {sorted(allowed) or 'none'}"
        )
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"calibrate expects real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("calibrate needs data: got an empty array")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"calibrate got non-finite data ({bad}); remove or replace it before calibrating")

    qmin, qmax = quant_range(dt, symmetric=symmetric, reduce_range=reduce_range)
    find_range = METHODS[method]
    if axis is None:
        rows = [arr.ravel()]
    else:
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"axis {axis} is out of range for an array of {arr.ndim} dimensions")
        moved = np.moveaxis(arr, axis, 0)
        rows = list(moved.reshape(moved.shape[0], -1))
    ranges = np.array([find_range(row.astype(np.float64), qmin, qmax, options) for row in rows])
    scale, zero_point = params_from_range(ranges[:, 0], ranges[:, 1], qmin, qmax, symmetric=symmetric)
    if axis is None:
        return QuantParams(scale[0], int(zero_point[0]), dt)
    return QuantParams(scale, zero_point, dt, axis=axis)
