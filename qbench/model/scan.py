"""What each quantization format does to a model's weights: bytes, bits per weight, SQNR and max error per tensor.

Every format quantizes a tensor's (channels, inputs) view
(:func:`qbench.model.files.rows_view`): per-channel scales run along the rows,
blocks along the inputs (the reduction axis of the matrix product). Each
tensor is read once for every format, a block of rows at a time: the
scale-and-zero-point formats in one fused pass, float16, the int4 blocks and
ggml's blocks in one each, the quantized values never stored
(:func:`measure_tensor`); the per-tensor calibrations share their data and
what they can of their search. A scan holds one tensor and a few megabytes of
temporaries whatever the model.

Formats (:data:`qbench.model.formats.FORMATS`, names as ``--formats`` takes them):

- ``float16``: the 16-bit float copy (the size every other format is also compared with);
- ``int8`` / ``uint8``: one scale per tensor, one row per calibration method
  (int8 symmetric, uint8 asymmetric, as ONNX Runtime quantizes weights);
  percentile, entropy and MSE calibrate on every k-th value of tensors above
  :data:`CALIBRATION_SAMPLE` values, MinMax on all of them;
- ``int8-channel``: symmetric int8, one scale per output channel (MinMax);
- ``int4-b32``, ``int4-b128``: ONNX blocked int4, symmetric, one float32 scale
  per block of 32 / 128 inputs (MinMax per block, no zero points stored);
- ``Q8_0``, ``Q4_0``: ggml's blocks of 32 with a float16 scale (rows must be a
  multiple of 32 values; llama.cpp keeps other tensors in float16, and so do
  the totals).

Tensors of fewer than two dimensions (biases, norms) stay float32 (float16 in
the float16 row) in every total.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qbench.model.files import ModelFile, TensorInfo, rows_view
from qbench.model.formats import FORMATS, GGML_BLOCK, Format, formats, nbytes, why_not  # noqa: F401 - re-exported

#: Above this many values, percentile, entropy and MSE calibration see every k-th value (k = ceil(size / this)).
CALIBRATION_SAMPLE = 1 << 22
#: Values per block of rows the round trip runs on.
CHUNK_VALUES = 1 << 20
#: The format name of each tensor as the file stores it (its bytes; no error to measure).
STORED = "as stored"


def calibration_data(fmt: Format, w: np.ndarray) -> np.ndarray:
    """What a per-tensor format calibrates on: the min and max (MinMax, exact), else every k-th value."""
    flat = w.reshape(-1)
    if fmt.method == "minmax":
        return np.array([flat.min(), flat.max()], dtype=np.float32)
    return flat if flat.size <= CALIBRATION_SAMPLE else flat[:: -(-flat.size // CALIBRATION_SAMPLE)]


def calibration_count(fmt: Format, size: int) -> int:
    """How many values :func:`calibration_data` gives a format's calibration (all of them beyond per-tensor)."""
    if fmt.kind != "tensor":
        return size
    if fmt.method == "minmax":
        return 2
    return size if size <= CALIBRATION_SAMPLE else len(range(0, size, -(-size // CALIBRATION_SAMPLE)))


def tensor_params(fmt: Format, w: np.ndarray):
    """The one scale and zero point of a per-tensor format, from :func:`calibration_data`."""
    from qbench.ops.calibrate import calibrate

    return calibrate(calibration_data(fmt, w), fmt.dtype, method=fmt.method, symmetric=fmt.dtype == "int8")


def tensor_params_each(fmts: Sequence[Format], w: np.ndarray, threads: int = 1) -> list:
    """:func:`tensor_params` of several per-tensor formats that calibrate on the same data (MinMax ones, or the
    others), the data converted once and a range shared where it can be (:func:`calibrate_each`)."""
    from qbench.ops.calibrate import calibrate_each

    requests = [(f.dtype, f.method, f.dtype == "int8") for f in fmts]
    return calibrate_each(calibration_data(fmts[0], w), requests, threads)


def chunks(w: np.ndarray) -> Iterator[np.ndarray]:
    """Blocks of whole rows of about :data:`CHUNK_VALUES` values (views)."""
    step = max(1, CHUNK_VALUES // max(w.shape[1], 1))
    for start in range(0, w.shape[0], step):
        yield w[start : start + step]


def nonfinite(w: np.ndarray) -> tuple[int, int]:
    """(NaN count, inf count) of a (rows, cols) array, a block at a time."""
    nan = inf = 0
    for c in chunks(w):
        nan += int(np.isnan(c).sum())
        inf += int(np.isinf(c).sum())
    return nan, inf


def _scaled_params(fmt: Format, chunk: np.ndarray, params) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (scale, zero point) of a per-tensor format (its tensor's ``params``) or of ``int8-channel`` (each
    row's min and max, as ``calibrate(rows, axis=0, symmetric=True)`` finds them)."""
    from qbench.ops.calibrate import params_from_range
    from qbench.ops.params import quant_range

    n = chunk.shape[0]
    if fmt.kind == "tensor":
        return np.full(n, params.scale, np.float32), np.full(n, params.zero_point, np.int32)
    qmin, qmax = quant_range(fmt.dtype, symmetric=True)
    lo, hi = chunk.min(axis=1).astype(np.float64), chunk.max(axis=1).astype(np.float64)
    scale, zero_point = params_from_range(lo, hi, qmin, qmax, symmetric=True)
    return scale, zero_point.astype(np.int32)


def measure_tensor(fmts: Sequence[Format], w: np.ndarray, parallel: bool = False) -> dict[str, tuple[float, ...]]:
    """(SQNR in dB, max absolute error, seconds) of ``w``'s round trip through each of ``fmts``.

    A block of rows at a time; the scale-and-zero-point formats (per tensor and per channel) all in one pass
    over each block, float16, the int4 blocks and ggml's blocks in one each, the quantized values never stored
    (fused kernels of :mod:`qbench.kernels.metrics`, bit for bit the round trips of qbench's quantize and
    dequantize, ggml's and NumPy's float16). A format's seconds are its calibration and its share of its pass."""
    import numba

    from qbench.kernels import metrics as k
    from qbench.ops.metrics import db
    from qbench.ops.params import QUANT_DTYPES, quant_dtype, quant_range

    scaled = [f for f in fmts if f.kind in ("tensor", "channel")]
    alone = [f for f in fmts if f not in scaled]  # float16, int4 blocks, ggml: one fused pass each
    seconds = dict.fromkeys((f.name for f in fmts), 0.0)
    params = {}
    per_tensor = [f for f in scaled if f.kind == "tensor"]
    for group in ([f for f in per_tensor if f.method == "minmax"], [f for f in per_tensor if f.method != "minmax"]):
        if group:  # formats that calibrate on the same data (calibration_data): one call for all of them
            began = time.perf_counter()
            found = tensor_params_each(group, w, numba.get_num_threads() if parallel else 1)
            params.update(zip((f.name for f in group), found, strict=True))
            for f in group:
                seconds[f.name] += (time.perf_counter() - began) / len(group)
    ranges = np.array([QUANT_DTYPES[quant_dtype(f.dtype)] for f in scaled], np.int32).reshape(-1, 2)
    noise = dict.fromkeys(seconds, 0.0)
    worst = dict.fromkeys(seconds, 0.0)
    signal = 0.0
    for c in chunks(w):
        energy = np.empty(c.shape[0])
        k.energy_rows(c, energy, parallel=parallel)
        signal += float(energy.sum())
        if scaled:
            began = time.perf_counter()
            pairs = [_scaled_params(f, c, params.get(f.name)) for f in scaled]
            scale = np.ascontiguousarray([p[0] for p in pairs], dtype=np.float32)
            zero_point = np.ascontiguousarray([p[1] for p in pairs], dtype=np.int32)
            n, e = np.empty((len(scaled), c.shape[0])), np.empty((len(scaled), c.shape[0]))
            k.scaled_error_rows(c, scale, zero_point, ranges[:, 0].copy(), ranges[:, 1].copy(), n, e, parallel=parallel)
            share = (time.perf_counter() - began) / len(scaled)
            for i, f in enumerate(scaled):
                noise[f.name] += float(n[i].sum())
                worst[f.name] = max(worst[f.name], float(e[i].max(initial=0.0)))
                seconds[f.name] += share
        for f in alone:
            began = time.perf_counter()
            n, e = np.empty(c.shape[0]), np.empty(c.shape[0])
            if f.kind == "float":
                k.half_error_rows(c, n, e, parallel=parallel)
            elif f.kind == "ggml":
                (k.q8_0_error_rows if f.dtype == "Q8_0" else k.q4_0_error_rows)(c, n, e, parallel=parallel)
            else:
                qmin, qmax = quant_range(f.dtype, symmetric=True)
                lo, hi = QUANT_DTYPES[quant_dtype(f.dtype)]
                k.symmetric_block_error_rows(
                    c, f.block, (qmax - qmin) / 2, np.int32(lo), np.int32(hi), n, e, parallel=parallel
                )
            noise[f.name] += float(n.sum())
            worst[f.name] = max(worst[f.name], float(e.max(initial=0.0)))
            seconds[f.name] += time.perf_counter() - began
    return {name: (db(signal, noise[name]), worst[name], seconds[name]) for name in seconds}


def anon_bytes() -> int:
    """This process's own (anonymous) resident memory now: what it allocated, not the file pages it maps.

    Linux's ``RssAnon``; elsewhere the whole resident size, file pages included."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The process's peak resident memory (mapped file pages it touched included)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if peak > 1 << 32 else peak * 1024  # kilobytes on Linux, bytes on macOS


@dataclass
class Scan:
    """tensors.csv's rows (one per tensor and format) and how the scan went."""

    frame: pd.DataFrame
    seconds: float
    values: int
    stored_bytes: int
    largest_float32: int  # bytes of the largest tensor as float32
    anon_before: int  # qbench's own memory before the scan
    peak_anon: int  # its most, sampled after each load and each format of each tensor
    peak_rss: int  # the process's peak resident size, the mapped model pages it read included
    skipped: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Weights scanned per second, in GB of float32."""
        return 4 * self.values / self.seconds / 1e9 if self.seconds else math.inf


def _row(t: TensorInfo, **fields) -> dict:
    return {
        "tensor": t.name,
        "index": t.index,
        "shape": "x".join(map(str, t.shape)),
        "stored": t.stored,
        "rows": t.rows,
        "cols": t.cols,
        "channel_axis": t.channel_axis,
        "matmul": t.matmul,
        "values": t.size,
        **fields,
    }


def scan(
    model: ModelFile,
    fmts: Sequence[Format],
    progress: Callable[[int, int, TensorInfo], None] | None = None,
    parallel: bool = False,
) -> Scan:
    """Every tensor of ``model`` through every format: bytes, bits per weight, SQNR, max error, seconds."""
    anon_before, start = anon_bytes(), time.perf_counter()
    peak_anon = anon_before
    rows, skipped = [], []
    total = sum(t.size for t in model.tensors)
    done = 0
    for t in model.tensors:
        w = rows_view(model.load(t), t.channel_axis)
        peak_anon = max(peak_anon, anon_bytes())
        rows.append(_row(t, format=STORED, bytes=t.stored_bytes, bits=8 * t.stored_bytes / t.size, status="ok"))
        nan, inf = nonfinite(w)
        why = {
            f.name: f"skipped: {nan} NaN and {inf} inf values" if nan or inf else why_not(f, t.rows, t.cols)
            for f in fmts
        }
        found = measure_tensor([f for f in fmts if not why[f.name]], w, parallel)
        peak_anon = max(peak_anon, anon_bytes())
        for fmt in fmts:
            base = _row(t, format=fmt.name)
            if why[fmt.name]:
                rows.append({**base, "status": why[fmt.name]})
                continue
            sqnr, worst, seconds = found[fmt.name]
            size = nbytes(fmt, t.rows, t.cols)
            rows.append(
                {
                    **base,
                    "bytes": size,
                    "bits": 8 * size / t.size,
                    "sqnr_db": sqnr,
                    "max_abs_error": worst,
                    "calibration_values": calibration_count(fmt, t.size),
                    "seconds": seconds,
                    "status": "ok",
                }
            )
        if nan or inf:
            skipped.append(f"{t.name} ({nan} NaN, {inf} inf)")
        del w
        done += t.size
        if progress:
            progress(done, total, t)
    frame = pd.DataFrame(rows)
    for col in ("bytes", "bits", "sqnr_db", "max_abs_error", "calibration_values", "seconds"):
        if col not in frame:
            frame[col] = np.nan
    return Scan(
        frame=frame,
        seconds=time.perf_counter() - start,
        values=total,
        stored_bytes=sum(t.stored_bytes for t in model.tensors),
        largest_float32=4 * max(t.size for t in model.tensors),
        anon_before=anon_before,
        peak_anon=peak_anon,
        peak_rss=peak_rss_bytes(),
        skipped=skipped,
    )


def summarize(result: Scan, model: ModelFile) -> pd.DataFrame:
    """One row per format: the model's total bytes (tensors it cannot store kept in float16, tensors skipped for
    NaN/inf and those of fewer dimensions in float32), the ratios to float32 and float16, bits per weight of the
    tensors it stores, their size-weighted SQNR (exact tensors left out) and the worst tensor's."""
    frame = result.frame
    weights = sum(t.size for t in model.tensors)
    others = model.other_values
    float32_total = 4 * (weights + others)
    float16_total = 2 * (weights + others)
    out = [
        {
            "format": "float32",
            "bytes": float32_total,
            "x_float32": 1.0,
            "x_float16": float16_total / float32_total,
            "bits": 32.0,
            "sqnr_db": math.inf,
            "worst_db": math.inf,
        }
    ]
    for name, g in frame.groupby("format", sort=False):
        if name == STORED and set(g["stored"]) == {"float32"}:
            continue  # the float32 row already says it
        ok = g[g["status"] == "ok"]
        na = g[g["status"] != "ok"]
        skipped = na["status"].str.startswith("skipped")
        rest = 2 * int(na.loc[~skipped, "values"].sum()) + 4 * int(na.loc[skipped, "values"].sum())
        total = int(ok["bytes"].sum()) + rest + (2 if name == "float16" else 4) * others
        finite = ok[np.isfinite(ok["sqnr_db"])]
        sqnr = float(np.average(finite["sqnr_db"], weights=finite["values"])) if len(finite) else math.inf
        out.append(
            {
                "format": name,
                "bytes": total,
                "x_float32": float32_total / total,
                "x_float16": float16_total / total,
                "bits": 8 * ok["bytes"].sum() / ok["values"].sum() if len(ok) else math.nan,
                "sqnr_db": sqnr if name != STORED else math.nan,
                "worst_db": float(finite["sqnr_db"].min())
                if len(finite)
                else (math.nan if name == STORED else math.inf),
                "worst_tensor": finite.loc[finite["sqnr_db"].idxmin(), "tensor"] if len(finite) else "",
                "max_abs_error": float(ok["max_abs_error"].max()) if len(ok) else math.nan,
                "not_stored": int((~skipped).sum()),
                "skipped": int(skipped.sum()),
            }
        )
    return pd.DataFrame(out)
