"""Kernels written as Python source at run time, loaded as modules from files so that Numba caches them on disk.

A kernel whose shape depends on the ISA path (how many accumulators a tile holds, which vector width its
operations take) is generated per path. Numba's disk cache needs a source file to key on: each generated module is
written once, under a name that holds its source's digest, and imported from there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path


def _folder() -> Path:
    """Where generated modules are written: beside Numba's cache when it has a folder of its own, else the user's
    cache folder, else a temporary one."""
    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for folder in (Path(base) / "qbench-generated", Path(tempfile.gettempdir()) / f"qbench-generated-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise RuntimeError("no writable folder for qbench's generated kernels (set NUMBA_CACHE_DIR)")


def load(prefix: str, source: str) -> types.ModuleType:
    """The module of ``source``, written once as ``prefix`` + its digest and imported (callers cache it)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    name = f"{prefix.replace('-', '_')}_{digest}"
    path = _folder() / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)  # never a half-written module, whoever writes it first
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
