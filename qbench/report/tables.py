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
    """Kernel and bandwidth time_ rows that succeeded, with GB/s and elements/s (median and quartile band)."""
    t = select(frame, "time_run").copy()
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


def side_by_side_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side ratios (``bench_side_by_side``): one row per comparison, size and thread count."""
    cols = ["kind", "kernel", "dtype", "against", "size", "threads", "ratio", "footprint"]
    rows = select(frame, "track_ratio", cls="SideBySide")
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
        return f"in cache ({fmt_bytes(fp)} <= L2): the probe is bound by its own instructions there, not by memory"
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


def thread_table(t: pd.DataFrame) -> pd.DataFrame:
    """qbench elements/s with an N-thread budget over one thread, per kernel, dtype and size (cross-process)."""
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


def compile_table(frame: pd.DataFrame) -> pd.DataFrame:
    jit = select(frame, module="bench_compile")
    return pd.DataFrame({"benchmark": [b.rpartition(".")[2] for b in jit["benchmark"]], "seconds": jit["value"]})


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Round-trip SQNR (dB) per dtype and calibration method, one column per data distribution."""
    sq = select(frame, "track_sqnr_db", cls="Accuracy")
    if sq.empty:
        return pd.DataFrame()
    wide = sq.pivot_table(index=["dtype", "param_method"], columns="param_distribution", values="value")
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
    return cal.pivot_table(index="param_method", columns="size", values="value").reset_index()


def commit_view(frame: pd.DataFrame, commit: str | None) -> tuple[str, pd.DataFrame]:
    """(the full hash, that commit's rows, one environment) for a hash prefix, or the newest commit."""
    commit = commit or latest_commit(frame)
    matches = frame[frame["commit"].astype(str).str.startswith(commit)]
    if matches.empty:
        raise ValueError(f"no results for commit {commit}")
    commit = str(matches["commit"].iloc[0])
    return commit, frame[frame["commit"] == commit]
