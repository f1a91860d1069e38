"""Case setup shared by the suite: data, the call to time, and a correctness check.

Each case is built once in ``setup`` (outputs preallocated, the JIT warmed by
the check's own call), so the timed body is the kernel call alone.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numba
import numpy as np

from qbench import api, reference

try:  # the suite also measures older commits, from before qbench had its peers module
    from qbench import peers
except ImportError:
    peers = None
from qbench.calibrate import calibrate
from qbench.kernels import bandwidth


def _suite_cases() -> ModuleType:
    """The grid module of this checkout, not of the qbench installed for the commit being measured.

    asv runs one benchmark tree against many installed commits and files each
    result by parameter index: the grid must come from the tree asv read it
    from, or an older commit's grid would label results with the wrong sizes.
    """
    path = Path(__file__).resolve().parents[2] / "qbench" / "cases.py"
    if not path.exists():
        import qbench.cases

        return qbench.cases
    spec = importlib.util.spec_from_file_location("_qbench_suite_cases", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


cases = _suite_cases()

CHECK = 1 << 16  # elements compared at each end of an elementwise output
AXIS_CHANNELS = 64


@dataclass
class Prepared:
    """A ready-to-time call, the bytes it moves and its thread budget."""

    run: Callable[[], Any]
    nbytes: int
    allocates_output: int  # bytes of output the call itself allocates (0 when it writes into `out`)
    threads: int = 1  # the thread budget, set again before each timing: two cases of a pair may differ


def set_threads(threads: int, impl: str) -> None:
    """Give every implementation the same budget of ``threads`` threads, used as its users would use it.

    qbench gets ``numba.set_num_threads(threads)`` and its own serial/parallel
    choice (``parallel=None``), as ONNX Runtime gets its intra-op threads and
    PyTorch ``torch.set_num_threads``: each decides for itself whether a call
    is worth the threads. Forcing qbench's parallel form on a small call would
    measure a mode no user picks.
    """
    if threads > 1 and impl == "numpy":
        raise NotImplementedError(f"{impl} runs single-threaded; threads={threads} is not measured")
    if threads > cases.all_cores():
        raise NotImplementedError(f"threads={threads} exceeds this machine's {cases.all_cores()} cores")
    numba.set_num_threads(max(1, threads))


PAGE = 4096
SLOT_OFFSET = 1408  # 22 cache lines: slots 0, 1, 2 start 0, 1408 and 2816 bytes into a page


def empty(shape: Any, dtype: Any, slot: int) -> np.ndarray:
    """An array that starts ``slot * SLOT_OFFSET`` bytes into a page, the same in every process.

    Where an input and an output start relative to 4 KiB pages decides whether
    their loads and stores alias in the CPU's store-to-load checks: measured
    here, quantize of 2**16 floats took 17.7 to 25 us depending on it alone.
    Left to the allocator, that offset changes from process to process and
    shows up as a 40% "difference" between two runs of the same code.
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    buf = np.empty(nbytes + 2 * PAGE, np.uint8)
    start = (-buf.ctypes.data) % PAGE + (slot * SLOT_OFFSET) % PAGE
    return buf[start : start + nbytes].view(dt).reshape(shape)


def _random(dtype: str, shape: Any, rng: np.random.Generator, slot: int) -> np.ndarray:
    dt = np.dtype(dtype)
    out = empty(shape, dt, slot)
    if dt.kind == "f":
        out[...] = rng.standard_normal(shape, dtype=dt)
    else:
        info = np.iinfo(dt)
        out[...] = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dt)
    return out


def _check_ends(got: np.ndarray, want_fn: Callable[[slice], np.ndarray], name: str) -> None:
    """Compare both ends of a flat elementwise output with the reference on the same slices."""
    flat = got.reshape(-1)
    for part in (slice(0, CHECK), slice(max(0, flat.size - CHECK), flat.size)):
        want = want_fn(part).reshape(-1)
        if not np.array_equal(flat[part].view(np.uint8), np.ascontiguousarray(want).view(np.uint8)):
            raise AssertionError(f"{name} disagrees with the NumPy reference; not timing a wrong kernel")


def prepare(kernel: str, dtype: str, size: int, threads: int, impl: str) -> Prepared:
    """Build the data and the call for one grid point, and check qbench's answer once.

    qbench is called with ``parallel=None``: within the thread budget it picks serial or parallel itself.
    """
    case = _prepare_call(kernel, dtype, size, threads, impl)
    case.threads = threads
    return case


