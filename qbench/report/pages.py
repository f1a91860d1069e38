"""Report folders: the main report, the compare and history pages, the README table, the run summary.

Every folder is written whole into a fresh directory that then replaces the
old one (:func:`qbench.report.render.publish`), so a failed build never leaves half a report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from qbench import cases
from qbench.analysis.busy import BusySummary
from qbench.analysis.busy import summarize as summarize_busy
from qbench.analysis.regress import one_env_per_commit

from . import blocks, layers, plots_ratios, plots_speed, runtime  # noqa: F401 - registers their figures
from .figures import FIGURES, ReportData
from .headline import (
    flag_causes,
    flag_lines,
    flags,
    headline_display,
    headline_table,
    missing_peers,
    not_installed,
    verdicts,
)
from .plots_ratios import plot_ratios
from .plots_speed import plot_history
from .render import Lead, Section, machine_lines, markdown, publish, render_html, render_markdown
from .tables import (
    accuracy_table,
    calibration_table,
    commit_view,
    compile_table,
    memory_table,
    peers_table,
    pow2,
    select,
    share_note,
    share_over_one,
    side_by_side_pivot,
    side_by_side_table,
    summary_table,
    timings,
    with_sizes,
)


def report_data(frame: pd.DataFrame, commit: str, caches: dict[str, int]) -> ReportData:
    """Everything the main page shows, derived once from the results of every commit."""
    current = frame[frame["commit"] == commit]
    t_all = timings(one_env_per_commit(frame))
    t = t_all[t_all["commit"] == commit] if not t_all.empty else t_all
    sbs = side_by_side_table(one_env_per_commit(current))
    return ReportData(current, t, t_all, sbs, caches, flags(sbs, caches), missing_peers(current))


def model_section(document: dict[str, Any]) -> Section:
    """A model run by ``qbench model`` on this machine: its verdict, variant by variant."""
    return Section(
        f"Your model, {document['model']}, end to end in ONNX Runtime (qbench model)",
        runtime.table(document["variants"], document["threads"]),
        list(document["verdict"]),
    )


def answers(data: ReportData, info: dict[str, Any], models: tuple[dict, ...] = ()) -> Lead:
    """The page's answers first: whether the machine was quiet; what each format buys a linear layer against
    float32 and the fastest peer, and any model's verdict; then per operation and memory level what 8-bit buys,
    how near the ceiling, how it stands against the peers; then the ratios that cannot be right, by cause."""
    table = headline_table(data.sbs, data.caches)
    machine = f"{info.get('cpu', 'unknown CPU')}, {info.get('cores', '?')} cores, {', '.join(info.get('simd', []))}"
    lines = verdicts(table, data.caches) if not table.empty else ["no side-by-side results for this commit"]
    if data.missing_peers:
        lines.append(not_installed(data.missing_peers) + ".")
    commit = str(data.current["commit"].iloc[0])[:8] if not data.current.empty else ""
    busy = summarize_busy(data.current, info.get("busy_runs", {}).get(commit, []))
    first = []
    layer = layers.answer_table(data.current)
    if not layer.empty:
        peers = [not_installed(data.missing_peers) + "."] if data.missing_peers else []
        heading = f"What each format buys a linear layer y = x @ W.T, 1 thread, measured side by side ({machine})"
        first.append(Section(heading, layer, layers.answer_lines(data.current) + peers))
    first += [model_section(m) for m in models]
    return Lead(
        f"Elementwise, 1 thread, measured side by side: median of the rounds (their interquartile range) ({machine})",
        headline_display(table, data.missing_peers),
        lines,
        "Ratios that cannot be right as they stand, by cause (ringed and numbered on the plots):",
        flag_causes(data.flags),
        trust=busy.lines(),
        busy=busy.is_busy,
        first=first,
        details=flag_lines(data.flags),
    )


def report_tables(data: ReportData) -> list[tuple[str, pd.DataFrame]]:
    """(heading, table) of the main page, in order; empty tables are left out."""
    tables = [
        (
            "Throughput (1 thread, qbench): GB/s, multiple of the NumPy reference, share of the bandwidth ceiling "
            "(side by side, against a probe with the kernel's streams)",
            with_sizes(summary_table(data.t, data.sbs, data.caches)),
        ),
        (
            "Side by side: every ratio measured in one process (above 1 qbench, the 8-bit kernel or N threads is "
            "faster)",
            side_by_side_pivot(data.sbs),
        ),
        (
            "Linear layers y = x @ W.T: GOP/s by shape (1 thread; the int8 weights' size beside each shape)",
            layers.layer_table(data.current),
        ),
        (
            "Linear layers side by side: qbench's layer over each baseline (speed-up), or its share of the read "
            "ceiling in weight bytes/s (GEMV), of the same kernel's in-cache rate (GEMM), or of quantize_x in the "
            "dynamic layer's time",
            layers.layer_ratio_table(data.current),
        ),
        (
            "Linear layers: SQNR (dB) of the int8 output against float32, by how the activations were quantized",
            layers.layer_accuracy_table(data.current),
        ),
        (
            "Block formats: conversion speed (1 thread), as GB/s of float32 values, GB/s of the format's bytes, "
            "and ns per block of 32 values",
            blocks.conversion_table(data.current),
        ),
        (
            "Block formats: bits per weight and the round trip's accuracy (a 256 x 4096 weight matrix; symmetric "
            "MinMax scales per tensor, channel or block)",
            blocks.accuracy_table(data.current),
        ),
        (
            "Block formats: matrix-vector speed over NumPy float32 by bits per weight (qbench side by side; ONNX "
            "Runtime from its own timings)",
            blocks.bits_speedup(data.current),
        ),
        ("Accuracy: SQNR (dB) of the round trip, by calibration method and data", accuracy_table(data.current)),
        (f"Memory per call at {pow2(cases.MEMORY_SIZE)} elements", memory_table(data.current)),
        ("Calibration time (seconds)", calibration_table(data.current)),
        ("JIT cost, measured on its own (seconds)", compile_table(data.current)),
    ]
    failed = select(data.current, status="failed")
    tables.append(("Failed benchmarks", failed[["benchmark", "params"]].drop_duplicates()))
    # The throughput table stays even when empty: it says "no data" where a reader looks first.
    return [tables[0]] + [(h, tb) for h, tb in tables[1:] if not tb.empty]


def build_report(
    frame: pd.DataFrame,
    info: dict[str, Any],
    out_dir: str | Path,
    *,
    commit: str | None = None,
    progress: Callable[[str], None] = print,
    models: tuple[dict, ...] = (),
) -> Path:
    """Write plots, report.md, index.html and results.csv into ``out_dir`` (replaced as a whole); ``models``:
    ``model.json`` documents of ``qbench model`` on this machine, whose verdicts the page leads with."""
    out_dir = Path(out_dir)
    commit, current = commit_view(frame, commit)
    machine = str(current["machine"].iloc[0])
    data = report_data(frame, commit, info.get("caches", {}))

    def fill(tmp: Path) -> None:
        figures = []
        for spec in FIGURES:
            progress(f"  plotting {spec.kind}")
            fig = None if spec.needs_timings and data.t.empty else spec.draw(data, tmp)
            if fig:
                figures.append(fig)
        frame.to_csv(tmp / "results.csv", index=False)
        tables = report_tables(data)
        header = machine_lines(info, machine, commit, current["date"].iloc[0])
        lead = answers(data, info, models)
        (tmp / "report.md").write_text(render_markdown("qbench report", header, figures, tables, lead=lead))
        (tmp / "index.html").write_text(render_html("qbench report", header, figures, tables, tmp, lead=lead))
        (tmp / "report.json").write_text(
            json.dumps({"commit": commit, "machine": machine, "figures": [f.file for f in figures]}, indent=2)
        )

    publish(out_dir, fill)
    return out_dir / "index.html"


def readme_table(frame: pd.DataFrame, info: dict[str, Any], commit: str | None = None) -> str:
    """The peers comparison as a Markdown table for the README, with the machine named beside it."""
    try:
        commit, current = commit_view(frame, commit)
    except ValueError:
        return f"_no results for commit {commit}_\n"
    sbs = side_by_side_table(one_env_per_commit(current))
    table = peers_table(sbs)
    if table.empty:
        return "_no side-by-side peer results: install the peers extra and run the suite_\n"
    table = table[(table["threads"] == 1) & (table["size"] >= 2**14)].drop(columns="threads")
    over = [
        f"- {r.kernel} {r.dtype} at {pow2(r.size)}: {r.ratio:.2f} of its ceiling, "
        + share_note(r.kernel, r.dtype, int(r.size), info.get("caches", {}), r.low)
        for r in sbs.itertuples(index=False)
        if r.kind == "ceiling"
        and r.threads == 1
        and r.size >= 2**14
        and share_over_one(r.ratio)
        and r.kernel in set(table["kernel"])
    ]
    table["size"] = [pow2(v) for v in table["size"]]
    cpu = info.get("cpu", "unknown CPU")
    note = (
        f"qbench throughput as a multiple of each library's (higher is better) and as a share of this machine's "
        f"bandwidth for the same streams (a probe moving the kernel's arrays with no arithmetic), 1 thread, each "
        f"ratio measured side by side in one process, on {cpu} ({info.get('cores', '?')} cores, "
        f"{', '.join(info.get('simd', []))}), qbench {commit[:8]}, Numba {info.get('numba', '?')}.\n\n"
    )
    explained = "\nShares of the ceiling above 1:\n" + "\n".join(over) + "\n" if over else ""
    return note + markdown(table, "{:.2f}") + explained


def run_summary(frame: pd.DataFrame, commit: str, caches: dict[str, int], runs: list[dict] | None = None) -> list[str]:
    """The terminal summary of a run: whether the machine was quiet (``runs``: the run's busy records), what each
    format buys a linear layer, a cache-sized and the largest size per kernel, then every side-by-side ratio.

    Every share of a ceiling above 100% gets a numbered note saying why it can be (:func:`share_note`).
    """
    frame = frame[frame["commit"] == commit]
    sbs = side_by_side_table(one_env_per_commit(frame))
    head = headline_table(sbs, caches)
    lines = [f"\n{line}" for line in summarize_busy(frame, runs).lines()]
    if layered := layers.answer_lines(frame):
        lines += ["\nwhat each format buys a linear layer (1 thread, side by side):"] + [f"  {v}" for v in layered]
    lines += ["\nelementwise (1 thread, side by side):"] + [f"  {v}" for v in verdicts(head, caches)]
    missing = not_installed(missing_peers(frame))
    if missing:
        lines.append(f"  {missing}")
    notes: list[str] = []

    def ref(note: str) -> str:
        if note not in notes:
            notes.append(note)
        return f"[{notes.index(note) + 1}]"

    table = summary_table(timings(frame), sbs, caches)
    if not table.empty:
        sizes = sorted(table["size"].unique())
        picks = [s for s in (2**14, sizes[-1]) if s in sizes]
        lines.append("\nkernel           dtype              size       GB/s   x NumPy  % of ceiling (side by side)")
        for r in table[table["size"].isin(picks)].to_dict("records"):
            share = "-" if r["% of ceiling"] != r["% of ceiling"] else f"{r['% of ceiling']:.0f}"  # NaN: not measured
            lines.append(
                f"{r['kernel']:<16} {r['dtype']:<18} {r['size']:>10,} {r['GB/s']:>8.2f} {r['x NumPy']:>8.1f} "
                f"{share:>7} ({r['ceiling']}){' ' + ref(r['note']) if r['note'] else ''}"
            )
    wide = side_by_side_pivot(sbs)
    if not wide.empty:
        lines.append("\nside by side, each ratio measured in one process (above 1 qbench is faster):")
        sizes = [c for c in wide.columns if c.startswith("2**")]
        lines.append(f"  {'comparison':<44} {'threads':>7} " + " ".join(f"{c:>9}" for c in sizes))
        for r in wide.to_dict("records"):
            cells = []
            for c in sizes:
                share_over = r["kind"] == "ceiling" and share_over_one(r[c])
                mark = ref(share_note(r["kernel"], r["dtype"], 2 ** int(c[3:]), caches)) if share_over else ""
                cells.append(f"{r[c]:.2f}{mark}".rjust(9))
            name = f"{r['kernel']} {r['dtype']} / {r['against']}"
            lines.append(f"  {name:<44} {r['threads']:>7} " + " ".join(cells))
    lines += [f"  [{i}] a share of the ceiling above 100%: {note}" for i, note in enumerate(notes, 1)]
    return lines + layer_summary(frame)


def layer_summary(frame: pd.DataFrame) -> list[str]:
    """The linear layers' side-by-side ratios, one line per comparison, one column per shape."""
    table = layers.layer_ratio_table(frame)
    if table.empty:
        return []
    shapes = [c for c in table.columns if c not in ("comparison", "threads")]
    lines = [
        "\nlinear layers y = x @ W.T, side by side (above 1 qbench's layer is faster; against read or peak, its share;"
        " against quantize_x, that step's share of the dynamic layer):",
        f"  {'comparison':<40} {'threads':>7} " + " ".join(f"{s:>14}" for s in shapes),
    ]
    for r in table.to_dict("records"):
        cells = " ".join(("-" if r[s] != r[s] else f"{r[s]:.2f}").rjust(14) for s in shapes)  # NaN: not measured
        lines.append(f"  {r['comparison']:<40} {r['threads']:>7} {cells}")
    return lines


def build_compare_report(
    table: pd.DataFrame,
    info: dict[str, Any],
    out_dir: str | Path,
    *,
    base: str,
    head: str,
    factor: float,
    machine: str,
    instructions: float = 1.05,
    verdict: list[str] | None = None,
    busy: BusySummary | None = None,
) -> Path:
    """compare.md, compare.html (with the ratio chart) and compare.csv for two commits; the page opens with
    whether the machine was quiet, then ``verdict`` (its lines in words) and the changed rows, then the rule."""
    header = [
        ("machine", machine),
        ("CPU", str(info.get("cpu", "unknown"))),
        ("base", base),
        ("head", head),
        (
            "rule",
            f"slower: time ratio (best round of head over best round of base) > the row's factor "
            f"({'/'.join(f'{f:g}' for f in sorted(set(table['factor'].dropna())) or [factor])}) and significant "
            "(Mann-Whitney U on the per-round medians, p < 0.05), or, where instructions per call were counted "
            f"(callgrind; instructions_ratio), more than x{instructions:g} of them; 'decided' names which. Only "
            "qbench's own results decide, baselines (numpy, onnxruntime, torch) are context",
        ),
    ]
    changed = table[table["change"] != "same"]
    verdict = verdict or []
    shown = ["change", "ratio", "instructions_ratio", "factor", "decided", "benchmark", "params"]
    counts = next((line for line in verdict if " slower, " in line), f"{len(changed)} changed")
    regression = [line for line in verdict if line.startswith("REGRESSION")]
    lead = Lead(
        f"Verdict: {regression[0] if regression else 'no regression'}; {counts}",
        changed.reindex(columns=[c for c in shown if c in changed.columns]),
        ["The changed rows, each with its time ratio (head / base), its factor and what decided it:"]
        if len(changed)
        else ["No benchmark changed beyond its factor."],
        trust=busy.lines() if busy is not None and busy.recorded else [],
        busy=busy is not None and busy.is_busy,
    )

    def fill(tmp: Path) -> None:
        figures = [f for f in (plot_ratios(table, factor, tmp),) if f]
        tables = [("All compared benchmarks", table)]
        title = f"qbench compare {base[:8]}..{head[:8]}"
        (tmp / "compare.md").write_text(render_markdown(title, header, figures, tables, lead=lead))
        (tmp / "compare.html").write_text(render_html(title, header, figures, tables, tmp, lead=lead))
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
    busy: BusySummary | None = None,
) -> Path:
    """index.html and report.md of kernel times along commits, with detected steps marked and listed, and
    whether other programs used the CPUs while they were measured (``busy``)."""
    t = timings(one_env_per_commit(frame))
    header = [
        ("machine", machine),
        ("CPU", str(info.get("cpu", "unknown"))),
        ("commits", f"{len(commits)}, oldest {commits[0][:8]}, newest {commits[-1][:8]}"),
    ]
    if busy is not None and busy.recorded:
        header.append(("while measured", " ".join(busy.lines())))
    out_dir = Path(out_dir)

    def fill(tmp: Path) -> None:
        figures = [f for f in (plot_history(t, tmp, steps, commits),) if f]
        tables = [
            (
                "Detected steps (the commit named is the first at the new level; t: the difference in standard "
                "errors of the benchmark's round-to-round noise)",
                steps,
            )
        ]
        links: tuple = ()
        if asv_html is not None and (asv_html / "index.html").exists():
            links = (("asv's interactive graphs (asv publish)", os.path.relpath(asv_html / "index.html", out_dir)),)
        (tmp / "report.md").write_text(render_markdown("qbench history", header, figures, tables, links))
        (tmp / "index.html").write_text(render_html("qbench history", header, figures, tables, tmp, links))
        steps.to_csv(tmp / "steps.csv", index=False)

    publish(out_dir, fill)
    return out_dir / "index.html"
