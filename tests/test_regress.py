"""Compare verdicts, exit codes and step detection on hand-made rounds, without running asv."""

import numpy as np
import pandas as pd
import pytest

from qbench import _asv
from qbench.regress import Verdict, compare_commits, detect_steps, round_medians

ROUNDS = 5


def _rows(commit: str, scale: dict[str, float], seed: int) -> list[dict]:
    """One timed row per (benchmark, impl), 5 rounds of 5 samples each around 1 us times its scale."""
    rng = np.random.default_rng(seed)
    rows = []
    for bench, impl in (
        ("bench_quantize.Quantize.time_run", "qbench"),
        ("bench_quantize.Quantize.time_run", "numpy"),
        ("bench_accumulate.Sum.time_run", "qbench"),
    ):
        samples = list(1e-6 * scale.get(f"{bench}:{impl}", 1.0) * (1 + 0.01 * rng.standard_normal(ROUNDS * 5)))
        rows.append(
            {
                "benchmark": bench,
                "params": f'{{"impl": "{impl}"}}',
                "kernel": bench.split(".")[1].lower(),
                "impl": impl,
                "kind": "time",
                "status": "ok",
                "commit": commit,
                "env": "virtualenv-py3.11",
                "value": float(np.median(samples)),
                "ci_low": np.nan,
                "ci_high": np.nan,
                "samples": samples,
                "unit": "seconds",
                "date": pd.Timestamp("2026-01-01"),
            }
        )
    return rows


def _compare(head_scale: dict[str, float], factor: float = 1.10) -> Verdict:
    frame = pd.DataFrame(_rows("base", {}, 0) + _rows("head", head_scale, 1))
    return Verdict(compare_commits(frame, "base", "head", factor, rounds=ROUNDS), factor)


def test_same_code_passes():
    v = _compare({})
    assert v.exit_code == 0 and set(v.table["change"]) == {"same"}
    assert v.lines()[-1].startswith("0 slower, 0 faster, 2 unchanged qbench results")


def test_a_3x_slowdown_of_one_kernel_fails_and_names_it():
    v = _compare({"bench_accumulate.Sum.time_run:qbench": 3.0})
    assert v.exit_code == 1 and list(v.slower["kernel"]) == ["sum"]
    row = v.table.set_index(["benchmark", "impl"]).loc[("bench_accumulate.Sum.time_run", "qbench")]
    assert row["ratio"] == pytest.approx(3.0, rel=0.05) and row["significant"] and row["regression"]
    assert v.lines()[-1] == "REGRESSION: 1 benchmark(s) slower by more than x1.1 (sum)"


def test_a_slower_baseline_is_context_not_a_regression():
    v = _compare({"bench_quantize.Quantize.time_run:numpy": 3.0})
    assert v.exit_code == 0 and len(v.slower) == 0
    row = v.table.set_index(["benchmark", "impl"]).loc[("bench_quantize.Quantize.time_run", "numpy")]
    assert row["change"] == "slower" and not row["regression"]
    assert any("(a baseline: context, not a verdict)" in line for line in v.lines())


def test_a_change_within_the_factor_is_not_flagged_even_when_significant():
    v = _compare({"bench_accumulate.Sum.time_run:qbench": 1.05})
    row = v.table.set_index(["benchmark", "impl"]).loc[("bench_accumulate.Sum.time_run", "qbench")]
    assert row["significant"] and row["change"] == "same" and v.exit_code == 0


def test_faster_is_reported_and_passes():
    v = _compare({"bench_quantize.Quantize.time_run:qbench": 0.5})
    assert v.exit_code == 0 and list(v.faster["kernel"]) == ["quantize"]


def test_round_medians_split_equal_rounds_only():
    assert round_medians([1, 2, 3, 10, 20, 30], 2) == [2.0, 20.0]
    assert round_medians([1, 2, 3], 2) is None and round_medians(None, 2) is None


def test_without_samples_the_confidence_intervals_decide():
    base = _rows("base", {}, 0)[:1]
    head = _rows("head", {}, 1)[:1]
    for row, (lo, hi, value) in zip(base + head, ((1.0, 1.2, 1.1), (3.0, 3.3, 3.1)), strict=True):
        row.update(samples=None, ci_low=lo * 1e-6, ci_high=hi * 1e-6, value=value * 1e-6)
    table = compare_commits(pd.DataFrame(base + head), "base", "head", rounds=ROUNDS)
    assert table["change"].tolist() == ["slower"] and table["ratio"].iloc[0] == pytest.approx(3.1 / 1.1)


def test_steps_name_the_first_commit_at_the_new_level():
    commits = [f"c{i}" for i in range(6)]
    rows = []
    for i, c in enumerate(commits):
        rows += [dict(r, value=(1e-6 if i < 3 else 2e-6)) for r in _rows(c, {}, i)[2:]]
    steps = detect_steps(pd.DataFrame(rows), order=commits)
    assert steps[["commit", "change"]].values.tolist() == [["c3", "regression"]]
    assert steps["ratio"].iloc[0] == pytest.approx(2.0)


def test_an_untested_asv_version_is_refused(monkeypatch):
    import asv

    monkeypatch.setattr(asv, "__version__", "0.7.1")
    with pytest.raises(_asv.AsvVersionError, match=r"asv 0\.7\.1 is installed.*<0\.7\.0"):
        _asv.mann_whitney_u([1.0, 2.0], [3.0, 4.0])
    monkeypatch.setattr(asv, "__version__", "0.6.6")
    assert _asv.mann_whitney_u([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]) < 0.05
