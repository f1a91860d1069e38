"""The timing harness of the suite: thread budgets, building a case from the registry, timing, ratios.

What each kernel is (its data, implementations and check) lives in the case
registry, ``qbench/cases``; this module only builds a case from it once in
``setup`` (outputs preallocated, the JIT warmed by the check's own call), so
the timed body is the kernel call alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numba
import numpy as np


def _from_checkout(name: str, path: Path, **where: Any) -> ModuleType:
    """The module at ``path`` of this checkout, registered as ``name`` (dataclasses and relative imports look
    their module up in ``sys.modules``); ``where``: ``spec_from_file_location``'s keywords (a package's)."""
    spec = importlib.util.spec_from_file_location(name, path, **where)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _suite_cases() -> ModuleType:
    """The case registry of this checkout, not of the qbench installed for the commit being measured.

    asv runs one benchmark tree against many installed commits and files each
    result by parameter index: the grid must come from the tree asv read it
    from, or an older commit's grid would label results with the wrong sizes.
    The registry calls the library (``qbench.ops``, ``qbench.reference``) of
    the commit measured.
    """
    folder = Path(__file__).resolve().parents[2] / "qbench" / "cases"
    if not (folder / "__init__.py").exists():
        import qbench.cases

        return qbench.cases
    return _from_checkout("_qbench_suite_cases", folder / "__init__.py", submodule_search_locations=[str(folder)])


cases = _suite_cases()


def _suite_busy() -> ModuleType | None:
    """The checkout's :mod:`qbench.measure.busy` (an older commit being measured may lack it), or None where
    psutil, which it reads the CPU counters with, is not installed."""
    try:
        return _from_checkout("_qbench_suite_busy", Path(__file__).resolve().parents[2] / "qbench/measure/busy.py")
    except (ImportError, OSError):
        return None


busy = _suite_busy()
#: Seconds between two busy records of one point (each record covers the point from its start).
BUSY_EVERY = 0.5


@dataclass
class Prepared:
    """A ready-to-time call, the bytes it moves and its thread budget."""

    run: Callable[[], Any]
    nbytes: int
    allocates_output: int  # bytes of output the call itself allocates (0 when it writes into `out`)
    threads: int = 1  # the thread budget, set again before each timing: two cases of a pair may differ


def set_threads(threads: int, impl: str, numpy_threads: bool = False) -> None:
    """Give every implementation the same budget of ``threads`` threads, used as its users would use it.

    qbench gets ``numba.set_num_threads(threads)`` and its own serial/parallel
    choice (``parallel=None``), as ONNX Runtime gets its intra-op threads and
    PyTorch ``torch.set_num_threads``: each decides for itself whether a call
    is worth the threads. Forcing qbench's parallel form on a small call would
    measure a mode no user picks. NumPy's BLAS (its float32 matmul, float64
    dot) is held to the budget too: OpenBLAS would otherwise use every core.
    """
    if threads > 1 and impl == "numpy" and not numpy_threads:
        raise NotImplementedError(f"{impl} runs single-threaded; threads={threads} is not measured")
    if threads > cases.all_cores():
        raise NotImplementedError(f"threads={threads} exceeds this machine's {cases.all_cores()} cores")
    numba.set_num_threads(max(1, threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an environment of an older commit, from before qbench required it
        return
    threadpool_limits(limits=max(1, threads), user_api="blas")


def _seed(point: int | str) -> int:
    """A case's data seed: its size, or a stable number for a shape such as ``"1x4096x4096"``."""
    return point if isinstance(point, int) else zlib.crc32(str(point).encode())


def prepare(kernel: str, dtype: str, size: int | str, threads: int, impl: str) -> Prepared:
    """Build one grid point from the registry (``cases.KERNELS``), run it once and check its answer.

    qbench is called with ``parallel=None``: within the thread budget it picks
    serial or parallel itself. The first call also loads or compiles the kernel,
    so no timed sample includes compilation.
    """
    set_threads(threads, impl, kernel not in cases.BANDWIDTH_OPS and cases.family(kernel).numpy_threads)
    buffers = cases.Buffers(seed=_seed(size))
    if kernel in cases.BANDWIDTH_OPS:
        return _fastest(cases.bandwidth_call(kernel, size, buffers), cases.bytes_moved(kernel, dtype, size), threads)
    family = cases.family(kernel)
    run, data = family.build(dtype, size, impl, threads, buffers)
    family.check(data, impl, run())
    return Prepared(run, cases.bytes_moved(kernel, dtype, size), family.allocates(data, impl), threads)


