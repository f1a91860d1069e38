"""Rules by kernel name, read by the suite and the report alike: bytes moved, working set, ceilings,
the side-by-side comparisons and the asv grids.

A plot can never disagree with the benchmark that produced it: both count
bytes with :func:`bytes_moved`, from the arrays the family declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from .families import BANDWIDTH_OPS, KERNELS
from .grid import GATE_CACHE, IMPLS, PEER_IMPLS, kernels_override, sizes, thread_counts
from .matmul import MATMUL
from .registry import Family, Operand, Shape, Stream, itemsize

#: What a kernel's share of a bandwidth ceiling is measured against, side by side in one process. The pattern
#: probes move exactly the kernel's bytes, with its arrays' widths and modes and no arithmetic (integer views:
#: a truncating or widening move, an xor in place), so whatever the memory system does with those streams
#: (a write-allocate read of a line before a store, or a CPU that skips it for full-line writes) it does to both.
CEILINGS: dict[str, str] = {
    "stream": "the kernel's streams with no arithmetic: read its input, write its output (same widths)",
    "update": "the kernel's streams with no arithmetic: read x and update acc in place (same widths)",
    "read": "float32 read of the same working-set bytes",
    "write": "float32 write of the same working-set bytes",
}

#: The pairs behind "what does 8-bit buy": the float32 variant and the 8-bit one of the same kernel.
SPEEDUP_PAIRS: dict[str, tuple[str, str]] = {
    "sum": ("float32", "uint8"),
    "dot": ("float32", "int8"),
    "accumulate": ("float32+=float32", "uint8+=uint8"),
}

#: The ``against`` of a thread-scaling comparison.
ONE_THREAD = "1 thread"

#: Every family: the elementwise kernels (:data:`KERNELS`, swept by size) and the matrix products (by shape).
FAMILIES: dict[str, Family] = {**KERNELS, MATMUL.name: MATMUL}

#: The asv class of each kernel family, and the family it times (how results name their kernel).
BENCHMARK_KERNELS: dict[str, str] = {f.benchmark: f.name for f in FAMILIES.values()}


def family(kernel: str) -> Family:
    try:
        return FAMILIES[kernel]
    except KeyError:
        raise ValueError(f"unknown kernel {kernel!r}; known: {', '.join(FAMILIES)}") from None


def operands(kernel: str, dtype: str, shape: int | Shape) -> tuple[Operand, ...]:
    """The arrays a case of ``kernel`` touches (a bandwidth probe's too), each with its element count."""
    if kernel in BANDWIDTH_OPS:
        n = shape if isinstance(shape, int) else shape["size"]
        return tuple(Operand(d, m, int(n)) for d, m in BANDWIDTH_OPS[kernel])
    fam = family(kernel)
    return fam.operands(dtype, fam.shape(shape))


def streams(kernel: str, dtype: str) -> tuple[Stream, ...]:
    """The arrays one element of a 1-D ``kernel`` touches, each as (dtype, mode)."""
    return tuple((o.dtype, o.mode) for o in operands(kernel, dtype, 1))


def bytes_moved(kernel: str, dtype: str, shape: int | Shape) -> int:
    """Bytes a case must read plus write: the throughput rule.

    quantize float32 -> uint8 moves 4 + 1 bytes per element; ``acc += x``
    reads and writes acc and reads x.
    """
    return sum(o.moved for o in operands(kernel, dtype, shape))


def footprint(kernel: str, dtype: str, shape: int | Shape) -> int:
    """Working-set bytes: every array the case touches, once (the x axis of the plots)."""
    return sum(o.nbytes for o in operands(kernel, dtype, shape))


def probe_operands(kernel: str, dtype: str, shape: int | Shape) -> tuple[Operand, ...]:
    """The arrays of a kernel's pattern probe: its own, each as the unsigned integer type of its width."""
    return tuple(Operand(f"uint{8 * itemsize(o.dtype)}", o.mode, o.elements) for o in operands(kernel, dtype, shape))


def probe_streams(kernel: str, dtype: str) -> tuple[Stream, ...]:
    return tuple((o.dtype, o.mode) for o in probe_operands(kernel, dtype, 1))


def ceiling_size(kernel: str, dtype: str, size: int) -> int:
    """Elements of the kernel's bandwidth probe with the same working-set bytes as ``size`` of the kernel.

    A share of a ceiling compares like with like: 2**24 uint8 values (16 MiB)
    may sit in a cache that 2**24 float32 values (64 MiB) do not fit. The
    pattern probes use the kernel's own arrays, so they need ``size`` itself.
    """
    if family(kernel).ceiling not in ("read", "write"):
        return size
    return max(1, round(footprint(kernel, dtype, size) / footprint("read", "float32", 1)))


@dataclass(frozen=True)
class Comparison:
    """qbench on one case against a baseline, both timed alternately in one process.

    Two processes on a shared machine differ far more than calls within one
    process, so a ratio of two asv results (two processes) is mostly noise and a
    ratio measured side by side is not. ``against`` is a peer library or
    ``numpy`` (the same case, another implementation), another dtype of the same kernel (what 8-bit buys), a
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
        return "dtype" if self.against in family(self.kernel).dtypes else "peer"


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


def kernel_grid(kernel: str) -> tuple[list, list[str]]:
    """asv ``params`` and ``param_names`` of a kernel's benchmark."""
    return family(kernel).grid()


def gate_points() -> list[tuple[str, str, int | str]]:
    """The gate's cache-resident points, ``(kernel, dtype, size or shape)``: every family and dtype of the grid
    at :data:`grid.GATE_CACHE` (a size, or the GEMV shape of the matrix products), of the families
    ``QBENCH_KERNELS`` names if it is set. Their instructions are counted."""
    only = kernels_override()
    unknown = [k for k in only or () if k not in FAMILIES]
    if unknown:
        raise ValueError(f"QBENCH_KERNELS names {', '.join(unknown)}; accepted: {', '.join(FAMILIES)}")
    return [
        (name, dtype, GATE_CACHE[0] if fam.axes == ("size",) else GATE_CACHE[1])
        for name, fam in FAMILIES.items()
        if not only or name in only
        for dtype in fam.grid_dtypes()
    ]


def side_by_side_grid() -> tuple[list, list[str]]:
    return [list(sizes()), [c.name for c in comparisons()], list(thread_counts())], ["size", "comparison", "threads"]


def bandwidth_grid() -> tuple[list, list[str]]:
    return [list(sizes()), list(BANDWIDTH_OPS), list(thread_counts())], ["size", "op", "threads"]


def memory_grid() -> tuple[list, list[str]]:
    """One row per kernel and dtype of the current grid, both implementations (at :data:`MEMORY_SIZE`)."""
    cases = [f"{k}:{d}" for k, fam in KERNELS.items() for d in fam.grid_dtypes()]
    return [cases, list(IMPLS)], ["case", "impl"]
