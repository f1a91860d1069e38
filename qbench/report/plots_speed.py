"""Figures of kernel speed: throughput against the working set, 8-bit over float32, threads, history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qbench import cases

from .figures import (
    BYTES_AXIS,
    ELEMENT_FOOTPRINTS,
    IMPL_STYLE,
    Figure,
    ReportData,
    dtype_color,
    figure,
    kernel_axes,
    log2_axis,
    mark_caches,
    plt,
    save,
)
from .tables import speedup_table, thread_table

#: The bandwidth line drawn beside each kernel in the throughput plot (the share itself is measured side by side).
BANDWIDTH_LINE = {"stream": "copy", "update": "copy", "read": "read"}


@figure("throughput", order=10)
def plot_throughput(data: ReportData, out: Path) -> Figure | None:
    t, caches = data.t, data.caches
    single = t[(t["threads"] == 1)]
    kernels = [k for k in cases.KERNELS if k in set(single["kernel"])]
    if not kernels:
        return None
    fig, axes = kernel_axes(len(kernels), row_height=3.6)
    for ax, kernel in zip(axes, kernels, strict=True):
        sub = single[single["kernel"] == kernel]
        for (dtype, impl), g in sub.groupby(["dtype", "impl"], sort=True):
            g = g.sort_values("footprint")
            color = dtype_color(dtype)
            ax.plot(
                g["footprint"],
                g["gbps"],
                IMPL_STYLE.get(impl, "-"),
                marker="o",
                ms=3,
                color=color,
                label=f"{dtype} ({impl})",
            )
            ax.fill_between(g["footprint"], g["gbps_lo"], g["gbps_hi"], color=color, alpha=0.15, lw=0)
        probe = BANDWIDTH_LINE[cases.KERNELS[kernel].ceiling]
        line = single[single["kernel"] == probe].sort_values("footprint")
        if not line.empty:
            ax.plot(line["footprint"], line["gbps"], color="black", ls=(0, (1, 1)), lw=1.5, label=f"float32 {probe}")
        mark_caches(ax, caches)
        log2_axis(ax, BYTES_AXIS)
        ax.set_yscale("log")
        ax.set_ylabel("throughput (GB/s, bytes moved)")
        ax.set_title(f"{kernel}: {cases.KERNELS[kernel].summary}", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        "Throughput vs working set, 1 thread (bands: interquartile range; dotted verticals: this machine's caches)",
        fontsize=11,
    )
    return save(
        fig,
        out,
        "throughput",
        "Throughput vs working set",
        "GB/s counted from the bytes each kernel must read and write, single thread, against the working set "
        "(every array it touches), so a point sits in the cache level it really lives in; solid qbench, dashed the "
        "NumPy reference. Dotted black: this machine's float32 copy (kernels that write) or read (reductions) "
        "bandwidth at the same working set, for orientation. A kernel can sit above copy from memory: a store "
        "first reads its cache line on most CPUs, which copy pays on every byte it writes, while acc += x reads "
        "that line anyway and quantize writes one byte per four it reads. The share of each kernel's own ceiling, "
        "a probe with its exact streams and no arithmetic, is measured side by side (the side-by-side plot and "
        "the throughput table).",
    )


@figure("speedup", order=20)
def plot_speedup(data: ReportData, out: Path) -> Figure | None:
    table, caches = speedup_table(data.t), data.caches
    if table.empty:
        return None
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(9, 4.5))
    for (kernel, pair, threads), g in table.groupby(["kernel", "pair", "threads"]):
        g = g.sort_values("size")
        ax.plot(
            g["size"],
            g["speedup"],
            "-" if threads == 1 else "--",
            marker="o",
            ms=3,
            label=f"{kernel}: {pair}, {threads} thread{'s' if threads > 1 else ''}",
        )
    ax.axhline(1.0, color="black", lw=0.8)
    ax.axhline(4.0, color="0.5", lw=0.8, ls="--")
    ax.text(ax.get_xlim()[0], 4.0, " 4x: float32 / uint8 bytes", va="bottom", fontsize=7, color="0.4")
    mark_caches(ax, caches, ELEMENT_FOOTPRINTS)
    log2_axis(ax)
    ax.set_ylabel("speedup (elements/s, 8-bit over float32)")
    ax.set_title("What 8-bit buys: speedup of the 8-bit kernel over its float32 twin (qbench)")
    ax.legend(fontsize=7)
    return save(
        fig,
        out,
        "speedup",
        "uint8 over float32 speedup",
        "Elements per second of the 8-bit kernel divided by its float32 twin, same run; above 1 the "
        "8-bit data is faster. The float32 sum and dot are reassociated (vectorized), a fair baseline.",
    )


@figure("threads", order=50)
def plot_threads(data: ReportData, out: Path) -> Figure | None:
    table, caches = thread_table(data.t), data.caches
    if table.empty:
        return None
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(9, 4.5))
    first_dtype = table.groupby("kernel")["dtype"].first()
    for (kernel, threads), g in table.groupby(["kernel", "threads"]):
        g = g[g["dtype"] == first_dtype[kernel]].sort_values("footprint")
        ax.plot(
            g["footprint"], g["scaling"], marker="o", ms=3, label=f"{kernel} ({first_dtype[kernel]}), {threads} threads"
        )
    ax.axhline(1.0, color="black", lw=0.8)
    for n in sorted(table["threads"].unique()):
        ax.axhline(n, color="0.6", lw=0.8, ls="--")
    mark_caches(ax, caches)
    log2_axis(ax, BYTES_AXIS)
    ax.set_ylabel("speedup over 1 thread")
    ax.set_title("Thread scaling: qbench with an N-thread budget over 1 thread (it picks serial or parallel)")
    ax.legend(fontsize=7, ncol=2)
    return save(
        fig,
        out,
        "threads",
        "Thread scaling",
        "Elements per second with a budget of N threads (numba.set_num_threads(N), parallel=None) divided by one "
        "thread, from separate processes; below the size where the parallel form pays (see the machine's parallel "
        "switch above) qbench stays serial and the ratio is 1. Dashed lines: perfect scaling.",
    )


def plot_history(
    t: pd.DataFrame, out: Path, steps: pd.DataFrame | None = None, commits: list[str] | None = None
) -> Figure | None:
    """Median time per commit for each kernel; ``commits`` gives the order (else commit dates do)."""
    mine = t[(t["impl"] == "qbench") & (t["threads"] == 1) & (t["kernel"].isin(list(cases.KERNELS)))]
    if commits is None:
        commits = mine.dropna(subset=["commit"]).drop_duplicates("commit").sort_values("date")["commit"].tolist()
    commits = [c for c in commits if c in set(mine["commit"])]
    if len(commits) < 2:
        return None
    order = {c: i for i, c in enumerate(commits)}
    kernels = [k for k in cases.KERNELS if k in set(mine["kernel"])]
    fig, axes = kernel_axes(len(kernels), row_height=3.2)
    for ax, kernel in zip(axes, kernels, strict=True):
        sub = mine[mine["kernel"] == kernel]
        size = sub.groupby("size")["commit"].nunique().idxmax()
        sub = sub[sub["size"] == size]
        for dtype, g in sub.groupby("dtype"):
            g = g.assign(x=g["commit"].map(order)).sort_values("x")
            yerr = (
                np.vstack(
                    [
                        (g["value"] - g["ci_low"]).clip(lower=0).fillna(0),
                        (g["ci_high"] - g["value"]).clip(lower=0).fillna(0),
                    ]
                )
                * 1e6
            )
            ax.errorbar(
                g["x"],
                g["value"] * 1e6,
                yerr=yerr,
                marker="o",
                ms=3,
                capsize=2,
                label=str(dtype),
                color=dtype_color(dtype),
            )
        if steps is not None and not steps.empty:
            for commit, change in steps.loc[steps["kernel"] == kernel, ["commit", "change"]].drop_duplicates().values:
                if commit in order:
                    color = "#d62728" if change == "regression" else "#2ca02c"
                    ax.axvline(order[commit] - 0.5, color=color, lw=1.2, ls="--", alpha=0.8)
        ax.set_xticks(range(len(order)), [c[:8] for c in order], rotation=45, fontsize=7)
        ax.set_ylabel("median time (us)")
        ax.set_title(f"{kernel} at {int(size):,} elements", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        "History: median time per commit (oldest left; bars: 99% confidence interval; dashed: detected steps, "
        "red slower, green faster)",
        fontsize=10,
    )
    return save(
        fig,
        out,
        "history",
        "History across commits",
        "Median time of each kernel at one size, per commit measured on this machine.",
    )


@figure("history", order=70)
def plot_history_of_report(data: ReportData, out: Path) -> Figure | None:
    return plot_history(data.t_all, out)
