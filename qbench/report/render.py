"""Pages as text: Markdown and self-contained HTML (plots inlined), the machine header, and the folder a page is
written into whole (:func:`publish`)."""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
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
        ("NumPy's BLAS (the float32 layer baseline)", str(info.get("blas", "unknown (recorded by an older qbench)"))),
        ("parallel switch (parallel=None)", str(info.get("parallel_switch", "unknown (recorded by an older qbench)"))),
        ("commit", f"{commit[:12]} ({date})"),
    ]


@dataclass
class Section:
    """A heading, a table and lines in words."""

    heading: str
    table: pd.DataFrame
    lines: list[str]


@dataclass
class Lead:
    """What a page says before anything else: whether the run can be trusted (``trust``, a warning when
    ``busy``), sections that come first, a heading with a table of the answers and lines in words, notes
    (``notes``), and the single cases behind them, folded (``details``)."""

    heading: str
    table: pd.DataFrame
    lines: list[str]
    notes_heading: str = ""
    notes: list[str] = field(default_factory=list)
    trust: list[str] = field(default_factory=list)
    busy: bool = False
    first: list[Section] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def sections(self) -> list[Section]:
        return [*self.first, Section(self.heading, self.table, self.lines)]


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table as shown: columns with no value anywhere left out."""
    return table.dropna(axis=1, how="all") if not table.empty else table


def render_markdown(
    title: str,
    header: list[tuple[str, str]],
    figures: list[Figure],
    tables: list,
    links: tuple = (),
    lead: Lead | None = None,
) -> str:
    parts = [f"# {title}\n"]
    if lead is not None:
        mark = "**Warning.** " if lead.busy else ""
        parts += [f"\n{mark if i == 0 else ''}{line}\n" for i, line in enumerate(lead.trust)]
        for section in lead.sections:
            parts.append(f"\n## {section.heading}\n\n{markdown(section.table, '{:.2f}')}\n")
            parts += [f"- {line}\n" for line in section.lines]
        if lead.notes:
            parts.append(f"\n{lead.notes_heading}\n\n" + "".join(f"- {n}\n" for n in lead.notes))
        if lead.details:
            parts.append("\nOne by one:\n\n" + "".join(f"- {n}\n" for n in lead.details))
    parts.append("\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in header))
    parts += [f"\n[{text}]({href})\n" for text, href in links]
    for f in figures:
        parts.append(f"\n## {f.title}\n\n![{f.title}]({f.file})\n\n{f.caption}\n")
    for heading, table in tables:
        parts.append(f"\n## {heading}\n\n{markdown(_shown(table))}")
    return "".join(parts)


#: Marks an image the browser could not decode, and counts those it could (``data-images-loaded``).
_IMAGE_CHECK = (
    "<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
    "for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0){ok++;}else{"
    "var p=document.createElement('p');p.className='broken';p.textContent='This image did not load: '+im[i].alt;"
    "im[i].after(p);}}document.body.setAttribute('data-images-loaded',ok+'/'+im.length);});</script>"
)


def _html_table(table: pd.DataFrame, css: str = "") -> str:
    return _shown(table).to_html(
        index=False, float_format=lambda v: f"{v:.3g}", na_rep="", classes=css or None, border=0
    )


def _each(tag: str, lines: list[str]) -> str:
    return "".join(f"<{tag}>{html.escape(line)}</{tag}>" for line in lines)


def _html_lead(lead: Lead) -> str:
    """Whether to trust the run, the sections of answers, the flags by cause and, folded, one by one."""
    trust = f"<div id='trust' class='{'busy' if lead.busy else 'quiet'}'>{_each('p', lead.trust)}</div>"
    parts = [trust] if lead.trust else []
    parts.append("<section id='headline'>")
    for i, section in enumerate(lead.sections):
        css = "headline" if i == len(lead.sections) - 1 else "answers"
        parts.append(f"<h2>{html.escape(section.heading)}</h2>{_html_table(section.table, css)}")
        parts.append(f"<ul class='verdicts'>{_each('li', section.lines)}</ul>")
    if lead.notes:
        parts.append(f"<p class='flags-heading'>{html.escape(lead.notes_heading)}</p>")
        parts.append(f"<ul class='flags'>{_each('li', lead.notes)}</ul>")
    if lead.details:
        summary = f"<summary>the {len(lead.details)} lines one by one</summary>"
        parts.append(f"<details class='flags'>{summary}<ul>{_each('li', lead.details)}</ul></details>")
    return "".join(parts) + "</section>"


def render_html(
    title: str,
    header: list[tuple[str, str]],
    figures: list[Figure],
    tables: list,
    folder: Path,
    links: tuple = (),
    lead: Lead | None = None,
) -> str:
    def img(f: Figure) -> str:
        data = base64.b64encode((folder / f.file).read_bytes()).decode()
        return (
            f'<section><h2>{html.escape(f.title)}</h2><img alt="{html.escape(f.title)}" '
            f'src="data:image/png;base64,{data}"><p>{html.escape(f.caption)}</p></section>'
        )

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in header)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if lead is not None:
        body.append(_html_lead(lead))
    body.append(f"<table class='meta'>{rows}</table>")
    body += [f"<p><a href='{html.escape(href)}'>{html.escape(text)}</a></p>" for text, href in links]
    body += [img(f) for f in figures]
    for heading, table in tables:
        body.append(f"<section><h2>{html.escape(heading)}</h2>{_html_table(table)}</section>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:0.85em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}table.meta td,table.meta th{text-align:left}"
        "table.headline{font-size:0.95em}table.headline td:first-child{text-align:left}"
        "ul.verdicts{font-size:1.05em;line-height:1.5}ul.flags,p.flags-heading,details.flags{color:#a11}"
        "#trust{padding:0.4em 1em;border-left:6px solid #2a7;overflow-wrap:anywhere}"
        "#trust.busy{border-color:#c22;background:#fdecea}"
        "table.answers td:nth-child(-n+2){text-align:left}"
        ".broken{color:#a11;font-weight:bold}h2{margin-top:1.6em}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}{_IMAGE_CHECK}</body></html>"
    )


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
