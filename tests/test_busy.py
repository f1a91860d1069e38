"""A busy machine is detected, point by point, and said once at the top of the page; a quiet one is not."""

import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from benchmarks.benchmarks import _common
from qbench import report
from qbench.analysis import busy as analysis
from qbench.analysis.results import load_results, machine_info
from qbench.measure import busy

DATA = Path(__file__).parent / "data"
SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def hog(seconds: float) -> subprocess.Popen:
    """A CPU-bound process beside the test, as another user's job would be."""
    return subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)])


def test_a_cpu_bound_process_beside_a_point_is_counted():
    beside = hog(3.0)
    try:
        time.sleep(0.3)  # its interpreter has started
        watch = busy.Watch()
        time.sleep(1.5)
        window = watch.stop()
    finally:
        beside.kill()
        beside.wait()
    # One core taken (the other test worker may add up to one more), and clear of the counters' error.
    assert window.other > 0.6 and window.busy, window


Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
Own = namedtuple("Own", "user system children_user children_system")


def test_the_arithmetic_leaves_out_this_process_and_counts_steal(monkeypatch):
    """Other = machine busy - own; steal apart; guest time (inside user) not counted twice; the error counts the
    CPUs whose counters moved, not the idle ones. Counters faked: four CPUs, one busy, one stolen, two idle."""
    idle = Times(1, 0, 1, 50, 0, 0, 0, 0, 0.5, 0)  # guest time inside user, unchanged
    before = [Times(10, 0, 5, 100, 1, 0, 0, 0, 0, 0), Times(0, 0, 0, 9, 0, 0, 0, 2, 0, 0), idle, idle]
    after = [Times(13.5, 0, 5.5, 100.4, 1, 0, 0, 0, 0, 0), Times(0, 0, 0, 9.1, 0, 0, 0, 2.6, 0, 0), idle, idle]
    machine = iter([before, after])
    own = iter([Own(1, 1, 0, 0), Own(3, 1, 0.5, 0)])  # 2.5 s of its own and its waited children's
    clock = iter([50.0, 52.0])
    monkeypatch.setattr(busy.psutil, "cpu_times", lambda percpu: next(machine))
    monkeypatch.setattr(busy.psutil.Process, "cpu_times", lambda self: next(own))
    monkeypatch.setattr(busy.time, "monotonic", lambda: next(clock))
    window = busy.Watch().stop()
    # Busy 4 s (3.5 user + 0.5 system) in 2 s, 2.5 of them this process's: 1.5 s of others = 0.75 core.
    assert window.seconds == 2.0 and window.other == pytest.approx(0.75) and window.steal == pytest.approx(0.3)
    # Two ticks at each of the 2 CPUs that moved and for this process, over 2 s.
    assert window.uncertainty == pytest.approx(2 * (2 + 1) * busy.TICK / 2.0)


class Point(_common._Timed):
    params = [[1, 2], ["a"]]
    param_names = ["size", "comparison"]

    def setup(self, size: int, comparison: str) -> None:
        self.size = size


def test_the_suite_records_every_point_it_times_without_a_write_beside_each_call(tmp_path, monkeypatch):
    """asv runs setup and teardown around every timed call: the count starts once and is written rarely."""
    path = tmp_path / "busy.jsonl"
    monkeypatch.setenv(busy.BUSY_FILE, str(path))
    point = Point()
    for _ in range(50):  # the calls of one sample after another
        point.setup(2, "a")
        point.teardown(2, "a")
    first = json.loads(path.read_text())
    assert first["suite"] == "test_busy.Point" and first["params"] == {"size": 2, "comparison": "a"}
    assert {"seconds", "other", "steal", "uncertainty"} <= first.keys() and point.size == 2
    assert first["pid"] == os.getpid() and len(path.read_text().splitlines()) == 1
    time.sleep(_common.BUSY_EVERY)
    point.setup(2, "a")
    point.teardown(2, "a")
    later = json.loads(path.read_text().splitlines()[-1])
    assert later["seconds"] > first["seconds"] + 0.9 * _common.BUSY_EVERY  # counted from the point's start
    monkeypatch.delenv(busy.BUSY_FILE)
    other = Point()
    other.setup(1, "a")
    other.teardown(1, "a")  # no file asked for: nothing written, nothing fails
    assert len(path.read_text().splitlines()) == 2


def results_with_busy(tmp_path: Path, busy_share) -> Path:
    """The quick run's results with a busy record for each point: ``busy_share(row)`` cores of others."""
    folder = tmp_path / "results"
    shutil.copytree(DATA / "quick-run", folder)
    frame = load_results(folder)
    commit = frame["commit"].iloc[0]
    lines = [{"phase": "before", "seconds": 1.0, "other": 0.01, "steal": 0.0, "uncertainty": 0.01}]
    for row in frame.drop_duplicates(["suite", "params"]).itertuples():
        other = busy_share(row)
        lines.append(
            {
                "suite": row.suite,
                "params": json.loads(row.params),
                "seconds": 0.5,
                "other": other,
                "steal": 0.0,
                "uncertainty": 0.02,
            }  # fmt: skip
        )
    top = [{"name": "stress", "pid": 4242, "cpu_seconds": 310.0}]
    lines += [{"phase": "run", "seconds": 600.0, "top": top}]
    lines += [{"phase": "after", "seconds": 1.0, "other": 0.98, "steal": 0.0, "uncertainty": 0.01}]
    path = busy.busy_file(folder, "box", commit)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def two_threads_busy(row) -> float:
    return 0.97 if row.threads == 2 else 0.01