def _prepare_call(kernel: str, dtype: str, size: int, threads: int, impl: str) -> Prepared:
    set_threads(threads, impl)
    rng = np.random.default_rng(size)
    nbytes = cases.bytes_moved(kernel, dtype, size)
    mine = impl == "qbench"

    if kernel in ("quantize", "quantize_axis", "dequantize", "dequantize_axis"):
        return _prepare_conversion(kernel, dtype, size, threads, impl, rng)

    if kernel == "sum":
        a = _random(dtype, size, rng, 0)
        run = (lambda: api.sum(a)) if mine else (lambda: reference.sum(a))
        if mine and np.dtype(dtype).kind in "iu" and int(run()) != int(reference.sum(a)):
            raise AssertionError("sum: qbench disagrees with the NumPy reference")
        return Prepared(run, nbytes, 0)

    if kernel == "accumulate":
        acc_t, x_t = cases.acc_pair(dtype)
        acc, x = _random(acc_t, size, rng, 0), _random(x_t, size, rng, 1)
        if mine:
            head, tail = acc[:CHECK].copy(), acc[-CHECK:].copy()
            api.accumulate(acc, x)
            reference.accumulate(head, x[:CHECK])
            reference.accumulate(tail, x[-CHECK:])
            if not (np.array_equal(acc[:CHECK], head) and np.array_equal(acc[-CHECK:], tail)):
                raise AssertionError("accumulate: qbench disagrees with the NumPy reference")
            return Prepared(lambda: api.accumulate(acc, x), nbytes, 0)
        return Prepared(lambda: reference.accumulate(acc, x), nbytes, 0)

    if kernel == "dot":
        a, b = _random(dtype, size, rng, 0), _random(dtype, size, rng, 1)
        run = (lambda: api.dot(a, b)) if mine else (lambda: reference.dot(a, b))
        if mine and np.dtype(dtype).kind in "iu" and int(run()) != int(reference.dot(a, b)):
            raise AssertionError("dot: qbench disagrees with the NumPy reference")
        return Prepared(run, nbytes, 0)

    if kernel == "qdot":
        xa, xb = rng.standard_normal((2, size), dtype=np.float32)
        pa, pb = calibrate(xa[:CHECK], dtype), calibrate(xb[:CHECK], dtype)
        qa, qb = empty(size, pa.dtype, 0), empty(size, pb.dtype, 1)
        qa[...], qb[...] = reference.quantize(xa, pa), reference.quantize(xb, pb)
        if mine:
            return Prepared(lambda: api.qdot(qa, pa, qb, pb), nbytes, 0)
        return Prepared(lambda: reference.qdot(qa, pa, qb, pb), nbytes, 0)

    if kernel in cases.BANDWIDTH_OPS:
        src, dst = empty(size, np.float32, 0), empty(size, np.float32, 1)
        src[...] = 1.0
        calls = {
            "copy": lambda p: lambda: bandwidth.copy(src, dst, parallel=p),
            "read": lambda p: lambda: bandwidth.read(src, parallel=p),
            "write": lambda p: lambda: bandwidth.write(dst, np.float32(1), parallel=p),
        }
        return _fastest(calls[kernel], nbytes, threads)

    raise ValueError(f"unknown kernel {kernel!r}")


def _fastest(call: Callable[[bool], Callable[[], Any]], nbytes: int, threads: int) -> Prepared:
    """A probe's faster form within the budget (serial, or parallel where threads > 1): a ceiling is the best."""
    forms = [_warm(Prepared(call(p), nbytes, 0, threads)) for p in ((False, True) if threads > 1 else (False,))]
    return min(forms, key=median_rate)


def prepare_probe(kernel: str, dtype: str, size: int, threads: int) -> Prepared:
    """The pattern probe of a kernel (``cases.CEILINGS``): its arrays as unsigned ints, moved with no arithmetic."""
    set_threads(threads, "qbench")
    probe = cases.KERNELS[kernel].ceiling
    if probe == "read":
        return prepare("read", "float32", cases.ceiling_size(kernel, dtype, size), threads, "qbench")
    (src_t, _), (dst_t, _) = sorted(cases.probe_streams(kernel, dtype), key=lambda s: s[1] != cases.READ)
    # Random bits like the kernel's data, in the same page slots as the kernel's arrays.
    rng = np.random.default_rng(size)
    src, dst = _random(src_t, size, rng, 0), _random(dst_t, size, rng, 1)
    if probe == "update":
        if not hasattr(bandwidth, "update"):  # the suite also measures older commits
            raise NotImplementedError("this qbench version has no update probe; its ceiling is not measured")
        call = lambda p: lambda: bandwidth.update(dst, src, parallel=p)  # noqa: E731
    else:
        call = lambda p: lambda: bandwidth.copy(src, dst, parallel=p)  # noqa: E731
    return _fastest(call, cases.bytes_moved(kernel, dtype, size), threads)


