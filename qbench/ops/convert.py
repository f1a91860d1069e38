"""ONNX QuantizeLinear and DequantizeLinear, per tensor and per axis; blocked and 4-bit parameters go to
:mod:`qbench.ops.blocks`."""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.kernels import quantize as quant_k
from qbench.ops import blocks
from qbench.ops.checks import F32, FLOAT_INPUTS, as_array, channel_axis, check_params, output_array
from qbench.ops.params import QuantParams
from qbench.ops.tuning import use_parallel
from qbench.ops.views import flat_views


def quantize(x: Any, params: QuantParams, *, out: np.ndarray | None = None, parallel: bool | None = None) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round_half_to_even(x / scale) + zero_point)``.

    ``x`` is float32 or float64 of any shape and strides; the division runs in
    ``x``'s precision. NaN maps to the zero point, +-inf saturate. Parameters
    may be per tensor, per axis or blocked (``block_size``); int4/uint4 results
    come packed two per byte (see :mod:`qbench.ops.blocks`).
    """
    params = check_params(params)
    x = as_array(x, "x", FLOAT_INPUTS, "quantize")
    if params.block_size is not None or params.packed:
        return blocks.quantize(x, params, out, parallel)
    axis = None if params.axis is None else channel_axis(params, x.shape)
    scale, zero_point, reciprocal = params.quantize_args(x.dtype)
    out = output_array(out, x.shape, params.dtype, x)
    return _convert(_QUANTIZE, axis, x, params, (scale, zero_point, out, reciprocal), parallel)


def dequantize(
    q: Any,
    params: QuantParams,
    *,
    shape: Any = None,
    out: np.ndarray | None = None,
    parallel: bool | None = None,
) -> np.ndarray:
    """ONNX DequantizeLinear: ``(float32(q) - zero_point) * scale`` in float32.

    int4/uint4 ``q`` is the packed bytes :func:`quantize` returns, with the values' ``shape``
    (or an unpacked ``ml_dtypes`` int4/uint4 array).
    """
    params = check_params(params)
    if params.block_size is not None or params.packed:
        return blocks.dequantize(q, params, shape, out, parallel)
    q = as_array(q, "q", (params.dtype,), "dequantize")
    if shape is not None and tuple(shape) != q.shape:
        raise ValueError(f"shape {tuple(shape)} differs from q's shape {q.shape} (shape= is for packed 4-bit data)")
    axis = None if params.axis is None else channel_axis(params, q.shape)
    scale, zero_point, _ = params.typed(F32)
    out = output_array(out, q.shape, F32, q)
    return _convert(_DEQUANTIZE, axis, q, params, (scale, zero_point, out), parallel)


# (per-tensor, per-channel) kernel of each conversion, with the tuning key each is switched by.
_QUANTIZE = ((quant_k.quantize_tensor, "quantize"), (quant_k.quantize_axis, "quantize_axis"))
_DEQUANTIZE = ((quant_k.dequantize_tensor, "dequantize"), (quant_k.dequantize_axis, "dequantize_axis"))


def _convert(
    kernels: tuple,
    axis: int | None,
    src: np.ndarray,
    params: QuantParams,
    args: tuple,
    parallel: bool | None,
) -> np.ndarray:
    """quantize's and dequantize's shared path: pick the kernel and its form, run it over contiguous views.

    ``args`` are the kernel's after the source: scale, zero point, output (and quantize's reciprocal).
    """
    kern, key = kernels[axis is not None]
    scale, zero_point, out, *rest = args
    run = kern.target(use_parallel(src.nbytes + out.nbytes, parallel, (key, params.dtype)))
    if axis is None and src.ndim == 1:  # the common call: flat_views would return (src, out) as they are
        run(src, scale, zero_point, out, *rest)
        return out
    for sv, ov in flat_views((src, out), axis):
        run(sv, scale, zero_point, ov, *rest)
    return out
