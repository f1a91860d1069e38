"""Quantization parameters and the integer types they target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

from qbench.kernels import division

#: The 4-bit types (ONNX INT4 / UINT4), as ``ml_dtypes`` names them; qbench stores them packed, two per byte.
INT4, UINT4 = np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)
PACKED_DTYPES = frozenset({INT4, UINT4})

#: Target types of quantization and their full ranges.
QUANT_DTYPES: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int16): (-32768, 32767),
    UINT4: (0, 15),
    INT4: (-8, 7),
}

#: Bits per value of each target type (the 4-bit ones are one byte each when unpacked).
BITS = {dt: 4 if dt in PACKED_DTYPES else dt.itemsize * 8 for dt in QUANT_DTYPES}


def quant_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype, if it is one qbench quantizes to (``"int4"``/``"uint4"`` included)."""
    try:
        # NumPy reads the string "int4" as int32 (4 bytes): the names of the 4-bit types are taken first.
        dt = {"int4": INT4, "uint4": UINT4}.get(dtype) if isinstance(dtype, str) else None
        dt = dt or np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in QUANT_DTYPES:
        accepted = ", ".join(d.name for d in QUANT_DTYPES)
        raise TypeError(f"unsupported quantized dtype {dtype!r}; accepted: {accepted}")
    return dt


