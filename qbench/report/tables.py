"""Pure-pandas tables derived from the tidy results: what every plot, page and the terminal summary show.

Every throughput here is ``cases.bytes_moved(...) / median time``: the same
rule the suite's ``track_gbps`` uses, so plots and benchmarks agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qbench import cases


def select(
    frame: pd.DataFrame,
    metric: str | None = None,
    *,
    cls: str | None = None,
    module: str | None = None,
    status: str | None = "ok",
) -> pd.DataFrame:
    """Rows of ``module.Class.metric`` benchmarks (any part left out matches all) with ``status``.

    The one way rows are picked by benchmark: ``select(frame, "time_run")`` is
    every kernel's timing, ``select(frame, cls="Memory")`` every memory metric.
    """
    parts = frame["benchmark"].astype(str).str.split(".")
    keep = pd.Series(True, index=frame.index) if status is None else frame["status"] == status
    if metric is not None:
        keep &= parts.str[-1] == metric
    if cls is not None:
        keep &= (parts.str.len() == 3) & (parts.str[1] == cls)
    if module is not None:
        keep &= parts.str[0] == module
    return frame[keep]


def timings(frame: pd.DataFrame) -> pd.DataFrame:
    """Elementwise kernel and bandwidth time_ rows that succeeded, with GB/s and elements/s (median and quartile
    band). Families swept by shape rather than size (matmul) have their own tables (:mod:`.layers`)."""
    t = select(frame, "time_run")
    t = t[t["size"].notna()].copy()
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


def latest_commit(frame: pd.DataFrame) -> str:
    order = frame.dropna(subset=["commit"]).sort_values("date")
    return str(order["commit"].iloc[-1])


def pow2(n: float) -> str:
    """A power-of-two size as a label: 16384 -> "2**14"."""
    return f"2**{int(np.log2(n))}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n} B"


def side_by_side_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side ratios (``bench_side_by_side``): one row per comparison, size and thread count.

    ``low`` and ``high`` are the interquartile range of its per-round ratios where the run kept them
    (``qbench run``).
    """
    cols = ["kind", "kernel", "dtype", "against", "size", "threads", "ratio", "low", "high", "footprint", "busy"]
    rows = pd.concat([select(frame, "track_ratio", cls=c) for c in ("SideBySide", "BlockSideBySide")])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    pairs = [cases.Comparison.parse(c) for c in rows["param_comparison"]]
    spread = rows.reindex(columns=["rounds_low", "rounds_high", "busy", "busy_error"])
    return pd.DataFrame(
        {
            "kind": [c.kind for c in pairs],
            "kernel": [c.kernel for c in pairs],
            "dtype": [c.dtype for c in pairs],
            "against": [c.against for c in pairs],
            "size": rows["size"].astype(int).to_numpy(),
            "threads": rows["threads"].astype(int).to_numpy(),
            "ratio": rows["value"].to_numpy(),
            "low": spread["rounds_low"].to_numpy(dtype=float),
            "high": spread["rounds_high"].to_numpy(dtype=float),
            "footprint": [cases.footprint(c.kernel, c.dtype, int(n)) for c, n in zip(pairs, rows["size"], strict=True)],
            # Other programs' use of the CPUs while the point ran, beyond the counters' error (cores; NaN: unknown).
            "busy": (spread["busy"] - spread["busy_error"]).to_numpy(dtype=float),
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


def with_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """A table as pages show it: its ``size`` column written as powers of two (2**24), the one way sizes read."""
    if table.empty or "size" not in table:
        return table
    return table.assign(size=[pow2(n) for n in table["size"]])


def side_by_side_pivot(sbs: pd.DataFrame) -> pd.DataFrame:
    """Side-by-side ratios with one column per size: the compact form for pages and the terminal."""
    if sbs.empty:
        return pd.DataFrame()
    wide = sbs.pivot_table(index=["kind", "kernel", "dtype", "against", "threads"], columns="size", values="ratio")
    wide.columns = [pow2(c) for c in wide.columns]
    return wide.reset_index()


def share_over_one(share: float) -> bool:
    """A share of a ceiling that shows above 1 at the two decimals every page prints (1.004 shows as 1.00)."""
    return round(float(share), 2) > 1.0


def share_note(kernel: str, dtype: str, size: int, caches: dict[str, int], low: float = float("nan")) -> str:
    """Why a share of a bandwidth ceiling measured above 1 can be: the probe was bound by something else.

    A kernel's ceiling moves its exact streams (widths, reads, writes) with no
    arithmetic, or reads the same bytes for a reduction, so from memory the
    two meet the same limit and a share cannot pass 1 by more than the spread
    between rounds. In a private cache a probe is bound by its own instructions
    (a truncating move, one float32 add per four bytes), which a kernel's
    loop can beat. Outside them, when even the lower quartile of the rounds
    (``low``) is above 1, the rounds agree: the probe is what is slow there.
    """
    fp = cases.footprint(kernel, dtype, size)
    private = max((v for k, v in caches.items() if k in ("L1", "L2")), default=0)
    if fp <= private:
        return f"in cache ({fmt_bytes(fp)} <= L2): the probe is bound by its own instructions there, not by memory"
    if low > 1.0:
        return (
            "outside the private caches, and the middle half of the rounds is above 1 too: on this machine the probe "
            "moves these streams slower than the kernel does, so the ceiling, not the kernel, is in question here"
        )
    return (
        "outside the private caches the probe moves the same bytes the same way, so read this as measurement "
        "spread until a run with more rounds (without --quick) confirms it"
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
    keyed = ceiling.set_index(["kernel", "dtype", "size"]) if not ceiling.empty else None
    shares = keyed["ratio"] if keyed is not None else pd.Series(dtype=float)
    lows = keyed["low"] if keyed is not None and "low" in keyed else pd.Series(dtype=float)
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
                "note": share_note(*key, caches, float(lows.get(key, np.nan))) if share_over_one(share) else "",
            }
        )
    order = {k: i for i, k in enumerate(cases.KERNELS)}
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["kernel", "dtype", "size"], key=lambda s: s.map(order) if s.name == "kernel" else s)


