"""Block formats (Q8_0, Q4_0, ONNX int4 blocks): conversion speed, accuracy per bit, and the picture of how
much of the byte saving a matrix-vector product turns into time.

Bytes and bits are the registry's (``cases.blocks``, ``cases.matmul.WEIGHT_BITS``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qbench import cases

from .figures import Figure, ReportData, figure, legend_outside, plain_log_y, plt, save
from .layers import layer_ratios, layer_timings
from .tables import select, with_sizes

#: How each block variant of the linear layer is named in the picture.
VARIANT_NAMES = {
    "float32": "float32",
    "dynamic": "int8 per channel (dynamic)",
    "static": "int8 per channel (static)",
    "Q8_0": "Q8_0 (ggml)",
    "Q4_0": "Q4_0 (ggml)",
    "nbits4": "int4 blocks of 32 (MatMulNBits)",
    "nbits8": "int8 blocks of 32 (MatMulNBits)",
    "int4_b32": "int4 blocks of 32, int8 activations (MatMulNBits level 4)",
    "int4_b128": "int4 blocks of 128, int8 activations (MatMulNBits level 4)",
    "int8_b32": "int8 blocks of 32, int8 activations (MatMulNBits level 4)",
}


def conversion_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per conversion, format, size and implementation (1 thread): GB/s of float32 values, GB/s of the format's
    bytes, and ns per 32 values, as llama.cpp's ``test-quantize-perf`` reports them (the median time where
    several result files hold the case)."""
    parts = []
    for cls, kernel in (("BlockQuantize", "block_quantize"), ("BlockDequantize", "block_dequantize")):
        t = select(frame, "time_run", cls=cls)
        parts.append(t[t["threads"].astype(int) == 1].assign(kernel=kernel))
    t = pd.concat(parts)
    if t.empty:
        return pd.DataFrame()
    t = t.groupby(["kernel", "dtype", "impl", "size"], as_index=False)["value"].median()
    rows = []
    for r in t.to_dict("records"):
        size, seconds = int(r["size"]), float(r["value"])
        stored = sum(o.nbytes for o in cases.operands(r["kernel"], r["dtype"], size) if o.dtype == "uint8")
        rows.append(
            {
                "conversion": r["kernel"].removeprefix("block_"),
                "format": r["dtype"],
                "impl": r["impl"],
                "size": size,
                "float32 GB/s": 4 * size / seconds / 1e9,
                "format GB/s": stored / seconds / 1e9,
                "ns / 32 values": seconds / (size / cases.blocks.BLOCK) * 1e9,
            }
        )
    table = pd.DataFrame(rows).sort_values(["conversion", "format", "impl", "size"], ignore_index=True)
    return with_sizes(table)


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Bits per weight, SQNR (dB) and largest absolute error of each format's round trip, per kind of weights."""
    sq = select(frame, "track_sqnr_db", cls="BlockAccuracy")
    if sq.empty:
        return pd.DataFrame()
    err = select(frame, "track_max_error", cls="BlockAccuracy")
    wide = sq.pivot_table(index="param_format", columns="param_weights", values="value")
    wide.columns = [f"SQNR dB, {c}" for c in wide.columns]
    if not err.empty:
        errors = err.pivot_table(index="param_format", columns="param_weights", values="value")
        wide = wide.join(errors.rename(columns=lambda c: f"max error, {c}"))
    formats = [f for f in cases.blocks.ACCURACY_FORMATS if f in wide.index]
    wide = wide.reindex(formats)
    wide.insert(0, "bits per weight", [cases.blocks.ACCURACY_FORMATS[f] for f in formats])
    wide.index.name = "format"
    return wide.reset_index()


