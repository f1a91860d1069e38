"""Flat views of arrays of any shape and strides, for kernels that take 1-D or 3-D input.

Kernels see either 1-D arrays (per-tensor) or (outer, channels, inner) arrays
(per-axis). Any array can be seen that way without a copy, unless its strides
forbid it; then it is split along one non-channel axis and each slice tried
again. Nothing is ever copied, so a call allocates nothing but its output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np


def target_shape(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    if axis is None:
        return (math.prod(shape),)
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :]))


def flat_views(arrays: Sequence[np.ndarray], axis: int | None = None) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of no-copy views, 1-D (``axis=None``) or 3-D around ``axis``.

    All ``arrays`` have the same shape; the i-th views of each cover the same
    elements in the same order.
    """
    shape = arrays[0].shape
    target = target_shape(shape, axis)
    if all(a.flags.c_contiguous for a in arrays):  # the common case, kept cheap
        yield tuple(a.reshape(target) for a in arrays)
        return
    try:
        yield tuple(np.reshape(a, target, copy=False) for a in arrays)
        return
    except ValueError:
        pass  # some strides cannot be merged: split and try the pieces
    split = 0 if axis != 0 else len(shape) - 1
    sub_axis = None if axis is None else axis - (split < axis)
    for j in range(shape[split]):
        index = (slice(None),) * split + (j,)
        yield from flat_views([a[index] for a in arrays], sub_axis)
