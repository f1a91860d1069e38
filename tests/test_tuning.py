"""The tuned serial/parallel switch: decisions from measurements, the stored file, and the API's use of it."""

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from qbench import cases
from qbench.measure import tune
from qbench.ops import convert, sums, tuning
from qbench.ops.tuning import Measured, Switch

multicore = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")


@pytest.fixture
def tuning_file(tmp_path, monkeypatch):
    """A tuning file in force for one test; the default (no tuning) comes back afterwards."""
    path = tmp_path / "tuning.json"
    monkeypatch.setenv(tuning.ENV, str(path))
    yield path
    monkeypatch.setenv(tuning.ENV, "off")
    tuning.reload()


def _measured(kernel, dtype, ratios):
    """Measurements whose serial/parallel time ratios are ``ratios`` on the ladder's first sizes."""
    sizes = list(tuning.LADDER[: len(ratios)])
    return Measured(kernel, dtype, sizes, [r * 1e-6 for r in ratios], [1e-6] * len(ratios))


def test_switch_takes_the_nearest_measured_size_and_is_serial_below_the_ladder():
    sizes = [2**14, 2**15, 2**16, 2**17]
    switch = Switch.from_ladder(sizes, [False, False, True, True])
    assert not switch(0) and not switch(100) and not switch(2**14)
    assert switch(2**17) and switch(2**40)  # beyond the ladder: its last decision
    # Between the last serial and the first parallel size, the midpoint in log size.
    assert not switch(2**15) and switch(2**16) and switch.describe() == "parallel from 45.3 KiB"
    assert Switch.from_ladder(sizes, [False, True, True, False]).describe() == "parallel 22.6 KiB to 128 KiB"
    assert Switch.from_ladder(sizes, [False] * 4).describe() == "always serial"
    assert Switch.from_min_bytes(1 << 20).describe() == "parallel from 1 MiB"
    # The fewest bytes that run in parallel: what lets the API skip the lookup below it.
    assert switch.first_parallel == int(2**15 * 2**0.5) and not switch(switch.first_parallel - 1)
    assert Switch.from_ladder(sizes, [False, True, True, False]).first_parallel == int(2**14 * 2**0.5)
    assert Switch.from_ladder(sizes, [False] * 4).first_parallel == tuning.NEVER
    assert Switch.from_ladder(sizes, [True] * 4).first_parallel == 2**14  # serial below the ladder
    assert Switch.from_min_bytes(1 << 20).first_parallel == 1 << 20
    default = Switch.from_min_bytes(1 << 20)
    assert not default((1 << 20) - 1) and default(1 << 20) and default(1 << 40) and not default(0)


def test_the_crossover_between_two_measured_sizes_is_interpolated():
    # Serial 10% faster at 64 KiB, parallel 10% faster at 128 KiB: the crossover (through the 2% margin) lies
    # between, by log size where the log ratio crosses log(1.02).
    sizes, ratios = [2**15, 2**16, 2**17, 2**18], [0.8, 1 / 1.1, 1.1, 1.5]
    switch = Switch.from_ladder(sizes, [r >= tuning.MARGIN for r in ratios], ratios)
    f = (np.log(tuning.MARGIN) - np.log(1 / 1.1)) / (2 * np.log(1.1))
    crossover = int(2**16 * 2**f)
    assert 2**16 < crossover < 2**17
    assert not switch(crossover - 1) and switch(crossover) and switch(2**17 - 1)
    assert switch.describe() == f"parallel from {crossover / 1024:.3g} KiB"
    # Without the ratios (or ones that do not bracket the margin), the midpoint in log size.
    assert Switch.from_ladder(sizes, [False, False, True, True]).min_bytes_by_bits[17] == int(2**16 * 2**0.5)


def test_decisions_need_a_margin_and_ignore_one_noisy_size():
    # 1.01 is inside the margin (a tie goes to serial); one lone win among losses is noise, one lone loss too.
    m = _measured("sum", "uint8", [0.5, 1.01, 1.5, 0.5, 0.6, 1.3, 0.9, 1.4, 1.5])
    assert m.decisions() == [False] * 6 + [True] * 3


