"""``qbench tune``'s measurement: serial and parallel forms of each kernel, timed side by side.

The cases come from the registry (:mod:`qbench.cases`), the same data and calls
the suite times; what is measured is stored by :func:`qbench.ops.tuning.save`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numba

from qbench import cases
from qbench.ops.tuning import DEFAULT, LADDER, TUNED, Measured, case_key, parallel_pays, quartiles, verdict


def build_call(kernel: str, dtype: str, n: int) -> Callable[[bool | None], Any]:
    """``call(parallel)``: one API call of the (kernel, dtype) case on ``n`` elements, data made once."""
    family = cases.family(kernel)
    data = family.data(dtype, family.shape(n), cases.Buffers(seed=n))
    forms = {p: family.impls["qbench"](data, numba.get_num_threads(), p) for p in (None, False, True)}
    return lambda parallel: forms[parallel]()


def _elements(kernel: str, dtype: str, nbytes: int) -> int:
    n = max(1, nbytes // cases.bytes_moved(kernel, dtype, 1))
    rows = cases.AXIS_CHANNELS
    return n - n % rows if n >= 2 * rows else n  # whole rows for the per-channel cases


def _forms(call: Callable[[bool | None], Any]) -> dict[str, Callable[[], Any]]:
    return {"serial": lambda: call(False), "parallel": lambda: call(True)}


@dataclass
class Timed:
    """One point's measurement: each form's least per-pass median time, and the serial/parallel ratio of every
    round (both forms timed side by side in each)."""

    best: dict[str, float]
    ratios: list[float]


def _passes(points: list[tuple[str, str, int]], rounds: int, passes: int, progress, extra: int = 0) -> list[Timed]:
    """Time the serial and parallel forms at each (kernel, dtype, elements) in ``passes`` passes over every
    point, then in up to ``extra`` more passes of twice the rounds over the points where the two forms are still
    close.

    Rounds inside one pass alternate the forms; the passes run one after the
    other over every point, so a burst of load from elsewhere (seconds long on
    a shared machine) slows one pass of a point, not all of them, and the
    least time, which interference can only raise, keeps the quiet one. The
    per-round ratios, each from one round's side-by-side pair, say how far
    apart the forms are and how sure that is.
    """
    from qbench.measure.timing import interleaved_rounds, median

    timed = [Timed({}, []) for _ in points]

    def run(indices: list[int], n_rounds: int) -> None:
        for i in indices:
            kernel, dtype, n = points[i]
            per_round = interleaved_rounds(_forms(build_call(kernel, dtype, n)), n_rounds)
            for form, times in per_round.items():
                timed[i].best[form] = min(median(times), timed[i].best.get(form, float("inf")))
            timed[i].ratios += [s / p for s, p in zip(per_round["serial"], per_round["parallel"], strict=True)]

    for p in range(passes):
        run(list(range(len(points))), rounds)
        if progress:
            progress(f"  pass {p + 1} of {passes} done")
    for p in range(extra):
        close = [i for i, t in enumerate(timed) if _close(t.ratios)]
        if not close:
            break
        if progress:
            progress(f"  {len(close)} sizes where the forms are close: {2 * rounds} more rounds each ({p + 1}/{extra})")
        run(close, 2 * rounds)
    return timed


def _close(ratios: list[float]) -> bool:
    """Whether the rounds leave the faster form in doubt (:func:`qbench.ops.tuning.verdict`)."""
    return bool(ratios) and verdict(*quartiles(ratios)) == "close"


def measure(
    cases_: Iterable[tuple[str, str]] = TUNED,
    ladder: Iterable[int] = LADDER,
    *,
    rounds: int = 5,
    passes: int = 2,
    extra: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[Measured]:
    """Serial and parallel forms of each case, timed alternately in this process at every size of ``ladder``
    (``extra`` more passes where they are close)."""
    ladder = list(ladder)
    points = [(k, d, _elements(k, d, b)) for k, d in cases_ for b in ladder]
    times = iter(_passes(points, rounds, passes, progress, extra))
    results = []
    for kernel, dtype in dict.fromkeys((k, d) for k, d, _ in points):
        m = Measured(kernel, dtype, ladder, [], [])
        for _ in ladder:
            t = next(times)
            m.serial_s.append(t.best["serial"])
            m.parallel_s.append(t.best["parallel"])
            m.round_ratios.append(t.ratios)
        if progress:
            progress(f"  {kernel} {dtype}: {m.switch().describe()} ({m.certainty()})")
        results.append(m)
    return results


@dataclass
class Check:
    """One grid point of :func:`verify`: both forms timed side by side, and the form each rule picks."""

    kernel: str
    dtype: str
    size: int
    nbytes: int
    serial_s: float
    parallel_s: float
    tuned_parallel: bool  # what parallel=None picks under the tuning in force
    default_parallel: bool  # what the untuned rule (DEFAULT_MIN_BYTES) picks

    @property
    def best_s(self) -> float:
        return min(self.serial_s, self.parallel_s)

    def _over_best(self, parallel: bool) -> float:
        return (self.parallel_s if parallel else self.serial_s) / self.best_s

    @property
    def tuned_over_best(self) -> float:
        """Time of the form the tuning picks over the faster form: 1.0 is ideal, 1.05 is 5% slower."""
        return self._over_best(self.tuned_parallel)

    @property
    def default_over_best(self) -> float:
        """The same for the untuned rule."""
        return self._over_best(self.default_parallel)


def verify(
    cases_: Iterable[tuple[str, str]], sizes: Iterable[int], *, rounds: int = 5, passes: int = 2, progress=None
) -> list[Check]:
    """Time serial and parallel alternately at each (case, size in elements) and judge each rule's pick.

    Both rules are judged on the same two measurements, so where they pick the
    same form they score the same; the picks are those of the lookup the API
    makes (:func:`parallel_pays`), which the tests hold to the API's own keys.
    """
    points = [(k, d, n) for k, d in cases_ for n in sizes]
    times = _passes(points, rounds, passes, progress)
    checks = []
    for (kernel, dtype, n), t in zip(points, times, strict=True):
        nbytes = cases.bytes_moved(kernel, dtype, n)
        tuned, default = parallel_pays(case_key(kernel, dtype), nbytes), DEFAULT(nbytes)
        checks.append(Check(kernel, dtype, n, nbytes, t.best["serial"], t.best["parallel"], tuned, default))
    return checks


def check_lines(checks: list[Check]) -> list[str]:
    """:func:`verify`'s result as a table, then the worst case of each rule."""
    lines = [
        f"  {'kernel':<16} {'dtype':<17} {'size':>5} {'serial us':>10} {'parallel us':>12} {'tuned':>9} "
        f"{'1 MiB rule':>10} {'tuned/best':>10} {'rule/best':>10}"
    ]
    form = {False: "serial", True: "parallel"}
    for c in checks:
        lines.append(
            f"  {c.kernel:<16} {c.dtype:<17} 2**{c.size.bit_length() - 1:<2} {c.serial_s * 1e6:>10.1f} "
            f"{c.parallel_s * 1e6:>12.1f} {form[c.tuned_parallel]:>9} {form[c.default_parallel]:>10} "
            f"{c.tuned_over_best:>10.3f} {c.default_over_best:>10.3f}"
        )
    worst_tuned = max(checks, key=lambda c: c.tuned_over_best)
    worst_default = max(checks, key=lambda c: c.default_over_best)
    differ = sum(c.tuned_parallel != c.default_parallel for c in checks)
    lines.append(
        f"the two rules pick different forms at {differ} of {len(checks)} points; worst case: tuned "
        f"{worst_tuned.tuned_over_best:.3f}x the faster form ({worst_tuned.kernel} {worst_tuned.dtype} at "
        f"2**{worst_tuned.size.bit_length() - 1}), the untuned 1 MiB rule {worst_default.default_over_best:.3f}x "
        f"({worst_default.kernel} {worst_default.dtype} at 2**{worst_default.size.bit_length() - 1})"
    )
    return lines


def quick_cases() -> list[tuple[str, str]]:
    """The tuned (kernel, dtype) pairs the quick grid measures: where ``qbench tune`` checks its own result."""
    return [(k, d) for k, d in TUNED if d in cases.family(k).quick_dtypes]