def test_a_busy_run_says_so_first_names_the_figures_and_groups_the_flags(tmp_path):
    folder = results_with_busy(tmp_path, two_threads_busy)
    frame = load_results(folder)
    assert frame["busy"].notna().all()
    index = report.build_report(frame, machine_info(folder, "box"), tmp_path / "page", progress=lambda s: None)
    page = index.read_text()
    trust = page.index("<div id='trust' class='busy'>")
    assert trust < page.index("id='headline'") < page.index("<img")
    text = page[trust : page.index("</div>", trust)]
    points = frame[frame["threads"] == 2].drop_duplicates(["suite", "params"])
    assert f"Busy machine: other programs used the CPUs during {len(points)} of the" in text
    assert "0.97 of a core on average" in text and "stress (pid 4242, 310 s)" in text
    assert "0.01 of a core in the second before the run, 0.98 in the second after" in text
    assert "several threads first: " in text
    assert "qbench run -b &quot;^(" in text and "bench_side_by_side\\.(SideBySide)" in text
    # The impossible ratios: by cause with counts, the busy machine first; the lines one by one folded below.
    causes = page[page.index("class='flags'") :]
    assert causes.index("ratios: measured while other programs used the CPUs") < causes.index("<details")
    markdown = (tmp_path / "page" / "report.md").read_text()
    assert markdown.index("**Warning.** Busy machine") < markdown.index("## ")


def test_a_quiet_run_says_so_in_one_line_and_flags_no_busy_cause(tmp_path):
    folder = results_with_busy(tmp_path, lambda row: 0.01)
    frame = load_results(folder)
    index = report.build_report(frame, machine_info(folder, "box"), tmp_path / "page", progress=lambda s: None)
    page = index.read_text()
    assert "<div id='trust' class='quiet'><p>Quiet machine: other programs used at most 0.00 of a core" in page
    assert "Busy" not in page and "other programs used the CPUs (see" not in page


def test_results_without_records_say_it_was_not_recorded(tmp_path):
    summary = analysis.summarize(load_results(DATA / "quick-run"))
    assert summary.lines() == [
        "Whether other programs used the CPUs was not recorded for this run (an older qbench measured it)."
    ]


def test_a_process_later_record_covers_its_earlier_a_rerun_replaces_and_a_broken_line_is_skipped(tmp_path):
    path = tmp_path / "qbench-busy-abc.jsonl"
    point = {"suite": "s.C", "params": {"size": 1}, "seconds": 1, "steal": 0.0, "uncertainty": 0.0}
    before = {"phase": "before", "seconds": 1, "other": 0, "steal": 0, "uncertainty": 0}
    lines = [
        before,
        {**point, "pid": 1, "other": 2.0, "uncertainty": 0.5},  # a short start, busier than the point was
        {**point, "pid": 1, "other": 0.2},  # the same process later: covers the one above
        {**point, "pid": 2, "other": 0.9},  # the point's other benchmark, another process: the busiest counts
        {**point, "pid": 3, "other": 5.0, "uncertainty": 5.0},  # busier on its face, but all of it is error
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    with pytest.warns(UserWarning, match="line 6 .* not a busy record"):
        points, runs = analysis.read(path)
    assert points[analysis.point_key("s.C", {"size": 1})]["other"] == 0.9 and len(runs) == 1
    path.write_text("".join(json.dumps(line) + "\n" for line in [*lines, before, {**point, "pid": 9, "other": 0.05}]))
    points, runs = analysis.read(path)  # measured again: the new run's window replaces the old
    assert points[analysis.point_key("s.C", {"size": 1})]["other"] == 0.05 and len(runs) == 2


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_the_top_processes_name_a_hog_and_leave_out_this_one():
    before = busy.CpuTimes()
    beside = hog(1.0)
    beside.wait()
    # An exited process is gone from the second snapshot: a running one is what it can name.
    running = hog(5.0)
    try:
        time.sleep(1.5)
        now = busy.CpuTimes()
        mine = busy.own_tree()
    finally:
        running.kill()
        running.wait()
    assert mine[0] == os.getpid() and running.pid in mine  # a run's own tree: asv and the points it forks
    top = {t["pid"]: t["cpu_seconds"] for t in now.top(before, [os.getpid()])}
    assert top.get(running.pid, 0) >= 0.5, top  # among the three busiest (the other test worker may be too)
    assert running.pid not in [t["pid"] for t in now.top(before, mine)]
