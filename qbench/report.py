"""Tidy results -> plots (matplotlib, Agg) -> report.md, index.html and results.csv.

Every throughput here is ``cases.bytes_moved(...) / median time``: the same
rule the suite's ``track_gbps`` uses, so plots and benchmarks agree.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench import cases
from qbench.regress import one_env_per_commit

IMPL_STYLE = {"qbench": "-", "numpy": "--", "onnxruntime": ":", "torch": "-."}
DTYPE_COLORS = {
    "float32": "#1f77b4",
    "float64": "#9467bd",
    "uint8": "#d62728",
    "int8": "#ff7f0e",
    "uint16": "#2ca02c",
    "int16": "#8c564b",
    "int32": "#7f7f7f",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Figure:
    kind: str
    file: str
    title: str
    caption: str


def _save(fig: Any, out: Path, kind: str, title: str, caption: str) -> Figure:
    """Lay out, write ``<kind>.png`` and close a figure; describe it for the pages."""
    fig.tight_layout()
    fig.savefig(out / f"{kind}.png", dpi=110)
    _plt().close(fig)
    return Figure(kind, f"{kind}.png", title, caption)


def _timings(frame: pd.DataFrame) -> pd.DataFrame:
    """Kernel and bandwidth time_ rows that succeeded, with GB/s and elements/s (median and quartile band)."""
    t = frame[(frame["benchmark"].str.endswith(".time_run")) & (frame["status"] == "ok")].copy()
    if t.empty:
        return t
    t["size"] = t["size"].astype(int)
    t["threads"] = t["threads"].astype(int)
    keys = list(zip(t["kernel"], t["dtype"], t["size"], strict=True))
    t["bytes"] = [cases.bytes_moved(k, d, s) for k, d, s in keys]
    t["footprint"] = [cases.footprint(k, d, s) for k, d, s in keys]
    t["gbps"] = t["bytes"] / t["value"] / 1e9
    t["gbps_lo"] = t["bytes"] / t["q75"].fillna(t["value"]) / 1e9
    t["gbps_hi"] = t["bytes"] / t["q25"].fillna(t["value"]) / 1e9
    t["elements_per_s"] = t["size"] / t["value"]
    return t


def _latest_commit(frame: pd.DataFrame) -> str:
    order = frame.dropna(subset=["commit"]).sort_values("date")
    return str(order["commit"].iloc[-1])


def _pow2(n: float) -> str:
    """A power-of-two size as a label: 16384 -> "2**14"."""
    return f"2**{int(np.log2(n))}"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n} B"


def _mark_caches(ax: Any, caches: dict[str, int], bytes_per_element: dict[str, float] | None = None) -> None:
    """Dotted verticals where each cache fills: at its size on a bytes axis, or per dtype on an elements axis.

    ``bytes_per_element`` maps a label (a dtype) to the working-set bytes of one
    element, for plots whose x axis counts elements of arrays of different widths.
    """
    for label, per_element in (bytes_per_element or {"": 1}).items():
        for level, size in sorted(caches.items()):
            x = size / per_element
            ax.axvline(x, color="0.6", lw=0.8, ls=":")
            text = f" {level} {label}".rstrip()
            ax.text(x, 0.98, text, transform=ax.get_xaxis_transform(), va="top", fontsize=6, color="0.4", rotation=90)


BYTES_AXIS = "working set (bytes, log scale): every array the kernel touches"
#: Cache markers on an elements axis that compares float32 with 8-bit data: where each one-array working set
#: fills a cache (two-array kernels fill it at half the count).
ELEMENT_FOOTPRINTS = {"float32": 4, "8-bit": 1}


def _log2_axis(ax: Any, xlabel: str = "elements (log scale)") -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.grid(True, which="major", alpha=0.3)


def _kernel_axes(count: int, row_height: float) -> tuple[Any, list]:
    """A two-column grid with one axes per kernel (the spare cell removed)."""
    nrows = (count + 1) // 2
    fig, axes = _plt().subplots(nrows, 2, figsize=(12, row_height * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:count]


#: The bandwidth line drawn beside each kernel in the throughput plot (the share itself is measured side by side).
BANDWIDTH_LINE = {"stream": "copy", "update": "copy", "read": "read"}


def plot_throughput(t: pd.DataFrame, caches: dict[str, int], out: Path) -> Figure | None:
    single = t[(t["threads"] == 1)]
    kernels = [k for k in cases.KERNELS if k in set(single["kernel"])]
    if not kernels:
        return None
    fig, axes = _kernel_axes(len(kernels), row_height=3.6)
    for ax, kernel in zip(axes, kernels, strict=True):
        sub = single[single["kernel"] == kernel]
        for (dtype, impl), g in sub.groupby(["dtype", "impl"], sort=True):
            g = g.sort_values("footprint")
            color = DTYPE_COLORS.get(str(dtype).split("+=")[-1], None)
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
        _mark_caches(ax, caches)
        _log2_axis(ax, BYTES_AXIS)
        ax.set_yscale("log")
        ax.set_ylabel("throughput (GB/s, bytes moved)")
        ax.set_title(f"{kernel}: {cases.KERNELS[kernel].summary}", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        "Throughput vs working set, 1 thread (bands: interquartile range; dotted verticals: this machine's caches)",
        fontsize=11,
    )
    return _save(
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


def speedup_table(t: pd.DataFrame) -> pd.DataFrame:
    """8-bit over float32 elements/s, per kernel pair, size and thread count (qbench)."""
    rows = []
    mine = t[t["impl"] == "qbench"]
    for kernel, (flt, low) in cases.SPEEDUP_PAIRS.items():
        sub = mine[mine["kernel"] == kernel]
        a = sub[sub["dtype"] == flt].set_index(["size", "threads"])["elements_per_s"]
        b = sub[sub["dtype"] == low].set_index(["size", "threads"])["elements_per_s"]
        for (size, threads), ratio in (b / a).dropna().items():
            rows.append(
                {"kernel": kernel, "pair": f"{low} / {flt}", "size": size, "threads": threads, "speedup": ratio}
            )
    return pd.DataFrame(rows, columns=["kernel", "pair", "size", "threads", "speedup"])


def plot_speedup(t: pd.DataFrame, caches: dict[str, int], out: Path) -> Figure | None:
    table = speedup_table(t)
    if table.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.5))
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
    _mark_caches(ax, caches, ELEMENT_FOOTPRINTS)
    _log2_axis(ax)
    ax.set_ylabel("speedup (elements/s, 8-bit over float32)")
    ax.set_title("What 8-bit buys: speedup of the 8-bit kernel over its float32 twin (qbench)")
    ax.legend(fontsize=7)
    return _save(
        fig,
        out,
        "speedup",
        "uint8 over float32 speedup",
        "Elements per second of the 8-bit kernel divided by its float32 twin, same run; above 1 the "
        "8-bit data is faster. The float32 sum and dot are reassociated (vectorized), a fair baseline.",
    )


def side_by_side_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side ratios (``bench_side_by_side``): one row per comparison, size and thread count."""
    cols = ["kind", "kernel", "dtype", "against", "size", "threads", "ratio", "footprint"]
    rows = frame[frame["benchmark"].str.endswith("SideBySide.track_ratio") & (frame["status"] == "ok")]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    pairs = [cases.Comparison.parse(c) for c in rows["param_comparison"]]
    return pd.DataFrame(
        {
            "kind": [c.kind for c in pairs],
            "kernel": [c.kernel for c in pairs],
            "dtype": [c.dtype for c in pairs],
            "against": [c.against for c in pairs],
            "size": rows["size"].astype(int).to_numpy(),
            "threads": rows["threads"].astype(int).to_numpy(),
            "ratio": rows["value"].to_numpy(),
            "footprint": [cases.footprint(c.kernel, c.dtype, int(n)) for c, n in zip(pairs, rows["size"], strict=True)],
        }
    ).sort_values(["kind", "kernel", "dtype", "against", "threads", "size"], ignore_index=True)


