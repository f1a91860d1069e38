"""Compare verdicts, exit codes and step detection on hand-made rounds, without running asv."""

import numpy as np
import pandas as pd
import pytest

from qbench.analysis import asv_stats as _asv
from qbench.analysis.regress import Rule, Verdict, compare_commits, detect_steps, round_medians, t_critical

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
    assert v.lines()[-1] == "REGRESSION: 1 benchmark(s) slower (sum), decided by time"


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


def _series(levels: list[float], noise: float, seed: int, impl: str = "qbench", rounds: int = 2) -> pd.DataFrame:
    """One benchmark along commits c0, c1, ...: per commit ``rounds`` rounds of 5 samples, each round's level
    off by a lognormal process-to-process factor of spread ``noise`` (the noise a shared machine adds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, level in enumerate(levels):
        per_round = level * np.exp(noise * rng.standard_normal(rounds))
        samples = [float(v * (1 + 0.002 * rng.standard_normal())) for v in np.repeat(per_round, 5)]
        row = dict(_rows(f"c{i}", {}, 0)[0], impl=impl, samples=samples, value=float(np.median(samples)))
        rows.append(row)
    return pd.DataFrame(rows)


def _steps(levels, noise=0.05, seed=0, **kw):
    return detect_steps(_series(levels, noise, seed, **kw), order=[f"c{i}" for i in range(len(levels))])


def test_steps_name_the_first_commit_at_the_new_level():
    steps = _steps([1e-6] * 3 + [2e-6] * 3)
    assert steps[["commit", "change"]].values.tolist() == [["c3", "regression"]]
    assert steps["ratio"].iloc[0] == pytest.approx(2.0, rel=0.1)
    assert steps["t"].iloc[0] > 5 and 0 < steps["noise"].iloc[0] < 0.2


@pytest.mark.parametrize(
    "p, df, table",  # Student's t critical values as printed in statistics tables
    [(0.05, 1, 12.706), (0.05, 10, 2.228), (0.01, 5, 4.032), (0.001, 6, 5.959), (0.001, 30, 3.646)],
)
def test_t_critical_matches_the_tables(p, df, table):
    assert t_critical(p, df) == pytest.approx(table, abs=1e-3)


def test_a_one_commit_spike_is_two_steps():
    steps = _steps([1e-6, 1e-6, 3e-6, 1e-6, 1e-6])
    assert steps[["commit", "change"]].values.tolist() == [["c2", "regression"], ["c3", "improvement"]]


def test_noise_alone_makes_no_step():
    """Flat series with 5% round-to-round noise (20% apart at worst): 200 of them, not one step."""
    found = [len(_steps([1e-6] * 6, noise=0.05, seed=s)) for s in range(200)]
    assert sum(found) == 0


def test_a_step_within_the_noise_is_not_reported():
    """A 12% change under 10% noise with 2 rounds a commit is not distinguishable: no step."""
    assert _steps([1e-6] * 3 + [1.12e-6] * 3, noise=0.10, seed=1).empty


def test_a_step_where_nothing_measured_changed_is_set_aside():
    frame = _series([1e-6] * 3 + [2e-6] * 3, 0.05, 0)
    order = [f"c{i}" for i in range(6)]
    steps = detect_steps(frame, order=order, changed=lambda a, b: b != "c3")
    assert steps["change"].tolist() == ["no measured change"]
    steps = detect_steps(frame, order=order, changed=lambda a, b: True)
    assert steps["change"].tolist() == ["regression"]


def test_a_baseline_step_is_context():
    steps = _steps([1e-6] * 3 + [2e-6] * 3, impl="numpy")
    assert steps["change"].tolist() == ["baseline slower"]


def test_results_without_rounds_use_the_spread_of_levels():
    """Single-round results (a plain ``qbench run``): the noise comes from successive commits."""
    frame = _series([1e-6] * 4 + [3e-6] * 4, 0.03, 0, rounds=1)
    steps = detect_steps(frame, order=[f"c{i}" for i in range(8)])
    assert steps["commit"].tolist() == ["c4"]
    flat = _series([1e-6] * 8, 0.03, 0, rounds=1)
    assert detect_steps(flat, order=[f"c{i}" for i in range(8)]).empty


def test_an_untested_asv_version_is_refused(monkeypatch):
    import asv

    monkeypatch.setattr(asv, "__version__", "0.7.1")
    with pytest.raises(_asv.AsvVersionError, match=r"asv 0\.7\.1 is installed.*<0\.7\.0"):
        _asv.mann_whitney_u([1.0, 2.0], [3.0, 4.0])
    monkeypatch.setattr(asv, "__version__", "0.6.6")
    assert _asv.mann_whitney_u([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]) < 0.05


def test_points_beyond_the_caches_have_their_own_factor():
    """7% slower in cache fails at factor 1.05; 20% slower from memory passes at 1.25."""
    frame = pd.DataFrame(
        _rows("base", {}, 0)
        + _rows(
            "head", {"bench_quantize.Quantize.time_run:qbench": 1.07, "bench_accumulate.Sum.time_run:qbench": 1.2}, 1
        )
    )
    rule = Rule(time=1.05, memory=1.25, from_memory=lambda r: r["kernel"] == "sum")
    table = compare_commits(frame, "base", "head", rounds=ROUNDS, rule=rule).set_index(["benchmark", "impl"])
    assert table.loc[("bench_quantize.Quantize.time_run", "qbench"), ["change", "factor"]].tolist() == ["slower", 1.05]
    assert table.loc[("bench_accumulate.Sum.time_run", "qbench"), ["change", "factor"]].tolist() == ["same", 1.25]
    lines = Verdict(table.reset_index(), 1.05).lines()
    assert "(time x1.05/1.25 and significant;" in lines[-2]
    assert lines[-1] == "REGRESSION: 1 benchmark(s) slower (quantize), decided by time"


def _counts(commit: str, per_kernel: dict[str, float]) -> list[dict]:
    """Instruction-count rows as the results loader makes them of ``bench_counts`` (``case`` "kernel:dtype")."""
    return [
        {
            "benchmark": "bench_counts.Instructions.track_instructions",
            "params": f'{{"case": "{kernel}:uint8"}}',
            "kernel": kernel,
            "dtype": "uint8",
            "impl": "qbench",
            "kind": "track",
            "status": "ok",
            "commit": commit,
            "env": "virtualenv-py3.11",
            "value": value,
            "samples": None,
            "unit": "instructions",
        }
        for kernel, value in per_kernel.items()
    ]


def _gate(time_scale: dict[str, float], head_counts: dict[str, float], base_counts=None) -> Verdict:
    """The gate's rule on quantize and sum (counted, in cache) and the NumPy baseline (not counted)."""
    rows = _rows("base", {}, 0) + _rows("head", time_scale, 1)
    for row in rows:
        row["dtype"], row["size"] = "uint8", 2**16  # the gate's cache point, where counts are made
    base_counts = base_counts or {"quantize": 120_000.0, "sum": 35_000.0}
    frame = pd.DataFrame(rows + _counts("base", base_counts) + _counts("head", head_counts))
    rule = Rule(time=1.10, memory=2.0, counted=1.5, instructions=1.05, from_memory=lambda r: r["size"] == 2**24)
    return Verdict(compare_commits(frame, "base", "head", rounds=ROUNDS, rule=rule), 1.10, 1.05)


