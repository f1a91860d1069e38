"""What CPU this is: model, architecture, SIMD features, cores and caches (no compiler involved)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "sve",
)


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _parse_size(text: str) -> int | None:
    m = re.match(r"\s*(\d+)\s*([KMG]?)", text)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


def cache_sizes() -> dict[str, int]:
    """Per-core data cache sizes in bytes ({"L1": ..., "L2": ..., "L3": ...}), from sysfs where present."""
    found: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")) if base.exists() else []:
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _parse_size((index / "size").read_text())
        except OSError:
            continue
        if kind in ("Data", "Unified") and size:
            found[f"L{level}"] = size
    return found


def cpu_identity() -> dict[str, Any]:
    """Model, architecture and SIMD features: what a stored tuning is valid for (one read of /proc/cpuinfo)."""
    info = _cpuinfo()
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    flags_line = re.search(r"^(flags|Features)\s*:\s*(.+)$", info, re.MULTILINE)
    flags = set(flags_line.group(2).split()) if flags_line else set()
    return {
        "cpu": model.group(1).strip() if model else (platform.processor() or platform.machine()),
        "arch": platform.machine(),
        "simd": [f for f in SIMD_FLAGS if f in flags],
    }


def describe_cpu() -> dict[str, Any]:
    """The CPU alone: model, architecture, SIMD features, cores and caches (cheap: no compiler involved)."""
    return {**cpu_identity(), "cores": os.cpu_count(), "caches": cache_sizes()}
