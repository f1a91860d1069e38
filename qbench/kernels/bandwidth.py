"""Memory-bandwidth probes: the ceiling every memory-bound kernel is judged against.

``copy`` of integer arrays of two widths is a truncating or widening move: a
conversion kernel's streams with no arithmetic. ``update`` is the same for a
kernel that reads one array and updates another in place.
"""

import numpy as np
from numba import prange

from qbench.kernels._jit import REASSOC, kernel


@kernel
def copy(src, dst):
    """Read one array, write another (of the same or another integer width): the ceiling of a read+write kernel."""
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@kernel
def update(acc, x):
    """Read ``x`` and update ``acc`` in place with an xor: the ceiling of ``acc += x`` (unsigned ints)."""
    for i in prange(acc.shape[0]):
        acc[i] ^= x[i]


@kernel(fastmath=REASSOC)
def read(src):
    """Read an array (a reassociated sum keeps the loads live and costs almost nothing)."""
    s = np.float32(0)
    for i in prange(src.shape[0]):
        s += src[i]
    return s


@kernel
def write(dst, value):
    """Write an array without reading it."""
    for i in prange(dst.shape[0]):
        dst[i] = value