def peers_table(sbs: pd.DataFrame) -> pd.DataFrame:
    """qbench as a multiple of each peer (and of the NumPy reference), with its share of its bandwidth ceiling."""
    with_peers = set(sbs.loc[sbs["against"].isin(cases.PEER_IMPLS), "kernel"])
    sub = sbs[sbs["kind"].isin(["peer", "ceiling"]) & sbs["kernel"].isin(with_peers)]
    if sub.empty:
        return pd.DataFrame()
    sub = sub.assign(
        column=[
            "share of ceiling" if k == "ceiling" else f"x {a}" for k, a in zip(sub["kind"], sub["against"], strict=True)
        ]
    )
    table = sub.pivot_table(index=["kernel", "dtype", "size", "threads"], columns="column", values="ratio")
    ordered = [c for c in (*(f"x {p}" for p in (*cases.PEER_IMPLS, "numpy")), "share of ceiling") if c in table.columns]
    table = table[ordered].reset_index()
    table.columns.name = None
    return table


def share_over_one(share: float) -> bool:
    """A share of a ceiling that shows above 1 at the two decimals every page prints (1.004 shows as 1.00)."""
    return round(float(share), 2) > 1.0


def share_note(kernel: str, dtype: str, size: int, caches: dict[str, int]) -> str:
    """Why a share of a bandwidth ceiling measured above 1 can be: the probe was bound by something else.

    A kernel's ceiling moves its exact streams (widths, reads, writes) with no
    arithmetic, or reads the same bytes for a reduction, so from memory the
    two meet the same limit and a share cannot pass 1 by more than the spread
    between rounds. In a private cache a probe is bound by its own instructions
    (a truncating move, one float32 add per four bytes), which a kernel's
    loop can beat.
    """
    fp = cases.footprint(kernel, dtype, size)
    private = max((v for k, v in caches.items() if k in ("L1", "L2")), default=0)
    if fp <= private:
        return f"in cache ({_fmt_bytes(fp)} <= L2): the probe is bound by its own instructions there, not by memory"
    return (
        "outside the private caches the probe moves the same bytes the same way, so read this as measurement "
        "spread until a run with more rounds (without --quick) confirms it"
    )


