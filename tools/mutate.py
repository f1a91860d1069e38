"""Apply each one-line break of ``tools/mutations.py`` to a copy of the checkout and run the tests that must catch it.

    python tools/mutate.py               # every break; exit 1 if any survives
    python tools/mutate.py -k probe      # the breaks whose name contains "probe"
    python tools/mutate.py --list        # what would be applied

The copy (the tracked files, as they are in the working tree) lives in a temporary folder with its own Numba
cache; a break is applied, its tests run with ``pytest -x``, and the file is restored with its time stamp, so only
the mutated module recompiles. A break whose text no longer occurs once is reported as stale: update the list.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from mutations import MUTATIONS  # noqa: E402


def tracked_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def run_one(copy: Path, mutation: dict, env: dict[str, str]) -> str:
    """'killed', 'SURVIVED' or 'stale' (the text to replace is not there exactly once)."""
    path = copy / mutation["file"]
    original = path.read_text()
    if original.count(mutation["old"]) != 1:
        return "stale"
    backup = path.with_suffix(".orig")
    shutil.copy2(path, backup)
    try:
        path.write_text(original.replace(mutation["old"], mutation["new"]))
        cmd = [sys.executable, "-m", "pytest", "-x", "-n", "0", "-q", "-p", "no:cacheprovider", *mutation["tests"]]
        result = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    finally:
        shutil.copy2(backup, path)
        backup.unlink()
    return (
        "killed" if result.returncode == 1 else ("SURVIVED" if result.returncode == 0 else f"error {result.returncode}")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only the breaks whose name contains this text")
    parser.add_argument("--list", action="store_true", help="print the breaks and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m["name"].lower()]
    if args.list or not chosen:
        for m in chosen:
            print(f"{m['file']}: {m['name']} -> {' '.join(m['tests'])}")
        return 0 if chosen else 2
    outcome: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="qbench-mutate-") as tmp:
        copy = Path(tmp) / "qbench"
        tracked_copy(copy)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache"), "QBENCH_TUNING": "off"}
        for m in chosen:
            started = time.perf_counter()
            outcome[m["name"]] = run_one(copy, m, env)
            print(f"{outcome[m['name']]:>9}  {time.perf_counter() - started:5.0f} s  {m['name']}", flush=True)
    bad = [n for n, o in outcome.items() if o != "killed"]
    print(
        f"{len(outcome) - len(bad)} of {len(outcome)} breaks caught"
        + (f"; not caught: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
