"""The benchmark grid and the bytes-moved rule of each kernel, defined once.

The asv suite (``benchmarks/``) builds its ``params`` from here and the report
(:mod:`qbench.report`) turns times into throughput with the same rules, so a
plot can never disagree with the benchmark that produced it.

Environment variables shape the grid, read when the suite is imported:
``QBENCH_QUICK=1`` selects the reduced grid of ``qbench run --quick``,
``QBENCH_THREADS=1,8`` overrides the thread counts (default: 1 and all cores)
and ``QBENCH_SIZES=1024,65536`` the sizes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: 2**10 ... 2**26 elements in steps of x4: from L1-resident to DRAM-sized.
SIZES_FULL = tuple(2**k for k in range(10, 27, 2))
#: The quick grid keeps one size per memory level (2**14 and 2**24 among them).
SIZES_QUICK = (2**10, 2**14, 2**18, 2**20, 2**24)

IMPLS = ("qbench", "numpy")
#: Optional peer libraries (the ``peers`` extra); absent ones are skipped, not failed.
PEER_IMPLS = ("onnxruntime", "torch")
WITH_PEERS = IMPLS + PEER_IMPLS


def quick() -> bool:
    return os.environ.get("QBENCH_QUICK", "") == "1"


def sizes() -> tuple[int, ...]:
    """Sizes to sweep: ``QBENCH_SIZES`` (comma-separated element counts) if set, else the grid of the mode."""
    spec = os.environ.get("QBENCH_SIZES", "")
    if spec:
        return tuple(sorted({int(s) for s in spec.split(",") if s.strip()}))
    return SIZES_QUICK if quick() else SIZES_FULL


def all_cores() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def thread_counts() -> tuple[int, ...]:
    """Thread counts to sweep: ``QBENCH_THREADS`` if set, else 1 and all cores."""
    spec = os.environ.get("QBENCH_THREADS", "")
    counts = [int(t) for t in spec.split(",") if t.strip()] if spec else [1, all_cores()]
    return tuple(sorted(set(counts)))


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def acc_pair(dtype: str) -> tuple[str, str]:
    """``"float32+=uint8"`` -> ("float32", "uint8"): the accumulator and the added array."""
    acc, x = dtype.split("+=")
    return acc, x


#: How a kernel touches an array, per element: read, written, or read and written in place.
READ, WRITE, UPDATE = "r", "w", "rw"
#: One array a kernel touches: its dtype and how.
Stream = tuple[str, str]


@dataclass(frozen=True)
class KernelCase:
    """One kernel of the suite: its dtype axis and the arrays one element of it touches."""

    name: str
    dtypes: tuple[str, ...]
    quick_dtypes: tuple[str, ...]
    streams: Callable[[str], tuple[Stream, ...]]
    summary: str
    ceiling: str = "stream"  # the probe it is judged against, one of CEILINGS
    impls: tuple[str, ...] = IMPLS
    quick_impls: tuple[str, ...] = IMPLS

    def grid_dtypes(self) -> tuple[str, ...]:
        return self.quick_dtypes if quick() else self.dtypes

    def grid_impls(self) -> tuple[str, ...]:
        return self.quick_impls if quick() else self.impls


def _quantize_streams(dtype: str) -> tuple[Stream, ...]:
    return (("float32", READ), (dtype, WRITE))


def _dequantize_streams(dtype: str) -> tuple[Stream, ...]:
    return ((dtype, READ), ("float32", WRITE))


def _accumulate_streams(dtype: str) -> tuple[Stream, ...]:
    acc, x = acc_pair(dtype)
    return ((acc, UPDATE), (x, READ))


#: Every timed kernel. ``dtype`` is the quantized type for (de)quantize and
#: qdot, the input type for sum and dot, and ``acc+=x`` for accumulate.
KERNELS: dict[str, KernelCase] = {
    case.name: case
    for case in (
        KernelCase(
            "quantize",
            ("uint8", "int8", "uint16", "int16"),
            ("uint8", "int8"),
            _quantize_streams,
            "float32 -> q, per tensor",
            impls=WITH_PEERS,
        ),
        KernelCase(
            "quantize_axis",
            ("uint8", "int8"),
            ("uint8",),
            _quantize_streams,
            "float32 -> q, per channel (64 channels on axis 0)",
            impls=WITH_PEERS,
        ),
        KernelCase(
            "dequantize",
            ("uint8", "int8", "uint16", "int16"),
            ("uint8", "int8"),
            _dequantize_streams,
            "q -> float32, per tensor",
            impls=WITH_PEERS,
        ),
        KernelCase(
            "dequantize_axis",
            ("uint8", "int8"),
            ("uint8",),
            _dequantize_streams,
            "q -> float32, per channel (64 channels on axis 0)",
            impls=WITH_PEERS,
        ),
        KernelCase(
            "sum",
            ("float32", "float64", "uint8", "int8", "uint16", "int16", "int32"),
            ("float32", "uint8", "int8"),
            lambda d: ((d, READ),),
            "whole-array sum, widening accumulator",
            ceiling="read",
        ),
        KernelCase(
            "accumulate",
            ("float32+=float32", "float32+=uint8", "uint8+=uint8", "int32+=int8", "uint16+=uint8", "int32+=int32"),
            ("float32+=float32", "float32+=uint8", "uint8+=uint8"),
            _accumulate_streams,
            "acc += x in place",
            ceiling="update",
        ),
        KernelCase(
            "dot",
            ("float32", "float64", "int8", "uint8"),
            ("float32", "int8"),
            lambda d: ((d, READ), (d, READ)),
            "dot product of two vectors",
            ceiling="read",
        ),
        KernelCase(
            "qdot",
            ("uint8", "int8"),
            ("uint8",),
            lambda d: ((d, READ), (d, READ)),
            "dot of two quantized vectors, returned as float",
            ceiling="read",
        ),
    )
}

#: Memory-bandwidth probes on float32 arrays, and the arrays each touches.
BANDWIDTH_OPS: dict[str, tuple[Stream, ...]] = {
    "copy": (("float32", READ), ("float32", WRITE)),
    "read": (("float32", READ),),
    "write": (("float32", WRITE),),
}

#: The pairs behind "what does 8-bit buy": the float32 variant and the 8-bit one of the same kernel.
SPEEDUP_PAIRS: dict[str, tuple[str, str]] = {
    "sum": ("float32", "uint8"),
    "dot": ("float32", "int8"),
    "accumulate": ("float32+=float32", "uint8+=uint8"),
}

#: The ``against`` of a thread-scaling comparison.
ONE_THREAD = "1 thread"


@dataclass(frozen=True)
class Comparison:
    """qbench on one case against a baseline, both timed alternately in one process.

    On a shared machine two processes running the same code can differ by 1.7x
    while calls within one process agree to about 1%, so a ratio of two asv
    results (two processes) is mostly noise and a ratio measured side by side is
    not. ``against`` is a peer library or ``numpy`` (the same case, another
    implementation), another dtype of the same kernel (what 8-bit buys), a
    bandwidth probe (share of the ceiling, in bytes/s), or :data:`ONE_THREAD`.
    """

    kernel: str
    dtype: str
    against: str

    @property
    def name(self) -> str:
        return f"{self.kernel} {self.dtype} / {self.against}"

    @classmethod
    def parse(cls, name: str) -> Comparison:
        case, against = name.split(" / ", 1)
        kernel, dtype = case.split(" ", 1)
        return cls(kernel, dtype, against)

    @property
    def kind(self) -> str:
        """``peer``, ``ceiling``, ``dtype`` or ``threads``: what the ratio says."""
        if self.against in CEILINGS:
            return "ceiling"
        if self.against == ONE_THREAD:
            return "threads"
        return "dtype" if self.against in KERNELS[self.kernel].dtypes else "peer"


def comparisons() -> tuple[Comparison, ...]:
    """The side-by-side grid: each target the kernels are held to, as one ratio."""
    out = [
        Comparison(kernel, dtype, against)
        for kernel in ("quantize", "dequantize")
        for dtype in ("uint8", "int8")
        for against in (*PEER_IMPLS, "numpy", KERNELS[kernel].ceiling)
    ]
    out += [
        Comparison(kernel, dtype, KERNELS[kernel].ceiling)
        for kernel in SPEEDUP_PAIRS
        for dtype in KERNELS[kernel].quick_dtypes
    ]
    out += [Comparison(kernel, low, flt) for kernel, (flt, low) in SPEEDUP_PAIRS.items()]
    out += [
        Comparison(kernel, dtype, ONE_THREAD)
        for kernel, dtype in (("quantize", "uint8"), ("dequantize", "uint8"), ("sum", "uint8"), ("dot", "int8"))
    ]
    return tuple(out)


def side_by_side_grid() -> tuple[list, list[str]]:
    return [list(sizes()), [c.name for c in comparisons()], list(thread_counts())], ["size", "comparison", "threads"]


#: Calibration timing and accuracy grids.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy", "mse")
DISTRIBUTIONS = ("normal", "uniform", "laplace", "outliers")
ACCURACY_DTYPES = ("uint8", "int8")
ACCURACY_SIZE = 2**16
MEMORY_SIZE = 2**20


def calibration_sizes() -> tuple[int, ...]:
    return (2**14, 2**18) if quick() else (2**14, 2**18, 2**22)


def streams(kernel: str, dtype: str) -> tuple[Stream, ...]:
    """The arrays one element of ``kernel`` touches, each as (dtype, mode)."""
    if kernel in BANDWIDTH_OPS:
        return BANDWIDTH_OPS[kernel]
    return KERNELS[kernel].streams(dtype)


def bytes_moved(kernel: str, dtype: str, size: int) -> int:
    """Bytes a kernel must read plus write for ``size`` elements: the throughput rule.

    quantize float32 -> uint8 moves 4 + 1 bytes per element; ``acc += x``
    reads and writes acc and reads x.
    """
    return size * sum(itemsize(d) * (2 if mode == UPDATE else 1) for d, mode in streams(kernel, dtype))


def footprint(kernel: str, dtype: str, size: int) -> int:
    """Working-set bytes of ``size`` elements: every array the kernel touches, once (the x axis of the plots)."""
    return size * sum(itemsize(d) for d, _ in streams(kernel, dtype))


#: What a kernel's share of a bandwidth ceiling is measured against, side by side in one process. The pattern
#: probes move exactly the kernel's bytes, with its arrays' widths and modes and no arithmetic (integer views:
#: a truncating or widening move, an xor in place), so whatever the memory system does with those streams
#: (a write-allocate read of a line before a store, or a CPU that skips it for full-line writes) it does to both.
CEILINGS: dict[str, str] = {
    "stream": "the kernel's streams with no arithmetic: read its input, write its output (same widths)",
    "update": "the kernel's streams with no arithmetic: read x and update acc in place (same widths)",
    "read": "float32 read of the same working-set bytes",
}


def probe_streams(kernel: str, dtype: str) -> tuple[Stream, ...]:
    """The arrays of a kernel's pattern probe: its own, each as the unsigned integer type of its width."""
    return tuple((f"uint{8 * itemsize(d)}", mode) for d, mode in streams(kernel, dtype))