_KIND_TITLES = {
    "peer": "qbench / peer (elements/s)",
    "ceiling": "share of the ceiling: a probe with the kernel's streams, no arithmetic (bytes/s)",
    "dtype": "8-bit / float32 (elements/s)",
    "threads": "N threads / 1 thread (elements/s)",
}


def plot_side_by_side(sbs: pd.DataFrame, caches: dict[str, int], out: Path) -> Figure | None:
    if sbs.empty:
        return None
    plt = _plt()
    kinds = [k for k in _KIND_TITLES if k in set(sbs["kind"])]
    cols, rows = min(2, len(kinds)), (len(kinds) + 1) // 2
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.flat[len(kinds) :]:
        ax.set_visible(False)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
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
        _mark_caches(ax, caches, ELEMENT_FOOTPRINTS if kind == "dtype" else None)
        _log2_axis(ax, "elements (log scale)" if kind == "dtype" else BYTES_AXIS)
        ax.set_yscale("log")
        ax.set_title(_KIND_TITLES[kind], fontsize=10)
        ax.legend(fontsize=5.5, ncol=1)
    return _save(
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


def readme_table(frame: pd.DataFrame, info: dict[str, Any], commit: str | None = None) -> str:
    """The peers comparison as a Markdown table for the README, with the machine named beside it."""
    commit = commit or _latest_commit(frame)
    frame = frame[frame["commit"].astype(str).str.startswith(commit)]
    if frame.empty:
        return f"_no results for commit {commit}_\n"
    commit = str(frame["commit"].iloc[0])
    sbs = side_by_side_table(one_env_per_commit(frame))
    table = peers_table(sbs)
    if table.empty:
        return "_no side-by-side peer results: install the peers extra and run the suite_\n"
    table = table[(table["threads"] == 1) & (table["size"] >= 2**14)].drop(columns="threads")
    over = [
        f"- {r.kernel} {r.dtype} at {_pow2(r.size)}: {r.ratio:.2f} of its ceiling, "
        + share_note(r.kernel, r.dtype, int(r.size), info.get("caches", {}))
        for r in sbs.itertuples(index=False)
        if r.kind == "ceiling"
        and r.threads == 1
        and r.size >= 2**14
        and share_over_one(r.ratio)
        and r.kernel in set(table["kernel"])
    ]
    table["size"] = [_pow2(v) for v in table["size"]]
    cpu = info.get("cpu", "unknown CPU")
    note = (
        f"qbench throughput as a multiple of each library's (higher is better) and as a share of this machine's "
        f"bandwidth for the same streams (a probe moving the kernel's arrays with no arithmetic), 1 thread, each "
        f"ratio measured side by side in one process, on {cpu} ({info.get('cores', '?')} cores, "
        f"{', '.join(info.get('simd', []))}), qbench {commit[:8]}, Numba {info.get('numba', '?')}.\n\n"
    )
    explained = "\nShares of the ceiling above 1:\n" + "\n".join(over) + "\n" if over else ""
    return note + _markdown(table, "{:.2f}") + explained


def plot_memory(frame: pd.DataFrame, out: Path) -> Figure | None:
    foot = frame[(frame["benchmark"].str.endswith("track_footprint_bytes")) & (frame["status"] == "ok")]
    extra = frame[(frame["benchmark"].str.endswith("track_extra_alloc_bytes")) & (frame["status"] == "ok")]
    if foot.empty and extra.empty:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 2]})
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
    return _save(
        fig,
        out,
        "memory",
        "Memory",
        "Left: array footprint per dtype (uint8 is a quarter of float32). Right: bytes each implementation "
        "allocates during one call beyond its output; qbench writes into a preallocated output.",
    )


