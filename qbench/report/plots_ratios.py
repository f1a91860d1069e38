"""Figures of ratios and of what is not speed: side by side, compare, memory, accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench import cases

from .figures import (
    BYTES_AXIS,
    DTYPE_COLORS,
    ELEMENT_FOOTPRINTS,
    Figure,
    ReportData,
    figure,
    legend_outside,
    log2_axis,
    mark_caches,
    plain_log_y,
    plt,
    save,
    series_colors,
)
from .headline import not_installed
from .tables import pow2, select

#: What each kind of side-by-side ratio says, as a panel title.
_KIND_TITLES = {
    "peer": "qbench / peer (elements/s)",
    "ceiling": "share of the ceiling: a probe with the kernel's streams, no arithmetic (bytes/s)",
    "dtype": "8-bit / float32 (elements/s)",
    "threads": "N threads / 1 thread (elements/s)",
}
_MEASURED = (
    "Each point is one ratio measured in one process, qbench and the baseline timed alternately: the median of the "
    "per-round ratios, its bar their interquartile range (where the run kept them), so the drift of a shared "
    "machine between processes does not enter it. Numbered red rings: ratios that cannot be right as they stand, "
    "explained under the headline."
)


def _ratio_panel(ax: Any, sub: pd.DataFrame, data: ReportData, kind: str) -> None:
    """One kind of side-by-side ratio against size: a line per comparison and thread count, rounds as error bars,
    flagged points ringed with their number."""
    x = "size" if kind == "dtype" else "footprint"  # 8-bit against float32: equal element counts
    series = sorted(set(zip(sub["kernel"], sub["dtype"], sub["against"], strict=True)))
    colors = series_colors(series)
    for (kernel, dtype, against, threads), g in sub.groupby(["kernel", "dtype", "against", "threads"]):
        g = g.sort_values(x)
        spread = np.vstack([(g["ratio"] - g["low"]).clip(lower=0), (g["high"] - g["ratio"]).clip(lower=0)])
        ax.errorbar(
            g[x],
            g["ratio"],
            yerr=np.nan_to_num(spread),
            fmt="-o" if threads == 1 else "--s",
            ms=3,
            lw=1.1,
            capsize=2,
            color=colors[(kernel, dtype, against)],
            label=f"{kernel} {dtype} / {against}, {threads} thread{'s' if threads > 1 else ''}",
        )
    ax.axhline(1.0, color="black", lw=0.8)
    flagged = data.flags.reset_index(drop=True)
    for number, r in enumerate(flagged.itertuples(index=False), 1):
        if r.kind != kind:
            continue
        px = r.size if kind == "dtype" else r.footprint
        ax.scatter([px], [r.ratio], s=90, facecolors="none", edgecolors="#d62728", lw=1.3, zorder=5)
        ax.annotate(str(number), (px, r.ratio), xytext=(4, 4), textcoords="offset points", color="#d62728", fontsize=7)
    mark_caches(ax, data.caches, ELEMENT_FOOTPRINTS if kind == "dtype" else None)
    log2_axis(ax, "elements (log scale)" if kind == "dtype" else BYTES_AXIS, in_bytes=kind != "dtype")
    plain_log_y(ax)
    ax.set_title(_KIND_TITLES[kind], fontsize=10)
    legend_outside(ax, fontsize=6)


def _ratio_figure(data: ReportData, kinds: tuple[str, ...], out: Path, kind_name: str, title: str, caption: str):
    present = [k for k in kinds if k in set(data.sbs["kind"])]
    if not present:
        return None
    fig, axes = plt().subplots(len(present), 1, figsize=(12, 4.6 * len(present)), squeeze=False)
    for ax, kind in zip(axes.flat, present, strict=True):
        _ratio_panel(ax, data.sbs[data.sbs["kind"] == kind], data, kind)
    return save(fig, out, kind_name, title, caption)


@figure("speedup", order=20, needs_timings=False)
def plot_speedup(data: ReportData, out: Path) -> Figure | None:
    return _ratio_figure(
        data,
        ("dtype",),
        out,
        "speedup",
        "What 8-bit buys: the 8-bit kernel over its float32 twin",
        "Elements per second of the 8-bit kernel over its float32 twin, the two timed side by side in one process; "
        "above 1 the 8-bit data is faster. The float32 sum and dot are reassociated (vectorized), a fair baseline. "
        "Memory-bound, 8-bit moves a quarter of the bytes, so 4x is the most the bytes allow while both working sets "
        "sit in one level; beyond it the 8-bit data has moved to a faster cache (the dotted verticals: where a "
        "float32 and an 8-bit array fill each cache). " + _MEASURED,
    )


@figure("threads", order=50, needs_timings=False)
def plot_threads(data: ReportData, out: Path) -> Figure | None:
    return _ratio_figure(
        data,
        ("threads",),
        out,
        "threads",
        "Thread scaling: an N-thread budget over one thread",
        "Elements per second with a budget of N threads (numba.set_num_threads(N), parallel=None) over one thread, "
        "side by side in one process; below the size where the parallel form pays (the machine's parallel switch, "
        "above) qbench stays serial and the ratio is 1. " + _MEASURED,
    )


@figure("side by side", order=60, needs_timings=False)
def plot_side_by_side(data: ReportData, out: Path) -> Figure | None:
    missing = not_installed(data.missing_peers)
    fig = _ratio_figure(
        data,
        ("peer", "ceiling"),
        out,
        "side_by_side",
        "Against the peers and the bandwidth ceiling",
        (f"{missing}. " if missing else "")
        + "qbench's elements/s over each peer's, and its bytes/s over a probe that moves the same arrays (widths, "
        "reads, writes) with no arithmetic, or reads the same bytes for a reduction. Every implementation gets the "
        "thread budget as its users give it: qbench decides serial or parallel itself (parallel=None), ONNX Runtime "
        "gets its intra-op threads, PyTorch torch.set_num_threads. ONNX Runtime runs QuantizeLinear/"
        "DequantizeLinear with IO binding into a preallocated output; PyTorch quantize_per_tensor / dequantize, "
        "which rounds as round(x * (1/scale) + zp); qbench and ONNX Runtime divide, as ONNX specifies. " + _MEASURED,
    )
    return fig


def plot_ratios(table: pd.DataFrame, factor: float, out: Path, limit: int = 40) -> Figure | None:
    """Horizontal bars of head/base time ratios, largest changes first."""
    if table.empty:
        return None
    pyplot = plt()
    shown = table.reindex(table["ratio"].map(lambda r: abs(np.log(r))).sort_values(ascending=False).index)[:limit]
    shown = shown.iloc[::-1]
    labels = [
        f"{b.split('.', 1)[-1]} {_short_params(p)}" for b, p in zip(shown["benchmark"], shown["params"], strict=True)
    ]
    colors = ["#d62728" if c == "slower" else "#2ca02c" if c == "faster" else "0.6" for c in shown["change"]]
    fig, ax = pyplot.subplots(figsize=(10, 0.28 * len(shown) + 1.6))
    ax.barh(range(len(shown)), shown["ratio"], color=colors)
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.set_xscale("log")
    for x in (1 / factor, 1.0, factor):
        ax.axvline(x, color="black" if x == 1.0 else "0.5", lw=0.8, ls="-" if x == 1.0 else "--")
    counts = shown["instructions_ratio"].to_numpy(float) if "instructions_ratio" in shown else np.array([])
    at = np.flatnonzero(~np.isnan(counts))
    if len(at):
        ax.plot(counts[at], at, "k|", ms=9, mew=1.5, label="instructions per call, head / base")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel(
        "a bar: one benchmark and parameter set, its best round's time at head over at base (log scale; "
        "right of 1 is slower)"
    )
    ax.set_ylabel("benchmark (parameters)")
    ax.set_title("Change per benchmark (red: slower, green: faster, each beyond its row's factor)")
    return save(
        fig,
        out,
        "ratios",
        "Time ratios",
        "Head over base time for each benchmark and parameter set (bars; best round over best round); "
        f"instructions per call where they were counted (ticks); dashed lines at {1 / factor:.3g} and {factor:g}.",
    )


def _short_params(params: str) -> str:
    values = json.loads(params)
    return "(" + ", ".join(f"{v}" for v in values.values()) + ")"


@figure("memory", order=30, needs_timings=False)
def plot_memory(data: ReportData, out: Path) -> Figure | None:
    foot = select(data.current, "track_footprint_bytes")
    extra = select(data.current, "track_extra_alloc_bytes")
    if foot.empty and extra.empty:
        return None
    pyplot = plt()
    fig, (ax1, ax2) = pyplot.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 2]})
    if not foot.empty:
        biggest = foot[foot["size"] == foot["size"].max()].sort_values("value", ascending=False)
        ax1.bar(
            biggest["dtype"], biggest["value"] / 2**20, color=[DTYPE_COLORS.get(d, "0.5") for d in biggest["dtype"]]
        )
        f32 = biggest.loc[biggest["dtype"] == "float32", "value"]
        base = float(f32.iloc[0]) if len(f32) else float(biggest["value"].max())
        for x, v in zip(biggest["dtype"], biggest["value"], strict=True):
            ax1.text(x, v / 2**20, f"{v / base:.2f}", ha="center", va="bottom", fontsize=8)
        ax1.set_ylabel("MiB")
        size = int(biggest["size"].iloc[0])
        ax1.set_title(f"Footprint of {pow2(size)} elements (ratio to float32)", fontsize=10)
    if not extra.empty:
        extra = extra.assign(label=extra["kernel"] + "\n" + extra["dtype"].astype(str))
        pivot = extra.pivot_table(index="label", columns="impl", values="value", aggfunc="median")
        width = 0.8 / max(1, len(pivot.columns))
        xs = np.arange(len(pivot))
        for i, impl in enumerate(pivot.columns):
            ax2.bar(xs + i * width, pivot[impl].clip(lower=1), width, label=impl)
        ax2.set_xticks(xs + width * (len(pivot.columns) - 1) / 2, pivot.index, fontsize=6, rotation=90)
        plain_log_y(ax2)
        ax2.set_ylabel("bytes allocated beyond the output (log)")
        ax2.set_title(f"Extra allocation per call at {pow2(cases.MEMORY_SIZE)} elements (tracemalloc)", fontsize=10)
        legend_outside(ax2, fontsize=8)
    fig.suptitle(
        "Memory: footprint per dtype, and temporaries per implementation. Process peaks (asv peakmem) "
        "include Numba's own ~150 MB and are listed in the tables.",
        fontsize=9,
    )
    return save(
        fig,
        out,
        "memory",
        "Memory",
        "Left: array footprint per dtype (uint8 is a quarter of float32). Right: bytes each implementation "
        "allocates during one call beyond its output; qbench writes into a preallocated output.",
    )


@figure("accuracy", order=40, needs_timings=False)
def plot_accuracy(data: ReportData, out: Path) -> Figure | None:
    acc = select(data.current, "track_sqnr_db", cls="Accuracy")
    if acc.empty:
        return None
    pyplot = plt()
    dtypes = sorted(acc["dtype"].unique())
    fig, axes = pyplot.subplots(1, len(dtypes), figsize=(6 * len(dtypes), 4.2), squeeze=False)
    for ax, dtype in zip(axes.flat, dtypes, strict=True):
        pivot = acc[acc["dtype"] == dtype].pivot_table(
            index="param_method", columns="param_distribution", values="value", aggfunc="median"
        )
        pivot = pivot.reindex([m for m in cases.CALIBRATION_METHODS if m in pivot.index])
        width = 0.8 / max(1, len(pivot.columns))
        xs = np.arange(len(pivot))
        for i, dist in enumerate(pivot.columns):
            ax.bar(xs + i * width, pivot[dist], width, label=dist)
        ax.set_xticks(xs + width * (len(pivot.columns) - 1) / 2, pivot.index)
        ax.set_ylabel("SQNR (dB, higher is better)")
        ax.set_title(f"{dtype}: round-trip SQNR by calibration method", fontsize=10)
        ax.legend(fontsize=8, title="data")
    return save(
        fig,
        out,
        "accuracy",
        "Accuracy",
        f"Signal-to-quantization-noise ratio of quantize -> dequantize on {cases.ACCURACY_SIZE:,} values "
        "per distribution ('outliers': normal with 0.1% of values at 50 sigma).",
    )
