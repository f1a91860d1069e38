"""What a kernel family declares, once: its axes, dtypes, arrays, implementations and correctness check.

A :class:`Family` is everything the suite, the report and the side-by-side
comparisons need to know about one kernel: the arrays a case touches
(:class:`Operand`, from which bytes moved, working set and the bandwidth
probe follow), how to make its data, a table of implementations
``{impl: builder}`` (qbench, the NumPy reference, each peer) and the check
that holds an implementation's answer to the reference before it is timed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grid import IMPLS, impls_override, quick, sizes, thread_counts

#: How a kernel touches an array: read, written, or read and written in place.
READ, WRITE, UPDATE = "r", "w", "rw"
#: One array a kernel touches per element: its dtype and how.
Stream = tuple[str, str]
#: A case's extent along each of its family's axes, e.g. ``{"size": 2**20}``.
Shape = Mapping[str, int]
#: ``builder(data, threads, parallel)`` -> the zero-argument call to time. ``parallel`` is qbench's
#: serial/parallel choice (None: its own); a peer gets the thread budget its users would give it.
Builder = Callable[[Any, int, "bool | None"], Callable[[], Any]]


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


@dataclass(frozen=True)
class Operand:
    """One array a case touches: its dtype, how (:data:`READ`, :data:`WRITE`, :data:`UPDATE`), its elements."""

    dtype: str
    mode: str
    elements: int

    @property
    def nbytes(self) -> int:
        return self.elements * itemsize(self.dtype)

    @property
    def moved(self) -> int:
        """Bytes read plus written: an array updated in place is read and written."""
        return self.nbytes * (2 if self.mode == UPDATE else 1)


def elementwise(streams: Callable[[str], tuple[Stream, ...]]) -> Callable[[str, Shape], tuple[Operand, ...]]:
    """Operands of a 1-D family whose every array has ``size`` elements, from its per-element streams."""
    return lambda dtype, shape: tuple(Operand(d, m, shape["size"]) for d, m in streams(dtype))


def peers_module() -> Any:
    """``qbench.peers`` of the commit measured; an older commit without it has no peers to measure (a skip)."""
    try:
        from qbench import peers
    except ImportError:  # an older commit, from before qbench had its peers module
        raise NotImplementedError("this qbench version has no peers module; peers are not measured") from None
    return peers


def no_check(data: Any, impl: str, result: Any) -> None:
    """For a family whose answer the unit tests hold (nothing cheap to compare at benchmark sizes)."""


@dataclass(frozen=True, kw_only=True)
class Family:
    """One kernel of the suite. ``dtype`` is whatever names a variant: ``uint8``, or ``float32+=uint8``."""

    name: str
    summary: str
    dtypes: tuple[str, ...]
    quick_dtypes: tuple[str, ...]
    operands: Callable[[str, Shape], tuple[Operand, ...]]
    data: Callable[[str, Shape, Buffers], Any]  # the arrays and parameters of one case
    impls: Mapping[str, Builder]
    check: Callable[[Any, str, Any], None] = no_check  # raises AssertionError when an answer is wrong
    ceiling: str = "stream"  # the probe it is judged against, one of rules.CEILINGS
    quick_impls: tuple[str, ...] = IMPLS
    axes: tuple[str, ...] = ("size",)
    #: Bytes a call allocates for its output (0 for an implementation that writes into a preallocated one).
    allocates: Callable[[Any, str], int] = lambda data, impl: 0
    axis_values: Mapping[str, Callable[[], tuple]] = field(default_factory=lambda: {"size": sizes})
    threads: Callable[[], tuple[int, ...]] = thread_counts  # the thread counts it is swept over
    numpy_threads: bool = False  # whether its NumPy implementation can use threads (BLAS does)

    @property
    def benchmark(self) -> str:
        """The asv class that times it: ``quantize_axis`` -> ``QuantizeAxis``."""
        return "".join(part.title() for part in self.name.split("_"))

    def grid_dtypes(self) -> tuple[str, ...]:
        return self.quick_dtypes if quick() else self.dtypes

    def grid_impls(self) -> tuple[str, ...]:
        impls = self.quick_impls if quick() else tuple(self.impls)
        only = impls_override()
        return tuple(i for i in impls if i in only) if only else impls

    def grid(self) -> tuple[list, list[str]]:
        """asv ``params`` and ``param_names``: the family's axes, then dtype, threads and implementation."""
        axes = [list(self.axis_values[a]()) for a in self.axes]
        return [*axes, list(self.grid_dtypes()), list(self.threads()), list(self.grid_impls())], [
            *self.axes,
            "dtype",
            "threads",
            "impl",
        ]

    def shape(self, shape: int | str | Shape) -> Shape:
        """A shape from a mapping of the family's axes, or from the bare value of a one-axis family."""
        if isinstance(shape, Mapping):
            return shape
        if len(self.axes) != 1:
            raise TypeError(f"{self.name} has axes {self.axes}; pass a mapping, not a bare value")
        return {"size": int(shape)} if self.axes == ("size",) else {self.axes[0]: shape}

    def build(
        self, dtype: str, shape: int | Shape, impl: str, threads: int, buffers: Buffers, parallel: bool | None = None
    ) -> tuple[Callable[[], Any], Any]:
        """(the call to time, its data) for one case; the call has not run yet."""
        if impl not in self.impls:
            raise ValueError(f"{self.name} has no implementation {impl!r}; it has {', '.join(self.impls)}")
        data = self.data(dtype, self.shape(shape), buffers)
        return self.impls[impl](data, threads, parallel), data


class Buffers:
    """The arrays of one case: each at a fixed offset into a 4 KiB page, filled from a seeded generator."""

    PAGE = 4096
    SLOT_OFFSET = 1408  # 22 cache lines: slots 0, 1, 2 start 0, 1408 and 2816 bytes into a page
    TILE = 1 << 16  # random values made per array; longer arrays repeat them (random data for 2**26 costs seconds)

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def empty(self, shape: Any, dtype: Any, slot: int) -> np.ndarray:
        """An array that starts ``slot * SLOT_OFFSET`` bytes into a page, the same in every process.

        Where an input and an output start relative to 4 KiB pages decides whether
        their loads and stores alias in the CPU's store-to-load checks: measured
        here, quantize of 2**16 floats took 17.7 to 25 us depending on it alone.
        Left to the allocator, that offset changes from process to process and
        shows up as a 40% "difference" between two runs of the same code.
        """
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dt.itemsize
        buf = np.empty(nbytes + 2 * self.PAGE, np.uint8)
        start = (-buf.ctypes.data) % self.PAGE + (slot * self.SLOT_OFFSET) % self.PAGE
        return buf[start : start + nbytes].view(dt).reshape(shape)

    def random(self, dtype: Any, shape: Any, slot: int) -> np.ndarray:
        """Standard normal floats, or integers over the dtype's whole range, in page slot ``slot``."""
        dt = np.dtype(dtype)
        out = self.empty(shape, dt, slot)
        flat = out.reshape(-1)
        head = min(flat.size, self.TILE)
        if dt.kind == "f":
            flat[:head] = self.rng.standard_normal(head, dtype=dt)
        else:
            info = np.iinfo(dt)
            flat[:head] = self.rng.integers(info.min, info.max, head, endpoint=True, dtype=dt)
        filled = head
        while filled < flat.size:  # double the filled part: no temporary as large as the array
            step = min(filled, flat.size - filled)
            flat[filled : filled + step] = flat[:step]
            filled += step
        return out