#: What each JIT-cost benchmark measures, for readers who do not know asv's names.
COMPILE_LABELS = {
    "timeraw_import_qbench": "import qbench, in a fresh process",
    "timeraw_first_quantize_cached": "first quantize call in a fresh process, kernels from the disk cache",
    "track_compile_quantize_seconds": "compiling quantize's serial kernel from scratch (empty cache)",
}


def compile_table(frame: pd.DataFrame) -> pd.DataFrame:
    jit = select(frame, module="bench_compile")
    names = [b.rpartition(".")[2] for b in jit["benchmark"]]
    return pd.DataFrame({"what": [COMPILE_LABELS.get(n, n) for n in names], "seconds": jit["value"].to_numpy()})


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Round-trip SQNR (dB) per dtype and calibration method, one column per data distribution."""
    sq = select(frame, "track_sqnr_db", cls="Accuracy")
    if sq.empty:
        return pd.DataFrame()
    wide = sq.pivot_table(index=["dtype", "param_method"], columns="param_distribution", values="value")
    wide.columns.name = None
    return wide.reset_index().rename(columns={"param_method": "method"})


def memory_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per kernel and dtype at ``cases.MEMORY_SIZE``: each memory metric of each implementation."""
    mem = select(frame, cls="Memory")
    if mem.empty:
        return pd.DataFrame()
    pm = mem.pivot_table(index=["kernel", "dtype"], columns=["benchmark", "impl"], values="value")
    pm.columns = [
        f"{b.rpartition('.')[2].replace('track_', '').replace('peakmem_run', 'peak RSS bytes')} ({i})"
        for b, i in pm.columns
    ]
    return pm.reset_index()


def calibration_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds per calibration method and size."""
    cal = select(frame, cls="Calibrate")
    if cal.empty:
        return pd.DataFrame()
    wide = cal.pivot_table(index="param_method", columns="size", values="value")
    wide.columns = [f"{pow2(c)} values" for c in wide.columns]
    return wide.reset_index().rename(columns={"param_method": "method"})


def commit_view(frame: pd.DataFrame, commit: str | None) -> tuple[str, pd.DataFrame]:
    """(the full hash, that commit's rows, one environment) for a hash prefix, or the newest commit."""
    commit = commit or latest_commit(frame)
    matches = frame[frame["commit"].astype(str).str.startswith(commit)]
    if matches.empty:
        raise ValueError(f"no results for commit {commit}")
    commit = str(matches["commit"].iloc[0])
    return commit, frame[frame["commit"] == commit]
