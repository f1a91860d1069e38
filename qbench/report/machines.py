"""Many machines, one page: each machine's hardware and the headline ratios side by side, and the key sweeps with
one line per machine. Each machine's own report sits in a folder of its name beside the page.

The ratios are the ones each machine's own page leads with (:func:`qbench.report.headline.headline_table`, 1
thread, medians of the rounds measured side by side), so the two pages never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench import cases

from . import layers
from .figures import Figure, log2_axis, plt, save
from .headline import headline_table
from .pages import report_data
from .render import publish, render_html, render_markdown
from .tables import commit_view, fmt_bytes

#: ISA features that decide what 8-bit buys: the column name and the CPU flags (any of them) that mean it.
FEATURES = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx512vnni", "avx_vnni", "avxvnni"),
    "AMX": ("amx_int8", "amx-int8", "amx_tile", "amx-tile"),
}


def hardware_row(machine: str, info: dict[str, Any], t: pd.DataFrame) -> dict[str, Any]:
    """CPU, the features that matter, cores, caches, and the measured read bandwidth beyond the caches."""
    simd = {s.lower() for s in info.get("simd", [])}
    row: dict[str, Any] = {"machine": machine, "CPU": info.get("cpu", "unknown")}
    row.update({name: "yes" if simd & set(flags) else "no" for name, flags in FEATURES.items()})
    row["cores"] = info.get("cores", np.nan)
    row["caches"] = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in sorted(info.get("caches", {}).items()))
    reads = t[(t["kernel"] == "read")] if not t.empty else t
    if not reads.empty:
        largest = reads[reads["size"] == reads["size"].max()]
        row["read GB/s, 1 thread"] = float(largest.loc[largest["threads"] == 1, "gbps"].max())
        row["read GB/s, all threads"] = float(largest["gbps"].max())
        row["read measured at"] = fmt_bytes(float(largest["bytes"].iloc[0]))
    return row


def _ends(table: pd.DataFrame, operation: str, column: str) -> tuple[float, float]:
    """(the value in the fastest cache level measured, the value at the slowest level measured) of one row set."""
    rows = table[table["operation"] == operation] if "operation" in table else table
    if rows.empty or column not in rows:
        return np.nan, np.nan
    return float(rows[column].iloc[0]), float(rows[column].iloc[-1])


def ratio_row(machine: str, data: Any) -> dict[str, Any]:
    """The headline ratios of one machine: 8-bit over float32 in cache and from memory, the linear layers' int8
    over NumPy float32, the conversions' share of their ceiling and qbench over each peer from memory."""
    table = headline_table(data.sbs, data.caches)
    row: dict[str, Any] = {"machine": machine}
    for op, name in (("sum uint8", "sum"), ("dot int8", "dot")):
        row[f"{name} 8-bit/f32, cache"], row[f"{name} 8-bit/f32, memory"] = _ends(table, op, "8-bit / float32")
    ratios = layers.layer_ratios(data.current)
    mine = ratios[(ratios["variant"] == "dynamic") & (ratios["against"] == "numpy float32") & (ratios["threads"] == 1)]
    for label, rows in (("GEMV", mine[mine["m"] == 1]), ("GEMM", mine[mine["m"] > 1])):
        if not rows.empty:
            biggest = rows.loc[(rows["m"] * rows["k"] * rows["n"]).idxmax()]
            row[f"{label} int8/f32"] = float(biggest["ratio"])
            row[f"{label} shape"] = biggest["shape"]
    for op, name in (("quantize float32 -> uint8", "quantize"), ("dequantize uint8 -> float32", "dequantize")):
        row[f"{name} share of ceiling"] = _ends(table, op, "share of ceiling")[1]
        for peer in cases.PEER_IMPLS:
            row[f"{name} x {peer}"] = _ends(table, op, f"x {peer}")[1]
    return row


