"""asv result files -> one tidy pandas DataFrame, a row per benchmark, parameter set and commit.

asv stores, per machine, one JSON file per commit and environment; parameter
values are ``repr()`` strings, a skipped benchmark is NaN and a failed one is
null. Benchmark metadata (parameter names, units) lives in
``benchmarks.json`` beside the machine folders.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench import cases
from qbench.analysis import busy
from qbench.measure.runner import ROUNDS_PREFIX

COLUMNS = [
    "benchmark",
    "suite",
    "kind",
    "kernel",
    "impl",
    "dtype",
    "size",
    "threads",
    "params",
    "machine",
    "commit",
    "date",
    "env",
    "value",
    "ci_low",
    "ci_high",
    "q25",
    "q75",
    "unit",
    "status",
    "rounds_low",
    "rounds_high",
    "rounds",
    "busy",
    "busy_error",
]
_STATS = {"ci_low": "stats_ci_99_a", "ci_high": "stats_ci_99_b", "q25": "stats_q_25", "q75": "stats_q_75"}


class ResultsError(Exception):
    """The results folder holds nothing a report can be built from."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _kernel_of(cls: str, method: str) -> str:
    """The kernel a benchmark times: its family in the registry (``cases.BENCHMARK_KERNELS``); for the suites
    that are not a kernel (calibration, footprint, compile), the class or function, snake_cased, as a label.
    Bandwidth, memory and side-by-side rows name theirs in a parameter (see :func:`_rows_of_file`)."""
    if cls in cases.BENCHMARK_KERNELS:
        return cases.BENCHMARK_KERNELS[cls]
    return _snake(cls) if cls else method


def _literal(text: Any) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _at(values: Any, i: int) -> Any:
    """The i-th entry of a per-parameter column, or the value itself when asv stored one for all."""
    return values[i] if isinstance(values, list) and i < len(values) else values


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        warnings.warn(f"skipping unreadable result file {path}: {exc}", stacklevel=3)
        return None
    if not isinstance(data, dict):
        warnings.warn(f"skipping {path}: not an asv result file", stacklevel=3)
        return None
    return data