def test_where_instructions_were_counted_a_noisy_time_does_not_decide():
    """Time 13% slower (significant: a slow spell of a shared machine) and the same instructions: passes."""
    v = _gate({"bench_quantize.Quantize.time_run:qbench": 1.13}, {"quantize": 120_400.0, "sum": 35_000.0})
    row = v.table.set_index(["benchmark", "impl"]).loc[("bench_quantize.Quantize.time_run", "qbench")]
    assert row["significant"] and row["factor"] == 1.5 and row["change"] == "same"
    assert row["instructions_ratio"] == pytest.approx(120_400 / 120_000) and v.exit_code == 0
    assert "instructions x1.05 on 2 counted" in v.lines()[-1]


def test_ten_percent_more_instructions_fail_even_when_the_time_hardly_moved():
    v = _gate({"bench_quantize.Quantize.time_run:qbench": 1.03}, {"quantize": 132_000.0, "sum": 35_000.0})
    assert v.exit_code == 1 and list(v.slower["kernel"]) == ["quantize"]
    assert v.slower["decided"].tolist() == ["instructions"]
    assert v.lines()[-1] == "REGRESSION: 1 benchmark(s) slower (quantize), decided by instructions"
    # The NumPy baseline was not counted: its row has no instruction ratio and is judged by time at 1.10.
    numpy = v.table.set_index(["benchmark", "impl"]).loc[("bench_quantize.Quantize.time_run", "numpy")]
    assert np.isnan(numpy["instructions_ratio"]) and numpy["factor"] == 1.10