def plot_accuracy(frame: pd.DataFrame, out: Path) -> Figure | None:
    acc = frame[(frame["benchmark"].str.endswith("track_sqnr_db")) & (frame["status"] == "ok")]
    if acc.empty:
        return None
    plt = _plt()
    dtypes = sorted(acc["dtype"].unique())
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6 * len(dtypes), 4.2), squeeze=False)
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
    return _save(
        fig,
        out,
        "accuracy",
        "Accuracy",
        f"Signal-to-quantization-noise ratio of quantize -> dequantize on {cases.ACCURACY_SIZE:,} values "
        "per distribution ('outliers': normal with 0.1% of values at 50 sigma).",
    )


def thread_table(t: pd.DataFrame) -> pd.DataFrame:
    mine = t[t["impl"] == "qbench"]
    counts = sorted(mine["threads"].unique())
    if len(counts) < 2:
        return pd.DataFrame()
    one = mine[mine["threads"] == 1].set_index(["kernel", "dtype", "size"])["elements_per_s"]
    rows = []
    for n in counts[1:]:
        many = mine[mine["threads"] == n].set_index(["kernel", "dtype", "size"])["elements_per_s"]
        for (kernel, dtype, size), ratio in (many / one).dropna().items():
            fp = cases.footprint(kernel, dtype, int(size))
            rows.append(
                {"kernel": kernel, "dtype": dtype, "size": size, "footprint": fp, "threads": n, "scaling": ratio}
            )
    return pd.DataFrame(rows)