def _fastest(call: Callable[[bool], Callable[[], Any]], nbytes: int, threads: int) -> Prepared:
    """A probe's faster form within the budget (serial, or parallel where threads > 1): a ceiling is the best."""
    forms = [_warm(Prepared(call(p), nbytes, 0, threads)) for p in ((False, True) if threads > 1 else (False,))]
    return min(forms, key=median_seconds)


def prepare_probe(kernel: str, dtype: str, size: int, threads: int) -> Prepared:
    """The pattern probe of a kernel (``cases.CEILINGS``): its arrays as unsigned ints, moved with no arithmetic."""
    set_threads(threads, "qbench")
    probe = cases.family(kernel).ceiling
    if probe in ("read", "write"):
        return prepare(probe, "float32", cases.ceiling_size(kernel, dtype, size), threads, "qbench")
    buffers = cases.Buffers(seed=size)
    call = cases.pattern_probe_call(cases.probe_operands(kernel, dtype, size), probe == "update", buffers)
    return _fastest(call, cases.bytes_moved(kernel, dtype, size), threads)


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


def prepared_layer_pair(comparison: str, shape: str, threads: int) -> tuple[Prepared, Prepared, bool]:
    """qbench's linear layer and its baseline for a ``"matmul variant / against"`` of ``cases.matmul.COMPARISONS``,
    built once per process, and whether the ratio is one of work rates (a share of a ceiling).

    Against ``read`` both sides count weight bytes (a GEMV, M = 1); against
    ``peak`` both count operations, the baseline being the kernel's inner loop
    repeated on an L1-resident pair (``cases.matmul.peak_call``; a GEMM).
    """
    mm = cases.matmul

    def build() -> tuple[Prepared, Prepared, bool]:
        pair = cases.Comparison.parse(comparison)
        variant, against = pair.dtype, pair.against
        m = mm.dims(shape)[0]
        if against == "read" and m != 1:
            raise NotImplementedError("the read ceiling judges a GEMV (M = 1); a GEMM is judged against its peak")
        if against == "peak" and m == 1:
            raise NotImplementedError("a GEMV is judged against the read ceiling, not the arithmetic peak")
        if against == "peak" and threads > 1:
            raise NotImplementedError("the peak probe is one core's; a GEMM is held to it at 1 thread")
        if against == "read":
            weights = mm.weight_bytes(variant, shape)
            base = prepare("read", "float32", weights // 4, threads, "qbench")
        elif against == "peak":
            call, ops = mm.peak_call(variant, cases.Buffers(seed=0))
            base = Prepared(call, ops, 0, 1)
        else:
            impl, base_variant = against.split(" ")
            base = prepare("matmul", base_variant, shape, threads, impl)
        mine = prepare("matmul", variant, shape, threads, "qbench")
        mine.nbytes = mm.weight_bytes(variant, shape) if against == "read" else mm.ops(shape)
        return _warm(mine), _warm(base), against in ("read", "peak")

    return _once(("layer pair", comparison, shape, threads), build)


def side_by_side_rounds(
    mine: Prepared, base: Prepared, *, per_byte: bool, rounds: int, timer: Callable[[Prepared], float] | None = None
) -> list[float]:
    """qbench's rate over the baseline's in each round, the two timed alternately in this process.

    Each round times both (in alternating order, so a drift favours neither)
    with ``timer`` (:func:`median_seconds`), whose warm-up also refills the caches
    the other case evicted. Rates are elements/s, or bytes moved per second
    when ``per_byte`` (a share of a ceiling).
    """
    timer = timer or median_seconds
    # Elements are the same on both sides, so an element rate ratio is a time ratio.
    work_mine, work_base = (mine.nbytes, base.nbytes) if per_byte else (1, 1)
    ratios = []
    for r in range(rounds):
        seconds = {}
        for case in (mine, base) if r % 2 == 0 else (base, mine):
            seconds[case is mine] = timer(case)
        ratios.append((work_mine / seconds[True]) / (work_base / seconds[False]))
    return ratios


def side_by_side(mine: Prepared, base: Prepared, *, per_byte: bool, rounds: int, timer=None) -> float:
    """The median of :func:`side_by_side_rounds`: the ratio a side-by-side benchmark reports."""
    return float(np.median(side_by_side_rounds(mine, base, per_byte=per_byte, rounds=rounds, timer=timer)))


#: Where ``qbench run`` asks the suite to keep each side-by-side point's per-round ratios (asv keeps one number).
ROUNDS_FILE = "QBENCH_ROUNDS_FILE"


def record_rounds(comparison: str, size: int, threads: int, ratios: list[float]) -> None:
    """Append one point's per-round ratios to :data:`ROUNDS_FILE`, if set: the spread the report shows.

    One short line per write, appended: points run one process after another.
    """
    path = os.environ.get(ROUNDS_FILE)
    if not path:
        return
    line = json.dumps({"comparison": comparison, "size": size, "threads": threads, "ratios": ratios})
    with open(path, "a") as sink:
        sink.write(line + "\n")


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


def median_seconds(prepared: Prepared, budget_s: float = 0.01 if cases.quick() else 0.05) -> float:
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


def _watched(setup: Callable) -> Callable:
    def watched(self, *params: Any) -> None:
        if busy is not None and getattr(self, "_watch", None) is None:
            self._watch, self._recorded = busy.Watch(), -1.0
        setup(self, *params)

    watched.__name__, watched.__doc__ = setup.__name__, setup.__doc__
    return watched


class _Timed:
    """asv timing attributes: its defaults for the full sweep, a short budget for ``--quick``.

    Every timed point also records what else used the CPUs while it ran (:mod:`qbench.measure.busy`): the count
    starts at the point's first ``setup`` (each subclass's ``setup`` is wrapped to start it) and is written at a
    ``teardown``. asv (asv_runner 0.3) runs ``setup`` and ``teardown`` around every timed call, so the count is
    not restarted there, and written at most every :data:`BUSY_EVERY` seconds: the timed calls see no file
    written beside them, and the record covers the point but for its last fraction of a second.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "setup" in cls.__dict__:
            cls.setup = _watched(cls.__dict__["setup"])

    def teardown(self, *params: Any) -> None:
        watch = getattr(self, "_watch", None)
        now = time.monotonic()
        if watch is None or now - self._recorded < BUSY_EVERY:
            return
        suite = f"{type(self).__module__.rpartition('.')[2]}.{type(self).__name__}"
        busy.record_point(suite, dict(zip(self.param_names, params, strict=False)), watch.stop())
        self._recorded = now

    timeout = 600
    if cases.quick():
        rounds = 1
        repeat = (3, 10, 0.2)  # at least 3 samples, so the median means something
        warmup_time = 0.02
        sample_time = 0.005
    if os.environ.get(cases.grid.ROUNDS):  # compare and history set the rounds of the timed benchmarks
        rounds = int(os.environ[cases.grid.ROUNDS])


class _SideBySide(_Timed):
    """Base of the side-by-side benchmarks: one ratio per (size, comparison, threads) of the subclass's ``params``,
    qbench and its baseline (:func:`prepared_pair`) timed alternately in this process."""

    pair_rounds = 5 if cases.quick() else 11

    def setup(self, size: int, comparison: str, threads: int) -> None:
        self.mine, self.base = prepared_pair(comparison, size, threads)
        self.per_byte = cases.Comparison.parse(comparison).kind == "ceiling"

    def track_ratio(self, size: int, comparison: str, threads: int) -> float:
        ratios = side_by_side_rounds(self.mine, self.base, per_byte=self.per_byte, rounds=self.pair_rounds)
        record_rounds(comparison, size, threads, ratios)  # asv keeps the median; the report shows the spread
        return float(np.median(ratios))

    track_ratio.unit = "ratio"


class _KernelTime(_Timed):
    """Base of every kernel benchmark: the time of one call over the kernel's grid.

    Elements (or operations) per second are derived by the report from the same
    time_ medians; a separate track_ would cost one more process per grid point.
    """

    kernel = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):  # a base class of the harness, not a benchmark
            return
        if cls.__name__ != cases.family(cls.kernel).benchmark:  # results name the kernel by its class
            raise TypeError(f"the benchmark of {cls.kernel!r} must be named {cases.family(cls.kernel).benchmark}")

    def setup(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case = prepared(self.kernel, dtype, size, threads, impl)

    def time_run(self, size: int, dtype: str, threads: int, impl: str) -> None:
        self.case.run()


class _KernelBench(_KernelTime):
    """A memory-bound kernel's benchmark: its time, and GB/s of the bytes it moves."""

    def track_gbps(self, size: int, dtype: str, threads: int, impl: str) -> float:
        return self.case.nbytes / median_seconds(self.case) / 1e9

    track_gbps.unit = "GB/s"
