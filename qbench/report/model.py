"""``qbench model``'s outputs: the terminal summary, index.html, report.md, tensors.csv and three plots."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .figures import Figure, plt, save
from .layers import LABELS
from .render import Lead, publish, render_html, render_markdown

#: Speed-up columns of the summary: (column, rows of activations).
SPEED_COLUMNS = (("gemv_x", 1), ("gemm_x", None))


def with_speedups(summary: pd.DataFrame, formats: list, times: pd.DataFrame | None, batch: int) -> pd.DataFrame:
    """The summary with each format's model speed-up over float32 (GEMV and a ``batch``-row GEMM) beside it."""
    from qbench.model.speed import best_peers, model_speedup

    out = summary.copy()
    if times is None or times.empty:
        return out
    timed_as = {f.name: f.timed_as for f in formats}
    timed_as["float32"] = "float32"
    for column, m in SPEED_COLUMNS:
        speed = model_speedup(times, m or batch)
        got = [speed.get(timed_as.get(name) or "", (np.nan, np.nan)) for name in out["format"]]
        out[column] = [x for x, _ in got]
        peers = best_peers(times, m or batch)
        best = [peers.get(timed_as.get(name) or "") for name in out["format"]]
        out[f"peer_{column}"] = [b[0] if b else np.nan for b in best]
        out[f"peer_{column[:4]}"] = [LABELS.get((b[2], b[1]), f"{b[1]} {b[2]}") if b else "" for b in best]
        if column == "gemv_x":
            out["timed_share"] = [share for _, share in got]
    out["kernel"] = [timed_as.get(name) or "" for name in out["format"]]
    return out


