"""Argument checks shared by the public operations: accepted dtypes, parameters, axes and output arrays.

Every operation checks what it is given and raises ``TypeError`` or ``ValueError`` that says what was wrong
and what is accepted; the Numba kernels behind them trust their arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qbench.ops.params import QuantParams

# Frozensets: a membership test per call costs a quarter of a tuple scan.
FLOAT_INPUTS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
INT8_INPUTS = frozenset({np.dtype(np.int8), np.dtype(np.uint8)})
DOT_INPUTS = FLOAT_INPUTS | INT8_INPUTS
SUM_INPUTS = frozenset(
    np.dtype(t) for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")
)
ACC_TYPES = frozenset(
    np.dtype(t)
    for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")
)
F32 = np.dtype(np.float32)


def dtype_names(dtypes: frozenset[np.dtype] | tuple[np.dtype, ...]) -> str:
    return ", ".join(sorted(d.name for d in dtypes))


def as_array(x: Any, name: str, accepted: frozenset[np.dtype] | tuple[np.dtype, ...], what: str) -> np.ndarray:
    """``x`` as an ndarray of an ``accepted`` dtype, or a TypeError naming ``what`` took it."""
    arr = x if type(x) is np.ndarray else np.asarray(x)
    if arr.dtype not in accepted:
        raise TypeError(f"{what} expects {name} of dtype {dtype_names(accepted)}; got {arr.dtype}")
    return arr


def check_params(params: Any) -> QuantParams:
    if not isinstance(params, QuantParams):
        raise TypeError(f"params must be a qbench.QuantParams (see qbench.ops.calibrate), got {type(params).__name__}")
    return params


def channel_axis(params: QuantParams, shape: tuple[int, ...]) -> int | None:
    """``params.axis`` normalized against ``shape``, checked against the parameter length."""
    if params.axis is None:
        return None
    ndim = len(shape)
    if not -ndim <= params.axis < ndim:
        raise ValueError(f"axis {params.axis} is out of range for an array of {ndim} dimensions (shape {shape})")
    axis = params.axis % ndim
    if len(params.scale) != shape[axis]:
        raise ValueError(
            f"per-axis parameters have {len(params.scale)} entries but axis {axis} of shape {shape} "
            f"has length {shape[axis]}"
        )
    return axis


# np.may_share_memory without NumPy's __array_function__ dispatch, which costs as much as the test itself.
_may_share_memory = getattr(np.may_share_memory, "_implementation", np.may_share_memory)


def output_array(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype, source: np.ndarray) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype or out.shape != shape:
        raise ValueError(f"out must have dtype {dtype.name} and shape {shape}; got {out.dtype.name} {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if _may_share_memory(out, source):
        raise ValueError("out must not overlap the input array")
    return out