def plot_threads(t: pd.DataFrame, caches: dict[str, int], out: Path) -> Figure | None:
    table = thread_table(t)
    if table.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    first_dtype = table.groupby("kernel")["dtype"].first()
    for (kernel, threads), g in table.groupby(["kernel", "threads"]):
        g = g[g["dtype"] == first_dtype[kernel]].sort_values("footprint")
        ax.plot(
            g["footprint"], g["scaling"], marker="o", ms=3, label=f"{kernel} ({first_dtype[kernel]}), {threads} threads"
        )
    ax.axhline(1.0, color="black", lw=0.8)
    for n in sorted(table["threads"].unique()):
        ax.axhline(n, color="0.6", lw=0.8, ls="--")
    _mark_caches(ax, caches)
    _log2_axis(ax, BYTES_AXIS)
    ax.set_ylabel("speedup over 1 thread")
    ax.set_title("Thread scaling: qbench with an N-thread budget over 1 thread (it picks serial or parallel)")
    ax.legend(fontsize=7, ncol=2)
    return _save(
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
    fig, axes = _kernel_axes(len(kernels), row_height=3.2)
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
                color=DTYPE_COLORS.get(str(dtype).split("+=")[-1]),
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
    return _save(
        fig,
        out,
        "history",
        "History across commits",
        "Median time of each kernel at one size, per commit measured on this machine.",
    )


def summary_table(
    t: pd.DataFrame, sbs: pd.DataFrame, caches: dict[str, int], commit: str | None = None
) -> pd.DataFrame:
    """Per kernel, dtype and size (1 thread): qbench GB/s, x NumPy, and share of the kernel's bandwidth ceiling.

    The share is the side-by-side one (same process, the kernel's own streams
    moved with no arithmetic); a share above 1 carries its explanation in ``note``.
    """
    if t.empty:
        return pd.DataFrame()
    single = t[t["threads"] == 1]
    if commit:
        single = single[single["commit"] == commit]
    mine = single[(single["impl"] == "qbench") & single["kernel"].isin(list(cases.KERNELS))]
    ref = single[single["impl"] == "numpy"].set_index(["kernel", "dtype", "size"])["value"]
    ceiling = sbs[(sbs["kind"] == "ceiling") & (sbs["threads"] == 1)] if not sbs.empty else sbs
    shares = ceiling.set_index(["kernel", "dtype", "size"])["ratio"] if not ceiling.empty else pd.Series(dtype=float)
    rows = []
    for _, r in mine.iterrows():
        key = (r["kernel"], r["dtype"], int(r["size"]))
        share = float(shares.get(key, np.nan))
        rows.append(
            {
                "kernel": r["kernel"],
                "dtype": r["dtype"],
                "size": int(r["size"]),
                "GB/s": r["gbps"],
                "Gelem/s": r["elements_per_s"] / 1e9,
                "x NumPy": (ref.get(key, np.nan) / r["value"]),
                "ceiling": cases.KERNELS[r["kernel"]].ceiling,
                "% of ceiling": 100 * share,
                "note": share_note(*key, caches) if share_over_one(share) else "",
            }
        )
    order = {k: i for i, k in enumerate(cases.KERNELS)}
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["kernel", "dtype", "size"], key=lambda s: s.map(order) if s.name == "kernel" else s)


