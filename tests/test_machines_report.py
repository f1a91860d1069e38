"""Results from several machines, one report: the comparison says each machine's own numbers."""

import json

import pandas as pd
import pytest

from qbench import cli
from qbench.analysis.results import load_results, machine_info
from qbench.report.headline import headline_table
from qbench.report.pages import report_data
from qbench.report.tables import commit_view
from tests.test_analysis import copy_results


@pytest.fixture
def two_folders(tmp_path):
    """The canned run as machine ``box`` in one folder, and as ``xeon`` (AMX, 16 cores, every side-by-side ratio
    doubled) in another: what two teams' CI runners hand over."""
    a = copy_results(tmp_path / "a")
    b = copy_results(tmp_path / "b", machine="xeon")
    info_path = b / "xeon" / "qbench-machine.json"
    info = json.loads(info_path.read_text())
    info.update(machine="xeon", cpu="Intel Xeon", simd=["avx2", "avx512f", "avx512_vnni", "amx_int8"], cores=16)
    info_path.write_text(json.dumps(info))
    for path in (b / "xeon").glob("*-*.json"):
        data = json.loads(path.read_text())
        for name, result in data.get("results", {}).items():  # qbench-machine.json holds none
            if "SideBySide.track_ratio" in name and isinstance(result, list):
                result[0] = [None if v is None else 2 * v for v in result[0]]
        path.write_text(json.dumps(data))
    return a, b


def _own_headline(folder, machine):
    frame = load_results(folder, machine=machine)
    commit, _ = commit_view(frame, None)
    info = machine_info(folder, machine)
    data = report_data(frame, commit, info["caches"])
    return headline_table(data.sbs, data.caches), data


def test_two_folders_make_one_comparison(two_folders, tmp_path, capsys):
    a, b = two_folders
    out = tmp_path / "out"
    assert cli.main(["report", "--results", str(a), str(b), "--out", str(out)]) == 0
    table = pd.read_csv(out / "machines.csv").set_index("machine")
    assert table.loc["box", "AMX"] == "no" and table.loc["xeon", "AMX"] == "yes"
    assert table.loc["xeon", "cores"] == 16 and table.loc["xeon", "CPU"] == "Intel Xeon"
    for folder, machine in ((a, "box"), (b, "xeon")):
        own, data = _own_headline(folder, machine)
        dot = own[own["operation"] == "dot int8"]["8-bit / float32"]
        assert table.loc[machine, "dot 8-bit/f32, cache"] == pytest.approx(dot.iloc[0])
        assert table.loc[machine, "dot 8-bit/f32, memory"] == pytest.approx(dot.iloc[-1])
        reads = data.t[data.t["kernel"] == "read"]
        assert table.loc[machine, "read GB/s, 1 thread"] == pytest.approx(
            reads[(reads["size"] == reads["size"].max()) & (reads["threads"] == 1)]["gbps"].max()
        )
        assert (out / machine / "index.html").exists()
    # each row is its own machine's: xeon's doubled ratios are not box's
    assert table.loc["xeon", "dot 8-bit/f32, memory"] == pytest.approx(2 * table.loc["box", "dot 8-bit/f32, memory"])
    assert table.loc["xeon", "quantize x torch"] == pytest.approx(2 * table.loc["box", "quantize x torch"])
    html = (out / "index.html").read_text()
    assert "box: its own report" in html and "xeon/index.html" in html
    assert html.count("data:image/png;base64,") == 1
