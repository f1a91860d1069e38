"""An ONNX model run end to end in ONNX Runtime, as float32 and as each quantized variant.

Each variant is made and measured in processes of its own
(:mod:`qbench.model.worker`), so its peak memory is its own and its crash
is its own line; its latency is timed in one more process beside float32's,
the two taking turns round by round (``baseline_latency``: float32 in that
same process), so a speed-up is a ratio measured side by side. The outputs of
every variant are compared with float32's here. All work happens in a
temporary folder that is removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qbench.model import inputs as model_inputs
from qbench.model import variants as model_variants
from qbench.model.files import ModelError

#: Batch sizes whose throughput is measured when the model has a free batch axis.
BATCHES = (1, 8, 32)


@dataclass
class Plan:
    """What a run needs, settled before any work: the model, its inputs and the variants."""

    path: Path
    inputs: dict[str, np.ndarray]  # a leading sample axis
    variants: list[model_variants.Variant]
    threads: list[int]
    batches: list[int]
    seconds: float = 1.0  # time budget per latency measurement
    rounds: int = 5
    timeout: float = 600.0  # per process
    notes: list[str] = field(default_factory=list)


def plan(
    path: str | Path,
    *,
    variants: list[str] | None = None,
    inputs: str | Path | None = None,
    dims: list[str] | None = None,
    samples: int = 8,
    int_range: tuple[int, int] | None = None,
    threads: list[int] | None = None,
    seconds: float = 1.0,
    timeout: float = 600.0,
) -> Plan:
    """Check everything the user gave against the graph; every refusal is a :class:`ModelError` naming the cause."""
    import onnx

    path = Path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    try:
        chosen = model_variants.pick(variants)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    specs = model_inputs.graph_inputs(proto)
    notes = []
    batch = model_inputs.batch_symbol(specs)
    if inputs is not None:
        data = model_inputs.load_inputs(inputs, specs)
        if dims:
            notes.append("--dim is ignored: the shapes come from --inputs")
    else:
        given = model_inputs.parse_dims(dims or [])
        shapes = model_inputs.resolve_shapes(specs, given)
        data = model_inputs.random_inputs(proto, shapes, samples, int_range)
        if batch and batch not in given:
            notes.append(f"batch axis {batch!r} = 1 (set it with --dim {batch}=N)")
        notes.append(f"inputs: {samples} random sample(s) made from the graph's types and shapes")
    cores = os.cpu_count() or 1
    return Plan(
        path=path,
        inputs=data,
        variants=chosen,
        threads=threads or sorted({1, cores}),
        batches=list(BATCHES) if batch and inputs is None else [],
        seconds=seconds,
        timeout=timeout,
        notes=notes,
    )


def _job(folder: Path, kind: str, timeout: float, **fields: Any) -> dict[str, Any]:
    """Run one worker job in its own process; a crash is returned as an error, a timeout raised as ModelError."""
    job_path = folder / f"job-{kind}-{fields.get('variant', '')}.json"
    result_path = job_path.with_suffix(".result.json")
    job_path.write_text(json.dumps({"kind": kind, "result": str(result_path), "folder": str(folder), **fields}))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "qbench.model.worker", str(job_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ModelError(f"{kind} of {fields.get('variant', 'the model')} ran past --timeout {timeout:g} s") from None
    if not result_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"the process ended with status {proc.returncode}: {' / '.join(tail) or 'no message'}"}
    return json.loads(result_path.read_text())


def fidelity(reference: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: SQNR (dB), cosine and max abs error against float32; top-1 agreement for class scores."""
    found = {}
    for name, ref in reference.items():
        got = outputs[name]
        if ref.dtype.kind != "f":
            found[name] = {"exact": float(np.mean(ref == got)) if ref.shape == got.shape else 0.0}
            continue
        r, g = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
        noise, signal = float(np.sum((r - g) ** 2)), float(np.sum(r * r))
        norm = float(np.linalg.norm(r) * np.linalg.norm(g))
        row = {
            "sqnr_db": 10 * np.log10(signal / noise) if noise > 0 else float("inf"),
            "cosine": float(r @ g / norm) if norm > 0 else float("nan"),
            "max_abs": float(np.max(np.abs(r - g))) if r.size else 0.0,
        }
        if ref.ndim == 3 and ref.shape[-1] >= 2:  # (samples, batch, classes): class scores
            row["top1"] = float(np.mean(np.argmax(ref, axis=-1) == np.argmax(got, axis=-1)))
        found[name] = row
    return found