def quant_range(dtype: Any, *, symmetric: bool = False, reduce_range: bool = False) -> tuple[int, int]:
    """(qmin, qmax) that calibration maps the data range onto.

    As ONNX Runtime's quantization tool: ``reduce_range`` drops one bit (7-bit
    for 8-bit types); symmetric signed ranges drop the lowest value so that
    the range is centred on zero ([-127, 127] for int8).
    """
    dt = quant_dtype(dtype)
    qmin, qmax = QUANT_DTYPES[dt]
    if reduce_range:
        bits = BITS[dt]
        qmin, qmax = (0, 2 ** (bits - 1) - 1) if qmin == 0 else (-(2 ** (bits - 2)), 2 ** (bits - 2))
    elif symmetric and qmin < 0:
        qmin = -qmax
    return qmin, qmax


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Scale, zero point, target dtype, and for per-axis or blocked parameters the axis (and block size).

    Per-tensor: ``scale`` is a float32 scalar and ``zero_point`` an int; a 1-element 1-D pair (as exported
    models and ONNX's own test cases store them) is per tensor too, whatever ``axis`` says, as in ONNX Runtime.
    Per-axis: both are 1-D arrays with one entry per index along ``axis``.
    Blocked (ONNX opset 21, ``block_size=B``): both have the input's rank, ``axis`` of length ``ceil(D / B)``
    and every other axis as long as the input's; element ``i`` along ``axis`` uses entry ``i // B``.
    A scalar zero point is broadcast to the scale's shape. Values are checked here, once, so kernels can
    trust them; shapes against the input are checked when the parameters meet it.
    """

    scale: Any
    zero_point: Any
    dtype: Any = np.uint8
    axis: int | None = None
    block_size: int | None = None
    #: Whether quantized values of these parameters are stored two per byte (int4, uint4); set by the checks.
    #: An attribute, not a property: every quantize and dequantize reads it, and a property costs a call.
    packed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        dt = quant_dtype(self.dtype)
        lo, hi = QUANT_DTYPES[dt]
        if self.axis is not None and (isinstance(self.axis, bool) or not isinstance(self.axis, (int, np.integer))):
            raise TypeError(f"axis must be None (per-tensor) or an int, got {self.axis!r}")
        if self.block_size is not None:
            if isinstance(self.block_size, bool) or not isinstance(self.block_size, (int, np.integer)):
                raise TypeError(f"block_size must be None or a positive int, got {self.block_size!r}")
            if self.block_size < 1:
                raise ValueError(f"block_size must be a positive int, got {self.block_size}")
            if self.axis is None:
                raise ValueError("blocked parameters (block_size) need the axis the blocks run along")

        scale = np.asarray(self.scale)
        zero_point = np.asarray(self.zero_point)
        if scale.dtype.kind not in "fiu":
            raise TypeError(f"scale must be a real number or array of them, got dtype {scale.dtype}")
        if zero_point.dtype in PACKED_DTYPES:  # an ml_dtypes int4 array, as onnx.numpy_helper returns
            zero_point = zero_point.astype(np.int8)
        if zero_point.dtype.kind not in "iu" and not (
            zero_point.dtype.kind == "f"
            and np.all(np.isfinite(zero_point))
            and np.all(zero_point == np.round(zero_point))
        ):
            raise TypeError(f"zero_point must be an integer or integer array, got {self.zero_point!r}")
        if self.block_size is None and scale.size == 1 and scale.ndim <= 1 and zero_point.size == 1:
            # ONNX Runtime's rule: a scalar or 1-element 1-D scale is per tensor, whatever the axis.
            scale, zero_point = scale.reshape(()), zero_point.reshape(())
            object.__setattr__(self, "axis", None)
        if self.axis is not None and zero_point.ndim == 0:
            zero_point = np.broadcast_to(zero_point, scale.shape)
        if self.axis is None:
            wanted = "a scalar for per-tensor (axis=None)"
        elif self.block_size is None:
            wanted = "a 1-D array for per-axis"
        else:
            wanted = "an array of the input's rank for blocked parameters"
        for name, value in (("scale", scale), ("zero_point", zero_point)):
            if (value.ndim == 0) != (self.axis is None) or (self.block_size is None and value.ndim > 1):
                raise ValueError(f"{name} must be {wanted}, got shape {value.shape}")
        if self.axis is not None and scale.size == 0:
            raise ValueError("per-axis parameters need one scale per channel; got none (an empty scale)")
        if scale.shape != zero_point.shape:
            raise ValueError(f"scale and zero_point lengths differ: {scale.shape} vs {zero_point.shape}")

        scale32 = scale.astype(np.float32)
        if not np.all(np.isfinite(scale32) & (scale32 > 0)):
            raise ValueError(f"scale must be finite and > 0 (as float32), got {self.scale!r}")
        if np.any(zero_point < lo) or np.any(zero_point > hi):
            raise ValueError(f"zero_point {self.zero_point!r} is outside the {dt.name} range [{lo}, {hi}]")

        if self.axis is None:
            scale_value: Any = np.float32(scale32)
            zp_value: Any = int(zero_point)
        else:
            scale_value = scale32.copy()
            zp_value = zero_point.astype(np.int64)
            scale_value.flags.writeable = False
            zp_value.flags.writeable = False
        object.__setattr__(self, "scale", scale_value)
        object.__setattr__(self, "zero_point", zp_value)
        object.__setattr__(self, "dtype", dt)
        object.__setattr__(self, "packed", dt in PACKED_DTYPES)
        object.__setattr__(self, "axis", None if self.axis is None else int(self.axis))
        object.__setattr__(self, "block_size", None if self.block_size is None else int(self.block_size))

    @classmethod
    def per_tensor(cls, scale: np.float32, zero_point: int, dtype: np.dtype) -> QuantParams:
        """Per-tensor parameters computed by qbench itself, already valid: made without the checks (which
        cost more than quantizing a short vector), for run-time quantization such as dynamic quantization."""
        params = object.__new__(cls)
        for name, value in (("scale", np.float32(scale)), ("zero_point", int(zero_point)), ("dtype", np.dtype(dtype))):
            object.__setattr__(params, name, value)
        object.__setattr__(params, "axis", None)
        object.__setattr__(params, "block_size", None)
        object.__setattr__(params, "packed", params.dtype in PACKED_DTYPES)
        return params

    def typed(self, ftype: np.dtype) -> tuple[Any, Any, Any]:
        """(scale, zero_point, zero_point as int32) as kernels take them; cached.

        Scale and the first zero point are in float type ``ftype`` (dequantize
        subtracts the zero point in float); quantize adds the int32 one.
        """
        cache = self._cache()
        typed = cache.get(ftype)
        if typed is None:
            t = ftype.type
            if self.axis is None:
                typed = (t(self.scale), t(self.zero_point), np.int32(self.zero_point))
            else:
                typed = (self.scale.astype(t), self.zero_point.astype(t), self.zero_point.astype(np.int32))
            cache[ftype] = typed
        return typed

    def quantize_args(self, ftype: np.dtype) -> tuple[Any, Any, Any]:
        """(scale, zero point as int32, reciprocal) as quantize's kernels take them for ``ftype`` input; cached.

        The reciprocal is ``float32(1 / scale)`` where quantize multiplies by it instead of dividing, else None
        (:func:`qbench.kernels.division.reciprocal` decides, in microseconds: once per parameters).
        """
        cache = self._cache()
        key = ("quantize", ftype)
        args = cache.get(key)
        if args is None:
            scale, _, zero_point = self.typed(ftype)
            args = cache[key] = (scale, zero_point, division.reciprocal(scale, ftype))
        return args

    def _cache(self) -> dict:
        """The instance's cache of typed values: a dict made on first use (not on every call, as setdefault
        would make one)."""
        cache = self.__dict__.get("_typed")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_typed", cache)
        return cache

    @property
    def qmin(self) -> int:
        return QUANT_DTYPES[self.dtype][0]

    @property
    def qmax(self) -> int:
        return QUANT_DTYPES[self.dtype][1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantParams):
            return NotImplemented
        return (
            self.dtype == other.dtype
            and self.axis == other.axis
            and self.block_size == other.block_size
            and np.array_equal(self.scale, other.scale)
            and np.array_equal(self.zero_point, other.zero_point)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays when per-axis

    def __repr__(self) -> str:
        scale = self.scale.tolist() if self.axis is not None else float(self.scale)
        zp = self.zero_point.tolist() if self.axis is not None else self.zero_point
        block = "" if self.block_size is None else f", block_size={self.block_size}"
        return f"QuantParams(scale={scale!r}, zero_point={zp!r}, dtype={self.dtype.name}, axis={self.axis}{block})"
