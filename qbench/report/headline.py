"""The page's answers: per operation and memory level, what 8-bit buys, how near the ceiling, how it stands
against the peers, in a table and in words; and the ratios that cannot be right as they stand.

Pure pandas over :func:`qbench.report.tables.side_by_side_table`, like the other tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qbench import cases
from qbench.measure.busy import BUSY_CORES

from .tables import fmt_bytes, pow2, select, share_note, share_over_one

#: The cache levels a working set can live in, fastest first; past the last cache, DRAM.
LEVELS = ("L1", "L2", "L3", "DRAM")
#: The 8-bit case of each operation the headline answers for.
HEADLINE_CASES = {
    "quantize": "uint8",
    "dequantize": "uint8",
    **{kernel: low for kernel, (_, low) in cases.SPEEDUP_PAIRS.items()},
}
HEADLINE_NAMES = {
    "quantize": "quantize float32 -> uint8",
    "dequantize": "dequantize uint8 -> float32",
    "sum": "sum uint8",
    "dot": "dot int8",
    "accumulate": "acc += x uint8",
}
PEER_NAMES = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch"}


def level_of(footprint: float, caches: dict[str, int]) -> str:
    """The fastest level whose size holds ``footprint`` bytes (L1, L2, L3 as this machine has them), else DRAM."""
    for level in LEVELS[:-1]:
        if level in caches and footprint <= caches[level]:
            return level
    return "DRAM"


def _point(sbs: pd.DataFrame, kernel: str, dtype: str, against: str, size: int) -> tuple[float, float, float]:
    row = sbs[(sbs["kernel"] == kernel) & (sbs["dtype"] == dtype) & (sbs["against"] == against)]
    row = row[row["size"] == size]
    if row.empty:
        return (np.nan, np.nan, np.nan)
    r = row.iloc[0]
    return (float(r["ratio"]), float(r["low"]), float(r["high"]))


def headline_table(sbs: pd.DataFrame, caches: dict[str, int]) -> pd.DataFrame:
    """Per operation and memory level (1 thread): 8-bit over float32, share of the ceiling, qbench over each
    peer, each as (median, interquartile range of the rounds), at the largest size whose working set fits the
    level."""
    single = sbs[sbs["threads"] == 1] if not sbs.empty else sbs
    rows = []
    for kernel, dtype in HEADLINE_CASES.items():
        mine = single[(single["kernel"] == kernel) & (single["dtype"] == dtype)]
        by_level: dict[str, int] = {}
        for size in sorted(set(mine["size"])):
            by_level[level_of(cases.footprint(kernel, dtype, int(size)), caches)] = int(size)
        for level in LEVELS:
            if level not in by_level:
                continue
            size = by_level[level]
            row = {"operation": HEADLINE_NAMES[kernel], "kernel": kernel, "dtype": dtype, "level": level}
            row["size"] = size
            cells = {"share of ceiling": cases.family(kernel).ceiling}
            if kernel in cases.SPEEDUP_PAIRS:
                cells = {"8-bit / float32": cases.SPEEDUP_PAIRS[kernel][0], **cells}
            else:
                cells.update({f"x {peer}": peer for peer in cases.PEER_IMPLS})
            for column, against in cells.items():
                row[column], row[f"{column} low"], row[f"{column} high"] = _point(single, kernel, dtype, against, size)
            rows.append(row)
    return pd.DataFrame(rows)


def _spread(value: float, low: float, high: float, fmt: str) -> str:
    if value != value:
        return "-"
    text = format(value, fmt)
    return text if low != low else f"{text} ({format(low, fmt)} to {format(high, fmt)})"


def headline_display(table: pd.DataFrame, missing_peers: tuple[str, ...] = ()) -> pd.DataFrame:
    """The headline as a reader sees it: sizes as powers of two, each ratio with its rounds' interquartile range."""
    if table.empty:
        return table
    shown = pd.DataFrame({"operation": table["operation"], "data in": table["level"]})
    shown["size"] = [
        f"{pow2(n)} ({fmt_bytes(cases.footprint(k, d, n))})"
        for k, d, n in zip(table["kernel"], table["dtype"], table["size"], strict=True)
    ]
    for column in ("8-bit / float32", "share of ceiling", *(f"x {p}" for p in cases.PEER_IMPLS)):
        if column not in table:
            continue
        fmt = ".0%" if column == "share of ceiling" else ".2f"
        peer = column[2:] if column.startswith("x ") else None
        label = f"x {PEER_NAMES.get(peer, peer)}" if peer else column
        values = [
            _spread(v, lo, hi, fmt)
            for v, lo, hi in zip(table[column], table[f"{column} low"], table[f"{column} high"], strict=True)
        ]
        if peer in missing_peers:
            values = ["not installed" if peer in cases.family(k).impls else "-" for k in table["kernel"]]
        shown[label] = values
    return shown


def verdicts(table: pd.DataFrame, caches: dict[str, int] | None = None) -> list[str]:
    """One sentence per operation: what 8-bit buys, how near the ceiling, how it stands against the peers,
    from its largest working set measured, with its smallest beside it."""
    if table.empty:
        return []
    lines = []
    for kernel, g in table.groupby("kernel", sort=False):
        first, last = g.iloc[0], g.iloc[-1]
        parts = []
        speedup = last.get("8-bit / float32", np.nan)
        if speedup == speedup:
            flt = cases.SPEEDUP_PAIRS[kernel][0]
            where = level_of(cases.footprint(kernel, flt, int(last["size"])), caches or {})
            moved = f" (the float32 data in {where})" if caches and where != last["level"] else ""
            parts.append(
                f"{speedup:.2f}x as fast as float32 with the 8-bit data in {last['level']}{moved}, "
                f"{first['8-bit / float32']:.2f}x in {first['level']}"
            )
        share = last["share of ceiling"]
        if share == share:
            parts.append(
                f"{share:.0%} of its equal-bytes ceiling in {last['level']} ({first['share of ceiling']:.0%} "
                f"in {first['level']})"
            )
        peers = []
        for peer in cases.PEER_IMPLS:
            value = last.get(f"x {peer}", np.nan)
            if value == value:
                peers.append(f"{value:.2f}x {PEER_NAMES[peer]}")
        if peers:
            parts.append(f"{' and '.join(peers)} in {last['level']}")
        if parts:
            lines.append(f"{first['operation']}: " + "; ".join(parts) + ".")
    return lines


