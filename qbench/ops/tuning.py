"""Where the parallel form of each kernel starts to pay, measured on this machine and stored.

``parallel=None`` runs a kernel serially below a size and in parallel above
it. Where that switch belongs differs by machine (cores, caches, memory, SMT)
and by kernel: one constant tuned on one machine takes the parallel form for
nothing on another. So, like FFTW's wisdom or a BLAS library's tuned
thresholds, ``qbench tune`` times each kernel's serial and parallel forms
side by side over a ladder of sizes and stores, per kernel and dtype, at which
sizes the parallel form wins. The API reads that file when qbench is imported
(and again on :func:`reload`); a machine never tuned keeps :data:`DEFAULT_MIN_BYTES`.

The file lives in the user's cache folder, one per machine (CPU model,
features, cores and thread count), or where ``QBENCH_TUNING`` points;
``QBENCH_TUNING=off`` ignores any stored tuning.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

#: Without a stored tuning, the parallel form is used from this many bytes touched (read + written) on.
DEFAULT_MIN_BYTES = 1 << 20
ENV = "QBENCH_TUNING"
FORMAT = 1
#: Bytes touched per call on the tuning ladder: 16 KiB ... 256 MiB, doubling.
LADDER = tuple(2**k for k in range(14, 29))
#: The parallel form must beat the serial one by this factor to be chosen: on a tie, one thread is the
#: better citizen of a shared machine.
MARGIN = 1.02

#: Kernels the API can switch, as (kernel, dtype) of :mod:`qbench.cases` (``acc+=x`` for accumulate).
TUNED: tuple[tuple[str, str], ...] = (
    ("quantize", "uint8"),
    ("quantize", "int8"),
    ("quantize_axis", "uint8"),
    ("dequantize", "uint8"),
    ("dequantize", "int8"),
    ("dequantize_axis", "uint8"),
    ("sum", "float32"),
    ("sum", "uint8"),
    ("sum", "int8"),
    ("sum", "int32"),
    ("dot", "float32"),
    ("dot", "int8"),
    ("accumulate", "float32+=float32"),
    ("accumulate", "float32+=uint8"),
    ("accumulate", "uint8+=uint8"),
)


def case_key(kernel: str, dtype: str) -> tuple:
    """The key the API looks a call up by, for a (kernel, dtype) of :mod:`qbench.cases`.

    The API builds it from the call itself: the kernel's name and the dtypes that
    pick its variant (``("accumulate", float32, uint8)`` for ``float32+=uint8``).
    """
    return (kernel, *(np.dtype(d) for d in dtype.split("+=")))


def label(k: tuple) -> str:
    """``("accumulate", float32, uint8)`` -> ``"accumulate float32+=uint8"``: the key as stored in the file."""
    return f"{k[0]} {'+='.join(d.name for d in k[1:])}"


def _parse_label(text: str) -> tuple:
    kernel, dtype = text.split(" ", 1)
    return case_key(kernel, dtype)


def machine_fingerprint() -> dict[str, Any]:
    """What a tuning is valid for: CPU model, its features, cores and Numba's thread count."""
    import numba

    from qbench.cpu import cpu_identity

    cpu = cpu_identity()
    return {
        "cpu": cpu["cpu"],
        "simd": cpu["simd"],
        "cores": os.cpu_count(),
        "threads": int(numba.config.NUMBA_NUM_THREADS),
    }


def default_path() -> Path:
    """``<cache>/qbench/tuning-<cpu>-<hash>.json`` in ``XDG_CACHE_HOME`` (else ``~/.cache``)."""
    fp = machine_fingerprint()
    digest = hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", fp["cpu"].lower()).strip("-")[:40] or "cpu"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "qbench" / f"tuning-{slug}-{fp['cores']}c{fp['threads']}t-{digest}.json"