def _benchmark_meta(results_dir: Path) -> dict[str, dict]:
    path = results_dir / "benchmarks.json"
    if not path.exists():
        return {}
    data = _read_json(path) or {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _rows_of_file(path: Path, data: dict, meta: dict[str, dict], machine: str) -> list[dict]:
    columns = data["result_columns"]
    rows = []
    for name, entry in data["results"].items():
        record = dict(zip(columns, entry, strict=False))
        info = meta.get(name, {})
        param_names = info.get("param_names") or []
        param_values = [[_literal(v) for v in values] for values in (record.get("params") or [])]
        combos = list(itertools.product(*param_values)) if param_values else [()]
        values = record.get("result")
        if not isinstance(values, list):
            values = [values] * len(combos)
        if len(values) != len(combos):
            warnings.warn(
                f"skipping {name} in {path}: {len(values)} results for {len(combos)} parameter sets", stacklevel=3
            )
            continue
        suite, _, kind = name.rpartition(".")
        cls = suite.rpartition(".")[2]
        for i, combo in enumerate(combos):
            params = dict(zip(param_names or [f"p{j}" for j in range(len(combo))], combo, strict=False))
            value = values[i]
            status = "failed" if value is None else "skipped" if isinstance(value, float) and np.isnan(value) else "ok"
            row = {
                "benchmark": name,
                "suite": suite,
                "kind": kind.split("_")[0],
                "kernel": _kernel_of(cls, kind),
                "impl": params.get("impl", "qbench"),
                "dtype": params.get("dtype"),
                "size": params.get("size"),
                "threads": params.get("threads", 1),
                "params": json.dumps(params, default=str, sort_keys=True),
                "machine": machine,
                "commit": data.get("commit_hash"),
                "date": data.get("date"),
                "env": data.get("env_name"),
                "value": np.nan if value is None else float(value),
                "unit": info.get("unit", "seconds" if kind.startswith("time") else ""),
                "status": status,
            }
            if "op" in params:  # bandwidth probes: the op is the kernel
                row["kernel"], row["dtype"] = params["op"], "float32"
            if "case" in params:  # memory rows name "kernel:dtype"
                row["kernel"], row["dtype"] = str(params["case"]).split(":", 1)
            if "comparison" in params:  # side-by-side rows: "kernel dtype / against"
                try:
                    pair = cases.Comparison.parse(str(params["comparison"]))
                    row["kernel"], row["dtype"] = pair.kernel, pair.dtype
                except ValueError:  # named otherwise by an older suite: kept, under its class
                    pass
            row["started_at"] = _at(record.get("started_at"), i)
            samples = record.get("samples")
            row["samples"] = samples[i] if isinstance(samples, list) and i < len(samples) else None
            for col, key in _STATS.items():
                stat = record.get(key)
                row[col] = (
                    float(stat[i]) if isinstance(stat, list) and i < len(stat) and stat[i] is not None else np.nan
                )
            row.update({f"param_{k}": v for k, v in params.items() if k not in ("size", "dtype", "threads", "impl")})
            rows.append(row)
    return rows


def _rounds(machine_dir: Path) -> dict[tuple, list[float]]:
    """Per-round ratios of side-by-side points that ``qbench run`` kept (:func:`rounds_file`), keyed by
    (commit prefix, comparison, size, threads); a later line for a point replaces an earlier one."""
    found: dict[tuple, list[float]] = {}
    for path in sorted(machine_dir.glob(f"{ROUNDS_PREFIX}*.jsonl")):
        prefix = path.stem.removeprefix(ROUNDS_PREFIX)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                entry = json.loads(line)
                key = (prefix, str(entry["comparison"]), int(entry["size"]), int(entry["threads"]))
                found[key] = [float(r) for r in entry["ratios"]]
            except (ValueError, KeyError, TypeError):
                warnings.warn(f"skipping line {number} of {path}: not a side-by-side record", stacklevel=3)
    return found


def load_results(
    results_dir: str | Path = ".asv/results", *, machine: str | None = None, commit: str | None = None
) -> pd.DataFrame:
    """Read every asv result file under ``results_dir`` into one tidy DataFrame.

    Corrupt, partial or foreign files are skipped with a warning naming the
    file. Raises :class:`ResultsError` when nothing usable is found.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError(f"no results folder at {root}; run 'qbench run' first")
    meta = _benchmark_meta(root)
    rows: list[dict] = []
    for machine_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if machine is not None and machine_dir.name != machine:
            continue
        rounds = _rounds(machine_dir)
        windows, _ = busy.machine_records(machine_dir)
        for path in sorted(machine_dir.glob("*.json")):
            if path.name == "machine.json" or path.name.startswith("qbench-"):
                continue
            data = _read_json(path)
            if data is None:
                continue
            if not {"result_columns", "results"} <= data.keys() or not isinstance(data["results"], dict):
                warnings.warn(f"skipping {path}: not an asv result file (no result_columns/results)", stacklevel=2)
                continue
            if commit is not None and not str(data.get("commit_hash", "")).startswith(commit):
                continue
            try:
                found = _rows_of_file(path, data, meta, machine_dir.name)
            except (TypeError, KeyError, IndexError, AttributeError) as exc:
                warnings.warn(f"skipping malformed result file {path}: {exc!r}", stacklevel=2)
                continue
            _add_rounds(found, rounds)
            busy.attach(found, windows)
            rows.extend(found)
    if not rows:
        what = " for machine " + machine if machine else ""
        what += " at commit " + commit if commit else ""
        raise ResultsError(f"no benchmark results in {root}{what}; run 'qbench run' first")
    frame = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    frame["date"] = pd.to_datetime(frame["date"], unit="ms", errors="coerce")
    rest = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + rest]


def _add_rounds(rows: list[dict], rounds: dict[tuple, list[float]]) -> None:
    """The spread over rounds of each side-by-side row whose rounds were kept: the interquartile range of its
    per-round ratios (one disturbed round out of five moves neither end), and how many rounds."""
    for row in rows:
        comparison = row.get("param_comparison")
        ratios = comparison and rounds.get((str(row["commit"])[:8], comparison, row["size"], row["threads"]))
        if ratios:
            low, high = np.percentile(ratios, [25, 75])
            row["rounds_low"], row["rounds_high"], row["rounds"] = float(low), float(high), len(ratios)


def machine_info(results_dir: str | Path, machine: str) -> dict[str, Any]:
    """What qbench recorded about ``machine`` (CPU, caches, versions), falling back to asv's machine.json, and
    what else used its CPUs during each run (``busy_runs``, by commit prefix)."""
    folder = Path(results_dir) / machine
    _, runs = busy.machine_records(folder)
    for name in ("qbench-machine.json", "machine.json"):
        path = folder / name
        if path.exists():
            data = _read_json(path)
            if data:
                return {**data, "busy_runs": runs}
    return {"machine": machine, "busy_runs": runs}