def flags(sbs: pd.DataFrame, caches: dict[str, int]) -> pd.DataFrame:
    """Side-by-side ratios that cannot be right as they stand, each with the reason.

    A share of a ceiling above 1; an 8-bit speedup beyond what its bytes allow
    (said as a move to a faster level where the two working sets sit in
    different levels); rounds that disagree on which side is faster; an N-thread
    budget more than twice as slow as one thread, or faster than N threads can be.
    """
    out = []
    for r in sbs.itertuples(index=False):
        why, cause = "", ""
        if r.kind == "ceiling" and share_over_one(r.ratio):
            why, cause = share_note(r.kernel, r.dtype, int(r.size), caches, r.low), "a share of its ceiling above 1"
        elif r.kind == "dtype":
            allowed = cases.bytes_moved(r.kernel, r.against, 1) / cases.bytes_moved(r.kernel, r.dtype, 1)
            if r.ratio > allowed * 1.05:
                mine = level_of(cases.footprint(r.kernel, r.dtype, int(r.size)), caches)
                theirs = level_of(cases.footprint(r.kernel, r.against, int(r.size)), caches)
                why = (
                    f"beyond the {allowed:.0f}x its bytes allow: the {r.dtype} data sits in {mine}, the {r.against} "
                    f"data in {theirs}, a slower level"
                    if mine != theirs
                    else f"beyond the {allowed:.0f}x its bytes allow with both in {mine}: suspect the measurement"
                )
                cause = "an 8-bit speed-up beyond what its bytes allow"
        elif r.kind == "threads" and (r.ratio < 0.5 or r.ratio > r.threads * 1.1):
            private = r.threads * caches.get("L2", 0)
            why = (
                f"{r.threads} threads more than twice as slow as one: interference, or the wrong serial/parallel form"
                if r.ratio < 0.5
                else f"more than {r.threads}x from {r.threads} threads, which only data that now fits their private "
                f"caches together ({fmt_bytes(private)}) would explain"
            )
            cause = "several threads far slower, or faster than their count allows"
        if not why and r.low == r.low and r.low < 1.0 < r.high and abs(r.ratio - 1) > 0.05:
            why = f"the middle half of the rounds disagrees on which side is faster ({r.low:.2f} to {r.high:.2f})"
            cause = "rounds that disagree on which side is faster"
        if why:
            busy = getattr(r, "busy", np.nan)
            if busy == busy and busy > BUSY_CORES:
                cause = BUSY_CAUSE
            out.append({**r._asdict(), "why": why, "cause": cause})
    columns = [*sbs.columns, "why", "cause"]
    return pd.DataFrame(out, columns=columns)


#: The cause that explains any flag of a point measured while other programs used the CPUs.
BUSY_CAUSE = "measured while other programs used the CPUs (see the first lines)"


def flag_lines(flagged: pd.DataFrame) -> list[str]:
    """The flags as readable lines, those with one reason together, each ratio numbered as the plots ring it."""
    by_reason: dict[str, list[str]] = {}
    for i, r in enumerate(flagged.itertuples(index=False), 1):
        by_reason.setdefault(r.why, []).append(
            f"[{i}] {r.kernel} {r.dtype} / {r.against} at {pow2(r.size)}, {r.threads} thr: {r.ratio:.2f}"
        )
    return [f"{'; '.join(items)}: {why}" for why, items in by_reason.items()]


def flag_causes(flagged: pd.DataFrame) -> list[str]:
    """One line per cause with its count, the busy machine first, then the most frequent."""
    if flagged.empty:
        return []
    counts = flagged["cause"].value_counts()
    order = sorted(counts.index, key=lambda c: (c != BUSY_CAUSE, -counts[c]))
    return [f"{counts[c]} {'ratio' if counts[c] == 1 else 'ratios'}: {c}" for c in order]


def not_installed(peers: tuple[str, ...]) -> str:
    """The sentence every page says about peers that were not measured ("" when none is missing)."""
    if not peers:
        return ""
    names = " and ".join(PEER_NAMES[p] for p in peers)
    return (
        f"{names}: not installed where the suite ran, so not compared; to add "
        + ("them" if len(peers) > 1 else "it")
        + ': pip install -e ".[peers]" (PyTorch\'s CPU build: see the docs, getting started) and qbench run again'
    )


def missing_peers(frame: pd.DataFrame) -> tuple[str, ...]:
    """Peers whose side-by-side points were all skipped (the library is not installed)."""
    rows = select(frame, "track_ratio", cls="SideBySide", status=None)
    if rows.empty or "param_comparison" not in rows:  # a run of other benchmarks measured no peer
        return ()
    missing = []
    for peer in cases.PEER_IMPLS:
        mine = rows[rows["param_comparison"].astype(str).str.endswith(f" / {peer}")]
        if len(mine) and not (mine["status"] == "ok").any():
            missing.append(peer)
    return tuple(missing)