def path() -> Path | None:
    """The tuning file in force: ``QBENCH_TUNING`` if set (``off``: none), else :func:`default_path`."""
    spec = os.environ.get(ENV, "")
    if spec.lower() == "off":
        return None
    if spec:
        return Path(spec)
    try:
        return default_path()
    except RuntimeError:  # no home folder to find a cache in
        return None


#: A threshold no call reaches: the class runs serially.
NEVER = 1 << 64


@dataclass(frozen=True)
class Switch:
    """The serial/parallel choice of one kernel: parallel from a threshold, one per bit length of bytes touched.

    A call touching ``nbytes`` runs in parallel when ``nbytes >=
    min_bytes_by_bits[nbytes.bit_length()]``: one tuple index and one
    comparison per call, since the API asks on every call and a small call is
    counted in microseconds. Within the class of sizes ``[2**(b-1), 2**b)``
    the threshold is 0 (parallel), :data:`NEVER` (serial) or the crossover
    between the class's two measured ends.
    """

    min_bytes_by_bits: tuple[int, ...]  # 65 entries: bit lengths 0 ... 64

    @classmethod
    def from_ladder(cls, sizes: list[int], parallel: list[bool], ratios: list[float] | None = None) -> Switch:
        """Thresholds from decisions on a ladder of powers of two (and the serial/parallel time ratios there).

        Below the ladder, serial; beyond it, its last decision; where the
        decision turns from serial to parallel between two measured sizes,
        the crossover of the ratio through :data:`MARGIN`, interpolated in
        log size (the midpoint when the raw ratios do not bracket it).
        """
        bits = [s.bit_length() for s in sizes]
        thresholds = []
        for b in range(65):
            if b < bits[0]:
                thresholds.append(NEVER)
                continue
            i = min(range(len(bits)), key=lambda k: (abs(bits[k] - b), bits[k]))
            low_end = bits[i] == b and i + 1 < len(bits) and bits[i + 1] == b + 1
            if low_end and not parallel[i] and parallel[i + 1]:
                thresholds.append(_crossover(sizes[i], ratios[i : i + 2] if ratios else None))
            else:
                thresholds.append(0 if parallel[i] else NEVER)
        return cls(tuple(thresholds))

    @classmethod
    def from_min_bytes(cls, min_bytes: int) -> Switch:
        return cls(
            tuple(
                0 if b > min_bytes.bit_length() else NEVER if b < min_bytes.bit_length() else min_bytes
                for b in range(65)
            )
        )

    def __call__(self, nbytes: int) -> bool:
        return nbytes >= self.min_bytes_by_bits[nbytes.bit_length()]

    @property
    def first_parallel(self) -> int:
        """The fewest bytes touched that run in parallel (:data:`NEVER`: none)."""
        starts = (_first_parallel_in_class(b, t) for b, t in enumerate(self.min_bytes_by_bits) if t < NEVER)
        return min(starts, default=NEVER)

    def describe(self) -> str:
        """The decision in words: ``parallel from 700 KiB``, ``parallel 4 MiB to 64 MiB``, ``always serial``."""
        runs, start = [], None
        for b, t in enumerate((*self.min_bytes_by_bits, NEVER)):
            if t < NEVER and start is None:
                start = _first_parallel_in_class(b, t)
            elif t == NEVER and start is not None:
                runs.append((start, 2 ** (b - 1) if b < 65 else None))
                start = None
        if not runs:
            return "always serial"
        return "parallel " + ", ".join(
            f"from {_size(a)}" if z is None else f"{_size(a)} to {_size(z)}" for a, z in runs
        )


def _first_parallel_in_class(bits: int, threshold: int) -> int:
    """The fewest bytes of bit length ``bits`` (the class ``[2**(bits-1), 2**bits)``) at or above ``threshold``."""
    return max(threshold, 2 ** (bits - 1) if bits else 0)