def _prepare_conversion(
    kernel: str, dtype: str, size: int, threads: int, impl: str, rng: np.random.Generator
) -> Prepared:
    """quantize / dequantize (per tensor or per axis) by qbench, the NumPy reference or a peer library."""
    per_axis = kernel.endswith("_axis")
    shape = (AXIS_CHANNELS, size // AXIS_CHANNELS) if per_axis else (size,)
    x = _random("float32", shape, rng, 0)
    p = calibrate(x[:, :4096] if per_axis else x[:CHECK], dtype, axis=0 if per_axis else None)
    flat_x = x.reshape(-1)
    if kernel.startswith("quantize"):
        out = empty(shape, p.dtype, 1)
        calls = {
            "qbench": lambda: lambda: api.quantize(x, p, out=out),
            "numpy": lambda: lambda: reference.quantize(x, p),
            "onnxruntime": lambda: peers.onnxruntime_quantize(x, p, out, threads),
            "torch": lambda: peers.torch_quantize(x, p, threads),
        }
        want = lambda s: reference.quantize(flat_x[s], _flat_params(p, shape, s))  # noqa: E731
    else:
        q = empty(shape, p.dtype, 0)
        q[...] = reference.quantize(x, p)
        out = empty(shape, np.float32, 1)
        calls = {
            "qbench": lambda: lambda: api.dequantize(q, p, out=out),
            "numpy": lambda: lambda: reference.dequantize(q, p),
            "onnxruntime": lambda: peers.onnxruntime_dequantize(q, p, out, threads),
            "torch": lambda: peers.torch_dequantize(q, p, threads),
        }
        flat_q = q.reshape(-1)
        want = lambda s: reference.dequantize(flat_q[s], _flat_params(p, shape, s))  # noqa: E731
    if peers is None and impl != "qbench" and impl != "numpy":
        raise NotImplementedError(f"this qbench version has no peers module; {impl} is not measured")
    run = calls[impl]()
    result = np.asarray(run()) if peers is None else peers.to_numpy(run())
    if impl == "torch":
        _check_close(result, want, kernel, impl)  # PyTorch rounds its own way (see qbench.peers)
    elif impl != "numpy":
        _check_ends(result, want, f"{kernel} ({impl})")
    allocates = 0 if impl in ("qbench", "onnxruntime") else out.nbytes
    return Prepared(run, cases.bytes_moved(kernel, dtype, size), allocates)


def _check_close(got: np.ndarray, want_fn: Callable[[slice], np.ndarray], name: str, impl: str) -> None:
    """Close to the ONNX reference: integers within one step, differing almost nowhere (ties); floats within
    a few units in the last place of the data's magnitude."""
    flat = got.reshape(-1)
    part = slice(0, min(CHECK, flat.size))
    want = want_fn(part).reshape(-1)
    if flat.dtype.kind == "f":
        # Near zero, q * scale - zero_point * scale (PyTorch's vector form) loses relative precision.
        ok = np.allclose(flat[part], want, rtol=2.0**-21, atol=float(np.abs(want).max(initial=0)) * 2.0**-20)
    else:
        diff = np.abs(flat[part].astype(np.int64) - want.astype(np.int64))
        ok = diff.max(initial=0) <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 1000)
    if not ok:
        raise AssertionError(f"{name} ({impl}) differs from the ONNX reference beyond its own rounding")


def _flat_params(p: Any, shape: tuple[int, ...], part: slice) -> Any:
    """Parameters for a flat slice of an array of ``shape``: per-axis expands to one scale per element."""
    if p.axis is None:
        return p
    from qbench.params import QuantParams

    channel = np.arange(int(np.prod(shape)))[part] // shape[1]
    return QuantParams(p.scale[channel], p.zero_point[channel], p.dtype, axis=0)


_PREPARED: dict[tuple, Any] = {}