def _summary(latency: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Median, p90, p99 and the rounds' spread (slowest round median over fastest) per thread count."""
    out = {}
    for t, rounds in latency.items():
        flat = np.concatenate(rounds)
        medians = [float(np.median(r)) for r in rounds]
        out[t] = {
            "median_s": float(np.median(flat)),
            "p90_s": float(np.percentile(flat, 90)),
            "p99_s": float(np.percentile(flat, 99)),
            "spread": max(medians) / min(medians),
            "calls": int(flat.size),
        }
    return out


class _Failed(Exception):
    """A variant's step that failed: its message is the variant's line in the results."""


def _variant(
    p: Plan, v: model_variants.Variant, folder: Path, reference: dict[str, np.ndarray], float_counts: dict[str, int]
) -> dict[str, Any]:
    """One variant made (unless float32), measured, timed beside float32 and compared with its outputs."""
    inputs = str(folder / "inputs.npz")

    def step(kind: str, what: str, **fields: Any) -> dict[str, Any]:
        found = _job(folder, kind, p.timeout, variant=v.name, inputs=inputs, **fields)
        if "error" in found:
            raise _Failed(f"{what} failed: {found['error']}")
        return found

    model = p.path if v.kind == "float" else folder / f"{v.name}.onnx"
    entry: dict[str, Any] = {"label": v.label, "kind": v.kind}
    if v.kind != "float":
        entry["quantize_s"] = step("make", "quantization", source=str(folder / "prepared.onnx"), model=str(model))[
            "seconds"
        ]
    outputs = folder / f"{v.name}-outputs.npz"
    measured = step(
        "measure",
        "session or run",
        model=str(model),
        outputs=str(outputs),
        threads=p.threads,
        batches=p.batches,
        seconds=p.seconds,
        rounds=p.rounds,
    )
    models = {"float32": str(p.path), v.name: str(model)}
    raced = step("race", "timing", models=models, threads=p.threads, seconds=p.seconds, rounds=p.rounds)
    with np.load(outputs) as archive:
        got = {k: archive[k] for k in archive.files}
    if v.kind == "float":
        reference.update(got)
    counts = model_variants.weight_counts(model)
    entry.update(
        bytes=model_variants.file_bytes(model),
        weights=float_counts["float"],
        quantized=max(counts["integer"] - float_counts["integer"], 0),
        float_values_left=counts["float_values"],
        latency=_summary(raced["latency_s"][v.name]),
        baseline_latency=_summary(raced["latency_s"]["float32"]),
        **{k: measured[k] for k in ("load_s", "first_call_s", "throughput", "profile_us", "peak_rss")},
        fidelity=fidelity(reference, got) if reference and v.kind != "float" else {},
    )
    if v.kind == "static":  # optional: a failure here leaves the variant's figures standing
        found = _job(
            folder,
            "divergence",
            p.timeout,
            variant=v.name,
            inputs=inputs,
            float=str(folder / "prepared.onnx"),
            qdq=str(model),
        )
        entry["divergence"] = found.get("nodes", [])[:10]
        if "error" in found:
            entry["divergence_error"] = found["error"]
    return entry


def run(p: Plan, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Every variant of ``p``: made, measured, compared with float32; a variant that fails says why."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qbench-model-") as tmp:
        folder = Path(tmp)
        np.savez(folder / "inputs.npz", **p.inputs)
        model_variants.prepared(p.path, folder / "prepared.onnx")
        reference: dict[str, np.ndarray] = {}
        float_counts = model_variants.weight_counts(p.path)
        for i, v in enumerate(p.variants, 1):
            started = time.perf_counter()
            progress(f"[{i}/{len(p.variants)}] {v.label}: " + ("measuring" if v.kind == "float" else "quantizing"))
            try:
                results[v.name] = _variant(p, v, folder, reference, float_counts)
            except _Failed as exc:
                results[v.name] = {"label": v.label, "kind": v.kind, "error": str(exc)}
                progress(f"      {exc}")
                continue
            progress(f"      done in {time.perf_counter() - started:.1f} s")
    return results
