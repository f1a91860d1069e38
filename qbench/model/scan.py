"""What each quantization format does to a model's weights: bytes, bits per weight, SQNR and max error per tensor.

Every format quantizes a tensor's (channels, inputs) view
(:func:`qbench.model.files.rows_view`): per-channel scales run along the rows,
blocks along the inputs (the reduction axis of the matrix product). The
round trip goes through qbench's own kernels, a block of rows at a time, and
its error is summed in one pass (:class:`qbench.ops.metrics.ErrorSums`), so a
scan holds one tensor and a few megabytes of temporaries whatever the model.

Formats (:data:`FORMATS`, names as ``--formats`` takes them):

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

Bytes count the values and every scale and zero point a file must store
(:func:`nbytes`), for one tensor; tensors of fewer than two dimensions
(biases, norms) stay float32 (float16 in the float16 row) in every total.
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
from qbench.ops.calibrate import METHODS

#: Above this many values, percentile, entropy and MSE calibration see every k-th value (k = ceil(size / this)).
CALIBRATION_SAMPLE = 1 << 22
#: Values per block of rows the round trip runs on.
CHUNK_VALUES = 1 << 20
GGML_BLOCK = 32
#: The format name of each tensor as the file stores it (its bytes; no error to measure).
STORED = "as stored"


@dataclass(frozen=True)
class Format:
    """One way to store a tensor: ``kind`` says how (float, tensor, channel, blocks, ggml)."""

    name: str
    kind: str
    dtype: str
    method: str = "minmax"
    block: int = 0
    #: The matmul suite's variant its matrix products are timed with (None: no kernel to time).
    timed_as: str | None = None


def _catalogue(methods: Sequence[str]) -> dict[str, list[Format]]:
    """``--formats`` names -> the formats each stands for."""
    return {
        "float16": [Format("float16", "float", "float16")],
        "int8": [Format(f"int8 {m}", "tensor", "int8", m, timed_as="dynamic") for m in methods],
        "uint8": [Format(f"uint8 {m}", "tensor", "uint8", m, timed_as="dynamic") for m in methods],
        "int8-channel": [Format("int8 channel", "channel", "int8", timed_as="dynamic")],
        "int4-b32": [Format("int4 b32", "blocks", "int4", block=32, timed_as="nbits4")],
        "int4-b128": [Format("int4 b128", "blocks", "int4", block=128)],
        "Q8_0": [Format("Q8_0", "ggml", "Q8_0", block=GGML_BLOCK, timed_as="Q8_0")],
        "Q4_0": [Format("Q4_0", "ggml", "Q4_0", block=GGML_BLOCK, timed_as="Q4_0")],
    }


FORMATS = tuple(_catalogue(["minmax"]))


def formats(names: Sequence[str] | None = None, methods: Sequence[str] | None = None) -> list[Format]:
    """The formats of ``names`` (default: all of :data:`FORMATS`), per-tensor ones once per calibration method."""
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown calibration method(s) {', '.join(unknown)}; accepted: {', '.join(METHODS)}")
    catalogue = _catalogue(methods)
    names = list(names or FORMATS)
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; accepted: {', '.join(catalogue)}")
    return [f for n in dict.fromkeys(names) for f in catalogue[n]]


def nbytes(fmt: Format, rows: int, cols: int) -> int:
    """Bytes of a (rows, cols) tensor in ``fmt``: values, scales (float32; ggml's float16) and zero points."""
    size = rows * cols
    if fmt.kind == "float":
        return size * np.dtype(fmt.dtype).itemsize
    if fmt.kind == "tensor":
        return size + 4 + 1
    if fmt.kind == "channel":
        return size + rows * (4 + 1)
    if fmt.kind == "blocks":
        return -(-size // 2) + 4 * rows * -(-cols // fmt.block)
    from qbench.ops.ggml import BLOCK_BYTES

    return rows * (cols // GGML_BLOCK) * BLOCK_BYTES[fmt.dtype]


def why_not(fmt: Format, rows: int, cols: int) -> str | None:
    """Why ``fmt`` cannot store a (rows, cols) tensor, or None."""
    if fmt.kind == "ggml" and cols % GGML_BLOCK:
        return f"rows of {cols} values are not a multiple of {fmt.dtype}'s {GGML_BLOCK}-value blocks"
    return None


def calibration_data(fmt: Format, w: np.ndarray) -> np.ndarray:
    """What a per-tensor format calibrates on: the min and max (MinMax, exact), else every k-th value."""
    flat = w.reshape(-1)
    if fmt.method == "minmax":
        return np.array([flat.min(), flat.max()], dtype=np.float32)
    return flat if flat.size <= CALIBRATION_SAMPLE else flat[:: -(-flat.size // CALIBRATION_SAMPLE)]


def tensor_params(fmt: Format, w: np.ndarray):
    """The one scale and zero point of a per-tensor format, from :func:`calibration_data`."""
    from qbench.ops.calibrate import calibrate

    return calibrate(calibration_data(fmt, w), fmt.dtype, method=fmt.method, symmetric=fmt.dtype == "int8")


def round_trip(fmt: Format, rows: np.ndarray, params=None) -> np.ndarray:
    """``rows`` (C-contiguous float32, (n, cols)) stored in ``fmt`` and read back as float32."""
    import qbench
    from qbench.ops import ggml
    from qbench.ops.blocks import calibrate_blocks
    from qbench.ops.calibrate import calibrate

    if fmt.kind == "float":
        return rows.astype(fmt.dtype).astype(np.float32)
    if fmt.kind == "ggml":
        return ggml.dequantize(ggml.quantize(rows, fmt.dtype), fmt.dtype)
    if fmt.kind == "channel":
        params = calibrate(rows, fmt.dtype, axis=0, symmetric=True)
    elif fmt.kind == "blocks":
        params = calibrate_blocks(rows, fmt.dtype, axis=1, block_size=fmt.block)
    return qbench.dequantize(qbench.quantize(rows, params), params, shape=rows.shape)


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


def measure(fmt: Format, w: np.ndarray, parallel: bool = False) -> tuple[float, float]:
    """(SQNR in dB, max absolute error) of ``w``'s round trip through ``fmt``, a block of rows at a time."""
    from qbench.ops.metrics import ErrorSums

    params = tensor_params(fmt, w) if fmt.kind == "tensor" else None
    err = ErrorSums()
    for c in chunks(w):
        err.add(c, round_trip(fmt, c, params), parallel=parallel)
    return err.sqnr_db, err.worst


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
        for fmt in fmts:
            base = _row(t, format=fmt.name)
            why = (f"skipped: {nan} NaN and {inf} inf values") if nan or inf else why_not(fmt, t.rows, t.cols)
            if why:
                rows.append({**base, "status": why})
                continue
            began = time.perf_counter()
            sqnr, worst = measure(fmt, w, parallel)
            peak_anon = max(peak_anon, anon_bytes())
            size = nbytes(fmt, t.rows, t.cols)
            rows.append(
                {
                    **base,
                    "bytes": size,
                    "bits": 8 * size / t.size,
                    "sqnr_db": sqnr,
                    "max_abs_error": worst,
                    "calibration_values": calibration_data(fmt, w).size if fmt.kind == "tensor" else t.size,
                    "seconds": time.perf_counter() - began,
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
