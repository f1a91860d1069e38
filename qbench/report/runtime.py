"""The end-to-end answer for an ONNX model: a verdict per variant in words, its tables, and ``model.json``/``.csv``.

Speed-ups are float32's median latency over the variant's, both measured
in one process, taking turns round by round, with the same inputs and
thread count; sizes are bytes on disk;
fidelity is the worst output's SQNR against float32 and, for outputs shaped
like class scores, how often the top class agrees.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .render import Lead, publish, render_html, render_markdown

#: Within this factor either way (or the rounds' own spread, if wider) a variant is "as fast" as float32.
SAME_SPEED = 1.10
#: Below these, a variant's outputs are too far from float32's to be taken without checking.
MIN_SQNR_DB, MIN_TOP1 = 20.0, 0.99
#: Operator types that only convert between float and integer: the price of quantizing activations.
CONVERSIONS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


def _speedup(results: dict[str, Any], name: str, threads: str) -> float:
    """float32's median latency over the variant's, both from the process that timed them side by side."""
    entry = results[name]
    base, mine = entry["baseline_latency"].get(threads), entry["latency"].get(threads)
    return base["median_s"] / mine["median_s"] if base and mine else math.nan


def _worst(entry: dict[str, Any], key: str) -> float:
    values = [row[key] for row in entry.get("fidelity", {}).values() if key in row]
    return min(values) if values else math.nan


def _band(results: dict[str, Any], name: str, threads: str) -> float:
    """The factor within which a variant counts as fast as float32: :data:`SAME_SPEED`, or more where the rounds
    of either (slowest round median over fastest) spread further."""
    entry = results[name]
    spreads = [entry[key].get(threads, {}).get("spread", 1.0) for key in ("baseline_latency", "latency")]
    return max(SAME_SPEED, *spreads)


def _times(x: float, band: float = SAME_SPEED) -> str:
    if math.isnan(x):
        return "not measured"
    if 1 / band < x < band:
        if band <= SAME_SPEED:
            return f"as fast ({x:.2f}x)"
        return f"no clear difference ({x:.2f}x; rounds {band:.2f}x apart)"
    return f"{x:.2f}x faster" if x > 1 else f"{1 / x:.2f}x slower"


def verdict(results: dict[str, Any], threads: list[int]) -> list[str]:
    """One line per quantized variant: speed at 1 thread and at all threads, size, fidelity, and what it means."""
    if "error" in results.get("float32", {"error": "not run"}):
        return [f"float32: {results.get('float32', {}).get('error', 'not run')}: nothing to compare with"]
    lines = []
    one, many = str(threads[0]), str(threads[-1])
    for name, entry in results.items():
        if name == "float32":
            continue
        if "error" in entry:
            lines.append(f"{entry['label']}: {entry['error']}")
            continue
        fast, fast_all = _speedup(results, name, one), _speedup(results, name, many)
        band, band_all = _band(results, name, one), _band(results, name, many)
        smaller = results["float32"]["bytes"] / entry["bytes"]
        sqnr, top1 = _worst(entry, "sqnr_db"), _worst(entry, "top1")
        parts = [f"{_times(fast, band)} at {one} thread" + ("" if one == "1" else "s")]
        if many != one:
            parts.append(f"{_times(fast_all, band_all)} at {many}")
        parts.append(f"{smaller:.2f}x smaller")
        if not math.isnan(sqnr):
            parts.append(f"outputs {sqnr:.1f} dB" if math.isfinite(sqnr) else "outputs identical")
        if not math.isnan(top1):
            parts.append("top-1 unchanged" if top1 == 1 else f"top-1 agrees on {top1:.1%}")
        if entry["quantized"] == 0:
            word = "nothing quantized: no weight this quantizer takes"
        elif sqnr < MIN_SQNR_DB or top1 < MIN_TOP1:
            word = "accuracy lost: check on real data before using"
        elif fast >= band or fast_all >= band_all:
            word = "faster on this CPU"
        elif fast <= 1 / band:
            word = "not on this CPU (for size only)" if smaller > 1.5 else "not on this CPU"
        else:
            word = "no faster here: for size only" if smaller > 1.5 else "no gain here"
        lines.append(f"{entry['label']}: {', '.join(parts)}: {word}")
    return lines


def why(results: dict[str, Any], top: int = 3) -> list[str]:
    """Per variant, where its time goes (ONNX Runtime's profile by operator type) and the nodes that diverge most."""
    lines = []
    for entry in results.values():
        profile = entry.get("profile_us") or {}
        total = sum(profile.values())
        if not total:
            continue
        ranked = sorted(profile.items(), key=lambda kv: -kv[1])[:top]
        text = ", ".join(f"{op} {us / total:.0%}" for op, us in ranked)
        conv = sum(profile.get(op, 0.0) for op in CONVERSIONS) / total
        extra = f"; converting float <-> int8 {conv:.0%}" if conv >= 0.005 else ""
        lines.append(
            f"{entry['label']}: time in {text}{extra} ({entry['quantized']} of {entry['weights']} weights quantized)"
        )
        worst = [n for n in entry.get("divergence", []) if math.isfinite(n["sqnr_db"])][:top]
        if worst:
            names = ", ".join(f"{n['node']} ({n['op']}) {n['sqnr_db']:.1f} dB" for n in worst)
            lines.append(f"{entry['label']}: diverges most from float32 at {names}: candidates to keep in float")
    return lines


def machine_line(info: dict[str, Any], ort_version: str) -> str:
    """The facts that decide int8's speed here: the dot-product instructions, cores, the runtime."""
    simd = {s.lower() for s in info.get("simd", [])}
    has = {
        "AVX-512 VNNI": "avx512_vnni" in simd,
        "AVX-VNNI": "avx_vnni" in simd,
        "AMX": "amx_int8" in simd,
        "AVX2": "avx2" in simd,
    }
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in has.items())
    return f"{info.get('cpu', 'unknown CPU')}: {flags}; {info.get('cores', '?')} cores; ONNX Runtime {ort_version}"


