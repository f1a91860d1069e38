"""Pages as text: Markdown and self-contained HTML (plots inlined), and the machine header."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .figures import Figure
from .tables import fmt_bytes


def markdown(frame: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
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


def machine_lines(info: dict[str, Any], machine: str, commit: str, date: Any) -> list[tuple[str, str]]:
    caches = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in sorted(info.get("caches", {}).items())) or "unknown"
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


def render_markdown(
    title: str, header: list[tuple[str, str]], figures: list[Figure], tables: list, links: tuple = ()
) -> str:
    parts = [f"# {title}\n", "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in header)]
    parts += [f"\n[{text}]({href})\n" for text, href in links]
    for f in figures:
        parts.append(f"\n## {f.title}\n\n![{f.title}]({f.file})\n\n{f.caption}\n")
    for heading, table in tables:
        parts.append(f"\n## {heading}\n\n{markdown(table)}")
    return "".join(parts)


def render_html(
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
