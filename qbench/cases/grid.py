"""The sweep's axes: sizes, thread counts, the quick/full switch, calibration grids and test data.

Environment variables shape the grid, read when the suite is imported:
``QBENCH_QUICK=1`` selects the reduced grid of ``qbench run --quick``,
``QBENCH_THREADS=1,8`` overrides the thread counts (default: 1 and all cores)
``QBENCH_SIZES=1024,65536`` the sizes and ``QBENCH_SHAPES=1x4096x4096,64x1024x1024`` the
linear layers' shapes (M x K x N), ``QBENCH_IMPLS=qbench`` the implementations (of those the
grid has), ``QBENCH_KERNELS=quantize,dequantize`` the kernel families whose instructions are counted
(default: all). :data:`GATE` is the regression gate's grid in those variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

#: 2**10 ... 2**26 elements in steps of x4: from L1-resident to DRAM-sized.
SIZES_FULL = tuple(2**k for k in range(10, 27, 2))
#: The quick grid keeps one size per memory level (2**14 and 2**24 among them).
SIZES_QUICK = (2**10, 2**14, 2**18, 2**20, 2**24)

IMPLS = ("qbench", "numpy")
#: Optional peer libraries (the ``peers`` extra); absent ones are skipped, not failed. The one list of them.
PEER_IMPLS = ("onnxruntime", "torch")
WITH_PEERS = IMPLS + PEER_IMPLS

#: Calibration timing and accuracy grids.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy", "mse")
DISTRIBUTIONS = ("normal", "uniform", "laplace", "outliers")
ACCURACY_DTYPES = ("uint8", "int8")
ACCURACY_SIZE = 2**16
MEMORY_SIZE = 2**20


#: The regression gate (``qbench compare --gate``): qbench's own kernels only (nothing else can regress), one
#: thread, one size whose working set is in cache and one beyond any L3, a matrix-vector product in cache and
#: one from memory. The cache size is 2**16 elements (at most 320 KiB touched: in L2 on current CPUs), not
#: 2**14, where the fixed cost of a call hides most of a slower kernel.
GATE_CACHE, GATE_MEMORY = (2**16, "1x1024x1024"), (2**24, "1x4096x11008")
GATE = {
    "QBENCH_QUICK": "1",
    "QBENCH_SIZES": f"{GATE_CACHE[0]},{GATE_MEMORY[0]}",
    "QBENCH_THREADS": "1",
    "QBENCH_IMPLS": "qbench",
    "QBENCH_SHAPES": f"{GATE_CACHE[1]},{GATE_MEMORY[1]}",
}
#: The gate's factors. In cache the instructions per call decide (deterministic: two runs of the same code
#: agree within 1%), so 5% more is a change. Time judges only gross changes, there (what a count cannot see:
#: the host's own vector code, as Valgrind runs another) and from memory (where nothing is counted), at 2:
#: unchanged code's median time moves by more than 1.5x between runs on a shared machine (README, regressions).
GATE_INSTRUCTIONS_FACTOR, GATE_TIME_FACTOR = 1.05, 2.0


def gate_from_memory(row: Mapping) -> bool:
    """Whether a result row is one of the gate's points beyond the caches."""
    return row.get("size") == GATE_MEMORY[0] or row.get("param_shape") == GATE_MEMORY[1]


def gate_in_cache(row: Mapping) -> bool:
    """Whether a result row is one of the gate's cache-resident points (where instructions are counted)."""
    return row.get("size") == GATE_CACHE[0] or row.get("param_shape") == GATE_CACHE[1]


#: Rounds of every timed benchmark, set by ``qbench compare`` and ``history`` (asv's ``-a rounds=`` would set
#: them for every benchmark, the instruction counts too, which need one).
ROUNDS = "QBENCH_ROUNDS"


def quick() -> bool:
    return os.environ.get("QBENCH_QUICK", "") == "1"


def _counts(variable: str, what: str, environ: Mapping[str, str] = os.environ) -> tuple[int, ...] | None:
    """Whole numbers >= 1 from a comma-separated environment variable; None when it is unset or empty."""
    spec = environ.get(variable, "")
    if not spec.strip():
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError(f"{variable} must list {what} as whole numbers >= 1, like 1024,65536; got {spec!r}")
    return tuple(sorted({int(p) for p in parts}))


def layer_shapes_override(environ: Mapping[str, str] = os.environ) -> tuple[str, ...] | None:
    """Shapes ``MxKxN`` (each a whole number >= 1) from ``QBENCH_SHAPES``; None when it is unset or empty."""
    spec = environ.get("QBENCH_SHAPES", "")
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        return None
    for part in parts:
        dims = part.split("x")
        if len(dims) != 3 or not all(d.isdigit() and int(d) >= 1 for d in dims):
            raise ValueError(
                f"QBENCH_SHAPES must list shapes MxKxN of whole numbers >= 1, like 1x4096x4096; got {spec!r}"
            )
    return tuple(dict.fromkeys(parts))


def impls_override(environ: Mapping[str, str] = os.environ) -> tuple[str, ...] | None:
    """Implementations named in ``QBENCH_IMPLS`` (each one of :data:`WITH_PEERS`); None when it is unset or empty."""
    parts = [p.strip() for p in environ.get("QBENCH_IMPLS", "").split(",") if p.strip()]
    unknown = [p for p in parts if p not in WITH_PEERS]
    if unknown:
        raise ValueError(f"QBENCH_IMPLS names {', '.join(unknown)}; accepted: {', '.join(WITH_PEERS)}")
    return tuple(parts) or None


def kernels_override(environ: Mapping[str, str] = os.environ) -> tuple[str, ...] | None:
    """Kernel families named in ``QBENCH_KERNELS``; None when it is unset or empty (checked by the registry)."""
    return tuple(p.strip() for p in environ.get("QBENCH_KERNELS", "").split(",") if p.strip()) or None


def check_environment(environ: Mapping[str, str]) -> None:
    """Raise ValueError, saying what is wrong, if the grid variables in ``environ`` cannot be read."""
    _counts("QBENCH_SIZES", "element counts", environ)
    _counts("QBENCH_THREADS", "thread counts", environ)
    layer_shapes_override(environ)
    impls_override(environ)


def sizes_override() -> tuple[int, ...] | None:
    """The sizes ``QBENCH_SIZES`` names (comma-separated element counts); None when it is unset or empty."""
    return _counts("QBENCH_SIZES", "element counts")


def sizes() -> tuple[int, ...]:
    """Sizes to sweep: ``QBENCH_SIZES`` if set, else the grid of the mode."""
    return sizes_override() or (SIZES_QUICK if quick() else SIZES_FULL)


def all_cores() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def thread_counts() -> tuple[int, ...]:
    """Thread counts to sweep: ``QBENCH_THREADS`` if set, else 1 and all cores."""
    return _counts("QBENCH_THREADS", "thread counts") or tuple(sorted({1, all_cores()}))


def quick_threads() -> tuple[int, ...]:
    """Thread counts of a family whose targets are single-threaded: 1 in the quick grid, else the grid's."""
    return (1,) if quick() else thread_counts()


def calibration_sizes() -> tuple[int, ...]:
    return (2**14, 2**18) if quick() else (2**14, 2**18, 2**22)


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
