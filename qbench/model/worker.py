"""One variant's work in a process of its own: ``python -m qbench.model.worker JOB.json``.

A job makes a variant (``"make"``), measures one (``"measure"``: load time,
the first call, throughput per batch, the per-operator profile, outputs, peak
resident memory), times a variant and float32 side by side (``"race"``:
latency per thread count, the two taking turns round by round) or compares a
static model's intermediate outputs with float32's (``"divergence"``). Its result is a JSON file; an
exception is written there as ``{"error": ...}`` with ONNX Runtime's message,
so a crash or a failure of one variant never takes another with it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _session(path: str, threads: int, profile: str | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _arrays(path: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` by name: the run's inputs, a leading sample axis."""
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def _feeds(inputs: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(inputs.values())))
    return [{k: v[i, ...] for k, v in inputs.items()} for i in range(n)]


def _latencies(
    sess: Any, feeds: list[dict[str, np.ndarray]], seconds: float, rounds: int, warm: bool = True
) -> list[list[float]]:
    """Seconds per call, ``rounds`` lists of equal length, after warm-up calls; the samples cycle."""
    for feed in (feeds[:3] or feeds) if warm else ():
        sess.run(None, feed)
    start = time.perf_counter()
    sess.run(None, feeds[0])
    once = max(time.perf_counter() - start, 1e-6)
    per_round = int(min(max(seconds / rounds / once, 3), 2000))
    out = []
    for _ in range(rounds):
        times = []
        for i in range(per_round):
            feed = feeds[i % len(feeds)]
            start = time.perf_counter()
            sess.run(None, feed)
            times.append(time.perf_counter() - start)
        out.append(times)
    return out


def _profile(path: str, feeds: list[dict[str, np.ndarray]], folder: str, runs: int = 10) -> dict[str, float]:
    """Microseconds per call spent in each operator type (ONNX Runtime's profiler, one thread)."""
    sess = _session(path, 1, profile=str(Path(folder) / "profile"))
    for i in range(runs):
        sess.run(None, feeds[i % len(feeds)])
    trace = Path(sess.end_profiling())
    by_op: dict[str, float] = {}
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + float(event.get("dur", 0)) / runs
    trace.unlink()
    return by_op


def _batched(inputs: dict[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    """Sample 0 of every input repeated ``batch`` times along its leading (batch) axis."""
    return [{k: np.repeat(v[0][:1], batch, axis=0) for k, v in inputs.items()}]


def measure(job: dict[str, Any]) -> dict[str, Any]:
    inputs = _arrays(job["inputs"])
    feeds = _feeds(inputs)
    threads = job["threads"]
    start = time.perf_counter()
    sess = _session(job["model"], threads[-1])
    load = time.perf_counter() - start
    first = time.perf_counter()
    outputs = [sess.run(None, feed) for feed in feeds]
    first = (time.perf_counter() - first) / len(feeds)
    names = [o.name for o in sess.get_outputs()]
    np.savez(job["outputs"], **{name: np.stack([o[i] for o in outputs]) for i, name in enumerate(names)})
    throughput = {}
    for b in job["batches"]:
        rounds = _latencies(sess, _batched(inputs, b), job["seconds"], job["rounds"])
        throughput[str(b)] = b / float(np.median(np.concatenate(rounds)))
    return {
        "load_s": load,
        "first_call_s": first,
        "throughput": throughput,
        "profile_us": _profile(job["model"], feeds, job["folder"]),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def race(job: dict[str, Any]) -> dict[str, Any]:
    """Latency of several models side by side in this one process: per thread count, every model's calls in
    each round, the models taking turns round by round, so drift on a shared machine falls on all alike."""
    feeds = _feeds(_arrays(job["inputs"]))
    out: dict[str, dict[str, list[list[float]]]] = {name: {} for name in job["models"]}
    for t in job["threads"]:
        sessions = {name: _session(path, t) for name, path in job["models"].items()}
        for name, sess in sessions.items():
            out[name][str(t)] = []
            for feed in feeds[:3] or feeds:
                sess.run(None, feed)
        for _ in range(job["rounds"]):
            for name, sess in sessions.items():
                out[name][str(t)] += _latencies(sess, feeds, job["seconds"] / job["rounds"], 1, warm=False)
    return {"latency_s": out}


def make(job: dict[str, Any]) -> dict[str, Any]:
    from qbench.model import variants

    inputs = _arrays(job["inputs"])
    variant = variants.VARIANTS[job["variant"]]
    start = time.perf_counter()
    variants.make(variant, Path(job["source"]), Path(job["model"]), inputs)
    return {"seconds": time.perf_counter() - start}


def divergence(job: dict[str, Any]) -> dict[str, Any]:
    """Per intermediate tensor of the static model, its SQNR against float32's (``qdq_loss_debug``), worst first."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    from qbench.model.variants import Reader

    inputs = _arrays(job["inputs"])
    folder = Path(job["folder"])
    acts = {}
    for side in ("float", "qdq"):
        augmented = folder / f"{side}-augmented.onnx"
        debug.modify_model_output_intermediate_tensors(job[side], str(augmented))
        acts[side] = debug.collect_activations(str(augmented), Reader(inputs))
    errors = debug.compute_activation_error(debug.create_activation_matching(acts["qdq"], acts["float"]))
    producers = {o: (n.name or o, n.op_type) for n in onnx.load(job["float"]).graph.node for o in n.output}
    rows = []
    for tensor, err in errors.items():
        sqnr = float(err.get("xmodel_err", np.nan))
        node, op = producers.get(tensor, (tensor, "?"))
        rows.append({"tensor": tensor, "node": node, "op": op, "sqnr_db": sqnr})
    rows.sort(key=lambda r: (np.isnan(r["sqnr_db"]), r["sqnr_db"]))
    return {"nodes": rows}


JOBS = {"make": make, "measure": measure, "race": race, "divergence": divergence}


def main(path: str) -> int:
    job = json.loads(Path(path).read_text())
    try:
        result = JOBS[job["kind"]](job)
    except Exception as exc:  # reported as the variant's result; the other variants go on
        result = {"error": f"{type(exc).__name__}: {exc}".strip()}
    Path(job["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