def bits_speedup(frame: pd.DataFrame) -> pd.DataFrame:
    """Per GEMV shape and variant: bits per weight and the speed-up over NumPy float32 (qbench: side by side;
    ONNX Runtime: from the medians of its own timings, a ratio of two processes; the median over result files)."""
    r = layer_ratios(frame)
    r = r[(r["m"] == 1) & (r["threads"] == 1) & (r["against"] == "numpy float32")]
    rows = [
        {"shape": s, "k": k, "n": n, "variant": v, "impl": "qbench", "speedup": x}
        for s, k, n, v, x in zip(r["shape"], r["k"], r["n"], r["variant"], r["ratio"], strict=True)
        if v in cases.matmul.WEIGHT_BITS
    ]
    t = layer_timings(frame)
    if not t.empty:
        t = t[(t["m"] == 1) & (t["threads"] == 1)]
        base = t[(t["impl"] == "numpy") & (t["variant"] == "float32")].groupby("shape")["seconds"].median()
        peers = t[(t["impl"] == "onnxruntime") & t["variant"].isin([*cases.matmul.BLOCK_BITS, "dynamic"])]
        rows += [
            {"shape": s, "k": k, "n": n, "variant": v, "impl": "onnxruntime", "speedup": base[s] / sec}
            for s, k, n, v, sec in zip(
                peers["shape"], peers["k"], peers["n"], peers["variant"], peers["seconds"], strict=True
            )
            if s in base.index
        ]
    if not rows:
        return pd.DataFrame()
    keys = ["shape", "k", "n", "variant", "impl"]
    out = pd.DataFrame(rows).groupby(keys, as_index=False, sort=False)["speedup"].median()
    return out.assign(bits=[cases.matmul.WEIGHT_BITS[v] for v in out["variant"]])


@figure("bits per weight", order=66, needs_timings=False)
def plot_bits_speedup(data: ReportData, out: Path) -> Figure | None:
    """Speed-up over float32 against bits per weight, the ideal ``32 / bits`` drawn: how much of the byte saving
    became time, at the largest GEMV (the one whose weights stream from memory)."""
    table = bits_speedup(data.current)
    if table.empty:
        return None
    largest = table.loc[(table["k"] * table["n"]).idxmax(), "shape"]
    part = table[table["shape"] == largest]
    fig, ax = plt().subplots(figsize=(9, 4.6))
    bits = np.linspace(3.5, 33, 200)
    ax.plot(bits, 32 / bits, color="0.5", ls=":", label="ideal: 32 / bits (time follows bytes)")
    ax.axhline(1.0, color="k", lw=0.8)
    cmap = plt().get_cmap("tab10")
    for i, (variant, g) in enumerate(part.groupby("variant", sort=False)):
        for impl, marker, fill in (("qbench", "o", True), ("onnxruntime", "s", False)):
            row = g[g["impl"] == impl]
            if row.empty:
                continue
            ax.plot(
                row["bits"],
                row["speedup"],
                marker,
                ms=8,
                color=cmap(i),
                mfc=cmap(i) if fill else "none",
                label=f"{VARIANT_NAMES.get(variant, variant)} ({impl})",
            )
    ax.set_xscale("log", base=2)
    ticks = sorted({4, 4.5, 5, 8, 8.5, 9, 16, 32} | set(part["bits"]))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    plain_log_y(ax)
    ax.set_xlabel("bits per weight (scales included)")
    ax.set_ylabel("speed over NumPy float32 (x)")
    _, k, n = cases.matmul.dims(largest)
    ax.set_title(f"matrix-vector product {largest} (weights {k} x {n}), 1 thread", fontsize=10)
    legend_outside(ax)
    return save(
        fig,
        out,
        "bits_per_weight_speedup",
        "What fewer bits per weight buy a matrix-vector product on this CPU",
        "Speed over NumPy's float32 matrix-vector product against the bits each format stores per weight. qbench's "
        "points (filled) are measured side by side with NumPy in one process (median of the rounds); ONNX "
        "Runtime's (hollow) are the ratio of its median time to NumPy's, two separate processes. On the dotted "
        "line the time shrinks with the bytes read; below it, the kernel's arithmetic, not memory, sets the time.",
    )