def plot_machines(timings: dict[str, pd.DataFrame], sbs: dict[str, pd.DataFrame], out: Path) -> Figure | None:
    """One line per machine: quantize and dequantize GB/s by size, and the int8 dot over the float32 dot."""
    panels = (
        ("quantize uint8: GB/s (1 thread)", "quantize"),
        ("dequantize uint8: GB/s (1 thread)", "dequantize"),
        ("dot int8 over float32 (1 thread, side by side)", "dot"),
    )
    fig, axes = plt().subplots(1, 3, figsize=(15, 4.5))
    drawn = False
    for ax, (title, kernel) in zip(axes, panels, strict=True):
        for machine in timings:
            if kernel == "dot":
                s = sbs[machine]
                s = s[(s["kernel"] == "dot") & (s["dtype"] == "int8") & (s["against"] == "float32")]
                s = s[s["threads"] == 1].sort_values("size")
                x, y = s["size"], s["ratio"]
            else:
                t = timings[machine]
                t = t[(t["kernel"] == kernel) & (t["dtype"] == "uint8") & (t["threads"] == 1)] if not t.empty else t
                t = t[t["impl"] == "qbench"].sort_values("size") if not t.empty else t
                x, y = (t["size"], t["gbps"]) if not t.empty else ([], [])
            if len(x):
                ax.plot(x, y, marker="o", ms=3, label=machine)
                drawn = True
        log2_axis(ax)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    if not drawn:
        plt().close(fig)
        return None
    return save(
        fig,
        out,
        "machines",
        "The key sweeps, one line per machine",
        "Each machine's own results, by size: where the caches end and how wide the vectors are shows as where "
        "and how far the lines part.",
    )


def build_machines_report(
    frame: pd.DataFrame, infos: dict[str, dict[str, Any]], out_dir: str | Path, progress=print
) -> Path:
    """index.html and report.md comparing the machines of ``frame``, each machine's own report in
    ``out_dir/<machine>/``."""
    from . import build_report

    out_dir = Path(out_dir)
    hardware, ratios, timings, sbs = [], [], {}, {}
    for machine in sorted(frame["machine"].unique()):
        mine = frame[frame["machine"] == machine]
        info = infos.get(machine, {"machine": machine})
        commit, _ = commit_view(mine, None)
        data = report_data(mine, commit, info.get("caches", {}))
        hardware.append(hardware_row(machine, info, data.t))
        ratios.append(ratio_row(machine, data))
        timings[machine], sbs[machine] = data.t, data.sbs
    pages = {}
    for machine in sorted(frame["machine"].unique()):
        progress(f"machine {machine}:")
        mine = frame[frame["machine"] == machine]
        pages[machine] = build_report(mine, infos.get(machine, {}), out_dir / machine, progress=progress)
    header = [("machines", ", ".join(sorted(pages))), ("results rows", f"{len(frame):,}")]
    links = tuple((f"{m}: its own report", f"{m}/index.html") for m in sorted(pages))
    tables = [
        ("Machines: the features that decide what 8-bit buys, and the read bandwidth measured", pd.DataFrame(hardware)),
        (
            "What 8-bit buys per machine (1 thread, medians of rounds measured side by side; cache: the fastest "
            "cache level measured, memory: the largest size measured)",
            pd.DataFrame(ratios),
        ),
    ]

    def fill(tmp: Path) -> None:
        # The machines' own reports are written first, into out_dir; keep them in the folder that replaces it.
        for machine in pages:
            (out_dir / machine).rename(tmp / machine)
        figures = [f for f in (plot_machines(timings, sbs, tmp),) if f]
        (tmp / "report.md").write_text(render_markdown("qbench: machines side by side", header, figures, tables, links))
        (tmp / "index.html").write_text(
            render_html("qbench: machines side by side", header, figures, tables, tmp, links)
        )
        pd.DataFrame(hardware).merge(pd.DataFrame(ratios), on="machine").to_csv(tmp / "machines.csv", index=False)

    publish(out_dir, fill)
    return out_dir / "index.html"
