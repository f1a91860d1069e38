"""Tidy results -> tables, plots (matplotlib, Agg) and pages (report.md, index.html, results.csv).

- :mod:`.tables`: pure-pandas tables, public, used by the pages, the CLI and the tests;
- :mod:`.headline`: the page's answers and the flags on what cannot be right;
- :mod:`.figures`: what plots share and the registry of the main page's figures;
- :mod:`.plots_speed`, :mod:`.plots_ratios`: the plot functions;
- :mod:`.layers`: the linear layers' (matmul) tables and pictures;
- :mod:`.blocks`: the block formats' conversion, accuracy and bits-per-weight tables and picture;
- :mod:`.render`: Markdown and HTML;
- :mod:`.pages`: report folders (main, compare, history), the README table and the run summary.
"""

from .figures import FIGURES, Figure, ReportData, figure
from .headline import flags, headline_display, headline_table, verdicts
from .pages import (
    answers,
    build_compare_report,
    build_history_report,
    build_report,
    publish,
    readme_table,
    report_data,
    report_tables,
    run_summary,
)
from .tables import (
    accuracy_table,
    calibration_table,
    compile_table,
    fmt_bytes,
    memory_table,
    peers_table,
    select,
    share_note,
    share_over_one,
    side_by_side_pivot,
    side_by_side_table,
    summary_table,
    timings,
)

__all__ = [
    "FIGURES",
    "Figure",
    "ReportData",
    "accuracy_table",
    "build_compare_report",
    "build_history_report",
    "answers",
    "build_report",
    "calibration_table",
    "compile_table",
    "figure",
    "flags",
    "fmt_bytes",
    "headline_display",
    "headline_table",
    "memory_table",
    "peers_table",
    "publish",
    "readme_table",
    "report_data",
    "report_tables",
    "run_summary",
    "select",
    "share_note",
    "share_over_one",
    "side_by_side_pivot",
    "side_by_side_table",
    "summary_table",
    "verdicts",
    "timings",
]