def test_a_3x_slowdown_is_named_by_both_measures_and_fewer_instructions_are_faster():
    v = _gate({"bench_accumulate.Sum.time_run:qbench": 3.0}, {"quantize": 100_000.0, "sum": 105_000.0})
    rows = v.table.set_index("kernel")
    assert rows.loc["sum", "decided"] == "instructions and time" and rows.loc["sum", "regression"]
    quantize = rows[rows["impl"] == "qbench"].loc["quantize"]
    assert quantize["change"] == "faster" and quantize["decided"] == "instructions"


def test_a_count_without_a_time_row_is_a_row_of_its_own():
    v = _gate(
        {},
        {"quantize": 120_000.0, "sum": 35_000.0, "dot": 50_000.0},
        {"quantize": 120_000.0, "sum": 35_000.0, "dot": 40_000.0},
    )
    own = v.table[v.table["benchmark"] == "bench_counts.Instructions.track_instructions"]
    assert own["kernel"].tolist() == ["dot"] and own["change"].tolist() == ["slower"]
    assert own["ratio"].iloc[0] == pytest.approx(1.25) and own["decided"].iloc[0] == "instructions"


def test_the_gate_knows_its_memory_points():
    from qbench.cases.grid import GATE, gate_from_memory, gate_in_cache

    assert gate_from_memory({"size": 2**24}) and gate_from_memory({"size": float("nan"), "param_shape": "1x4096x11008"})
    assert not gate_from_memory({"size": 2**16}) and not gate_from_memory({"param_shape": "1x1024x1024"})
    assert gate_in_cache({"size": 2**16}) and gate_in_cache({"size": float("nan"), "param_shape": "1x1024x1024"})
    assert not gate_in_cache({"size": 2**24})
    assert GATE["QBENCH_SIZES"] == f"{2**16},{2**24}"


def test_a_count_belongs_to_the_cache_point_only():
    """The same kernel and dtype timed at another size gets no instruction ratio: counts are of 2**16."""
    rows = _rows("base", {}, 0) + _rows("head", {"bench_quantize.Quantize.time_run:qbench": 1.3}, 1)
    for row in rows:
        row["dtype"], row["size"] = "uint8", 2**20
    counts = _counts("base", {"quantize": 100.0}) + _counts("head", {"quantize": 200.0})
    table = compare_commits(pd.DataFrame(rows + counts), "base", "head", rounds=ROUNDS).set_index(["benchmark", "impl"])
    timed = table.loc[("bench_quantize.Quantize.time_run", "qbench")]
    assert np.isnan(timed["instructions_ratio"]) and timed["decided"] == "time"
    own = table.loc[("bench_counts.Instructions.track_instructions", "qbench")]
    assert own["instructions_ratio"] == 2.0 and own["change"] == "slower"


def test_the_ratio_shown_is_the_ratio_judged_best_round_over_best_round():
    base, head = _rows("base", {}, 0), _rows("head", {"bench_accumulate.Sum.time_run:qbench": 1.3}, 1)
    table = compare_commits(pd.DataFrame(base + head), "base", "head", rounds=ROUNDS).set_index(["benchmark", "impl"])
    best = [min(round_medians(rows[2]["samples"], ROUNDS)) for rows in (base, head)]
    assert table.loc[("bench_accumulate.Sum.time_run", "qbench"), "ratio"] == pytest.approx(
        best[1] / best[0], rel=1e-12
    )