def _once(key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``, once per process for ``key``.

    asv (asv_runner >= 0.3) re-runs ``setup`` before every timed sample and
    times a single call after it; rebuilding the data each time would time
    cold caches and spend most of a run making arrays. Each grid point runs
    in its own process, so one entry is all this holds.
    """
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = build()
    return _PREPARED[key]


def _warm(case: Prepared) -> Prepared:
    case.run()  # compile or load from the disk cache now, never inside a timed sample
    return case


def prepared(*key: Any) -> Prepared:
    """``prepare(*key)``, built and warmed once per process."""
    return _once(key, lambda: _warm(prepare(*key)))


def prepared_pair(comparison: str, size: int, threads: int) -> tuple[Prepared, Prepared]:
    """qbench's case and its baseline for a side-by-side :class:`cases.Comparison`, built once per process.

    The baseline is built first: preparing a case sets Numba's thread count,
    which must end as qbench's (a 1-thread baseline runs the serial kernel).
    """

    def build() -> tuple[Prepared, Prepared]:
        c = cases.Comparison.parse(comparison)
        kind = c.kind
        if kind == "threads" and threads == 1:
            raise NotImplementedError("thread scaling is measured at more than one thread")
        if kind == "peer":
            base = prepare(c.kernel, c.dtype, size, threads, c.against)
        elif kind == "dtype":
            base = prepare(c.kernel, c.against, size, threads, "qbench")
        elif kind == "ceiling":
            base = prepare_probe(c.kernel, c.dtype, size, threads)
        else:
            base = prepare(c.kernel, c.dtype, size, 1, "qbench")
        return _warm(prepare(c.kernel, c.dtype, size, threads, "qbench")), _warm(base)

    return _once(("pair", comparison, size, threads), build)


def side_by_side(
    mine: Prepared, base: Prepared, *, per_byte: bool, rounds: int, timer: Callable[[Prepared], float] | None = None
) -> float:
    """qbench's rate over the baseline's, timed alternately in this process: the median of per-round ratios.

    Each round times both (in alternating order, so a drift favours neither)
    with ``timer`` (:func:`median_rate`), whose warm-up also refills the caches
    the other case evicted. Rates are elements/s, or bytes moved per second
    when ``per_byte`` (a share of a ceiling).
    """
    timer = timer or median_rate
    # Elements are the same on both sides, so an element rate ratio is a time ratio.
    work_mine, work_base = (mine.nbytes, base.nbytes) if per_byte else (1, 1)
    ratios = []
    for r in range(rounds):
        seconds = {}
        for case in (mine, base) if r % 2 == 0 else (base, mine):
            seconds[case is mine] = timer(case)
        ratios.append((work_mine / seconds[True]) / (work_base / seconds[False]))
    return float(np.median(ratios))


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

    For track_ throughput and side-by-side ratios; time_ benchmarks carry asv's
    own statistics. The case's thread budget is set first (untimed): the two
    cases of a thread-scaling pair run with different budgets in one process.
    """
    numba.set_num_threads(prepared.threads)
    times: list[float] = []
    for phase_budget, keep in ((budget_s / 2, False), (budget_s, True)):
        deadline = time.perf_counter() + phase_budget
        while True:
            start = time.perf_counter()
            prepared.run()
            now = time.perf_counter()
            if keep:
                times.append(now - start)
            # At least 5 calls: from memory one call can outlast the budget, and a median of one is noise.
            if (now >= deadline and (len(times) >= 5 or not keep)) or len(times) >= 1000:
                break
    return float(np.median(times))


class _Timed:
    """asv timing attributes: its defaults for the full sweep, a short budget for ``--quick``."""

    timeout = 600
    if cases.quick():
        rounds = 1
        repeat = (3, 10, 0.2)  # at least 3 samples, so the median means something
        warmup_time = 0.02
        sample_time = 0.005


class _KernelBench(_Timed):
    """Base of every kernel benchmark: time and GB/s over the kernel's grid.

    Elements per second are derived by the report from the same time_ medians
    (size / time); a separate track_ would cost one more process per grid point.
    """

    kernel = ""

    def setup(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case = prepared(self.kernel, dtype, size, threads, impl)

    def time_run(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case.run()

    def track_gbps(self, size: int, dtype: str, threads: int, impl: str) -> float:
        return self.case.nbytes / median_rate(self.case) / 1e9

    track_gbps.unit = "GB/s"
