"""Compilation machinery shared by every kernel: one Python loop, two compiled targets.

Each kernel is written once with ``prange``; :func:`kernel` compiles it twice,
serial (``prange`` acts as ``range``) and parallel (``prange`` splits across
threads), both cached on disk. The math modules never see this file's details.
"""

from __future__ import annotations

import functools
import threading
import types
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
from llvmlite import binding as llvm
from numba.core.compiler_lock import global_compiler_lock

# Reductions written as a plain ``s += x[i]`` only vectorize when LLVM may
# reorder the additions. These flags allow that without "nnan"/"ninf", so
# NaN and inf still propagate as IEEE says.
REASSOC = {"reassoc", "nsz", "contract"}


def _renamed(fn: Callable, suffix: str) -> Callable:
    """A copy of ``fn`` with its own qualified name.

    Numba's on-disk cache index is keyed by the function's qualified name and
    line, not by the ``parallel`` flag: two dispatchers of one function would
    overwrite each other's cache entries. A distinct name gives each its own.
    """
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}__{suffix}"
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


# LLVM's loop vectorizer sizes vectors by the widest type in a loop: a loop that
# reads float32 and writes uint8 gets 8 lanes, so every 8 bytes of output are
# packed and stored on their own. "Maximize bandwidth" lets it size them by the
# narrowest type instead (32 lanes: four float32 vectors packed into one uint8
# store): faster for quantize, 8-bit sums and int8 dots (the README's notes on how qbench measures).
# It is a process-wide LLVM option, so it is switched on only while qbench's
# own kernels compile, under Numba's compiler lock, and back off afterwards.
_WIDE = {"-vectorizer-maximize-bandwidth": ("true", "false")}
# A loop over one block (16 or 32 values, a run-time count) must fit in one vector iteration: with
# wide vectors (64 lanes) or four interleaved ones the whole block falls to the scalar remainder.
# Block kernels compile with one vector per iteration and their natural width instead.
_ONE_VECTOR = {"-force-vector-interleave": ("1", "0")}


def _options(wide: bool, interleave: int | None = None, width: int | None = None) -> dict[str, tuple[str, str]]:
    """The LLVM options a kernel compiles with: :data:`_WIDE` or :data:`_ONE_VECTOR`; for a wide loop whose body
    LLVM's cost model sizes badly, ``interleave`` vectors an iteration and (``width``) lanes a vector instead."""
    if not wide:
        return _ONE_VECTOR
    options = dict(_WIDE)
    if interleave is not None:
        options["-force-vector-interleave"] = (str(interleave), "0")
    if width is not None:
        options["-force-vector-width"] = (str(width), "0")
    return options


def _compile_with(dispatcher: Any, options: dict[str, tuple[str, str]]) -> Any:
    """Make ``dispatcher`` compile every new signature with the LLVM ``options`` set (then reset)."""
    compile_one = dispatcher.compile

    def compile_with(sig: Any) -> Any:
        with global_compiler_lock:
            for name, (on, _) in options.items():
                llvm.set_option("qbench", f"{name}={on}")
            try:
                return compile_one(sig)
            finally:
                for name, (_, off) in options.items():
                    llvm.set_option("qbench", f"{name}={off}")

    dispatcher.compile = compile_with
    return dispatcher


def _options_tag(options: dict[str, tuple[str, str]]) -> str:
    """A short name for a set of LLVM options, part of each kernel's cache name: Numba's disk cache notices
    a change to the kernel's own source, not to the options it was compiled with here."""
    return f"{zlib.crc32(repr(sorted(options.items())).encode()) & 0xFFFF:04x}"


def _sources_tag() -> str:
    """A short hash of every kernel module's source, part of each kernel's cache name.

    Numba's disk cache checks the stamp of a cached function's own file, not of the files its inlined helpers
    come from (``division.quotient`` inside quantize's loops, ``quantize_value`` inside the metrics): without
    this, a change to a helper alone, by an edit or an upgrade, would load the kernels compiled before it.
    """
    crc = 0
    for source in sorted(Path(__file__).parent.glob("*.py")):
        crc = zlib.crc32(source.read_bytes(), crc)
    return f"{crc & 0xFFFF:04x}"


SOURCES_TAG = _sources_tag()


def _njit(fn: Callable, llvm_options: dict[str, tuple[str, str]], **options: Any) -> Any:
    return _compile_with(numba.njit(**options)(fn), llvm_options)


@dataclass(frozen=True)
class Kernel:
    """A kernel's serial and parallel compiled forms."""

    name: str
    serial: Any
    parallel: Any
    llvm_options: dict[str, tuple[str, str]]

    def target(self, parallel: bool) -> Callable:
        """The compiled form to call: ``serial``, or ``parallel`` behind the launch guard.

        Callers that care about microseconds pick once and call the result:
        going through :meth:`__call__` costs its keyword handling on every call.
        """
        return functools.partial(run_parallel, self.parallel) if parallel else self.serial

    def __call__(self, *args: Any, parallel: bool = False) -> Any:
        return self.target(parallel)(*args)

    def asm(self, *args: Any, parallel: bool = False) -> str:
        """Assembly of the kernel compiled for ``args``.

        Numba returns nothing useful for code loaded from the disk cache, so
        this compiles a fresh, uncached twin with the same source and flags.
        """
        cached = self.parallel if parallel else self.serial
        options = {k: v for k, v in cached.targetoptions.items() if k != "nopython"}
        twin = _njit(cached.py_func, self.llvm_options, **{**options, "cache": False})
        twin.compile(tuple(numba.typeof(a) for a in args))
        return "\n".join(twin.inspect_asm().values())


def kernel(
    fn: Callable | None = None,
    *,
    fastmath: bool | set = False,
    wide: bool = True,
    interleave: int | None = None,
    width: int | None = None,
    cache: bool = True,
) -> Any:
    """Compile ``fn`` into a :class:`Kernel` (serial and parallel, cached on disk unless ``cache=False``:
    code generated at run time has no source file to key a cache on).

    ``wide=False`` compiles with :data:`_ONE_VECTOR` instead of :data:`_WIDE`: for loops over one small block.
    ``interleave`` and ``width`` force the vectors per iteration and lanes per vector of a wide loop
    (:func:`_options`).
    """

    def build(f: Callable) -> Kernel:
        opts = dict(nogil=True, cache=cache, fastmath=fastmath)
        llvm_options = _options(wide, interleave, width)
        tag = f"{_options_tag(llvm_options)}_{SOURCES_TAG}"
        return Kernel(
            name=f.__name__,
            serial=_njit(_renamed(f, f"serial_{tag}"), llvm_options, parallel=False, **opts),
            parallel=_njit(_renamed(f, f"parallel_{tag}"), llvm_options, parallel=True, **opts),
            llvm_options=llvm_options,
        )

    return build(fn) if fn is not None else build


# Numba's ``workqueue`` threading layer aborts the whole process when two
# Python threads launch parallel kernels at once. ``omp`` and ``tbb`` do not.
# The layer is only known after the first parallel launch, so that first
# launch and every launch under ``workqueue`` are serialized by this lock.
_LAUNCH_LOCK = threading.Lock()
_layer_is_safe: bool | None = None


def run_parallel(compiled: Any, *args: Any) -> Any:
    """Call a parallel kernel, serializing launches if the threading layer needs it."""
    global _layer_is_safe
    if _layer_is_safe:
        return compiled(*args)
    with _LAUNCH_LOCK:
        result = compiled(*args)
        _layer_is_safe = numba.threading_layer() != "workqueue"
    return result
