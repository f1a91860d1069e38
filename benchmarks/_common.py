"""Case setup shared by the suite: data, the call to time, and a correctness check.

Each case is built once in ``setup`` (outputs preallocated, the JIT warmed by
the check's own call), so the timed body is the kernel call alone.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from qbench import api, cases, reference
from qbench.calibrate import calibrate

CHECK = 1 << 16  # elements compared at each end of an elementwise output
AXIS_CHANNELS = 64


@dataclass
class Prepared:
    """A ready-to-time call and what it moves."""

    run: Callable[[], Any]
    nbytes: int
    elements: int
    allocates_output: int  # bytes of output the call itself allocates (0 when it writes into `out`)


def set_threads(threads: int, impl: str) -> bool:
    """Configure Numba's thread count; returns whether the parallel kernel is wanted."""
    if threads > 1 and impl != "qbench":
        raise NotImplementedError(f"{impl} runs single-threaded; threads={threads} is not measured")
    if threads > cases.all_cores():
        raise NotImplementedError(f"threads={threads} exceeds this machine's {cases.all_cores()} cores")
    numba.set_num_threads(max(1, threads))
    return threads > 1


def _random(dtype: str, shape: Any, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape, dtype=dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, endpoint=True, dtype=dt)


def _check_ends(got: np.ndarray, want_fn: Callable[[slice], np.ndarray], name: str) -> None:
    """Compare both ends of a flat elementwise output with the reference on the same slices."""
    flat = got.reshape(-1)
    for part in (slice(0, CHECK), slice(max(0, flat.size - CHECK), flat.size)):
        want = want_fn(part).reshape(-1)
        if not np.array_equal(flat[part].view(np.uint8), np.ascontiguousarray(want).view(np.uint8)):
            raise AssertionError(f"{name}: qbench disagrees with the NumPy reference; not timing a wrong kernel")


def prepare(kernel: str, dtype: str, size: int, threads: int, impl: str, threads_config: bool = True) -> Prepared:
    """Build the data and the call for one grid point, and check qbench's answer once."""
    par = set_threads(threads, impl) if threads_config else threads > 1
    rng = np.random.default_rng(size)
    nbytes = cases.bytes_moved(kernel, dtype, size)
    mine = impl == "qbench"

    if kernel in ("quantize", "quantize_axis", "dequantize", "dequantize_axis"):
        per_axis = kernel.endswith("_axis")
        shape = (AXIS_CHANNELS, size // AXIS_CHANNELS) if per_axis else (size,)
        x = rng.standard_normal(shape, dtype=np.float32)
        sample = x[:, :4096] if per_axis else x[:CHECK]
        p = calibrate(sample, dtype, axis=0 if per_axis else None)
        if kernel.startswith("quantize"):
            out = np.empty(shape, p.dtype)
            run = (lambda: api.quantize(x, p, out=out, parallel=par)) if mine else (lambda: reference.quantize(x, p))
            if mine:
                run()
                flat_x = x.reshape(-1)
                _check_ends(out, lambda s: reference.quantize(flat_x[s], _flat_params(p, shape, s)), kernel)
            return Prepared(run, nbytes, size, 0 if mine else out.nbytes)
        q = reference.quantize(x, p)
        out = np.empty(shape, np.float32)
        run = (lambda: api.dequantize(q, p, out=out, parallel=par)) if mine else (lambda: reference.dequantize(q, p))
        if mine:
            run()
            flat_q = q.reshape(-1)
            _check_ends(out, lambda s: reference.dequantize(flat_q[s], _flat_params(p, shape, s)), kernel)
        return Prepared(run, nbytes, size, 0 if mine else out.nbytes)

    if kernel == "sum":
        a = _random(dtype, size, rng)
        run = (lambda: api.sum(a, parallel=par)) if mine else (lambda: reference.sum(a))
        if mine and np.dtype(dtype).kind in "iu" and int(run()) != int(reference.sum(a)):
            raise AssertionError("sum: qbench disagrees with the NumPy reference")
        return Prepared(run, nbytes, size, 0)

    if kernel == "accumulate":
        acc_t, x_t = cases.acc_pair(dtype)
        acc, x = _random(acc_t, size, rng), _random(x_t, size, rng)
        if mine:
            head, tail = acc[:CHECK].copy(), acc[-CHECK:].copy()
            api.accumulate(acc, x, parallel=par)
            reference.accumulate(head, x[:CHECK])
            reference.accumulate(tail, x[-CHECK:])
            if not (np.array_equal(acc[:CHECK], head) and np.array_equal(acc[-CHECK:], tail)):
                raise AssertionError("accumulate: qbench disagrees with the NumPy reference")
            return Prepared(lambda: api.accumulate(acc, x, parallel=par), nbytes, size, 0)
        return Prepared(lambda: reference.accumulate(acc, x), nbytes, size, 0)

    if kernel == "dot":
        a, b = _random(dtype, size, rng), _random(dtype, size, rng)
        run = (lambda: api.dot(a, b, parallel=par)) if mine else (lambda: reference.dot(a, b))
        if mine and np.dtype(dtype).kind in "iu" and int(run()) != int(reference.dot(a, b)):
            raise AssertionError("dot: qbench disagrees with the NumPy reference")
        return Prepared(run, nbytes, size, 0)

    if kernel == "qdot":
        xa, xb = rng.standard_normal((2, size), dtype=np.float32)
        pa, pb = calibrate(xa[:CHECK], dtype), calibrate(xb[:CHECK], dtype)
        qa, qb = reference.quantize(xa, pa), reference.quantize(xb, pb)
        if mine:
            return Prepared(lambda: api.qdot(qa, pa, qb, pb, parallel=par), nbytes, size, 0)
        return Prepared(lambda: reference.qdot(qa, pa, qb, pb), nbytes, size, 0)

    raise ValueError(f"unknown kernel {kernel!r}")


def _flat_params(p: Any, shape: tuple[int, ...], part: slice) -> Any:
    """Parameters for a flat slice of an array of ``shape``: per-axis expands to one scale per element."""
    if p.axis is None:
        return p
    from qbench.params import QuantParams

    channel = np.arange(int(np.prod(shape)))[part] // shape[1]
    return QuantParams(p.scale[channel], p.zero_point[channel], p.dtype, axis=0)


def extra_allocation(prepared: Prepared) -> int:
    """Bytes a call allocates beyond its output, as tracemalloc sees them (NumPy reports to it)."""
    prepared.run()  # warm: nothing lazily created on first call is counted
    tracemalloc.start()
    try:
        prepared.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - prepared.allocates_output)