def _markdown(frame: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """A pipe table (pandas' to_markdown needs an extra dependency for this one job)."""
    if frame.empty:
        return "_no data_\n"

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else floatfmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _machine_lines(info: dict[str, Any], machine: str, commit: str, date: Any) -> list[tuple[str, str]]:
    caches = ", ".join(f"{k} {_fmt_bytes(v)}" for k, v in sorted(info.get("caches", {}).items())) or "unknown"
    return [
        ("machine", machine),
        ("CPU", str(info.get("cpu", "unknown"))),
        ("SIMD", ", ".join(info.get("simd", [])) or "unknown"),
        ("cores", f"{info.get('cores', '?')} (Numba threads: {info.get('numba_threads', '?')})"),
        ("caches (per core; L3 shared)", caches),
        ("OS", str(info.get("os", "unknown"))),
        (
            "software",
            f"Python {info.get('python', '?')}, NumPy {info.get('numpy', '?')}, Numba {info.get('numba', '?')}"
            f", llvmlite {info.get('llvmlite', '?')}",
        ),
        ("Numba threading layer", str(info.get("threading_layer", "unknown"))),
        ("parallel switch (parallel=None)", str(info.get("parallel_switch", "unknown (recorded by an older qbench)"))),
        ("commit", f"{commit[:12]} ({date})"),
    ]


def compile_table(frame: pd.DataFrame) -> pd.DataFrame:
    jit = frame[frame["suite"].str.startswith("bench_compile") & (frame["status"] == "ok")]
    return pd.DataFrame({"benchmark": [b.rpartition(".")[2] for b in jit["benchmark"]], "seconds": jit["value"]})


def build_report(
    frame: pd.DataFrame,
    info: dict[str, Any],
    out_dir: str | Path,
    *,
    commit: str | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Write plots, report.md, index.html and results.csv into ``out_dir`` (replaced as a whole)."""
    out_dir = Path(out_dir)
    commit = commit or _latest_commit(frame)
    matches = frame[frame["commit"].astype(str).str.startswith(commit)]
    if matches.empty:
        raise ValueError(f"no results for commit {commit}")
    commit = str(matches["commit"].iloc[0])
    current = frame[frame["commit"] == commit]
    machine = str(current["machine"].iloc[0])
    caches = info.get("caches", {})
    t_all = _timings(one_env_per_commit(frame))
    t = t_all[t_all["commit"] == commit] if not t_all.empty else t_all
    sbs = side_by_side_table(one_env_per_commit(current))

    def fill(tmp: Path) -> None:
        figures = []
        for kind, make in (
            ("throughput", lambda: plot_throughput(t, caches, tmp)),
            ("speedup", lambda: plot_speedup(t, caches, tmp)),
            ("memory", lambda: plot_memory(current, tmp)),
            ("accuracy", lambda: plot_accuracy(current, tmp)),
            ("threads", lambda: plot_threads(t, caches, tmp)),
            ("side by side", lambda: plot_side_by_side(sbs, caches, tmp)),
            ("history", lambda: plot_history(t_all, tmp)),
        ):
            progress(f"  plotting {kind}")
            fig = make() if not t.empty or kind in ("memory", "accuracy", "side by side") else None
            if fig:
                figures.append(fig)
        frame.to_csv(tmp / "results.csv", index=False)
        tables = _tables(current, t, sbs, caches)
        header = _machine_lines(info, machine, commit, current["date"].iloc[0])
        (tmp / "report.md").write_text(_render_markdown("qbench report", header, figures, tables))
        (tmp / "index.html").write_text(_render_html("qbench report", header, figures, tables, tmp))
        (tmp / "report.json").write_text(
            json.dumps({"commit": commit, "machine": machine, "figures": [f.file for f in figures]}, indent=2)
        )

    publish(out_dir, fill)
    return out_dir / "index.html"


def publish(out_dir: Path, fill: Callable[[Path], None]) -> None:
    """Write a report folder: ``fill`` writes into a fresh folder, which then replaces ``out_dir`` (and only it)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        fill(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is for reading
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def side_by_side_pivot(sbs: pd.DataFrame) -> pd.DataFrame:
    """Side-by-side ratios with one column per size: the compact form for pages and the terminal."""
    if sbs.empty:
        return pd.DataFrame()
    wide = sbs.pivot_table(index=["kind", "kernel", "dtype", "against", "threads"], columns="size", values="ratio")
    wide.columns = [_pow2(c) for c in wide.columns]
    return wide.reset_index()


def _tables(
    current: pd.DataFrame, t: pd.DataFrame, sbs: pd.DataFrame, caches: dict[str, int]
) -> list[tuple[str, pd.DataFrame]]:
    tables = [
        (
            "Throughput (1 thread, qbench): GB/s, multiple of the NumPy reference, share of the bandwidth ceiling "
            "(side by side, against a probe with the kernel's streams)",
            summary_table(t, sbs, caches),
        )
    ]
    sp = speedup_table(t)
    if not sp.empty:
        tables.append(("8-bit over float32 (elements/s ratio)", sp))
    sp_wide = side_by_side_pivot(sbs)
    if not sp_wide.empty:
        tables.append(("Side by side: ratios measured in one process (above 1 qbench is faster)", sp_wide))
    th = thread_table(t)
    if not th.empty:
        tables.append(("Thread scaling (elements/s over 1 thread)", th))
    acc = current[current["benchmark"].str.contains(r"Accuracy\.track_") & (current["status"] == "ok")]
    if not acc.empty:
        sq = (
            acc[acc["benchmark"].str.endswith("track_sqnr_db")]
            .pivot_table(index=["dtype", "param_method"], columns="param_distribution", values="value")
            .reset_index()
        )
        tables.append(("Accuracy: SQNR (dB) of the round trip", sq.rename(columns={"param_method": "method"})))
    mem = current[current["suite"].str.endswith("Memory") & (current["status"] == "ok")]
    if not mem.empty:
        pm = mem.pivot_table(index=["kernel", "dtype"], columns=["benchmark", "impl"], values="value")
        pm.columns = [
            f"{b.rpartition('.')[2].replace('track_', '').replace('peakmem_run', 'peak RSS bytes')} ({i})"
            for b, i in pm.columns
        ]
        tables.append(("Memory per call at 2**20 elements", pm.reset_index()))
    cal = current[current["suite"].str.endswith("Calibrate") & (current["status"] == "ok")]
    if not cal.empty:
        tables.append(
            (
                "Calibration time (seconds)",
                cal.pivot_table(index="param_method", columns="size", values="value").reset_index(),
            )
        )
    jit = compile_table(current)
    if not jit.empty:
        tables.append(("JIT cost, measured on its own (seconds)", jit))
    failed = current[current["status"] == "failed"]
    if not failed.empty:
        tables.append(("Failed benchmarks", failed[["benchmark", "params"]].drop_duplicates()))
    return tables


def _render_markdown(
    title: str, header: list[tuple[str, str]], figures: list[Figure], tables: list, links: tuple = ()
) -> str:
    parts = [f"# {title}\n", "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in header)]
    parts += [f"\n[{text}]({href})\n" for text, href in links]
    for f in figures:
        parts.append(f"\n## {f.title}\n\n![{f.title}]({f.file})\n\n{f.caption}\n")
    for heading, table in tables:
        parts.append(f"\n## {heading}\n\n{_markdown(table)}")
    return "".join(parts)


def _render_html(
    title: str,
    header: list[tuple[str, str]],
    figures: list[Figure],
    tables: list,
    folder: Path,
    links: tuple = (),
) -> str:
    def img(f: Figure) -> str:
        data = base64.b64encode((folder / f.file).read_bytes()).decode()
        return (
            f'<section><h2>{html.escape(f.title)}</h2><img alt="{html.escape(f.title)}" '
            f'src="data:image/png;base64,{data}"><p>{html.escape(f.caption)}</p></section>'
        )

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in header)
    body = [f"<h1>{html.escape(title)}</h1><table class='meta'>{rows}</table>"]
    body += [f"<p><a href='{html.escape(href)}'>{html.escape(text)}</a></p>" for text, href in links]
    body += [img(f) for f in figures]
    for heading, table in tables:
        body.append(
            f"<section><h2>{html.escape(heading)}</h2>"
            f"{table.to_html(index=False, float_format=lambda v: f'{v:.3g}', na_rep='')}</section>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:0.85em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}table.meta td,table.meta th{text-align:left}"
        "h2{margin-top:1.6em}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def plot_ratios(table: pd.DataFrame, factor: float, out: Path, limit: int = 40) -> Figure | None:
    """Horizontal bars of head/base time ratios, largest changes first."""
    if table.empty:
        return None
    plt = _plt()
    shown = table.reindex(table["ratio"].map(lambda r: abs(np.log(r))).sort_values(ascending=False).index)[:limit]
    shown = shown.iloc[::-1]
    labels = [
        f"{b.split('.', 1)[-1]} {_short_params(p)}" for b, p in zip(shown["benchmark"], shown["params"], strict=True)
    ]
    colors = ["#d62728" if c == "slower" else "#2ca02c" if c == "faster" else "0.6" for c in shown["change"]]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(shown) + 1.6))
    ax.barh(range(len(shown)), shown["ratio"], color=colors)
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.set_xscale("log")
    for x in (1 / factor, 1.0, factor):
        ax.axvline(x, color="black" if x == 1.0 else "0.5", lw=0.8, ls="-" if x == 1.0 else "--")
    ax.set_xlabel("time ratio, head / base (log; right of 1 is slower)")
    ax.set_title(f"Change per benchmark (red: slower, green: faster, both significant and beyond x{factor:g})")
    return _save(
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


def build_compare_report(
    table: pd.DataFrame,
    info: dict[str, Any],
    out_dir: str | Path,
    *,
    base: str,
    head: str,
    factor: float,
    machine: str,
) -> Path:
    """compare.md, compare.html (with the ratio chart) and compare.csv for two commits."""
    header = [
        ("machine", machine),
        ("CPU", str(info.get("cpu", "unknown"))),
        ("base", base),
        ("head", head),
        (
            "rule",
            f"slower: time ratio (best round of head over best round of base) > {factor:g} and significant "
            "(Mann-Whitney U on the per-round medians, p < 0.05); only qbench's own results decide, baselines "
            "(numpy, onnxruntime, torch) are context",
        ),
    ]
    changed = table[table["change"] != "same"]

    def fill(tmp: Path) -> None:
        figures = [f for f in (plot_ratios(table, factor, tmp),) if f]
        tables = [("Changed benchmarks", changed), ("All compared benchmarks", table)]
        title = f"qbench compare {base[:8]}..{head[:8]}"
        (tmp / "compare.md").write_text(_render_markdown(title, header, figures, tables))
        (tmp / "compare.html").write_text(_render_html(title, header, figures, tables, tmp))
        table.to_csv(tmp / "compare.csv", index=False)

    publish(Path(out_dir), fill)
    return Path(out_dir) / "compare.html"


def build_history_report(
    frame: pd.DataFrame,
    steps: pd.DataFrame,
    info: dict[str, Any],
    out_dir: str | Path,
    *,
    machine: str,
    commits: list[str],
    asv_html: Path | None = None,
) -> Path:
    """index.html and report.md of kernel times along commits, with detected steps marked and listed."""
    t = _timings(one_env_per_commit(frame))
    header = [
        ("machine", machine),
        ("CPU", str(info.get("cpu", "unknown"))),
        ("commits", f"{len(commits)}, oldest {commits[0][:8]}, newest {commits[-1][:8]}"),
    ]
    out_dir = Path(out_dir)

    def fill(tmp: Path) -> None:
        figures = [f for f in (plot_history(t, tmp, steps, commits),) if f]
        tables = [("Detected steps (the commit named is the first at the new level)", steps)]
        links: tuple = ()
        if asv_html is not None and (asv_html / "index.html").exists():
            links = (("asv's interactive graphs (asv publish)", os.path.relpath(asv_html / "index.html", out_dir)),)
        (tmp / "report.md").write_text(_render_markdown("qbench history", header, figures, tables, links))
        (tmp / "index.html").write_text(_render_html("qbench history", header, figures, tables, tmp, links))
        steps.to_csv(tmp / "steps.csv", index=False)

    publish(out_dir, fill)
    return out_dir / "index.html"