def test_a_win_inside_the_rounds_spread_stays_serial_and_the_file_says_how_sure(tuning_file):
    # Per-round ratios: parallel 1.3x in the median round but slower in a third of the rounds (close), clearly
    # faster (parallel), clearly slower (serial).
    rounds = [[0.8, 0.9, 1.3, 1.3, 1.4, 1.5], [1.3, 1.4, 1.4, 1.5, 1.6], [0.5, 0.6, 0.6, 0.7], [1.2, 1.3, 1.3]]
    m = Measured("sum", "uint8", list(tuning.LADDER[:4]), [1e-6] * 4, [1e-6] * 4, rounds)
    assert m.verdicts() == ["close", "parallel", "serial", "parallel"]
    assert m.ratio_quartiles(1) == (1.4, 1.4, 1.5)
    assert m.decisions() == [False, False, True, True]  # the lone serial size among parallel ones is noise
    assert Measured("sum", "uint8", [1], [1e-6], [1e-6], [[0.8, 0.9, 1.3, 1.3, 1.4, 1.5]]).decisions() == [False]
    assert m.certainty() == "close at 16 KiB: the rounds there put either form up to 1.38x ahead"
    tuning.save([m, _measured("dot", "int8", [2.0] * 4)], tuning_file)
    data = json.loads(tuning_file.read_text())
    kernels = data["kernels"]
    assert kernels["sum uint8"]["verdicts"] == m.verdicts()
    assert kernels["sum uint8"]["ratio_quartiles"][2] == pytest.approx([0.575, 0.6, 0.625])
    assert kernels["dot int8"]["certainty"].startswith("sure")
    assert "close at 16 KiB" in tuning.summary() and "dot int8: parallel from 16 KiB," not in tuning.summary()


def test_tune_spends_more_rounds_where_the_forms_are_close(monkeypatch):
    # Scripted rounds: the first size is a clear win for parallel, the second a coin toss.
    from qbench.measure import timing

    calls = []

    def rounds(forms, n):
        calls.append(n)
        size = forms["serial"]()  # the stand-in call below returns its point's size
        serial = [2.0] * n if size == 0 else [1.0, 1.2] * (n // 2) + [1.1] * (n % 2)
        return {"serial": serial, "parallel": [1.0] * n}

    monkeypatch.setattr(timing, "interleaved_rounds", rounds)
    monkeypatch.setattr(tune, "build_call", lambda kernel, dtype, n: lambda parallel: n)
    timed = tune._passes([("sum", "uint8", 0), ("sum", "uint8", 1)], 4, 2, None, extra=2)
    assert calls == [4, 4, 4, 4, 8, 8]  # two passes over both sizes, then two passes of 8 rounds at the close one
    assert len(timed[0].ratios) == 8 and len(timed[1].ratios) == 24
    assert timed[0].best == {"serial": 2.0, "parallel": 1.0}


@multicore
def test_saved_tuning_steers_parallel_none_per_kernel(tuning_file):
    measured = [
        _measured("sum", "uint8", [0.5, 0.5, 2.0, 2.0, 2.0]),  # parallel from between 32 and 64 KiB
        _measured("dot", "int8", [0.5] * 5),  # never
    ]
    tuning.save(measured, tuning_file)
    crossover = int(2**15 * 2 ** ((np.log(tuning.MARGIN) - np.log(0.5)) / (np.log(2.0) - np.log(0.5))))
    assert tuning.load()["kernels"]["sum uint8"]["describe"] == f"parallel from {crossover / 1024:.3g} KiB"
    assert tuning.SERIAL_BELOW == crossover
    assert tuning.use_parallel(1 << 16, None, ("sum", np.dtype("uint8")))
    assert tuning.use_parallel(crossover, None, ("sum", np.dtype("uint8")))
    assert not tuning.use_parallel(1 << 15, None, ("sum", np.dtype("uint8")))
    assert not tuning.use_parallel(1 << 30, None, ("dot", np.dtype("int8")))
    # A kernel the file does not know keeps the default rule.
    assert tuning.use_parallel(tuning.DEFAULT_MIN_BYTES, None, ("sum", np.dtype("float32")))
    assert not tuning.use_parallel(tuning.DEFAULT_MIN_BYTES - 1, None, ("sum", np.dtype("float32")))
    # An explicit choice always wins.
    assert tuning.use_parallel(10, True, ("dot", np.dtype("int8")))
    assert f"sum uint8: parallel from {crossover / 1024:.3g} KiB" in tuning.summary()


def test_the_serial_floor_follows_the_tuning_in_force(tuning_file, monkeypatch):
    assert tuning.SERIAL_BELOW == tuning.DEFAULT.first_parallel == tuning.DEFAULT_MIN_BYTES
    tuning.save([_measured("sum", "uint8", [2.0] * 3), _measured("dot", "int8", [0.5] * 3)], tuning_file)
    assert tuning.SERIAL_BELOW == tuning.LADDER[0]  # the sum runs in parallel from the ladder's first size
    monkeypatch.setenv(tuning.ENV, "off")
    tuning.reload()
    assert tuning.SERIAL_BELOW == tuning.DEFAULT_MIN_BYTES


def test_one_numba_thread_is_always_serial(tuning_file):
    tuning.save([_measured("sum", "uint8", [2.0] * 3)], tuning_file)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert not tuning.use_parallel(1 << 30, None, ("sum", np.dtype("uint8")))
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 999, "kernels": {}}), '{"format": 1}'])
def test_an_unreadable_tuning_is_ignored(tuning_file, content):
    tuning_file.write_text(content)
    assert tuning.reload() is None and tuning.TABLE == {} and tuning.load() is None
    assert "default" in tuning.summary()