def table(results: dict[str, Any], threads: list[int]) -> pd.DataFrame:
    """One row per variant: the figures the verdict rests on."""
    rows = []
    for name, e in results.items():
        if "error" in e:
            rows.append({"variant": e["label"], "error": e["error"]})
            continue
        row: dict[str, Any] = {"variant": e["label"], "MB": e["bytes"] / 1e6, "quantized": e["quantized"]}
        for t in map(str, threads):
            lat = e["latency"].get(t, {})
            row[f"ms {t}t"] = lat.get("median_s", math.nan) * 1e3
            row[f"p99 ms {t}t"] = lat.get("p99_s", math.nan) * 1e3
            row[f"x {t}t"] = _speedup(results, name, t) if "float32" in results else math.nan
        row["peak MB"] = e["peak_rss"] / 1e6
        row["load ms"] = e["load_s"] * 1e3
        row["SQNR dB"] = _worst(e, "sqnr_db")
        row["top-1"] = _worst(e, "top1")
        rows.append(row)
    return pd.DataFrame(rows)


def tidy(results: dict[str, Any]) -> pd.DataFrame:
    """``model.csv``: one row per variant, metric and value, with its unit."""
    rows = []

    def add(variant: str, metric: str, value: Any, unit: str) -> None:
        rows.append({"variant": variant, "metric": metric, "value": value, "unit": unit})

    for name, e in results.items():
        if "error" in e:
            add(name, "error", e["error"], "")
            continue
        add(name, "size", e["bytes"], "bytes")
        add(name, "weights_quantized", e["quantized"], "tensors")
        add(name, "weights", e["weights"], "tensors")
        add(name, "load", e["load_s"], "s")
        add(name, "first_call", e["first_call_s"], "s")
        add(name, "peak_rss", e["peak_rss"], "bytes")
        for t, lat in e["latency"].items():
            for key in ("median_s", "p90_s", "p99_s"):
                add(name, f"latency_{key[:-2]}_{t}t", lat[key], "s")
            add(name, f"latency_spread_{t}t", lat["spread"], "ratio")
        for batch, rate in e["throughput"].items():
            add(name, f"throughput_batch{batch}", rate, "samples/s")
        for output, fid in e.get("fidelity", {}).items():
            for key, value in fid.items():
                add(name, f"{key}:{output}", value, {"sqnr_db": "dB"}.get(key, "ratio" if key != "max_abs" else ""))
        for op, us in (e.get("profile_us") or {}).items():
            add(name, f"op_time:{op}", us * 1e-6, "s")
    return pd.DataFrame(rows, columns=["variant", "metric", "value", "unit"])


def write(out: Path, document: dict[str, Any]) -> None:
    """``model.json`` (everything) and ``model.csv`` (tidy) into the report folder being written."""
    (out / "model.json").write_text(json.dumps(document, indent=1, default=float))
    tidy(document["variants"]).to_csv(out / "model.csv", index=False)


def across_machines(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """One model's ``model.json`` from several machines: speed-up at 1 thread and at all, size, SQNR per variant."""
    rows = []
    for doc in documents:
        results, threads = doc["variants"], [str(t) for t in doc["threads"]]
        for name, e in results.items():
            if name == "float32" or "error" in e:
                continue
            rows.append(
                {
                    "machine": doc["machine_name"],
                    "model": doc["model"],
                    "variant": e["label"],
                    "x 1 thread": _speedup(results, name, threads[0]),
                    "x all threads": _speedup(results, name, threads[-1]),
                    "smaller": results["float32"]["bytes"] / e["bytes"],
                    "SQNR dB": _worst(e, "sqnr_db"),
                }
            )
    return pd.DataFrame(rows)


def build_across_machines(documents: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """One model on several machines (their ``model.json``): the verdicts side by side, one row per machine and
    variant, and each machine's facts; index.html, report.md and models.csv into ``out_dir``."""
    models = sorted({d["model"] for d in documents})
    title = f"qbench model {', '.join(models)} on {len(documents)} machines"
    frame = across_machines(documents)
    header = [(d["machine_name"], d["machine"]) for d in documents]
    lines = [f"{d['machine_name']}: {line}" for d in documents for line in d["verdict"]]
    lead = Lead("What quantizing the model buys on each machine", frame, lines)

    def fill(tmp: Path) -> None:
        frame.to_csv(tmp / "models.csv", index=False)
        (tmp / "report.md").write_text(render_markdown(title, header, [], [], lead=lead))
        (tmp / "index.html").write_text(render_html(title, header, [], [], tmp, lead=lead))

    publish(Path(out_dir), fill)
    return Path(out_dir) / "index.html"