def _crossover(low: int, ratios: list[float] | None) -> int:
    """Where serial/parallel time ratios measured at ``low`` and ``2 * low`` cross :data:`MARGIN`."""
    import math

    if ratios and ratios[0] < MARGIN <= ratios[1]:
        f = (math.log(MARGIN) - math.log(ratios[0])) / (math.log(ratios[1]) - math.log(ratios[0]))
    else:
        f = 0.5
    return int(low * 2**f)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.0f} ZiB"


DEFAULT = Switch.from_min_bytes(DEFAULT_MIN_BYTES)
#: Per kernel key, the threshold by bit length of bytes touched (``Switch.min_bytes_by_bits``), for the API's
#: lookups. Filled from the tuning file at import and refilled in place by :func:`reload`.
TABLE: dict[tuple, tuple[int, ...]] = {}
#: The fewest bytes touched that any kernel runs in parallel, tuned or by default: every smaller call is
#: serial without a lookup (a small call is counted in microseconds). Kept by :func:`reload`.
SERIAL_BELOW = DEFAULT.first_parallel
_loaded: dict[str, Any] | None = None


def load() -> dict[str, Any] | None:
    """The stored tuning in force (see :func:`path`), or None: what :data:`TABLE` was filled from."""
    return _loaded


def reload() -> dict[str, Any] | None:
    """Read the tuning file again (after ``qbench tune`` or a change of ``QBENCH_TUNING``) and refill :data:`TABLE`."""
    global _loaded, SERIAL_BELOW
    TABLE.clear()
    _loaded = None
    SERIAL_BELOW = DEFAULT.first_parallel
    file = path()
    if file is None or not file.exists():
        return None
    try:
        data = json.loads(file.read_text())
        if data.get("format") != FORMAT:
            return None
        table = {_parse_label(k): tuple(int(t) for t in v["min_bytes_by_bits"]) for k, v in data["kernels"].items()}
        if any(len(t) != 65 for t in table.values()):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unreadable tuning is ignored, like none at all: the default rule holds
    TABLE.update(table)
    SERIAL_BELOW = min(SERIAL_BELOW, *(Switch(t).first_parallel for t in table.values()))
    _loaded = data
    return data


def parallel_pays(k: tuple, nbytes: int) -> bool:
    """Whether the parallel form of the kernel keyed ``k`` wins for a call touching ``nbytes``."""
    return nbytes >= TABLE.get(k, DEFAULT.min_bytes_by_bits)[nbytes.bit_length()]


def summary() -> str:
    """One line for reports: what ``parallel=None`` does on this machine."""
    data = load()
    if data is None:
        return f"parallel from {_size(DEFAULT_MIN_BYTES)} touched for every kernel (default; `qbench tune` measures it)"
    kernels = ", ".join(
        f"{name}: {v['describe']}" + ("" if v.get("certainty", "sure").startswith("sure") else f" ({v['certainty']})")
        for name, v in data["kernels"].items()
    )
    return f"tuned {data['created']} at {data['threads']} threads: {kernels}"


# --- storing a measurement (qbench.measure.tune measures) -------------------------------------------------