def size_text(n: float) -> str:
    """Bytes as 3 to 4 significant figures in KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} GiB"


def _x(v: float) -> str:
    return "" if v != v else f"{v:.2f}x"


def _db(v: float) -> str:
    return "" if v != v else ("exact" if math.isinf(v) else f"{v:.1f}")


def terminal_summary(summary: pd.DataFrame) -> list[str]:
    """The table a user reads first: one line per format, at most 100 columns."""
    head = f"{'format':<17}{'bits/w':>7}{'size':>11}{'vs f32':>8}{'vs f16':>8}{'SQNR dB':>9}{'worst dB':>9}"
    speed = "gemv_x" in summary
    if speed:
        head += f"{'GEMV':>8}{'GEMM':>8}{'p.GEMV':>7}{'p.GEMM':>7}"
    lines = [head, "-" * len(head)]
    for r in summary.to_dict("records"):
        line = (
            f"{r['format']:<17}{r['bits']:>7.2f}{size_text(r['bytes']):>11}{_x(r['x_float32']):>8}"
            f"{_x(r['x_float16']):>8}{_db(r['sqnr_db']):>9}{_db(r['worst_db']):>9}"
        )
        if speed:
            partial = "*" if r.get("timed_share", 1) < 0.999 else " "
            line += f"{_x(r.get('gemv_x', np.nan)):>8}{_x(r.get('gemm_x', np.nan)):>8}{partial}"
            line += f"{_x(r.get('peer_gemv_x', np.nan)):>6}{_x(r.get('peer_gemm_x', np.nan)):>7}"
        lines.append(line.rstrip())
    if speed and (summary.get("timed_share", pd.Series([1.0])) < 0.999).any():
        lines.append("* over the shapes it can store: rows of a multiple of its block (see the report)")
    if speed and summary.get("peer_gemv_x", pd.Series([np.nan])).notna().any():
        lines.append("p.GEMV, p.GEMM: the fastest installed peer for the format, x float32 (named in the report)")
    return lines


def headline(summary: pd.DataFrame) -> list[str]:
    """The answer in words, one line per format worth reading (of the per-tensor int8/uint8 rows, the most
    accurate only): how much smaller, how much faster per token and per batch, at what SQNR."""
    rows = summary[~summary["format"].isin(["float32", "as stored"])]
    per_tensor = rows["format"].str.match(r"u?int8 (?!channel)")
    if per_tensor.any():
        best = rows.loc[per_tensor, "sqnr_db"].idxmax()
        rows = rows[~per_tensor | (rows.index == best)]
    lines = []
    for r in rows.to_dict("records"):
        text = f"{r['format']}: {r['x_float32']:.2f}x less memory than float32 ({r['bits']:.2f} bits a weight)"
        if r.get("gemv_x", np.nan) == r.get("gemv_x", np.nan):
            text += f", {r['gemv_x']:.2f}x faster per token (GEMV)"
            if r.get("timed_share", 1) < 0.999:
                text += f" over {100 * r['timed_share']:.0f}% of the float32 time it can store"
        if r.get("gemm_x", np.nan) == r.get("gemm_x", np.nan):
            text += f", {r['gemm_x']:.2f}x batched (GEMM)"
        text += f", SQNR {_db(r['sqnr_db'])} dB (worst tensor {_db(r['worst_db'])} dB)"
        lines.append(text + _peer_text(r))
    fastest = [
        _fastest(rows, column, what) for column, what in (("gemv_x", "per token (GEMV)"), ("gemm_x", "batched (GEMM)"))
    ]
    if any(fastest):
        lines.insert(0, "fastest on this machine: " + "; ".join(f for f in fastest if f))
    return lines


def _peer_text(r: dict) -> str:
    """``"; <peer>: <ratio>x per token, <ratio>x batched"``: the fastest installed peers' figures for the format
    (one name where one peer is fastest at both), or ''."""
    parts, last = [], None
    for column, what in (("gemv_x", "per token"), ("gemm_x", "batched")):
        x = r.get(f"peer_{column}", np.nan)
        if x == x:
            name = r[f"peer_{column[:4]}"]
            parts.append(f"{x:.2f}x {what}" if name == last else f"{name}: {x:.2f}x {what}")
            last = name
    return "; " + ", ".join(parts) if parts else ""


def _fastest(rows: pd.DataFrame, column: str, what: str) -> str:
    """``"<what> <format>, <ratio>x float32"`` for the format with the largest measured speed-up (and the share
    of the model's float32 time it was timed over, where its blocks do not fit every shape), or ''."""
    if column not in rows or not rows[column].notna().any():
        return ""
    best = rows.loc[rows[column].astype(float).idxmax()]
    share = best.get("timed_share", 1.0)
    over = f" over {100 * share:.0f}% of the float32 time" if share == share and share < 0.999 else ""
    return f"{what} {best['format']}, {best[column]:.2f}x float32{over}"


def plot_tradeoff(summary: pd.DataFrame, out: Path) -> Figure:
    """Size against accuracy, one point per format; the Pareto front (no other format smaller and better)."""
    fig, ax = plt().subplots(figsize=(8, 5))
    pts = summary[np.isfinite(summary["sqnr_db"].astype(float)) & summary["bits"].notna()]
    front, best = [], -math.inf
    for r in pts.sort_values(["bits", "sqnr_db"], ascending=[True, False]).itertuples():
        if r.sqnr_db > best:
            front.append((r.bits, r.sqnr_db))
            best = r.sqnr_db
    ax.scatter(pts["bits"], pts["sqnr_db"], color="#1f77b4", zorder=3)
    placed: list[tuple[float, float]] = []
    for r in pts.sort_values("sqnr_db").itertuples():
        # Formats of one size and nearly one SQNR (the calibrations): stack their labels instead of overprinting.
        crowd = sum(abs(b - r.bits) < 0.3 and abs(q - r.sqnr_db) < 1.5 for b, q in placed)
        ax.annotate(r.format, (r.bits, r.sqnr_db), fontsize=7, xytext=(5, 3 + 8 * crowd), textcoords="offset points")
        placed.append((r.bits, r.sqnr_db))
    if front:
        ax.plot(*zip(*front, strict=True), color="#d62728", lw=1, ls="--", label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xlabel("bits per weight (scales and zero points included)")
    ax.set_ylabel("size-weighted SQNR (dB, higher is better)")
    ax.grid(True, alpha=0.3)
    return save(
        fig,
        out,
        "tradeoff",
        "Size against accuracy",
        "Each format's bits per weight and its SQNR averaged over tensors weighted by their size; the dashed line "
        "joins the formats no other format beats on both.",
    )


def natural(name: str) -> tuple:
    """A sort key that compares the numbers in a name as numbers: ``layers.2`` before ``layers.10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def plot_depth(frame: pd.DataFrame, out: Path) -> Figure:
    """Each tensor's SQNR per format, in the file's order (the model's depth)."""
    fig, ax = plt().subplots(figsize=(11, 5))
    ok = frame[(frame["status"] == "ok") & np.isfinite(frame["sqnr_db"].astype(float))]
    names = [n for n in dict.fromkeys(ok["format"]) if n != "float16"]
    colors = dict(zip(names, plt().get_cmap("tab20").colors, strict=False))
    order = {t: i for i, t in enumerate(sorted(set(frame["tensor"]), key=natural))}
    for name in names:
        g = ok[ok["format"] == name].assign(x=lambda d: d["tensor"].map(order)).sort_values("x")
        ax.plot(g["x"], g["sqnr_db"], marker="o", ms=2.5, lw=1, label=name, color=colors[name])
    ax.set_xlabel("tensor, by name (the numbers in names compared as numbers: layer 2 before layer 10)")
    ax.set_ylabel("SQNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(
        fig,
        out,
        "depth",
        "SQNR along the model",
        "The round trip's SQNR of every weight tensor per format, tensors sorted by name with layer numbers in "
        "order (the model's depth where names carry it); a dip marks a tensor (often an embedding or an "
        "outlier-heavy projection) that a format serves badly.",
    )


def plot_speed(times: pd.DataFrame, out: Path) -> Figure:
    """Speed-up over float32 per weight shape and variant, GEMV and GEMM side by side."""
    ms = sorted(set(times["m"]))
    fig, axes = plt().subplots(1, len(ms), figsize=(6 * len(ms), 4.5), squeeze=False)
    for ax, m in zip(axes[0], ms, strict=True):
        sub = times[(times["m"] == m) & (times["variant"] != "float32")]
        sub = sub.assign(label=[LABELS.get((r, i), f"{i} {r}") for r, i in zip(sub["runs"], sub["impl"], strict=True)])
        table = sub.pivot_table(index="shape", columns="label", values="speedup", sort=False)
        table.plot.bar(ax=ax, rot=0)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.set_ylabel("x float32 (NumPy BLAS), higher is faster")
        ax.set_xlabel("weight shape N x K")
        ax.set_title("GEMV (one row)" if m == 1 else f"GEMM ({m} rows)", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return save(
        fig,
        out,
        "speed",
        "Speed-up per weight shape",
        "Each distinct matrix-product weight shape of the model, timed side by side with NumPy's float32 "
        "product in one process (median of the per-round ratios).",
    )


def build_model_report(
    out_dir: str | Path,
    *,
    title: str,
    header: list[tuple[str, str]],
    summary: pd.DataFrame,
    frame: pd.DataFrame,
    times: pd.DataFrame | None,
    notes: list[str],
    runtime: dict[str, Any] | None = None,
) -> Path:
    """index.html (self-contained), report.md, tensors.csv, times.csv and the plots, into ``out_dir``; with the
    end-to-end ``runtime`` document, its verdict leads the page and ``model.json`` and ``model.csv`` join it."""
    from . import runtime as rt

    scan_lead = Lead("What quantizing this model's weights buys, format by format", summary, headline(summary))
    lead, tables_first = scan_lead, []
    if runtime is not None:
        lead = Lead(
            "The whole model in ONNX Runtime on this CPU",
            rt.table(runtime["variants"], runtime["threads"]),
            [*runtime["verdict"], runtime["machine"]],
            "Why: where each variant's time goes, and where static int8 departs from float32",
            runtime["why"],
        )
        tables_first = [
            ("The weights, format by format (qbench's kernels at the model's shapes)", summary),
            ("What the weight scan says", pd.DataFrame({"answer": headline(summary)})),
        ]

    def fill(tmp: Path) -> None:
        figures = [plot_tradeoff(summary, tmp), plot_depth(frame, tmp)]
        tables: list[tuple[str, Any]] = list(tables_first)
        if runtime is not None:
            rt.write(tmp, runtime)
        if times is not None and not times.empty:
            figures.append(plot_speed(times, tmp))
            tables.append(("Time per weight shape (seconds per call, median of rounds)", times))
            times.to_csv(tmp / "times.csv", index=False)
        if notes:
            tables.append(("Notes", pd.DataFrame({"note": notes})))
        frame.to_csv(tmp / "tensors.csv", index=False)
        (tmp / "report.md").write_text(render_markdown(title, header, figures, tables, lead=lead))
        (tmp / "index.html").write_text(render_html(title, header, figures, tables, tmp, lead=lead))

    publish(Path(out_dir), fill)
    return Path(out_dir) / "index.html"
