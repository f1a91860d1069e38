"""What every plot shares: matplotlib set-up, styles, cache markers, axes, saving, and the figure registry.

A report page draws the figures registered with :func:`figure`, in order,
from one :class:`ReportData`; adding a picture is one plot function with the
decorator, nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

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
BYTES_AXIS = "working set (bytes, log scale): every array the kernel touches"
#: Cache markers on an elements axis that compares float32 with 8-bit data: where each one-array working set
#: fills a cache (two-array kernels fill it at half the count).
ELEMENT_FOOTPRINTS = {"float32": 4, "8-bit": 1}


def plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


@dataclass
class Figure:
    kind: str
    file: str
    title: str
    caption: str


@dataclass
class ReportData:
    """What the figures of a report page are drawn from, derived once."""

    current: pd.DataFrame  # every result row of the commit reported
    t: pd.DataFrame  # its timings (:func:`tables.timings`)
    t_all: pd.DataFrame  # timings of every commit (history)
    sbs: pd.DataFrame  # its side-by-side ratios (:func:`tables.side_by_side_table`)
    caches: dict[str, int]
    flags: pd.DataFrame  # ratios that cannot be right as they stand (:func:`headline.flags`), numbered in order
    missing_peers: tuple[str, ...] = ()  # peers not installed where the suite ran


@dataclass(frozen=True)
class FigureSpec:
    kind: str
    draw: Callable[[ReportData, Path], Figure | None]
    needs_timings: bool  # skipped when the commit has no kernel timings
    order: int  # place on the page


#: The figures of the main report, in page order.
FIGURES: list[FigureSpec] = []


def figure(kind: str, *, order: int, needs_timings: bool = True) -> Callable:
    """Register ``draw(data, out) -> Figure | None`` as a figure of the main report page, at ``order``."""

    def register(draw: Callable[[ReportData, Path], Figure | None]) -> Callable:
        FIGURES.append(FigureSpec(kind, draw, needs_timings, order))
        FIGURES.sort(key=lambda spec: spec.order)
        return draw

    return register


def save(fig: Any, out: Path, kind: str, title: str, caption: str) -> Figure:
    """Lay out, write ``<kind>.png`` and close a figure; describe it for the pages."""
    fig.tight_layout()
    fig.savefig(out / f"{kind}.png", dpi=110)
    plt().close(fig)
    return Figure(kind, f"{kind}.png", title, caption)


def mark_caches(ax: Any, caches: dict[str, int], bytes_per_element: dict[str, float] | None = None) -> None:
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


def log2_axis(ax: Any, xlabel: str = "elements (log scale)", *, in_bytes: bool = False) -> None:
    """A log2 x axis labelled plainly: sizes as 2**k elements, or as bytes (16 KiB, 64 MiB)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    from .tables import fmt_bytes

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_bytes(v) if in_bytes else f"2**{round(math.log2(v))}"))
    ax.set_xlabel(xlabel)
    ax.grid(True, which="major", alpha=0.3)


def plain_log_y(ax: Any) -> None:
    """A log y axis with plain numbers (0.5, 2, 10), not 5x10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=30))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def series_colors(keys: list) -> dict:
    """A distinct colour for each key, in order (up to 20 before any repeats)."""
    palette = [plt().get_cmap("tab20")(i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    return {k: palette[i % len(palette)] for i, k in enumerate(keys)}


def legend_outside(ax: Any, fontsize: float = 6.5) -> None:
    """The legend beside the axes, where it covers no data."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def kernel_axes(count: int, row_height: float, width: float = 12) -> tuple[Any, list]:
    """A two-column grid with one axes per kernel (the spare cell removed)."""
    nrows = (count + 1) // 2
    fig, axes = plt().subplots(nrows, 2, figsize=(width, row_height * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:count]
