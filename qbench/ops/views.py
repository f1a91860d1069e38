"""Flat views of arrays of any shape and strides, for kernels that take 1-D or 3-D input.

Kernels see either 1-D arrays (per-tensor) or (outer, channels, inner) arrays
(per-axis). Any array can be seen that way without a copy, unless its strides
forbid it; then it is split along one non-channel axis and each slice tried
again. Nothing is ever copied, so a call allocates nothing but its output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def target_shape(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    if axis is None:
        return (math.prod(shape),)
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :]))


def flat_views(arrays: Sequence[np.ndarray], axis: int | None = None) -> list[tuple[np.ndarray, ...]]:
    """Tuples of no-copy views, 1-D (``axis=None``) or 3-D around ``axis``.

    All ``arrays`` have the same shape; the i-th views of each cover the same
    elements in the same order. Usually one tuple; more only when strides
    cannot be merged.
    """
    first = arrays[0]
    if axis is None and first.ndim == 1:  # the common case, kept cheap
        return [tuple(arrays)]
    target = target_shape(first.shape, axis)
    try:
        return [tuple(np.reshape(a, target, copy=False) for a in arrays)]
    except ValueError:
        pass  # some strides cannot be merged: split and try the pieces
    split = 0 if axis != 0 else first.ndim - 1
    sub_axis = None if axis is None else axis - (split < axis)
    views: list[tuple[np.ndarray, ...]] = []
    for j in range(first.shape[split]):
        index = (slice(None),) * split + (j,)
        views += flat_views([a[index] for a in arrays], sub_axis)
    return views
