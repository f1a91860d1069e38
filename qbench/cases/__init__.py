"""The case registry: every kernel family, its grid and its byte-counting rules, defined once.

The asv suite (``benchmarks/``) builds its ``params``, data and calls from here,
and the report (:mod:`qbench.report`) turns times into throughput with the
same rules, so a plot can never disagree with the benchmark that produced it.

- :mod:`.grid`: sizes, thread counts, quick/full, calibration grids, test data;
- :mod:`.registry`: what a family declares (:class:`Family`, :class:`Operand`, :class:`Buffers`);
- :mod:`.families`: the elementwise families (:data:`KERNELS`) and the bandwidth probes;
- :mod:`.matmul`: the matrix-multiply family (a linear layer, by shape ``MxKxN``; the block formats' GEMV too);
- :mod:`.blocks`: the block formats' conversions (Q8_0, Q4_0, ONNX int4), their side-by-side grid and accuracy;
- :mod:`.rules`: bytes moved, working set, ceilings and comparisons, by kernel name.
"""

from . import blocks, matmul
from .families import (
    AXIS_CHANNELS,
    BANDWIDTH_OPS,
    CHECK,
    KERNELS,
    acc_pair,
    bandwidth_call,
    pattern_probe_call,
)
from .grid import (
    ACCURACY_DTYPES,
    ACCURACY_SIZE,
    CALIBRATION_METHODS,
    DISTRIBUTIONS,
    IMPLS,
    MEMORY_SIZE,
    PEER_IMPLS,
    SIZES_FULL,
    SIZES_QUICK,
    WITH_PEERS,
    all_cores,
    calibration_sizes,
    make_distribution,
    quick,
    sizes,
    thread_counts,
)
from .matmul import MATMUL, layer_shapes, layer_threads
from .registry import READ, UPDATE, WRITE, Buffers, Family, Operand, Shape, Stream, itemsize
from .rules import (
    BENCHMARK_KERNELS,
    CEILINGS,
    FAMILIES,
    ONE_THREAD,
    SPEEDUP_PAIRS,
    Comparison,
    bandwidth_grid,
    bytes_moved,
    ceiling_size,
    comparisons,
    family,
    footprint,
    gate_points,
    kernel_grid,
    memory_grid,
    operands,
    probe_operands,
    probe_streams,
    side_by_side_grid,
    streams,
)

__all__ = [
    "ACCURACY_DTYPES",
    "ACCURACY_SIZE",
    "AXIS_CHANNELS",
    "BANDWIDTH_OPS",
    "BENCHMARK_KERNELS",
    "CALIBRATION_METHODS",
    "CEILINGS",
    "CHECK",
    "DISTRIBUTIONS",
    "FAMILIES",
    "IMPLS",
    "KERNELS",
    "MATMUL",
    "MEMORY_SIZE",
    "ONE_THREAD",
    "PEER_IMPLS",
    "READ",
    "SIZES_FULL",
    "SIZES_QUICK",
    "SPEEDUP_PAIRS",
    "UPDATE",
    "WITH_PEERS",
    "WRITE",
    "Buffers",
    "Comparison",
    "Family",
    "Operand",
    "Shape",
    "Stream",
    "acc_pair",
    "all_cores",
    "bandwidth_call",
    "bandwidth_grid",
    "blocks",
    "bytes_moved",
    "calibration_sizes",
    "ceiling_size",
    "comparisons",
    "family",
    "footprint",
    "itemsize",
    "gate_points",
    "kernel_grid",
    "layer_shapes",
    "layer_threads",
    "make_distribution",
    "matmul",
    "memory_grid",
    "operands",
    "pattern_probe_call",
    "probe_operands",
    "probe_streams",
    "quick",
    "side_by_side_grid",
    "sizes",
    "streams",
    "thread_counts",
]