def median_rate(prepared: Prepared, budget_s: float = 0.01 if cases.quick() else 0.05) -> float:
    """Median seconds per call within a short budget, after a warm-up of the same length.

    For track_ throughput; time_ benchmarks carry asv's own statistics.
    """
    times: list[float] = []
    for phase_budget, keep in ((budget_s / 2, False), (budget_s, True)):
        deadline = time.perf_counter() + phase_budget
        while True:
            start = time.perf_counter()
            prepared.run()
            now = time.perf_counter()
            if keep:
                times.append(now - start)
            if now >= deadline or len(times) >= 1000:
                break
    return float(np.median(times))


def warm_serial_kernels() -> None:
    """Load every serial kernel of the grid once, in the process asv forks each benchmark from.

    Each benchmark runs in a forked child; loading kernels here spares every
    child the disk-cache load. Parallel kernels are not touched: GNU OpenMP is
    not fork-safe once it has run.
    """
    for kernel, case in cases.KERNELS.items():
        for dtype in case.grid_dtypes():
            prepare(kernel, dtype, 2 * CHECK, 1, "qbench", threads_config=False).run()


warm_serial_kernels()


class _Timed:
    """asv timing attributes: its defaults for the full sweep, a short budget for ``--quick``."""

    timeout = 600
    if cases.quick():
        rounds = 1
        repeat = (1, 5, 0.2)
        warmup_time = 0.02
        sample_time = 0.005


class _KernelBench(_Timed):
    """Base of every kernel benchmark: time, GB/s and elements/s over the kernel's grid."""

    kernel = ""

    def setup(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case = prepare(self.kernel, dtype, size, threads, impl)

    def time_run(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case.run()

    def track_gbps(self, size: int, dtype: str, threads: int, impl: str) -> float:
        return self.case.nbytes / median_rate(self.case) / 1e9

    track_gbps.unit = "GB/s"

    def track_elements_per_s(self, size: int, dtype: str, threads: int, impl: str) -> float:
        return self.case.elements / median_rate(self.case)

    track_elements_per_s.unit = "elements/s"