def test_off_ignores_a_stored_tuning(tuning_file, monkeypatch):
    tuning.save([_measured("sum", "uint8", [2.0] * 3)], tuning_file)
    monkeypatch.setenv(tuning.ENV, "off")
    assert tuning.path() is None and tuning.reload() is None


@pytest.mark.parametrize("kernel,dtype", tuning.TUNED)
def test_every_tuned_case_is_the_key_the_api_asks_for(kernel, dtype, monkeypatch):
    # A tuning stored under one key and looked up under another would silently never apply.
    n = 4096
    call = tune.build_call(kernel, dtype, n)  # builds its data (dequantize quantizes first)
    asked = []
    real = tuning.use_parallel

    def spy(nbytes, parallel, key=()):
        asked.append((key, nbytes))
        return real(nbytes, parallel, key)

    for module in (convert, sums):
        monkeypatch.setattr(module, "use_parallel", spy)
    call(None)
    assert asked == [(tuning.case_key(kernel, dtype), cases.bytes_moved(kernel, dtype, n))]


def test_verify_judges_each_rules_pick_against_the_faster_form(tuning_file):
    tuning.save([_measured("sum", "uint8", [2.0] * 3)], tuning_file)  # tuned: parallel from 16 KiB
    (check,) = tune.verify([("sum", "uint8")], [1 << 16], rounds=1, passes=1)
    assert check.nbytes == 1 << 16 and check.tuned_parallel and not check.default_parallel
    assert check.tuned_over_best == check.parallel_s / min(check.serial_s, check.parallel_s)
    assert check.default_over_best == check.serial_s / min(check.serial_s, check.parallel_s)


def test_qbench_tune_writes_a_file_the_api_reads(tmp_path):
    file = tmp_path / "t.json"
    env = {**os.environ, tuning.ENV: str(file), "NUMBA_NUM_THREADS": "2"}
    args = ["--max-bytes", str(1 << 15), "--rounds", "1", "--passes", "1", "--no-verify"]
    run = subprocess.run(
        [sys.executable, "-m", "qbench", "tune", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(file.read_text())
    assert set(data["kernels"]) == {tuning.label(tuning.case_key(k, d)) for k, d in tuning.TUNED}
    assert all(len(v["bytes"]) == 2 for v in data["kernels"].values())  # 16 KiB and 32 KiB
    show = subprocess.run(
        [sys.executable, "-m", "qbench", "tune", "--show"], capture_output=True, text=True, env=env, timeout=300
    )
    assert show.returncode == 0 and "tuned " in show.stdout and str(file) in show.stdout
    too_small = subprocess.run(
        [sys.executable, "-m", "qbench", "tune", "--max-bytes", "10"], capture_output=True, text=True, env=env
    )
    assert too_small.returncode == 1 and "below the smallest size" in too_small.stderr
