"""Which integer matrix-kernel ISA this process compiles for, chosen in Python before anything is compiled.

Numba compiles for ``NUMBA_CPU_NAME`` with ``NUMBA_CPU_FEATURES`` when they are set, else for this host; the
features it passes to LLVM are what decide which instructions may appear. ``QBENCH_ISA`` narrows the choice to a
path the features allow (to compare paths on one host, or to test them); one they do not allow is refused with a
Python exception instead of an LLVM abort.

| path | instruction | vector | operands |
|---|---|---|---|
| ``avx512-vnni`` | ``vpdpbusd`` zmm | 512 bits | u8 x s8 quads |
| ``avx-vnni`` | ``vpdpbusd`` ymm (VEX on CPUs without AVX-512) | 256 bits | u8 x s8 quads |
| ``avx512`` | ``vpmaddwd`` zmm | 512 bits | int16 pairs |
| ``avx2`` | ``vpmaddwd`` ymm | 256 bits | int16 pairs |

Every path is exact: ``vpdpbusd`` wraps in int32 and never saturates, and the int16 pairs of (x - zero point)
never reach ``vpmaddwd``'s one saturating case.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

ENV = "QBENCH_ISA"


@dataclass(frozen=True)
class Isa:
    """One matrix-kernel path: its vector width, whether it multiplies u8 x s8 quads (VNNI) or int16 pairs."""

    name: str
    bits: int
    vnni: bool
    requires: tuple[str, ...]
    #: Another set of features that also runs it (the 256-bit VNNI form exists in AVX-512 VL as well).
    or_requires: tuple[str, ...] = ()

    @property
    def lanes(self) -> int:
        """32-bit lanes per vector: the columns one vector of accumulators holds."""
        return self.bits // 32

    @property
    def k_step(self) -> int:
        """Values of K per 32-bit lane and instruction: 4 bytes (VNNI) or 2 int16 values."""
        return 4 if self.vnni else 2

    @property
    def itemsize(self) -> int:
        """Bytes of a packed weight: 1 (s8) or 2 (int16)."""
        return 1 if self.vnni else 2


#: The paths, fastest first: the first whose features the compile target has is the default.
PATHS = (
    Isa("avx512-vnni", 512, True, ("avx512f", "avx512bw", "avx512vnni")),
    Isa("avx-vnni", 256, True, ("avx2", "avxvnni"), ("avx512vnni", "avx512vl")),
    Isa("avx512", 512, False, ("avx512f", "avx512bw")),
    Isa("avx2", 256, False, ("avx2",)),
)
BY_NAME = {p.name: p for p in PATHS}


@functools.cache
def compile_features() -> frozenset[str]:
    """The CPU features Numba compiles for (``+name`` entries), honouring ``NUMBA_CPU_FEATURES``; read once (asking
    LLVM takes about half a millisecond)."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    text = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return frozenset(f[1:] for f in text.split(",") if f.startswith("+"))


@functools.cache
def allowed(features: frozenset[str] | None = None) -> tuple[Isa, ...]:
    """The paths the compile target can run, fastest first (none off x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    have = compile_features() if features is None else features
    return tuple(p for p in PATHS if set(p.requires) <= have or (p.or_requires and set(p.or_requires) <= have))


def choose(features: frozenset[str] | None = None) -> Isa | None:
    """The path the matrix kernels use: ``QBENCH_ISA`` if set (and allowed), else the fastest allowed; None
    where no path is (the portable kernels then serve)."""
    paths = allowed(features)
    wanted = os.environ.get(ENV, "").strip()
    if not wanted:
        return paths[0] if paths else None
    if wanted not in BY_NAME:
        raise ValueError(f"{ENV}={wanted!r} names no kernel path; accepted: {', '.join(BY_NAME)}")
    if BY_NAME[wanted] not in paths:
        raise ValueError(
            f"{ENV}={wanted} needs CPU features {', '.join(BY_NAME[wanted].requires)}, which the compile target "
            f"lacks; this target allows: {', '.join(p.name for p in paths) or 'none'}"
        )
    return BY_NAME[wanted]
