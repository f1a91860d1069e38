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
    log2_axis,
    mark_caches,
    plt,
    save,
)
from .tables import select, share_note, share_over_one

_KIND_TITLES = {
    "peer": "qbench / peer (elements/s)",
    "ceiling": "share of the ceiling: a probe with the kernel's streams, no arithmetic (bytes/s)",
    "dtype": "8-bit / float32 (elements/s)",
    "threads": "N threads / 1 thread (elements/s)",
}


@figure("side by side", order=60, needs_timings=False)
def plot_side_by_side(data: ReportData, out: Path) -> Figure | None:
    sbs, caches = data.sbs, data.caches
    if sbs.empty:
        return None
    pyplot = plt()
    kinds = [k for k in _KIND_TITLES if k in set(sbs["kind"])]
    cols, rows = min(2, len(kinds)), (len(kinds) + 1) // 2
    fig, axes = pyplot.subplots(rows, cols, figsize=(7 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.flat[len(kinds) :]:
        ax.set_visible(False)
    cycle = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes.flat, kinds, strict=False):
        sub = sbs[sbs["kind"] == kind]
        # 8-bit against float32 compares equal element counts; every other panel one case, by its working set.
        x = "size" if kind == "dtype" else "footprint"
        # Among the peers colour says which library, elsewhere which case; the marker is the case and
        # the line style the thread count.
        cases_ = sorted(set(zip(sub["kernel"], sub["dtype"], strict=True)))
        markers = {c: "os^vD<>"[i % 7] for i, c in enumerate(cases_)}
        by_peer = kind == "peer"
        colors = {k: cycle[i % len(cycle)] for i, k in enumerate(sorted(set(sub["against"])) if by_peer else cases_)}
        for (kernel, dtype, against, threads), g in sub.groupby(["kernel", "dtype", "against", "threads"]):
            g = g.sort_values(x)
            ax.plot(
                g[x],
                g["ratio"],
                "-" if threads == 1 else "--",
                color=colors[against if by_peer else (kernel, dtype)],
                marker=markers[(kernel, dtype)],
                ms=3.5,
                label=f"{kernel} {dtype} / {against}, {threads} thr",
            )
        ax.axhline(1.0, color="black", lw=0.8)
        if kind == "ceiling":
            _flag_shares(ax, sub, caches)
        mark_caches(ax, caches, ELEMENT_FOOTPRINTS if kind == "dtype" else None)
        log2_axis(ax, "elements (log scale)" if kind == "dtype" else BYTES_AXIS)
        ax.set_yscale("log")
        ax.set_title(_KIND_TITLES[kind], fontsize=10)
        ax.legend(fontsize=5.5, ncol=1)
    return save(
        fig,
        out,
        "side_by_side",
        "Side by side: qbench against its peers, the bandwidth ceiling, float32 and one thread",
        "Each point is one ratio measured in one process, qbench and the baseline timed alternately (median of "
        "the per-round ratios), so the drift of a shared machine between processes does not enter it. Above 1 "
        "qbench (or the 8-bit kernel, or N threads) is faster. N threads is a budget every implementation gets "
        "as its users give it: qbench decides serial or parallel itself (parallel=None), ONNX Runtime gets its "
        "intra-op threads, PyTorch torch.set_num_threads. A share of the ceiling is the kernel's bytes/s over a "
        "probe that moves the same arrays (widths, reads, writes) with no arithmetic, or reads the same bytes for a "
        "reduction; shares above 1 are ringed in red and explained under the panel. ONNX Runtime runs "
        "QuantizeLinear/DequantizeLinear with IO binding into a preallocated output; PyTorch "
        "quantize_per_tensor / dequantize, which rounds as "
        "round(x * (1/scale) + zp); qbench and ONNX Runtime divide, as ONNX specifies.",
    )


def _flag_shares(ax: Any, shares: pd.DataFrame, caches: dict[str, int]) -> None:
    """Ring every share above 1 and say under the panel why it can be (:func:`share_note`)."""
    over = shares[shares["ratio"].map(share_over_one)]
    if over.empty:
        return
    ax.scatter(over["footprint"], over["ratio"], s=70, facecolors="none", edgecolors="#d62728", lw=1.2, zorder=5)
    notes = [
        f"{r.kernel} {r.dtype} at 2**{int(r.size).bit_length() - 1}, {r.threads} thr: {r.ratio:.2f}, "
        + share_note(r.kernel, r.dtype, int(r.size), caches)
        for r in over.itertuples(index=False)
    ]
    shown = notes[:6] + ([f"... and {len(notes) - 6} more (see the table)"] if len(notes) > 6 else [])
    ax.text(0.0, -0.2, "above 1:\n" + "\n".join(shown), transform=ax.transAxes, va="top", fontsize=5.5, color="#d62728")


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
    ax.set_xlabel("time ratio, head / base (log; right of 1 is slower)")
    ax.set_title(f"Change per benchmark (red: slower, green: faster, both significant and beyond x{factor:g})")
    return save(
        fig,
        out,
        "ratios",
        "Time ratios",
        "Head over base median time for each benchmark and "
        f"parameter set; dashed lines at {1 / factor:.3g} and {factor:g}.",
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
        for x, v in zip(biggest["dtype"], biggest["value"], strict=True):
            ax1.text(x, v / 2**20, f"{v / biggest['value'].max():.2f}", ha="center", va="bottom", fontsize=8)
        ax1.set_ylabel("MiB")
        ax1.set_title(f"Footprint of {int(biggest['size'].iloc[0]):,} elements (ratio to the largest)", fontsize=10)
    if not extra.empty:
        extra = extra.assign(label=extra["kernel"] + "\n" + extra["dtype"].astype(str))
        pivot = extra.pivot_table(index="label", columns="impl", values="value", aggfunc="median")
        width = 0.8 / max(1, len(pivot.columns))
        xs = np.arange(len(pivot))
        for i, impl in enumerate(pivot.columns):
            ax2.bar(xs + i * width, pivot[impl].clip(lower=1), width, label=impl)
        ax2.set_xticks(xs + width * (len(pivot.columns) - 1) / 2, pivot.index, fontsize=6, rotation=90)
        ax2.set_yscale("log")
        ax2.set_ylabel("bytes allocated beyond the output (log)")
        ax2.set_title(f"Extra allocation per call at {cases.MEMORY_SIZE:,} elements (tracemalloc)", fontsize=10)
        ax2.legend(fontsize=8)
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
    acc = select(data.current, "track_sqnr_db")
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