def ceiling_size(kernel: str, dtype: str, size: int) -> int:
    """Elements of the kernel's bandwidth probe with the same working-set bytes as ``size`` of the kernel.

    A share of a ceiling compares like with like: 2**24 uint8 values (16 MiB)
    may sit in a cache that 2**24 float32 values (64 MiB) do not fit. The
    pattern probes use the kernel's own arrays, so they need ``size`` itself.
    """
    probe = KERNELS[kernel].ceiling
    if probe != "read":
        return size
    return max(1, round(footprint(kernel, dtype, size) / footprint(probe, "float32", 1)))


def kernel_grid(kernel: str) -> tuple[list, list[str]]:
    """asv ``params`` and ``param_names`` of a kernel's benchmark."""
    case = KERNELS[kernel]
    return [list(sizes()), list(case.grid_dtypes()), list(thread_counts()), list(case.grid_impls())], [
        "size",
        "dtype",
        "threads",
        "impl",
    ]


def bandwidth_grid() -> tuple[list, list[str]]:
    return [list(sizes()), list(BANDWIDTH_OPS), list(thread_counts())], ["size", "op", "threads"]


def memory_grid() -> tuple[list, list[str]]:
    """One row per kernel and dtype of the current grid, both implementations."""
    cases = [f"{k}:{d}" for k, case in KERNELS.items() for d in case.grid_dtypes()]
    return [cases, list(IMPLS)], ["case", "impl"]


def make_distribution(name: str, size: int, seed: int = 0) -> np.ndarray:
    """float32 test data: ``normal``, ``uniform``, ``laplace``, or ``outliers`` (normal plus 0.1% at 50 sigma)."""
    rng = np.random.default_rng(seed)
    if name == "normal":
        x = rng.standard_normal(size)
    elif name == "uniform":
        x = rng.uniform(-1.0, 1.0, size)
    elif name == "laplace":
        x = rng.laplace(size=size)
    elif name == "outliers":
        x = rng.standard_normal(size)
        idx = rng.choice(size, max(1, size // 1000), replace=False)
        x[idx] = 50.0 * rng.choice([-1.0, 1.0], idx.size)
    else:
        raise ValueError(f"unknown distribution {name!r}; accepted: {', '.join(DISTRIBUTIONS)}")
    return x.astype(np.float32)