def verdict(lower_quartile: float, _median: float, upper_quartile: float) -> str:
    """``parallel``, ``serial`` or ``close``, from the quartiles of per-round serial/parallel time ratios."""
    return "parallel" if lower_quartile >= MARGIN else "serial" if upper_quartile < 1.0 else "close"


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = np.quantile(values, [0.25, 0.5, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


@dataclass
class Measured:
    kernel: str
    dtype: str
    nbytes: list[int]
    serial_s: list[float]
    parallel_s: list[float]
    #: Per size, the serial/parallel time ratio of every round (each round times both forms side by side);
    #: empty where only the times are known.
    round_ratios: list[list[float]] = field(default_factory=list)

    def ratio_quartiles(self, i: int) -> tuple[float, float, float]:
        """(lower quartile, median, upper quartile) of the round ratios at size ``i`` (the times' ratio alone
        where no rounds were kept)."""
        if not self.round_ratios or not self.round_ratios[i]:
            r = self.serial_s[i] / self.parallel_s[i]
            return r, r, r
        return quartiles(self.round_ratios[i])

    def verdicts(self) -> list[str]:
        """Per size: ``parallel`` (it wins by :data:`MARGIN` in three rounds of four), ``serial`` (serial wins
        in three of four), or ``close`` (the forms lie within the rounds' spread of each other)."""
        return [verdict(*self.ratio_quartiles(i)) for i in range(len(self.nbytes))]

    def decisions(self) -> list[bool]:
        """Parallel where it won by :data:`MARGIN` in three rounds of four (so the margin grows with the rounds'
        spread), then a median of three neighbours (one noisy size cannot flip). A close size stays serial:
        either form is within the spread there, and one thread is the better citizen of a shared machine."""
        raw = [v == "parallel" for v in self.verdicts()]
        padded = [raw[0], *raw, raw[-1]]
        return [sorted(padded[i : i + 3])[1] for i in range(len(raw))]

    def switch(self) -> Switch:
        ratios = [self.ratio_quartiles(i)[1] for i in range(len(self.nbytes))]
        return Switch.from_ladder(self.nbytes, self.decisions(), ratios)

    def certainty(self) -> str:
        """How sure the switch is: ``sure`` where every size's rounds agreed, else the close sizes and the
        widest spread between the two forms there."""
        close = [i for i, v in enumerate(self.verdicts()) if v == "close"]
        if not close:
            return "sure: every size's rounds agree on the faster form"
        spread = max(max(self.ratio_quartiles(i)[2], 1 / self.ratio_quartiles(i)[0]) for i in close)
        sizes = ", ".join(_size(self.nbytes[i]) for i in close)
        return f"close at {sizes}: the rounds there put either form up to {spread:.2f}x ahead"


def save(results: list[Measured], file: Path | None = None) -> Path:
    """Write the tuning (decisions and the times behind them) and make this process use it."""
    import numba

    file = file or path() or default_path()
    kernels = {}
    for m in results:
        switch = m.switch()
        kernels[label(case_key(m.kernel, m.dtype))] = {
            "min_bytes_by_bits": list(switch.min_bytes_by_bits),
            "describe": switch.describe(),
            "bytes": m.nbytes,
            "serial_s": m.serial_s,
            "parallel_s": m.parallel_s,
            "ratio_quartiles": [list(m.ratio_quartiles(i)) for i in range(len(m.nbytes))],
            "verdicts": m.verdicts(),
            "certainty": m.certainty(),
        }
    data = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_fingerprint(),
        "threads": numba.get_num_threads(),
        "margin": MARGIN,
        "kernels": kernels,
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, file)  # never a half-written tuning
    reload()
    return file


reload()


_DEFAULT_SWITCH = DEFAULT.min_bytes_by_bits


def _num_threads() -> int:
    """``numba.get_num_threads()``, which takes two locks per call (about 1.2 us): read directly once started."""
    global _num_threads
    count = numba.get_num_threads()  # starts the thread pool
    try:
        from numba.np.ufunc.parallel import _get_num_threads as fast

        if fast() == count:
            _num_threads = fast
    except (ImportError, AttributeError, TypeError):
        pass
    return count


def use_parallel(nbytes: int, parallel: bool | None, key: tuple = ()) -> bool:
    """Resolve ``parallel=None`` for the kernel ``key`` (see :func:`case_key`) touching ``nbytes``.

    Parallel where this machine's tuning (``qbench tune``) measured that it
    wins for that kernel and size, or from :data:`DEFAULT_MIN_BYTES` without
    one; always serial when Numba has one thread.
    """
    if parallel is None:
        if nbytes < SERIAL_BELOW:
            return False
        return nbytes >= TABLE.get(key, _DEFAULT_SWITCH)[nbytes.bit_length()] and _num_threads() > 1
    if parallel is True or parallel is False:
        return parallel
    if not isinstance(parallel, np.bool_):
        raise TypeError(f"parallel must be True, False or None, got {parallel!r}")
    return bool(parallel)
