"""Figures of kernel speed in absolute terms: throughput against the working set, and time along history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qbench import cases

from .figures import (
    BYTES_AXIS,
    IMPL_STYLE,
    Figure,
    ReportData,
    figure,
    kernel_axes,
    legend_outside,
    log2_axis,
    mark_caches,
    plain_log_y,
    save,
    series_colors,
)

#: The bandwidth line drawn beside each kernel in the throughput plot (the share itself is measured side by side).
BANDWIDTH_LINE = {"stream": "copy", "update": "copy", "read": "read", "write": "write"}


@figure("throughput", order=10)
def plot_throughput(data: ReportData, out: Path) -> Figure | None:
    t, caches = data.t, data.caches
    single = t[(t["threads"] == 1)]
    kernels = [k for k in cases.KERNELS if k in set(single["kernel"])]
    if not kernels:
        return None
    fig, axes = kernel_axes(len(kernels), row_height=3.6, width=16)
    for ax, kernel in zip(axes, kernels, strict=True):
        sub = single[single["kernel"] == kernel]
        colors = series_colors(sorted(set(sub["dtype"])))
        for (dtype, impl), g in sub.groupby(["dtype", "impl"], sort=True):
            g = g.sort_values("footprint")
            color = colors[dtype]
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
        log2_axis(ax, BYTES_AXIS, in_bytes=True)
        plain_log_y(ax)
        ax.set_ylabel("throughput (GB/s, bytes moved)")
        ax.set_title(f"{kernel}: {cases.KERNELS[kernel].summary}", fontsize=10)
        legend_outside(ax)
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
        colors = series_colors(sorted(set(sub["dtype"])))
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
                color=colors[dtype],
            )
        if steps is not None and not steps.empty:
            own = steps[(steps["kernel"] == kernel) & steps["change"].isin(["regression", "improvement"])]
            for commit, change in own[["commit", "change"]].drop_duplicates().values:
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
